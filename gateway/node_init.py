"""``renkei node init`` and ``renkei node register``: how a new node joins the federation.

``init`` lays out a node directory: the node's auth key and CSR, the member's sign key
and CSR (unless the key is there already), a management-token key, a copy of the
configuration anchor and a ``node.toml`` that names the certificate files the CA will
issue, so that the node starts from it unchanged once they exist. ``register`` then
sends the registry an auth-certificate registration request signed with the new auth
key (proof of possession) and the member's sign key (the member's consent); see
``member_registry.registration_request``.

The ``[registration]`` table of ``node.toml`` holds what only registration needs: the
address peers reach this node at and the subsystems it hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from certs.errors import CertsError
from certs.identifiers import IdentifierError, MemberId, NodeId, SubsystemId
from certs.keys import (
    generate_key,
    load_certificate,
    load_certificates,
    load_private_key,
    save_csr,
    save_private_key,
)
from certs.profiles import make_csr
from gateway.downloads import DownloadTooLarge, read_capped
from member_registry.anchor import anchor_digest, load_anchor
from member_registry.errors import RegistryBaseError
from member_registry.registration_request import new_registration_request, sign_registration

__all__ = ["JoinError", "NodeLayout", "init_node", "send_registration"]

DEFAULT_CLIENT_PORT = 8000
DEFAULT_PEER_PORT = 5500
DEFAULT_MANAGEMENT_PORT = 5588
_TIMEOUT = aiohttp.ClientTimeout(total=30)
# The registry answers a registration with a short JSON document.
_MAX_ANSWER_BYTES = 64 * 1024


class JoinError(Exception):
    """Initialising or registering a node failed; the message says what to fix."""

    code = "node.join_failed"


@dataclass(frozen=True)
class NodeLayout:
    """What ``init_node`` wrote: the config and the CSRs the CA operator must sign."""

    config: Path
    auth_csr: Path
    sign_csrs: tuple[Path, ...]
    anchor_sha256: str | None


def _sign_slug(member: MemberId) -> str:
    return member.member_code.lower()


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _listen_host(address: str) -> str:
    """Bind the peer port to the registered address when it is an IP literal."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return "0.0.0.0"  # noqa: S104 - a host name: peers connect from other hosts
    return address


def _config_text(
    node: NodeId, members: Sequence[MemberId], subsystems: Sequence[SubsystemId], *,
    address: str, ports: tuple[int, int, int], database: str | None, anchor: bool,
) -> str:
    client_port, peer_port, management_port = ports
    lines = [
        "# Written by renkei node init; every key can be overridden by RENKEI_NODE_<KEY>.",
        f"node_id = {_toml_string(str(node))}",
        'data_dir = "."',
    ]
    if database is not None:
        lines.append(f"database_url = {_toml_string(database)}")
    lines += [
        f'anchor = "anchor.json"{"" if anchor else "  # install the anchor here"}',
        "",
        f'[client]\nhost = "127.0.0.1"\nport = {client_port}\n',
        f"[peer]\nhost = {_toml_string(_listen_host(address))}\nport = {peer_port}\n",
        f'[management]\nhost = "127.0.0.1"\nport = {management_port}\n',
        '[keys]\nauth_key = "keys/auth.key"\nauth_certificate = "keys/auth.pem"',
        'token_key = "keys/token.key"\n',
    ]
    for member in members:
        slug = _sign_slug(member)
        lines += [
            "[[keys.sign]]",
            f"member = {_toml_string(str(member))}",
            f'key = "keys/sign-{slug}.key"',
            f'certificate = "keys/sign-{slug}.pem"',
            "",
        ]
    hosted = ", ".join(_toml_string(str(s)) for s in subsystems)
    lines += [
        "# Sent by renkei node register: where peers reach this node, what it hosts.",
        "[registration]",
        f"address = {_toml_string(address)}",
        f"subsystems = [{hosted}]",
        "",
    ]
    return "\n".join(lines)


