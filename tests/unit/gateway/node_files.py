"""A node's settings directory with real keys, certificates and anchor (no federation)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certs.keys import generate_key, private_key_pem, save_certificate
from member_registry.anchor import Anchor, write_anchor
from member_registry.signing import generate_signing_identity

NODE_ID = "RENKEI/GOV/HOSP-B/ss1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_files(
    directory: Path,
    *,
    database_url: str | None = None,
    ports: tuple[int, int, int] = (0, 0, 0),
    extra: str = "",
) -> Path:
    """A valid node.toml in ``directory``; its database and ports as given."""
    now = datetime.now(UTC)
    key, certificate = generate_signing_identity("RENKEI", now - timedelta(days=1))
    (directory / "auth.key").write_bytes(private_key_pem(key))
    save_certificate(certificate, directory / "auth.pem")
    (directory / "token.key").write_bytes(private_key_pem(generate_key("ec-p256")))
    write_anchor(
        Anchor("RENKEI", now, ("http://127.0.0.1:9/globalconf",), (certificate,)),
        directory / "anchor.json",
    )
    url = database_url or f"sqlite+aiosqlite:///{directory / 'node.db'}"
    client, peer, management = ports
    path = directory / "node.toml"
    path.write_text(
        f'node_id = "{NODE_ID}"\nanchor = "anchor.json"\ndata_dir = "."\n'
        f'database_url = "{url}"\n{extra}\n'
        f'[client]\nhost = "127.0.0.1"\nport = {client}\n'
        f'[peer]\nhost = "127.0.0.1"\nport = {peer}\n'
        f'[management]\nhost = "127.0.0.1"\nport = {management}\n'
        '[keys]\nauth_key = "auth.key"\nauth_certificate = "auth.pem"\ntoken_key = "token.key"\n',
        encoding="utf-8",
    )
    return path
