"""Wiring the checkpoint task to a node: its key, its TSA (from the global
configuration) and its witness (the registry named by the anchor)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from urllib.parse import quote, urlsplit

import aiohttp
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from certs.errors import CertsError
from certs.keys import certificate_pem, load_certificate, load_private_key
from certs.tsa_client import request_timestamp
from gateway.audit.checkpoints import Checkpointer, CheckpointSigner, WitnessRequest
from gateway.audit.errors import WitnessRefused
from gateway.audit.integrity import (
    STATE_FILE,
    ChainCheck,
    ChainMismatch,
    check_chain,
    remember_cosigned,
    witnessed_states,
)
from gateway.downloads import DownloadTooLarge, read_capped
from gateway.settings import NodeSettings
from member_registry.anchor import load_anchor
from member_registry.globalconf import GlobalConf

__all__ = ["check_chain_at_start", "checkpointer_for", "checkpoints_running", "witness_url"]

log = structlog.get_logger(__name__)

ConfLookup = Callable[[], GlobalConf]

# A cosignature answer is a few hundred bytes; anything far larger is not one.
MAX_WITNESS_ANSWER_BYTES = 64 * 1024


def witness_url(download_url: str) -> str:
    """The registry's witness endpoint, beside the configuration it serves."""
    parts = urlsplit(download_url)
    return f"{parts.scheme}://{parts.netloc}/witness/checkpoints"


def checkpointer_for(
    settings: NodeSettings,
    engine: object,
    conf: ConfLookup,
    session: aiohttp.ClientSession,
    clock: Callable[[], datetime],
) -> Checkpointer:
    certificate = load_certificate(settings.auth_certificate)
    signer = CheckpointSigner(
        str(settings.node_id), load_private_key(settings.auth_key), certificate
    )
    anchor = load_anchor(settings.anchor)
    witness = settings.audit_witness_url or witness_url(anchor.download_urls[0])

    async def timestamp(digest: bytes) -> bytes | None:
        tsas = conf().tsas
        if not tsas:
            return None
        last: CertsError | None = None
        for tsa in tsas:
            try:
                return await request_timestamp(session, tsa.url, digest)
            except CertsError as exc:
                last = exc
        assert last is not None
        raise last

    async def cosign(request: WitnessRequest) -> str:
        try:
            async with session.post(
                witness, json=request.to_json_dict(), timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                raw = await read_capped(
                    response, MAX_WITNESS_ANSWER_BYTES, what=f"the witness {witness}"
                )
            body = json.loads(raw)
        except DownloadTooLarge as exc:
            raise WitnessRefused(str(exc)) from exc
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WitnessRefused(f"the witness {witness} is unreachable: {exc!r}") from exc
        if response.status != 200 or not isinstance(body, dict) or "cosignature" not in body:
            message = body.get("message") if isinstance(body, dict) else None
            raise WitnessRefused(f"the witness refused: {message or response.status}")
        cosignature = str(body["cosignature"])
        # A copy beside the database: the start-up check compares the chain with it.
        remember_cosigned(
            settings.data_dir / STATE_FILE, cosignature, anchor, str(settings.node_id)
        )
        return cosignature

    state_url = f"{witness}/{quote(str(settings.node_id), safe='/')}"

    async def witness_state() -> tuple[int, str] | None:
        try:
            async with session.get(
                state_url, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WitnessRefused(f"the witness {witness} is unreachable: {exc!r}") from exc
        if response.status == 404:
            return None  # it has cosigned nothing for this node yet
        try:
            if response.status != 200:
                raise TypeError(response.status)
            return int(body["tree_size"]), str(body["root"])
        except (TypeError, KeyError, ValueError) as exc:
            raise WitnessRefused(f"the witness's state is unreadable: {exc!r}") from exc

    return Checkpointer(
        engine,  # type: ignore[arg-type]
        signer,
        clock=clock,
        timestamper=timestamp,
        cosigner=cosign,
        witness_state=witness_state,
        certificate_pem=certificate_pem(certificate),
    )


async def check_chain_at_start(settings: NodeSettings, engine: AsyncEngine) -> ChainCheck:
    """Compare the chain with every witnessed state (gateway/audit/integrity.py)."""
    anchor = load_anchor(settings.anchor)
    witness = settings.audit_witness_url or witness_url(anchor.download_urls[0])
    node_id = str(settings.node_id)
    try:
        async with aiohttp.ClientSession() as session:
            states = await witnessed_states(
                engine, node_id, state_file=settings.data_dir / STATE_FILE,
                witness_url=witness, session=session,
            )  # fmt: skip
        size = await check_chain(engine, node_id, anchor, states)
    except ChainMismatch as exc:
        log.error("audit_chain_mismatch", reason=exc.message)
        return ChainCheck(ok=False, reason=exc.message)
    log.info("audit_chain_checked", witnessed_rows=size, states=len(states))
    return ChainCheck(tree_size=size)


@contextlib.asynccontextmanager
async def checkpoints_running(
    settings: NodeSettings, engine: object, conf: ConfLookup, clock: Callable[[], datetime]
) -> AsyncIterator[Checkpointer]:
    """Run the periodic checkpoint task for the life of a node process."""
    async with aiohttp.ClientSession() as session:
        checkpointer = checkpointer_for(settings, engine, conf, session, clock)
        checkpointer.start(settings.audit_checkpoint_interval_s)
        try:
            yield checkpointer
        finally:
            await checkpointer.stop()