def init_node(
    directory: Path,
    node: NodeId,
    *,
    members: Sequence[MemberId] = (),
    subsystems: Sequence[SubsystemId] = (),
    anchor: Path | None = None,
    address: str = "127.0.0.1",
    ports: tuple[int, int, int] = (DEFAULT_CLIENT_PORT, DEFAULT_PEER_PORT,
                                   DEFAULT_MANAGEMENT_PORT),
    database: str | None = None,
) -> NodeLayout:
    """Create the node directory; refuses to overwrite an existing ``node.toml``."""
    config = directory / "node.toml"
    if config.exists():
        raise JoinError(f"{config} exists already; refusing to overwrite a node")
    for subsystem in subsystems:
        if subsystem.member != node.member:
            raise JoinError(f"subsystem {subsystem} does not belong to {node.member}")
    signers = [node.member, *(m for m in members if m != node.member)]
    keys = directory / "keys"
    try:
        keys.mkdir(parents=True, exist_ok=True)
        auth_key = generate_key()
        save_private_key(auth_key, keys / "auth.key")
        save_csr(make_csr(auth_key, node, "auth"), keys / "auth.csr")
        sign_csrs = []
        for member in signers:
            key_path = keys / f"sign-{_sign_slug(member)}.key"
            # The member may already hold a sign key (another node of it): reuse it.
            sign_key = load_private_key(key_path) if key_path.exists() else generate_key()
            if not key_path.exists():
                save_private_key(sign_key, key_path)
            if not key_path.with_suffix(".pem").exists():
                csr_path = key_path.with_suffix(".csr")
                save_csr(make_csr(sign_key, member, "sign"), csr_path)
                sign_csrs.append(csr_path)
        token_key = keys / "token.key"
        if not token_key.exists():
            save_private_key(generate_key(), token_key)
        digest = None
        if anchor is not None:
            load_anchor(anchor)  # refuse to install something that is not an anchor
            (directory / "anchor.json").write_bytes(anchor.read_bytes())
            digest = anchor_digest(directory / "anchor.json")
        config.write_text(_config_text(node, signers, subsystems, address=address, ports=ports,
                                       database=database, anchor=anchor is not None), "utf-8")
    except OSError as exc:
        raise JoinError(f"cannot write to {directory}: {exc.strerror}") from exc
    except (CertsError, RegistryBaseError) as exc:
        raise JoinError(f"{exc} [{exc.code}]") from exc
    return NodeLayout(config, keys / "auth.csr", tuple(sign_csrs), digest)


@dataclass(frozen=True)
class _Registration:
    node: NodeId
    address: str
    peer_port: int
    subsystems: tuple[SubsystemId, ...]
    sign_key: Path
    sign_certificate: Path


def _registration_settings(config: Path) -> _Registration:
    from gateway.settings import SettingsError, load_node_settings

    try:
        settings = load_node_settings(config)
        table = tomllib.loads(config.read_text("utf-8")).get("registration", {})
    except (SettingsError, OSError, tomllib.TOMLDecodeError) as exc:
        raise JoinError(str(exc)) from exc
    if not isinstance(table, dict):
        raise JoinError("[registration] must be a table")
    address = str(table.get("address", settings.peer.host))
    if settings.peer.port == 0:
        raise JoinError("peer.port must be a fixed port to be registered")
    try:
        subsystems = tuple(SubsystemId.parse(str(s)) for s in table.get("subsystems", []))
    except IdentifierError as exc:
        raise JoinError(f"registration.subsystems: {exc}") from exc
    signer = next((s for s in settings.sign_keys if s.member == settings.node_id.member), None)
    if signer is None:
        raise JoinError(f"no [[keys.sign]] entry for the node's member {settings.node_id.member}")
    return _Registration(settings.node_id, address, settings.peer.port, subsystems,
                         signer.key, signer.certificate)


