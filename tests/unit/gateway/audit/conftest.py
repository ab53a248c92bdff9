"""A small in-process federation for the audit tests: CA, TSA, registry, witness, one node."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from certs.ca import CertificateAuthority
from certs.identifiers import NodeId
from certs.keys import certificate_pem, generate_key
from certs.profiles import make_csr
from certs.tsa import TimeStampAuthority
from certs.tsa_client import build_timestamp_request, token_from_reply
from gateway.audit.checkpoints import Checkpointer, CheckpointSigner, WitnessRequest
from gateway.audit.errors import WitnessRefused
from gateway.audit.models import AuditEntry
from gateway.audit.writer import AuditWriter
from gateway.db import Base, create_engine
from gateway.sandbox.postgres import create_databases, drop_databases
from member_registry.anchor import Anchor
from member_registry.database import create_engine as create_registry_engine
from member_registry.service import RegistryService
from member_registry.signing import generate_signing_identity
from member_registry.witness import Witness, WitnessRefusal
from tests.conftest import POSTGRES_SERVER, require_postgres

NOW = datetime.now(UTC).replace(microsecond=0)
INSTANCE = "EE"
NODE = NodeId(INSTANCE, "GOV", "70000001", "node1")
OTHER = NodeId(INSTANCE, "GOV", "70000002", "node2")


@dataclass
class Federation:
    directory: Path
    ca: CertificateAuthority
    anchor: Anchor
    globalconf: str
    tsa: TimeStampAuthority
    witness: Witness
    engine: AsyncEngine
    writer: AuditWriter
    checkpointer: Checkpointer
    certificate_pem: str
    signer: CheckpointSigner
    url: str
    node_id: str = str(NODE)

    async def timestamp(self, digest: bytes) -> bytes:
        nonce = secrets.randbits(64)
        request = build_timestamp_request(digest, nonce=nonce, hash_algorithm="sha256")
        reply = self.tsa.respond(request, now=datetime.now(UTC), serial=nonce)
        return token_from_reply(reply, data_digest=digest, nonce=nonce)

    async def cosign(self, request: WitnessRequest) -> str:
        try:
            return await self.witness.cosign(request.to_json_dict(), now=datetime.now(UTC))
        except WitnessRefusal as exc:  # what the HTTP client makes of a refusal
            raise WitnessRefused(exc.message) from exc

    async def witness_state(self) -> tuple[int, str] | None:
        state = await self.witness.last_cosigned(self.node_id)
        return (int(state["tree_size"]), str(state["root"])) if state is not None else None

    def checkpointer_on(self, engine: AsyncEngine, **overrides: Any) -> Checkpointer:
        """Another checkpoint task of this node (as a second process runs one)."""
        options: dict[str, Any] = {
            "clock": lambda: datetime.now(UTC), "timestamper": self.timestamp,
            "cosigner": self.cosign, "witness_state": self.witness_state,
            "certificate_pem": self.certificate_pem,
        }  # fmt: skip
        return Checkpointer(engine, self.signer, **{**options, **overrides})

    async def exchange(self, count: int = 1, **fields: Any) -> None:
        for _ in range(count):
            await self.writer.append(
                AuditEntry(
                    role=fields.get("role", "provider"),
                    message_id=fields.get("message_id", secrets.token_hex(8)),
                    logged_at=datetime.now(UTC),
                    request_id=secrets.token_hex(8),
                    client=fields.get("client", "EE/GOV/70000002/app"),
                    service=fields.get("service", "EE/GOV/70000001/records/patient"),
                    method="GET",
                    path="/Patient/1",
                    subject=fields.get("subject"),
                    purpose=fields.get("purpose", "treatment"),
                    status=200,
                    consent=fields.get("consent"),
                )
            )


async def _database(kind: str, tmp_path: Path) -> str:
    if kind == "postgres":
        require_postgres()
        (url,) = await create_databases(POSTGRES_SERVER, [f"renkei_audit_{secrets.token_hex(4)}"])
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("pki")
    past = NOW - timedelta(days=1)
    ca = CertificateAuthority.create(directory / "ca", instance=INSTANCE, now=past)
    auth_key = generate_key("ec-p256")
    auth = ca.issue(make_csr(auth_key, NODE, "auth"), profile="auth", now=past)
    tsa_key = generate_key("ec-p256")
    tsa_cert = ca.issue_service_certificate(tsa_key.public_key(), profile="tsa", now=past)
    registry_key, registry_cert = generate_signing_identity(INSTANCE, past)
    return {
        "ca": ca, "auth_key": auth_key, "auth": auth, "tsa": TimeStampAuthority(tsa_cert, tsa_key),
        "registry_key": registry_key, "registry_cert": registry_cert,
    }  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def federation(
    request: pytest.FixtureRequest, tmp_path: Path, pki: dict[str, Any]
) -> AsyncIterator[Federation]:
    url = await _database(request.param, tmp_path)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    registry_engine = create_registry_engine(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    service = RegistryService(registry_engine, pki["registry_key"], pki["registry_cert"], INSTANCE)
    await service.create_schema()
    await service.add_trusted_ca(pki["ca"].certificate, ["http://127.0.0.1:1/ocsp"])
    await service.add_tsa("tsa", "http://127.0.0.1:1/tsa", pki["tsa"].certificate)
    for node in (NODE, OTHER):
        await service.add_member(node.member, f"member {node.member}")
        await service.add_node(node, "127.0.0.1", 1)
    await service.add_node_auth_certificate(NODE, pki["auth"])
    token, _ = await service.publish_conf(NOW)
    witness = Witness(registry_engine, pki["registry_key"], pki["registry_cert"])
    await witness.create_schema()
    anchor = Anchor(INSTANCE, NOW, ("http://127.0.0.1:1/globalconf",), (pki["registry_cert"],))
    writer = AuditWriter(engine, str(NODE))
    fed = Federation(
        directory=tmp_path, ca=pki["ca"], anchor=anchor, globalconf=token, tsa=pki["tsa"],
        witness=witness, engine=engine, writer=writer,
        checkpointer=None,  # type: ignore[arg-type]
        certificate_pem=certificate_pem(pki["auth"]),
        signer=CheckpointSigner(str(NODE), pki["auth_key"], pki["auth"]), url=url,
    )  # fmt: skip
    fed.checkpointer = fed.checkpointer_on(engine)
    await writer.start()
    try:
        yield fed
    finally:
        await writer.stop()
        await engine.dispose()
        await registry_engine.dispose()
        if request.param == "postgres":
            await drop_databases(POSTGRES_SERVER, [url])

