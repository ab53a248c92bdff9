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

Several processes of one node may run the task; one checkpoints at a time.
Each round takes the node's lease (``audit_checkpoint_lease``) or is skipped:
two processes racing at the witness would get one checkpoint cosigned and the
other refused (it claims a previous state the witness has moved past), and a
refused newest checkpoint fails ``renkei audit verify`` with
``auditor.not_cosigned``. Should one still be stored uncosigned (the witness was
unreachable, or a lease outlived its holder), the next round cosigns it: the
consistency proof starts from the state the witness itself reports
(``GET /witness/checkpoints/{node}``), not from what this database recorded,
so a cosignature whose row was lost cannot wedge the node either.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from cryptography import x509
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certs import jws
from certs.errors import CertsError
from certs.keys import PrivateKey, fingerprint
from gateway.audit.errors import AuditError, CheckpointError
from gateway.audit.models import ArchivedLeaf, AuditRow, CheckpointLease, CheckpointRow
from member_registry.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_TYPE",
    "DEFAULT_LEASE_S",
    "CheckpointSigner",
    "Checkpointer",
    "Cosigner",
    "Timestamper",
    "WitnessRequest",
    "WitnessState",
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
# The witness's last cosigned state for the node, (tree size, root hex), or None if it
# has cosigned nothing yet; raises an AuditError when it cannot be asked.
WitnessState = Callable[[], Awaitable[tuple[int, str] | None]]

