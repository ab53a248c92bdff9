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
import re
import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from certs.ca import CertificateAuthority
from certs.identifiers import MemberId, NodeId, SubsystemId
from certs.internal_tls import self_signed_tls_certificate
from certs.keys import generate_key, save_certificate, save_private_key
from certs.profiles import make_csr
from certs.service_keys import SERVICES_DIR, load_or_issue_service_identity
from gateway.sandbox.description import NodeSpec, SandboxDescription

__all__ = ["BuiltNode", "BuiltSandbox", "build_sandbox", "client_slug", "free_port"]


class Ports:
    """Ephemeral ports for one federation, never the same one twice.

    The OS may offer a just-closed ephemeral port again, and two components of
    one federation must never share a port.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._given: set[int] = set()

    def take(self) -> int:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        for _ in range(100):
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.bind((self._host, 0))
                port = int(sock.getsockname()[1])
            if port not in self._given:
                self._given.add(port)
                return port
        raise RuntimeError("no fresh ephemeral port could be found")


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral port that was free a moment ago (the OS picks it)."""
    return Ports(host).take()


@dataclass
class BuiltNode:
    spec: NodeSpec
    directory: Path
    config: Path
    client_port: int
    peer_port: int
    management_port: int
    database: str
    client_tls_port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    # Per client subsystem: connection type, client token, TLS client key and certificate.
    clients: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class BuiltSandbox:
    directory: Path
    registry_config: Path
    registry_port: int
    anchor: Path
    ca_cert: Path
    nodes: list[BuiltNode]
    ocsp_port: int
    tsa_port: int

    @property
    def ocsp_url(self) -> str:
        return f"http://127.0.0.1:{self.ocsp_port}"

    @property
    def tsa_url(self) -> str:
        return f"http://127.0.0.1:{self.tsa_port}"


def _registry(*argv: str) -> None:
    """Run one ``renkei registry`` admin command in-process, quietly."""
    from gateway.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["registry", *argv])
    if code != 0:
        raise RuntimeError(f"renkei registry {' '.join(argv)} failed: {out.getvalue().strip()}")


def _override_settings(path: Path, settings: dict[str, int]) -> None:
    text = path.read_text("utf-8")
    for key, value in settings.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        if count == 0:
            text += f"\n{key} = {value}\n"
    path.write_text(text, "utf-8")


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




def _internal_tls(node: NodeSpec, keys: Path, now: datetime) -> None:
    """The node's client TLS certificate, and one TLS client certificate per subsystem
    (an information system's), to be registered through the management API."""
    key = generate_key("ec-p256")
    save_private_key(key, keys / "client-tls.key")
    save_certificate(
        self_signed_tls_certificate(key, str(node.id), role="server", now=now),
        keys / "client-tls.pem",
    )
    for subsystem in node.subsystems:
        slug = client_slug(str(subsystem))
        is_key = generate_key("ec-p256")
        save_private_key(is_key, keys / f"is-{slug}.key")
        save_certificate(
            self_signed_tls_certificate(is_key, str(subsystem), role="client", now=now),
            keys / f"is-{slug}.pem",
        )


