"""The registry as a witness of nodes' audit logs (DESIGN §6).

A node sends its signed checkpoint (tree size and RFC 6962 root), its auth
certificate, and a consistency proof from the last checkpoint this witness
cosigned for it. The witness cosigns only when:

* the certificate is registered for the node the checkpoint names, and the
  checkpoint's signature verifies with it;
* the checkpoint extends the last cosigned one: the node claims the same
  previous size, and the consistency proof (RFC 6962 §2.1.2) leads from the
  stored root to the new one.

So a log that was truncated, rolled back or recomputed can never get a new
cosignature. The first checkpoint of a node is accepted as it is (trust on
first use). The cosignature is a compact JWS (ES256, made by the recipe of
``certs.jws``) by the registry's signing key, whose certificate nodes and
auditors already hold in the anchor.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from cryptography import x509
from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certs import jws
from certs.keys import fingerprint
from member_registry.database import create_engine
from member_registry.errors import ValidationError
from member_registry.merkle import ProofError, verify_consistency
from member_registry.models import NodeAuthCertificateRow
from member_registry.settings import RegistrySettings
from member_registry.signing import SigningKey, load_certificate, load_signing_key

__all__ = [
    "COSIGNATURE_FORMAT",
    "COSIGNATURE_TYPE",
    "Witness",
    "WitnessRefusal",
    "add_witness_routes",
]

COSIGNATURE_FORMAT = "renkei-cosignature/1"
COSIGNATURE_TYPE = "renkei-witness-cosignature+jws"
CHECKPOINT_TYPE = "renkei-checkpoint+jws"

_metadata = MetaData()
_cosigned = Table(
    "registry_witness_cosigned",
    _metadata,
    Column("node_id", String(1100), primary_key=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root", String(64), nullable=False),
    Column("cosignature", Text, nullable=False),
)


class WitnessRefusal(ValidationError):
    code = "registry.witness_refused"


@dataclass(frozen=True)
class _Checkpoint:
    node: str
    tree_size: int
    root: str


class Witness:
    """Cosigns checkpoints that extend the last one cosigned for their node."""

    def __init__(
        self, engine: AsyncEngine, key: SigningKey, certificate: x509.Certificate
    ) -> None:
        self._engine = engine
        self._key = key
        self._certificate = certificate

    async def close(self) -> None:
        await self._engine.dispose()

    async def create_schema(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(_metadata.create_all)

    async def last_cosigned(self, node_id: str) -> dict[str, Any] | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(_cosigned).where(_cosigned.c.node_id == node_id))
            ).first()
        return dict(row._mapping) if row is not None else None

    async def cosign(self, request: dict[str, Any], *, now: datetime) -> str:
        """Check ``request`` (the node's JSON) and return the cosignature JWS."""
        try:
            token = str(request["checkpoint"])
            previous = request.get("previous_size")
            proof = [bytes.fromhex(str(p)) for p in request.get("consistency_proof", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise WitnessRefusal("malformed witness request") from exc
        checkpoint = await self._authenticated(token, now)
        async with self._engine.begin() as conn:
            # Serialise cosigning per node: the stored state is read and replaced at once.
            query = select(_cosigned).where(_cosigned.c.node_id == checkpoint.node)
            last = (await conn.execute(query.with_for_update())).first()
            if last is not None:
                if previous != last.tree_size:
                    raise WitnessRefusal(
                        f"the last cosigned checkpoint has {last.tree_size} rows, "
                        f"the node claims {previous}"
                    )
                try:
                    verify_consistency(
                        last.tree_size,
                        checkpoint.tree_size,
                        bytes.fromhex(last.root),
                        bytes.fromhex(checkpoint.root),
                        proof,
                    )
                except ProofError as exc:
                    raise WitnessRefusal(
                        f"the checkpoint is not consistent with the last one cosigned: {exc}"
                    ) from exc
            cosignature = self._sign(checkpoint, token, now)
            values = {"tree_size": checkpoint.tree_size, "root": checkpoint.root,
                      "cosignature": cosignature}
            if last is None:
                await conn.execute(_cosigned.insert().values(node_id=checkpoint.node, **values))
            else:
                await conn.execute(_cosigned.update()
                                   .where(_cosigned.c.node_id == checkpoint.node).values(**values))
        return cosignature

    async def _authenticated(self, token: str, now: datetime) -> _Checkpoint:
        try:
            signed = jws.parse(token, typ=CHECKPOINT_TYPE, header={"kid", "x5c"})
        except jws.SignatureInvalid as exc:
            raise WitnessRefusal(f"the checkpoint is not a signed JWS of its type: {exc}") from exc
        kid = signed.header.get("kid")
        if not isinstance(kid, str):
            raise WitnessRefusal("the checkpoint names no certificate (kid)")
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(NodeAuthCertificateRow.node_id, NodeAuthCertificateRow.pem)
                .where(NodeAuthCertificateRow.fingerprint == kid)
            )).first()
        if row is None:
            raise WitnessRefusal("the checkpoint is not signed by a registered auth certificate")
        certificate = x509.load_pem_x509_certificate(row.pem.encode("ascii"))
        try:
            payload = signed.verify(jws.PinnedKey(certificate), now=now).payload
            checkpoint = _Checkpoint(str(payload["node"]), int(payload["tree_size"]),
                                     str(payload["root"]))
            bytes.fromhex(checkpoint.root)
        except (jws.SignatureInvalid, ValueError, KeyError, TypeError) as exc:
            raise WitnessRefusal("the checkpoint's signature does not verify") from exc
        if checkpoint.node != row.node_id or checkpoint.tree_size < 1:
            raise WitnessRefusal(f"the certificate is registered for {row.node_id}, "
                                 f"not {checkpoint.node}")
        return checkpoint

    def _sign(self, checkpoint: _Checkpoint, token: str, now: datetime) -> str:
        payload = {
            "format": COSIGNATURE_FORMAT,
            "node": checkpoint.node,
            "tree_size": checkpoint.tree_size,
            "root": checkpoint.root,
            "checkpoint_sha256": base64.b16encode(
                hashlib.sha256(token.encode("ascii")).digest()).decode().lower(),
            "cosigned_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        }
        return jws.sign(payload, self._key, typ=COSIGNATURE_TYPE,
                        header={"kid": fingerprint(self._certificate)})


def add_witness_routes(app: web.Application, settings: RegistrySettings,
                       clock: Callable[[], datetime]) -> None:
    """``POST /witness/checkpoints`` (cosign) and ``GET /witness/checkpoints/{node}`` (the
    last cosigned state, public, for auditors). Authentication is the checkpoint's own
    signature, so these routes sit outside the admin-only ``/api/``."""
    holder: dict[str, Witness] = {}

    async def witness_of() -> Witness:
        # Opened on first use: registries that never witness never touch the table.
        if "witness" not in holder:
            engine = create_engine(settings.database_url)
            witness = Witness(engine, load_signing_key(settings.signing_key_path),
                              load_certificate(settings.signing_cert_path))
            await witness.create_schema()
            holder["witness"] = witness
        return holder["witness"]

    async def cleanup(_: web.Application) -> None:
        witness = holder.pop("witness", None)
        if witness is not None:
            await witness.close()

    async def cosign(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise WitnessRefusal("the request must be a JSON object")
            cosignature = await (await witness_of()).cosign(body, now=clock())
        except ValueError as exc:
            code = getattr(exc, "code", "registry.bad_request")
            return web.json_response({"type": code, "message": str(exc)}, status=409)
        return web.json_response({"cosignature": cosignature})

    async def last(request: web.Request) -> web.Response:
        state = await (await witness_of()).last_cosigned(request.match_info["node"])
        if state is None:
            return web.json_response({"type": "registry.not_found",
                                      "message": "nothing cosigned for that node"}, status=404)
        return web.json_response(state)

    app.on_cleanup.append(cleanup)
    app.router.add_post("/witness/checkpoints", cosign)
    app.router.add_get("/witness/checkpoints/{node:.+}", last)
