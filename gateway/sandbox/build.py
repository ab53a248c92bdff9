"""Lay out a sandbox federation on disk: PKI, registry, node settings and policies.

Everything an operator would do by hand to set up a federation happens here
through the same commands and APIs they would use: the CA issues every
certificate from a CSR, the registry is filled through its admin commands,
and each node gets a settings file and a policy file.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from certs.ca import CertificateAuthority
from certs.identifiers import MemberId, NodeId
from certs.keys import generate_key, save_certificate, save_private_key
from certs.profiles import make_csr
from gateway.sandbox.description import NodeSpec, SandboxDescription

__all__ = ["BuiltNode", "BuiltSandbox", "build_sandbox", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral port that was free a moment ago (the OS picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class BuiltNode:
    spec: NodeSpec
    directory: Path
    config: Path
    client_port: int
    peer_port: int
    management_port: int
    database: str
    tokens: dict[str, str] = field(default_factory=dict)


@dataclass
class BuiltSandbox:
    directory: Path
    registry_config: Path
    registry_port: int
    anchor: Path
    ca_cert: Path
    nodes: list[BuiltNode]


def _registry(*argv: str) -> None:
    """Run one ``renkei registry`` admin command in-process, quietly."""
    from gateway.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["registry", *argv])
    if code != 0:
        raise RuntimeError(f"renkei registry {' '.join(argv)} failed: {out.getvalue().strip()}")


def _issue(
    ca: CertificateAuthority,
    identity: NodeId | MemberId,
    profile: str,
    key_path: Path,
    cert_path: Path,
    now: datetime,
) -> None:
    key = generate_key("ec-p256")
    save_private_key(key, key_path)
    csr = make_csr(key, identity, "auth" if profile == "auth" else "sign")
    cert = ca.issue(csr, profile="auth" if profile == "auth" else "sign", now=now)
    save_certificate(cert, cert_path)




def _policy_file(description: SandboxDescription, node: NodeSpec) -> str:
    """The node's declarative policy: access rights for the services it provides."""
    lines = ["# Access rights of the services this node provides (deny by default).", ""]
    for service in description.services:
        if service.id.subsystem not in node.subsystems:
            continue
        for grantee in service.allowed:
            lines += [
                "[[access]]",
                f'service = "{service.id}"',
                f'grantee = "{grantee}"',
                'method = "*"',
                'path = "**"',
                "",
            ]
    return "\n".join(lines)


def _node_settings(
    description: SandboxDescription,
    node: NodeSpec,
    built: BuiltNode,
    backend_url: str,
) -> str:
    sign = []
    for member in description.members_on(node):
        slug = member.member_code.lower()
        sign.append(
            "[[keys.sign]]\n"
            f'member = "{member}"\n'
            f'key = "keys/sign-{slug}.key"\n'
            f'certificate = "keys/sign-{slug}.pem"\n'
        )
    services = []
    for service in description.services:
        if service.id.subsystem not in node.subsystems:
            continue
        url = service.backend
        if not url.startswith(("http://", "https://")):
            url = f"{backend_url}/{service.backend}"
        services.append(f'[[service]]\nid = "{service.id}"\nbackend = "{url}"\n')
    return "\n".join(
        [
            f'node_id = "{node.id}"',
            'data_dir = "."',
            f'database_url = "{built.database}"',
            'anchor = "anchor.json"',
            'policy_file = "policy.toml"',
            "",
            f'[client]\nhost = "127.0.0.1"\nport = {built.client_port}\n',
            f'[peer]\nhost = "127.0.0.1"\nport = {built.peer_port}\n',
            f'[management]\nhost = "127.0.0.1"\nport = {built.management_port}\n',
            '[keys]\nauth_key = "keys/auth.key"\nauth_certificate = "keys/auth.pem"',
            'token_key = "keys/token.key"\n',
            *sign,
            *services,
        ]
    )