def client_slug(subsystem: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", subsystem.lower()).strip("-")


def _toml(value: Any) -> str:
    """A TOML literal for the simple values a policy file holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to a policy file")


def _consent_consumers(description: SandboxDescription, node: NodeSpec) -> set[SubsystemId]:
    """Subsystems allowed (directly or through a global group) to call a consent-governed
    service hosted on ``node``."""
    members = {str(group.id): set(group.members) for group in description.groups}
    consumers: set[SubsystemId] = set()
    for service in description.services:
        if service.id.subsystem not in node.subsystems or not service.consent_governed:
            continue
        for grantee in service.allowed:
            if grantee in members:
                consumers |= members[grantee]
            elif grantee.count("/") == 3:
                consumers.add(SubsystemId.parse(grantee))
    return consumers


def _policy_file(description: SandboxDescription, node: NodeSpec) -> str:
    """The node's declarative policy: access rights and declarations of its services,
    the purposes its client subsystems declared, and copies of the purposes of the
    consumers its consent-governed services serve (its consent desk accepts a consent
    only for a purpose the consumer declared)."""
    lines = ["# Generated by renkei sandbox: this node's policy (deny by default).", ""]
    served = _consent_consumers(description, node)
    for consumer, code, text in description.purposes:
        if consumer in node.subsystems or consumer in served:
            lines += [
                "[[purpose]]",
                f'consumer = "{consumer}"',
                f"code = {_toml(code)}",
                f"text = {_toml(text)}",
                "",
            ]
    for service in description.services:
        if service.id.subsystem not in node.subsystems:
            continue
        if service.declaration is not None:
            lines += [
                "[[service]]",
                f'id = "{service.id}"',
                f"description = {_toml(service.description)}",
                f"consent_governed = {_toml(service.consent_governed)}",
                *(f"{key} = {_toml(value)}" for key, value in service.declaration.items()),
                "",
            ]
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
        if not url.startswith(("http://", "https://", "ngsi-ld:")):
            url = f"{backend_url}/{service.backend}"
        openapi = Path(__file__).parent / "openapi" / f"{service.id.service_code}.json"
        described = f"openapi = {_toml(str(openapi))}\n" if openapi.is_file() else ""
        about = f"description = {_toml(service.description)}\n" if service.description else ""
        services.append(
            f'[[service]]\nid = "{service.id}"\nbackend = "{url}"\n{described}{about}'
        )
    return "\n".join(
        [
            f'node_id = "{node.id}"',
            'data_dir = "."',
            f'database_url = "{built.database}"',
            'anchor = "anchor.json"',
            'policy_file = "policy.toml"',
            "",
            f'[client]\nhost = "127.0.0.1"\nport = {built.client_port}\n',
            # HTTPS for information systems; their certificates are registered per subsystem.
            f'[client_tls]\nhost = "127.0.0.1"\nport = {built.client_tls_port}\n'
            'certificate = "keys/client-tls.pem"\nkey = "keys/client-tls.key"\n',
            f'[peer]\nhost = "127.0.0.1"\nport = {built.peer_port}\n',
            # A sandbox serves tests and integrators hammering the auditor API.
            f'[management]\nhost = "127.0.0.1"\nport = {built.management_port}\n'
            "rate_limit_per_s = 1000\nrate_limit_burst = 5000\n",
            '[keys]\nauth_key = "keys/auth.key"\nauth_certificate = "keys/auth.pem"',
            'token_key = "keys/token.key"\n',
            # Who consent receipts name as controller (Kantara CR 1.1 contact fields).
            f'[receipt_controller]\ncontact = "Consent desk, {node.id.member_code}"\n'
            f'address = "1-1 Sandbox-cho, Chiyoda-ku, Tokyo"\n'
            f'email = "consent@{node.id.member_code.lower()}.example"\n'
            'phone = "+81-3-0000-0000"\njurisdiction = "JP"\n'
            f'policy_url = "https://{node.id.member_code.lower()}.example/privacy"\n',
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
    # The responder and the TSA get their certificates now; their servers reuse them.
    for profile in ("ocsp", "tsa"):
        load_or_issue_service_identity(ca, profile, now=now)
    ports = Ports()
    ocsp_port, tsa_port = ports.take(), ports.take()

    registry_dir = directory / "registry"
    registry_port = ports.take()
    _registry(
        "init",
        "--dir", str(registry_dir),
        "--instance", description.instance,
        "--port", str(registry_port),
    )
    config = str(registry_dir / "registry.toml")
    _override_settings(registry_dir / "registry.toml", description.settings)
    _registry(
        "ca", "add", "--config", config, "--cert", str(ca_cert),
        "--ocsp-url", f"http://127.0.0.1:{ocsp_port}",
    )
    _registry(
        "tsa", "add", "--config", config, "--name", f"{description.instance} TSA",
        "--url", f"http://127.0.0.1:{tsa_port}",
        "--cert", str(directory / "ca" / SERVICES_DIR / "tsa.pem"),
    )
    for member_spec in description.members:
        _registry(
            "member", "add", str(member_spec.id), "--name", member_spec.name, "--config", config
        )
        for subsystem in member_spec.subsystems:
            name = member_spec.subsystem_names.get(subsystem.subsystem_code)
            _registry(
                "subsystem", "add", str(subsystem), "--config", config,
                *(("--name", name) if name else ()),
            )

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
            client_port=ports.take(),
            peer_port=ports.take(),
            management_port=ports.take(),
            database=(
                databases[index]
                if databases
                else f"sqlite+aiosqlite:///{node_dir / 'node.db'}"
            ),
        )
        built.client_tls_port = ports.take()
        _internal_tls(node, keys, now)
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
        ocsp_port=ocsp_port,
        tsa_port=tsa_port,
    )


def describe(
    sandbox: BuiltSandbox,
    description: SandboxDescription,
    consents: list[dict[str, Any]] | None = None,
    *,
    backend_url: str | None = None,
) -> str:
    """The JSON document ``renkei sandbox up`` prints (DESIGN §7).

    ``backends`` gives the sample backends' base URLs, for services an operator
    adds to the running sandbox (``renkei service add ... --backend URL``).
    """
    document = {
        "instance": description.instance,
        "dir": str(sandbox.directory),
        "registry": {
            "url": f"http://127.0.0.1:{sandbox.registry_port}",
            "anchor": str(sandbox.anchor),
        },
        "trust": {
            "ca_cert": str(sandbox.ca_cert),
            "ca_dir": str(sandbox.ca_cert.parent),
            "ocsp_url": sandbox.ocsp_url,
            "tsa_url": sandbox.tsa_url,
        },
        "nodes": [
            {
                "id": str(node.spec.id),
                "client_url": f"http://127.0.0.1:{node.client_port}",
                "client_tls_url": f"https://127.0.0.1:{node.client_tls_port}",
                "client_tls_certificate": str(node.directory / "keys" / "client-tls.pem"),
                "clients": node.clients,
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
        "consents": consents or [],
        "backends": (
            {name: f"{backend_url}/{name}" for name in ("fhir", "gtfs", "echo")}
            if backend_url is not None
            else {}
        ),
    }
    return json.dumps(document, indent=2)
