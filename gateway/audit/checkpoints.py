"""Signed checkpoints over the audit chain (DESIGN §6).

A checkpoint is the RFC 6962 Merkle root over the ``entry_hash`` bytes of the
first ``tree_size`` rows of a node's chain, signed by the node's auth key as a
compact JWS (``typ`` :data:`CHECKPOINT_TYPE`, ``kid`` the auth certificate's
SHA-256). JWS rather than a raw signature because nodes already sign and
verify JWS with pinned algorithms, and the header names the certificate, so
a verifier holding several certificates of the node knows which one to use.

The signed JWS is then time-stamped (RFC 3161, over SHA-256 of the JWS text)
and cosigned by the registry's witness, which only cosigns trees consistent
with the last one it cosigned for the node. Either may be missing (no TSA
configured, witness unreachable or refusing): the checkpoint is kept and the
verifier reports what is missing.

Several processes of one node may run the task: the (node, tree size) pair is
unique, so a second insert of the same checkpoint is simply dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from cryptography import x509
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certs import jws
from certs.errors import CertsError
from certs.keys import PrivateKey, fingerprint
from gateway.audit.errors import AuditError, CheckpointError
from gateway.audit.models import ArchivedLeaf, AuditRow, CheckpointRow
from member_registry.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_TYPE",
    "CheckpointSigner",
    "Checkpointer",
    "Cosigner",
    "Timestamper",
    "WitnessRequest",
    "load_leaf_hashes",
]

CHECKPOINT_FORMAT = "renkei-checkpoint/1"
CHECKPOINT_TYPE = "renkei-checkpoint+jws"

log = structlog.get_logger(__name__)

# digest (SHA-256 of the signed checkpoint) -> DER time-stamp token; None: no TSA.
Timestamper = Callable[[bytes], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class WitnessRequest:
    checkpoint: str
    certificate_pem: str
    previous_size: int | None
    consistency_proof: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "certificate": self.certificate_pem,
            "previous_size": self.previous_size,
            "consistency_proof": list(self.consistency_proof),
        }


# Asks the witness to cosign; returns the cosignature JWS or raises an AuditError.
Cosigner = Callable[[WitnessRequest], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class CheckpointSigner:
    """Signs checkpoints with the node's auth key."""

    node_id: str
    key: PrivateKey
    certificate: x509.Certificate

    def sign(self, *, tree_size: int, root: bytes, issued_at: datetime) -> str:
        payload = {
            "format": CHECKPOINT_FORMAT,
            "node": self.node_id,
            "tree_size": tree_size,
            "root": root.hex(),
            "issued_at": issued_at.astimezone(UTC).isoformat(timespec="seconds"),
        }
        return jws.sign(
            payload,
            self.key,
            typ=CHECKPOINT_TYPE,
            header={"kid": fingerprint(self.certificate),
                    "x5c": [jws.certificate_der_base64(self.certificate)]},
        )


async def load_leaf_hashes(conn: AsyncConnection, node_id: str, upto: int) -> list[bytes]:
    """RFC 6962 leaf hashes of rows 1..``upto``, archived ones included; fails if any is missing."""
    archived = await conn.execute(
        select(ArchivedLeaf.seq, ArchivedLeaf.entry_hash)
        .where(ArchivedLeaf.node_id == node_id, ArchivedLeaf.seq <= upto)
        .order_by(ArchivedLeaf.seq)
    )
    live = await conn.execute(
        select(AuditRow.seq, AuditRow.entry_hash)
        .where(AuditRow.node_id == node_id, AuditRow.seq <= upto)
        .order_by(AuditRow.seq)
    )
    hashes: list[bytes] = []
    for seq, entry in [*archived.all(), *live.all()]:
        if seq != len(hashes) + 1:
            raise CheckpointError(f"row {len(hashes) + 1} of the chain is missing")
        hashes.append(leaf_hash(bytes.fromhex(entry)))
    if len(hashes) != upto:
        raise CheckpointError(f"the chain holds {len(hashes)} rows, not {upto}")
    return hashes