async def send_registration(
    registry_url: str, config: Path, *, auth_key: Path | None = None,
    auth_certificate: Path | None = None, now: datetime,
) -> dict[str, Any]:
    """Sign a registration request from the node's config and send it; returns the answer.

    ``auth_key``/``auth_certificate`` default to the config's (give the new ones when
    renewing the auth certificate while the node keeps serving with the old).
    """
    from gateway.settings import load_node_settings

    registration = _registration_settings(config)
    settings = load_node_settings(config)
    try:
        auth_cert = load_certificate(auth_certificate or settings.auth_certificate)
        request = new_registration_request(registration.node, registration.address,
                                           registration.peer_port, registration.subsystems,
                                           auth_cert, now=now)
        signed = sign_registration(
            request, auth_key=load_private_key(auth_key or settings.auth_key),
            sign_key=load_private_key(registration.sign_key),
            sign_chain=load_certificates(registration.sign_certificate))
    except (CertsError, RegistryBaseError) as exc:
        raise JoinError(f"{exc} [{exc.code}]") from exc
    url = registry_url.rstrip("/") + "/registrations"
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.post(
            url, json=signed.to_json_dict()
        ) as response:
            document = json.loads(
                await read_capped(response, _MAX_ANSWER_BYTES, what="the registry's answer")
            )
            if response.status != 202 or not isinstance(document, dict):
                raise JoinError(f"the registry refused the request ({response.status}): "
                                f"{document.get('message') if isinstance(document, dict) else ''} "
                                f"[{document.get('type') if isinstance(document, dict) else ''}]")
            return document
    except DownloadTooLarge as exc:
        raise JoinError(str(exc)) from exc
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise JoinError(f"cannot reach the registry at {url}: {exc}") from exc


# -- commands -------------------------------------------------------------------------------


def _fail(message: str) -> int:
    print(f"renkei: error: {message}", file=sys.stderr)
    return 1


def _init(args: argparse.Namespace) -> int:
    try:
        node = NodeId.parse(args.id)
        members = [MemberId.parse(m) for m in args.member]
        subsystems = [SubsystemId.parse(s) for s in args.subsystem]
        layout = init_node(
            Path(args.dir), node, members=members, subsystems=subsystems,
            anchor=Path(args.anchor) if args.anchor else None, address=args.address,
            ports=(args.client_port, args.peer_port, args.management_port),
            database=args.database)
    except IdentifierError as exc:
        return _fail(str(exc))
    except JoinError as exc:
        return _fail(str(exc))
    print(f"node {node} initialised in {args.dir}")
    print(f"  config: {layout.config}")
    if layout.anchor_sha256:
        print(f"  anchor SHA-256: {layout.anchor_sha256} (compare it with the registry's)")
    print("Have the CA operator issue the certificates, e.g.:")
    print(f"  renkei ca issue --dir CA --csr {layout.auth_csr} --profile auth "
          f"--out {layout.auth_csr.with_suffix('.pem')}")
    for csr in layout.sign_csrs:
        print(f"  renkei ca issue --dir CA --csr {csr} --profile sign "
              f"--out {csr.with_suffix('.pem')}")
    print(f"then: renkei node register --config {layout.config} --registry URL")
    print(f"and once it serves: renkei service add ... and renkei policy apply POLICY.toml "
          f"(or, before its first start, renkei policy apply POLICY.toml --config {layout.config})")
    return 0


def _register(args: argparse.Namespace) -> int:
    try:
        document = asyncio.run(send_registration(
            args.registry, Path(args.config),
            auth_key=Path(args.auth_key) if args.auth_key else None,
            auth_certificate=Path(args.auth_cert) if args.auth_cert else None,
            now=datetime.now(UTC)))
    except JoinError as exc:
        return _fail(str(exc))
    print(f"registration {document.get('id')} of node {document.get('node')}: "
          f"{document.get('status')} (auth certificate {document.get('auth_fingerprint')})")
    return 0
