"""The start-up check: the chain in the database is the one the witness last cosigned.

A node whose audit database was rewritten or rolled back while it was down
must not serve as if nothing happened. Before its audit writer appends a
row, a node process gathers every witnessed state it can find, each a
witness cosignature over (tree size, root) that must verify with the
anchor's registry certificates:

* the registry witness's own state (``GET /witness/checkpoints/{node}``),
  which a rollback of the node's database cannot touch;
* the copy the node keeps in its data directory (``audit-witnessed.json``,
  rewritten after every cosignature), for when the registry is unreachable;
* the newest cosigned checkpoint in the database.

The chain must then verify row by row (links, hashes, the chain head), hold
at least each state's tree size, and the RFC 6962 root over its first rows
must be each state's root. Any disagreement leaves the node not ready, with
the reason in ``/readyz``, and its client and peer ports answer 503
``server.audit_chain_mismatch``: the operator restores the right database.
A node nothing was ever cosigned for has nothing to compare (trust on
first use, as the witness does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from certs import jws
from gateway.audit.chain import ChainBroken, chain_start, fetch_rows, verify_chain
from gateway.audit.errors import AuditError
from gateway.audit.hashing import GENESIS_HASH
from gateway.audit.models import ArchivedLeaf, ChainHead, CheckpointRow
from gateway.auditor.errors import VerificationFailed
from gateway.auditor.verify import COSIGNATURE_TYPE, verify_cosignature
from gateway.downloads import DownloadTooLarge, read_capped
from member_registry.anchor import Anchor
from member_registry.merkle import leaf_hash, root_from_leaf_hashes

__all__ = [
    "STATE_FILE",
    "ChainCheck",
    "ChainMismatch",
    "WitnessedState",
    "check_chain",
    "remember_cosigned",
    "witnessed_states",
]

log = structlog.get_logger(__name__)

STATE_FILE = "audit-witnessed.json"


class ChainMismatch(AuditError):
    """The chain disagrees with a state the witness cosigned."""

    code = "audit.chain_mismatch"


@dataclass(frozen=True, slots=True)
class WitnessedState:
    tree_size: int
    root: str  # hex
    cosignature: str
    source: str  # where it was found, for the reason shown to the operator


@dataclass
class ChainCheck:
    """The outcome of the start-up check, as ``/readyz`` shows it."""

    ok: bool = True
    reason: str = ""
    tree_size: int | None = None  # the largest witnessed size checked

    def to_json(self) -> dict[str, object]:
        if self.ok:
            return {"ok": True, "witnessed_rows": self.tree_size}
        return {"ok": False, "error": self.reason}


def _state(data: Any, source: str) -> WitnessedState:
    try:
        return WitnessedState(
            int(data["tree_size"]), str(data["root"]), str(data["cosignature"]), source
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ChainMismatch(f"the witnessed state from {source} is malformed") from exc


async def _from_witness(
    session: aiohttp.ClientSession, witness_url: str, node_id: str
) -> WitnessedState | None:
    url = f"{witness_url.rstrip('/')}/{quote(node_id, safe='/')}"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            if response.status == 404:
                return None
            if response.status != 200:
                log.warning("audit_witness_state_unavailable", status=response.status)
                return None
            raw = await read_capped(response, 64 * 1024, what="the witness state")
        return _state(json.loads(raw), "the registry's witness")
    except (aiohttp.ClientError, TimeoutError, DownloadTooLarge, ValueError) as exc:
        # The local copies still count; the witness is checked again at the next start.
        log.warning("audit_witness_state_unavailable", error=repr(exc))
        return None


def _from_file(path: Path) -> WitnessedState | None:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    try:
        return _state(json.loads(text), str(path.name))
    except ValueError as exc:
        raise ChainMismatch(f"{path.name} is not JSON") from exc


async def _from_database(engine: AsyncEngine, node_id: str) -> WitnessedState | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(CheckpointRow.tree_size, CheckpointRow.root_hash, CheckpointRow.cosignature)
                .where(CheckpointRow.node_id == node_id, CheckpointRow.cosignature.is_not(None))
                .order_by(CheckpointRow.tree_size.desc())
                .limit(1)
            )
        ).first()
    if row is None:
        return None
    return WitnessedState(int(row[0]), str(row[1]), str(row[2]), "the database's checkpoints")


async def witnessed_states(
    engine: AsyncEngine,
    node_id: str,
    *,
    state_file: Path,
    witness_url: str | None,
    session: aiohttp.ClientSession | None,
) -> list[WitnessedState]:
    """Every witnessed state found for ``node_id`` (unverified)."""
    found: list[WitnessedState | None] = []
    if witness_url is not None and session is not None:
        found.append(await _from_witness(session, witness_url, node_id))
    found.append(_from_file(state_file))
    found.append(await _from_database(engine, node_id))
    return [state for state in found if state is not None]


async def check_chain(
    engine: AsyncEngine, node_id: str, anchor: Anchor, states: Iterable[WitnessedState]
) -> int | None:
    """Raise :class:`ChainMismatch` unless the chain agrees with every state.

    Returns the largest witnessed tree size (None when nothing was witnessed).
    """
    states = list(states)
    for state in states:
        try:
            # Cosignatures carry no validity period; now only matters to the recipe's
            # exp/nbf checks, which they do not use.
            verify_cosignature(
                state.cosignature, anchor, node=node_id, tree_size=state.tree_size,
                root=state.root, now=datetime.now(UTC),
            )  # fmt: skip
        except VerificationFailed as exc:
            raise ChainMismatch(
                f"the witnessed state from {state.source} does not verify: {exc.message}"
            ) from exc
    leaves = await _leaf_hashes(engine, node_id)
    for state in sorted(states, key=lambda s: s.tree_size):
        if state.tree_size > len(leaves):
            raise ChainMismatch(
                f"{state.source} holds a cosigned state of {state.tree_size} rows, the audit "
                f"log has {len(leaves)}: it was truncated or rolled back"
            )
        if root_from_leaf_hashes(leaves[: state.tree_size]).hex() != state.root:
            raise ChainMismatch(
                f"the first {state.tree_size} rows are not those {state.source} holds "
                "cosigned: the audit log was rewritten or rolled back"
            )
    return max((state.tree_size for state in states), default=None)


async def _leaf_hashes(engine: AsyncEngine, node_id: str) -> list[bytes]:
    """Leaf hashes of the whole chain, after checking its rows and its head."""
    first_seq, start_hash = await chain_start(engine, node_id)
    rows = await fetch_rows(engine, node_id, after_seq=first_seq - 1)
    try:
        verify_chain(rows, start_hash=start_hash, first_seq=first_seq)
    except ChainBroken as exc:
        raise ChainMismatch(f"the audit chain is broken at {exc}") from exc
    async with engine.connect() as conn:
        archived = (
            await conn.execute(
                select(ArchivedLeaf.seq, ArchivedLeaf.entry_hash)
                .where(ArchivedLeaf.node_id == node_id)
                .order_by(ArchivedLeaf.seq)
            )
        ).all()
        head = (
            await conn.execute(
                select(ChainHead.seq, ChainHead.entry_hash).where(ChainHead.node_id == node_id)
            )
        ).first()
    last_seq, last_hash = (
        (int(rows[-1]["seq"]), str(rows[-1]["entry_hash"])) if rows else (first_seq - 1, start_hash)
    )
    if head is None:
        if last_seq > 0:
            raise ChainMismatch("the audit chain has rows but no chain head")
    elif (int(head[0]), str(head[1])) != (last_seq, last_hash):
        raise ChainMismatch(
            f"the chain head says row {head[0]}, the last row is {last_seq}: "
            "rows were removed or added outside the audit writer"
        )
    entries = [str(entry) for _, entry in archived] + [str(row["entry_hash"]) for row in rows]
    if len(entries) != last_seq or (last_seq == 0 and start_hash != GENESIS_HASH):
        raise ChainMismatch("archived and live rows of the audit chain do not join")
    return [leaf_hash(bytes.fromhex(entry)) for entry in entries]


def remember_cosigned(path: Path, cosignature: str, anchor: Anchor, node_id: str) -> None:
    """Keep the newest cosigned state beside the database (written atomically)."""
    try:
        payload = verify_cosignature_payload(cosignature, anchor, node_id)
    except VerificationFailed as exc:
        log.warning("audit_cosignature_not_kept", error=exc.message)
        return
    current = _from_file(path) if path.exists() else None
    if current is not None and current.tree_size >= int(payload["tree_size"]):
        return
    state = {
        "node": node_id,
        "tree_size": int(payload["tree_size"]),
        "root": str(payload["root"]),
        "cosignature": cosignature,
    }
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(json.dumps(state, sort_keys=True), "utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("audit_cosignature_not_kept", error=repr(exc))


def verify_cosignature_payload(cosignature: str, anchor: Anchor, node_id: str) -> dict[str, Any]:
    """The verified payload of a cosignature for ``node_id``.

    The tree it names is read from the payload first, then the signature and
    that tree are checked together by the auditor's own verifier.
    """
    try:
        claimed = jws.parse(cosignature, typ=COSIGNATURE_TYPE, header={"kid"}).unverified_payload()
        size, root = int(claimed["tree_size"]), str(claimed["root"])
    except (jws.SignatureInvalid, KeyError, TypeError, ValueError) as exc:
        raise VerificationFailed("auditor.cosignature_invalid", "malformed cosignature") from exc
    return verify_cosignature(cosignature, anchor, node=node_id, tree_size=size, root=root,
                              now=datetime.now(UTC))