class Checkpointer:
    """Builds, signs, time-stamps and gets cosigned a checkpoint over new rows."""

    def __init__(
        self,
        engine: AsyncEngine,
        signer: CheckpointSigner,
        *,
        clock: Callable[[], datetime],
        timestamper: Timestamper | None = None,
        cosigner: Cosigner | None = None,
        certificate_pem: str = "",
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._clock = clock
        self._timestamper = timestamper
        self._cosigner = cosigner
        self._certificate_pem = certificate_pem
        self._task: asyncio.Task[None] | None = None
        self.timestamping_failing_since: datetime | None = None

    @property
    def node_id(self) -> str:
        return self._signer.node_id

    async def checkpoint(self) -> dict[str, Any] | None:
        """One checkpoint over every committed row, or None when nothing is new."""
        async with self._engine.connect() as conn:
            size = await self._chain_size(conn)
            last = await self._last(conn)
            if size == 0 or (last is not None and last["tree_size"] >= size):
                return None
            hashes = await load_leaf_hashes(conn, self.node_id, size)
            cosigned = await self._last(conn, cosigned_only=True)
        root = root_from_leaf_hashes(hashes)
        now = self._clock()
        signed = self._signer.sign(tree_size=size, root=root, issued_at=now)
        token = await self._timestamp(signed)
        cosignature = await self._cosign(signed, hashes, cosigned)
        row = {
            "node_id": self.node_id,
            "tree_size": size,
            "root_hash": root.hex(),
            "created_at": now.astimezone(UTC).isoformat(timespec="microseconds"),
            "signed": signed,
            "timestamp_token": token,
            "cosignature": cosignature,
        }
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(CheckpointRow).values(**row))
        except IntegrityError:
            return None  # another process of this node made the same checkpoint
        return row

    async def _chain_size(self, conn: AsyncConnection) -> int:
        live = await conn.scalar(
            select(func.max(AuditRow.seq)).where(AuditRow.node_id == self.node_id)
        )
        archived = await conn.scalar(
            select(func.max(ArchivedLeaf.seq)).where(ArchivedLeaf.node_id == self.node_id)
        )
        return int(max(live or 0, archived or 0))

    async def _last(
        self, conn: AsyncConnection, *, cosigned_only: bool = False
    ) -> dict[str, Any] | None:
        query = select(CheckpointRow.tree_size, CheckpointRow.root_hash).where(
            CheckpointRow.node_id == self.node_id
        )
        if cosigned_only:
            query = query.where(CheckpointRow.cosignature.is_not(None))
        query = query.order_by(CheckpointRow.tree_size.desc()).limit(1)
        found = (await conn.execute(query)).first()
        return dict(found._mapping) if found is not None else None

    async def _timestamp(self, signed: str) -> bytes | None:
        if self._timestamper is None:
            return None
        try:
            token = await self._timestamper(hashlib.sha256(signed.encode("ascii")).digest())
        except (CertsError, OSError, TimeoutError) as exc:
            log.warning("audit_timestamp_failed", error=str(exc))
            # The node keeps serving for a grace period, then stops (see the gateway).
            if self.timestamping_failing_since is None:
                self.timestamping_failing_since = self._clock()
            return None
        self.timestamping_failing_since = None
        return token

    async def _cosign(
        self, signed: str, hashes: list[bytes], cosigned: dict[str, Any] | None
    ) -> str | None:
        if self._cosigner is None:
            return None
        previous = int(cosigned["tree_size"]) if cosigned is not None else None
        proof = consistency_proof(hashes, previous) if previous else []
        request = WitnessRequest(
            checkpoint=signed,
            certificate_pem=self._certificate_pem,
            previous_size=previous,
            consistency_proof=tuple(p.hex() for p in proof),
        )
        try:
            return await self._cosigner(request)
        except AuditError as exc:
            log.warning("audit_witness_refused", error=exc.message, code=exc.code)
            return None

    async def run(self, interval_s: float) -> None:
        """Checkpoint every ``interval_s`` seconds until cancelled; failures are logged."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                made = await self.checkpoint()
            except Exception as exc:
                log.error("audit_checkpoint_failed", error=str(exc), kind=type(exc).__name__)
            else:
                if made is not None:
                    log.info("audit_checkpoint", tree_size=made["tree_size"])

    def start(self, interval_s: float) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(interval_s), name="audit-checkpoints")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def attach_timestamp(
    engine: AsyncEngine, node_id: str, tree_size: int, token: bytes
) -> None:
    """Store a token obtained later for an existing checkpoint."""
    async with engine.begin() as conn:
        await conn.execute(
            update(CheckpointRow)
            .where(CheckpointRow.node_id == node_id, CheckpointRow.tree_size == tree_size)
            .values(timestamp_token=token)
        )
