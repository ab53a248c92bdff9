"""A node's first state from its files, applied once, never again at a later start.

The node's database is the one source of truth for its policies (and services).
A node whose settings name a ``policy_file`` takes that file as its *initial*
policy: the first start on a database that was never seeded applies it, in
one transaction with a ``node_seeds`` row that says so, and writes an operator
trail entry (actor ``node.toml``). Every later start leaves the database as
the management API left it; a file that changed since is reported in the log,
not applied: that is what ``renkei policy apply`` is for.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Column, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db import Base
from gateway.operator_log import NODE_OPERATOR_LOG, OperatorAction, OperatorLog
from gateway.services import Service, ServiceStore, read_openapi_file
from gateway.settings import ServiceBackend
from member_registry.operator_log import OperatorLogUnavailable
from policies.errors import DeclarationError
from policies.files import ApplyReport, apply_policy_file, parse_policy_text
from policies.store import PolicyStore

__all__ = ["NODE_SEEDS", "SEED_ACTOR", "record_change", "seed_policy_file", "seed_services"]

log = structlog.get_logger(__name__)

SEED_ACTOR = "node.toml"
POLICY_SEED = "policy_file"
SERVICES_SEED = "services"
# What the migration that introduced seeding writes for a node that ran before it.
UPGRADED = "before-seeding"

NODE_SEEDS = Table(
    "node_seeds",
    Base.metadata,
    Column("name", String(64), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("source", String(1024), nullable=False),
    Column("applied_at", String(40), nullable=False),
)


async def record_change(
    engine: AsyncEngine,
    *,
    now: datetime,
    actor: str,
    role: str,
    action: str,
    target: str,
    change: dict[str, Any] | None,
) -> None:
    """One operator-trail row for a change not made through the management API."""
    try:
        await OperatorLog(engine, NODE_OPERATOR_LOG).record(
            OperatorAction(
                at=now,
                actor=actor,
                role=role,
                token_id=None,
                method="APPLY",
                action=action,
                target=target,
                status=200,
                source=None,
                change=change,
            )
        )
    except OperatorLogUnavailable:
        log.error("operator_log_unavailable", action=action, target=target)


async def _seeded(engine: AsyncEngine, name: str) -> str | None:
    async with engine.connect() as conn:
        found: str | None = (
            await conn.execute(select(NODE_SEEDS.c.sha256).where(NODE_SEEDS.c.name == name))
        ).scalar_one_or_none()
    return found


async def seed_policy_file(
    engine: AsyncEngine, policy: PolicyStore, path: Path, *, now: datetime
) -> ApplyReport | None:
    """Apply ``path`` if this database was never seeded with a policy; the report, or None."""
    text = path.read_text(encoding="utf-8")  # noqa: ASYNC240 - once, at start
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    seeded = await _seeded(engine, POLICY_SEED)
    if seeded == UPGRADED:
        # The database already held this node's policy when seeding began (the
        # migration marked it); from now on a changed file is reported.
        async with engine.begin() as conn:
            await conn.execute(
                update(NODE_SEEDS).where(NODE_SEEDS.c.name == POLICY_SEED).values(sha256=digest)
            )
        log.info("policy_file_not_applied", path=str(path),
                 reason="the database holds the node's policy; apply a changed file with "
                        "renkei policy apply FILE --dry-run")  # fmt: skip
        return None
    if seeded is not None:
        if seeded != digest:
            log.warning(
                "policy_file_not_applied",
                path=str(path),
                reason="the database holds the node's policy; the file changed since it was "
                "first applied. Apply it explicitly: renkei policy apply FILE --dry-run",
            )
        return None
    policy_file = parse_policy_text(text, path)
    try:
        async with policy.atomic() as bound:
            report = await apply_policy_file(bound, policy_file, now=now)
            await bound.connection.execute(
                insert(NODE_SEEDS).values(
                    name=POLICY_SEED,
                    sha256=digest,
                    source=str(path)[:1024],
                    applied_at=now.isoformat(),
                )
            )
    except DeclarationError:
        if await _seeded(engine, POLICY_SEED) is not None:
            return None  # another process of this node seeded it first
        raise
    log.info("policy_file_seeded", path=str(path), changes=len(report.changes))
    await record_change(
        engine,
        now=now,
        actor=SEED_ACTOR,
        role="bootstrap",
        action="/policy/seed",
        target=str(path),
        change=report.trail_change(),
    )
    return report


def _seed_service(backend: ServiceBackend) -> Service:
    return Service(
        service=backend.service,
        url=backend.url,
        timeout_s=backend.timeout_s,
        openapi=read_openapi_file(backend.openapi) if backend.openapi is not None else None,
        openapi_source=str(backend.openapi or ""),
        path_parameters=backend.path_parameters,
        title=backend.title,
        description=backend.description,
    )


def _services_digest(backends: tuple[ServiceBackend, ...]) -> str:
    text = json.dumps(
        [[str(b.service), b.url, b.timeout_s, str(b.openapi or ""), b.path_parameters,
          b.title, b.description] for b in backends],
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def seed_services(
    engine: AsyncEngine,
    store: ServiceStore,
    backends: tuple[ServiceBackend, ...],
    *,
    now: datetime,
) -> int | None:
    """Add node.toml's ``[[service]]`` entries if the services were never seeded.

    The number added, or None when the database already holds the node's services
    (then a node.toml whose entries changed since is reported, not applied).
    """
    digest = _services_digest(backends)
    seeded = await _seeded(engine, SERVICES_SEED)
    if seeded is not None:
        if seeded != digest and backends:
            log.warning(
                "services_not_applied",
                reason="the database holds the node's services; node.toml's [[service]] "
                "entries changed since they were first added. Change services with "
                "renkei service add/update/remove",
            )
        return None
    services = tuple(_seed_service(backend) for backend in backends)

    async def marker(conn: AsyncConnection) -> None:
        await conn.execute(
            insert(NODE_SEEDS).values(
                name=SERVICES_SEED, sha256=digest, source="node.toml", applied_at=now.isoformat()
            )
        )

    try:
        await store.seed(services, now=now, marker=marker)
    except IntegrityError:
        if await _seeded(engine, SERVICES_SEED) is not None:
            return None  # another process of this node seeded them first
        raise
    if services:
        log.info("services_seeded", count=len(services))
        await record_change(
            engine, now=now, actor=SEED_ACTOR, role="bootstrap", action="/services/seed",
            target="node.toml",
            change={"before": None, "after": [service.to_json() for service in services]},
        )  # fmt: skip
    return len(services)