# Longer than a round can take (TSA and witness calls time out well before), so only
# a process that died holding the lease makes the others wait for it to lapse.
DEFAULT_LEASE_S = 120.0
_LEASE_POLL_S = 0.2


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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


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
        witness_state: WitnessState | None = None,
        certificate_pem: str = "",
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._clock = clock
        self._timestamper = timestamper
        self._cosigner = cosigner
        self._witness_state = witness_state
        self._certificate_pem = certificate_pem
        self._lease_s = lease_s
        self._holder = secrets.token_hex(16)
        self._task: asyncio.Task[None] | None = None
        self.timestamping_failing_since: datetime | None = None

    @property
    def node_id(self) -> str:
        return self._signer.node_id

    async def checkpoint(self, *, wait_s: float = 0.0) -> dict[str, Any] | None:
        """A checkpoint over every committed row, or the newest one cosigned at last.

        None when there is nothing to do, or when another process of the node
        holds the lease; with ``wait_s`` (the CLI) it waits that long for the
        lease and then raises :class:`CheckpointError`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not await self._take_lease():
            if loop.time() >= deadline:
                if wait_s > 0:
                    raise CheckpointError(
                        "another process of this node is checkpointing; try again shortly"
                    )
                log.debug("audit_checkpoint_lease_held")
                return None
            await asyncio.sleep(_LEASE_POLL_S)
        try:
            return await self._round()
        finally:
            await self._release_lease()

    async def _round(self) -> dict[str, Any] | None:
        # Read, then let go of the connection before any network call.
        async with self._engine.connect() as conn:
            size = await self._chain_size(conn)
            newest = await self._newest(conn)
            if size == 0:
                return None
            # Nothing new: only a newest checkpoint still uncosigned is left to do.
            repair = newest if newest is not None and newest["tree_size"] >= size else None
            if repair is not None and (
                repair["cosignature"] is not None or self._cosigner is None
            ):
                return None
            upto = int(repair["tree_size"]) if repair is not None else size
            hashes = await load_leaf_hashes(conn, self.node_id, upto)
            stored = await self._last(conn, cosigned_only=True)
        if repair is not None:
            return await self._cosign_stored(repair, hashes, stored)
        root = root_from_leaf_hashes(hashes)
        now = self._clock()
        signed = self._signer.sign(tree_size=size, root=root, issued_at=now)
        token = await self._timestamp(signed)
        cosignature = await self._cosign(signed, hashes, stored)
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
            # Another process stored this tree size first (its lease lapsed mid-round).
            # Keep whichever is cosigned: the witness remembers ours if it cosigned it.
            if cosignature is None:
                return None
            async with self._engine.begin() as conn:
                replaced = await conn.execute(
                    update(CheckpointRow)
                    .where(CheckpointRow.node_id == self.node_id,
                           CheckpointRow.tree_size == size,
                           CheckpointRow.cosignature.is_(None))
                    .values(**row)
                )  # fmt: skip
            return row if replaced.rowcount else None
        return row

    async def _cosign_stored(
        self, newest: dict[str, Any], hashes: list[bytes], stored: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Get the newest stored, uncosigned checkpoint cosigned (the repair path)."""
        cosignature = await self._cosign(str(newest["signed"]), hashes, stored)
        if cosignature is None:
            return None
        async with self._engine.begin() as conn:
            await conn.execute(
                update(CheckpointRow)
                .where(CheckpointRow.node_id == self.node_id,
                       CheckpointRow.tree_size == newest["tree_size"],
                       CheckpointRow.signed == newest["signed"])
                .values(cosignature=cosignature)
            )  # fmt: skip
        log.info("audit_checkpoint_cosigned_later", tree_size=newest["tree_size"])
        return {**newest, "node_id": self.node_id, "cosignature": cosignature}

    async def _take_lease(self) -> bool:
        now = self._clock()
        until = _iso(now + timedelta(seconds=self._lease_s))
        async with self._engine.begin() as conn:
            taken = await conn.execute(
                update(CheckpointLease)
                .where(CheckpointLease.node_id == self.node_id,
                       or_(CheckpointLease.expires_at < _iso(now),
                           CheckpointLease.holder == self._holder))
                .values(holder=self._holder, expires_at=until)
            )  # fmt: skip
            if taken.rowcount:
                return True
            held = await conn.scalar(
                select(CheckpointLease.node_id).where(CheckpointLease.node_id == self.node_id)
            )
        if held is not None:
            return False
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(CheckpointLease).values(
                    node_id=self.node_id, holder=self._holder, expires_at=until))
        except IntegrityError:
            return False  # another process created it first
        return True

    async def _release_lease(self) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(CheckpointLease)
                    .where(CheckpointLease.node_id == self.node_id,
                           CheckpointLease.holder == self._holder)
                    .values(expires_at="")
                )  # fmt: skip
        except (SQLAlchemyError, OSError) as exc:  # it lapses by itself
            log.warning("audit_checkpoint_lease_not_released", error=str(exc))

    async def _chain_size(self, conn: AsyncConnection) -> int:
        live = await conn.scalar(
            select(func.max(AuditRow.seq)).where(AuditRow.node_id == self.node_id)
        )
        archived = await conn.scalar(
            select(func.max(ArchivedLeaf.seq)).where(ArchivedLeaf.node_id == self.node_id)
        )
        return int(max(live or 0, archived or 0))

    async def _newest(self, conn: AsyncConnection) -> dict[str, Any] | None:
        found = (
            await conn.execute(
                select(CheckpointRow.tree_size, CheckpointRow.root_hash, CheckpointRow.created_at,
                       CheckpointRow.signed, CheckpointRow.timestamp_token,
                       CheckpointRow.cosignature)
                .where(CheckpointRow.node_id == self.node_id)
                .order_by(CheckpointRow.tree_size.desc())
                .limit(1)
            )
        ).first()  # fmt: skip
        return dict(found._mapping) if found is not None else None

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

    async def _previous_size(
        self, hashes: list[bytes], stored: dict[str, Any] | None
    ) -> tuple[bool, int | None]:
        """The tree size to prove consistency from: the witness's own, when it says.

        ``(False, None)`` when this log does not extend what the witness cosigned
        (rolled back, rewritten): no request is sent, the checkpoint stays uncosigned.
        """
        fallback = int(stored["tree_size"]) if stored is not None else None
        if self._witness_state is None:
            return True, fallback
        try:
            state = await self._witness_state()
        except AuditError as exc:
            log.warning("audit_witness_state_unknown", error=exc.message, code=exc.code)
            return True, fallback
        if state is None:
            return True, None
        size, root = state
        if size > len(hashes) or root_from_leaf_hashes(hashes[:size]).hex() != root:
            log.error("audit_witness_diverged", witness_tree_size=size, tree_size=len(hashes))
            return False, None
        return True, size

    async def _cosign(
        self, signed: str, hashes: list[bytes], stored: dict[str, Any] | None
    ) -> str | None:
        if self._cosigner is None:
            return None
        extends, previous = await self._previous_size(hashes, stored)
        if not extends:
            return None
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
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # stop() arrived while a database driver turned the cancellation into its
                # own error (and the round swallowed it): honour it, or stop() waits forever.
                raise asyncio.CancelledError

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