def build_sandbox(
    description: SandboxDescription,
    directory: Path,
    *,
    backend_url: str,
    now: datetime,
    databases: list[str] | None = None,
) -> BuiltSandbox:
    """Lay the federation out in ``directory``; ``databases`` gives one URL per node."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.create(directory / "ca", instance=description.instance, now=now)
    ca_cert = directory / "ca" / "ca.pem"

    registry_dir = directory / "registry"
    registry_port = free_port()
    _registry(
        "init",
        "--dir", str(registry_dir),
        "--instance", description.instance,
        "--port", str(registry_port),
    )
    config = str(registry_dir / "registry.toml")
    _registry("ca", "add", "--config", config, "--cert", str(ca_cert))
    for member_spec in description.members:
        _registry(
            "member", "add", str(member_spec.id), "--name", member_spec.name, "--config", config
        )
        for subsystem in member_spec.subsystems:
            _registry("subsystem", "add", str(subsystem), "--config", config)

    nodes: list[BuiltNode] = []
    for index, node in enumerate(description.nodes):
        node_dir = directory / "nodes" / node.slug
        keys = node_dir / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        _issue(ca, node.id, "auth", keys / "auth.key", keys / "auth.pem", now)
        save_private_key(generate_key("ec-p256"), keys / "token.key")
        for member in description.members_on(node):
            slug = member.member_code.lower()
            _issue(ca, member, "sign", keys / f"sign-{slug}.key", keys / f"sign-{slug}.pem", now)
        built = BuiltNode(
            spec=node,
            directory=node_dir,
            config=node_dir / "node.toml",
            client_port=free_port(),
            peer_port=free_port(),
            management_port=free_port(),
            database=(
                databases[index]
                if databases
                else f"sqlite+aiosqlite:///{node_dir / 'node.db'}"
            ),
        )
        (node_dir / "anchor.json").write_bytes((registry_dir / "anchor.json").read_bytes())
        (node_dir / "policy.toml").write_text(_policy_file(description, node), "utf-8")
        built.config.write_text(
            _node_settings(description, node, built, backend_url), "utf-8"
        )
        _registry(
            "node", "add", str(node.id),
            "--address", "127.0.0.1",
            "--peer-port", str(built.peer_port),
            "--config", config,
        )
        _registry("node", "add-cert", str(node.id), "--cert", str(keys / "auth.pem"),
                  "--config", config)
        for subsystem in node.subsystems:
            _registry("node", "host", str(node.id), str(subsystem), "--config", config)
        nodes.append(built)

    for group in description.groups:
        _registry("group", "add", str(group.id), "--description", group.description,
                  "--config", config)
        for subsystem in group.members:
            _registry("group", "add-member", str(group.id), str(subsystem), "--config", config)

    (directory / "sandbox-secret").write_text(secrets.token_hex(16), "utf-8")
    return BuiltSandbox(
        directory=directory,
        registry_config=registry_dir / "registry.toml",
        registry_port=registry_port,
        anchor=registry_dir / "anchor.json",
        ca_cert=ca_cert,
        nodes=nodes,
    )


def describe(sandbox: BuiltSandbox, description: SandboxDescription) -> str:
    """The JSON document ``renkei sandbox up`` prints (DESIGN §7)."""
    document = {
        "instance": description.instance,
        "dir": str(sandbox.directory),
        "registry": {
            "url": f"http://127.0.0.1:{sandbox.registry_port}",
            "anchor": str(sandbox.anchor),
        },
        "trust": {"ca_cert": str(sandbox.ca_cert), "ocsp_url": None, "tsa_url": None},
        "nodes": [
            {
                "id": str(node.spec.id),
                "client_url": f"http://127.0.0.1:{node.client_port}",
                "peer_url": f"https://127.0.0.1:{node.peer_port}",
                "management_url": f"http://127.0.0.1:{node.management_port}",
                "metrics_url": f"http://127.0.0.1:{node.management_port}/metrics",
                "database": node.database,
                "config": str(node.config),
                "subsystems": [str(s) for s in node.spec.subsystems],
                "tokens": node.tokens,
            }
            for node in sandbox.nodes
        ],
        "services": [
            {
                "id": str(service.id),
                "node": str(description.node_of(service.id.subsystem).id),
                "backend": service.backend,
                "allowed": list(service.allowed),
                "consent_governed": service.consent_governed,
                "description": service.description,
            }
            for service in description.services
        ],
    }
    return json.dumps(document, indent=2)
