"""The auditor's read-only API on the management port (role ``auditor``).

``GET /api/audit/rows``         rows by time range, client, service, subject, message id
``GET /api/audit/verify``       re-check the chain in the database
``GET /api/audit/checkpoints``  signed checkpoints (base64 tokens, cosignatures)
``GET /api/audit/proof/inclusion?seq=N&tree_size=M``     RFC 6962 inclusion proof
``GET /api/audit/proof/consistency?old=M&tree_size=N``   RFC 6962 consistency proof
``GET /api/audit/export``       the export bundle as ``.tar.gz`` (``from``/``to`` optional)
``GET /api/audit/subject/{subject}``  the data-subject report
``GET /api/audit/operational``  timings and sizes (role ``admin``: the owner's data)
``DELETE /api/audit/subject/{subject}/bodies``  erase the subject's logged bodies (``admin``)
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from certs.keys import certificate_pem
from gateway.audit.chain import ChainBroken, chain_start, fetch_rows, verify_chain
from gateway.audit.checkpoints import load_leaf_hashes
from gateway.audit.erasure import erase_subject_bodies
from gateway.audit.errors import AuditError
from gateway.audit.export import collect_bundle, write_bundle
from gateway.audit.models import CheckpointRow
from gateway.audit.queries import operational_records, query_rows, subject_rows
from gateway.auditor.subject import subject_report
from gateway.context import NodeContext
from gateway.operator_log import note_change
from member_registry.merkle import ProofError, consistency_proof, inclusion_proof

__all__ = ["add_audit_routes"]

RoleCheck = Callable[..., None]


def _int(request: web.Request, name: str, default: int | None = None) -> int:
    value = request.query.get(name)
    if value is None and default is not None:
        return default
    try:
        number = int(value or "")
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from exc
    # Beyond a signed 64-bit integer the database driver itself would fail (a 500).
    if not 0 <= number < 2**63:
        raise web.HTTPBadRequest(text=f"{name} must be from 0 to 2^63-1")
    return number


def _time(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"{name} must be an ISO time") from exc
    if moment.tzinfo is None:
        raise web.HTTPBadRequest(text=f"{name} must carry a time zone")
    return moment


def add_audit_routes(app: web.Application, ctx: NodeContext, require_role: RoleCheck) -> None:
    async def audit_rows(request: web.Request) -> web.Response:
        require_role(request, "auditor", "admin")
        q = request.query
        rows = await query_rows(
            ctx.engine, ctx.node_id,
            since=_time(request, "from"), until=_time(request, "to"),
            client=q.get("client"), service=q.get("service"), subject=q.get("subject"),
            message_id=q.get("message_id"), after_seq=_int(request, "after_seq", 0),
            limit=min(_int(request, "limit", 1000), 10000),
        )  # fmt: skip
        return web.json_response({"node": ctx.node_id, "rows": rows})

    async def audit_verify(request: web.Request) -> web.Response:
        require_role(request, "auditor", "admin")
        first_seq, start_hash = await chain_start(ctx.engine, ctx.node_id)
        rows = await fetch_rows(ctx.engine, ctx.node_id)
        try:
            count = verify_chain(rows, start_hash=start_hash, first_seq=first_seq)
        except ChainBroken as exc:
            return web.json_response({"ok": False, "seq": exc.seq, "error": str(exc)}, status=409)
        return web.json_response({"ok": True, "rows": count})

    async def checkpoints(request: web.Request) -> web.Response:
        require_role(request, "auditor", "admin")
        async with ctx.engine.connect() as conn:
            result = await conn.execute(
                select(CheckpointRow.__table__)
                .where(CheckpointRow.node_id == ctx.node_id)
                .order_by(CheckpointRow.tree_size)
            )
            documents = [
                {
                    "tree_size": r.tree_size, "root": r.root_hash, "created_at": r.created_at,
                    "signed": r.signed, "cosignature": r.cosignature,
                    "timestamp_token": base64.b64encode(r.timestamp_token).decode()
                    if r.timestamp_token else None,
                }
                for r in result
            ]  # fmt: skip
        return web.json_response({"node": ctx.node_id, "checkpoints": documents})

    async def proof(request: web.Request) -> web.Response:
        require_role(request, "auditor", "admin")
        size = _int(request, "tree_size")
        try:
            async with ctx.engine.connect() as conn:
                hashes = await load_leaf_hashes(conn, ctx.node_id, size)
            if request.match_info["kind"] == "inclusion":
                seq = _int(request, "seq")
                path = inclusion_proof(hashes, seq - 1)
                body = {"seq": seq, "leaf_index": seq - 1, "tree_size": size}
            else:
                old = _int(request, "old")
                path = consistency_proof(hashes, old)
                body = {"old": old, "tree_size": size}
        except (ProofError, AuditError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response({**body, "proof": [p.hex() for p in path]})

    async def export(request: web.Request) -> web.StreamResponse:
        require_role(request, "auditor", "admin")
        token = (ctx.settings.data_dir / "globalconf.jws").read_text("ascii")
        try:
            content = await collect_bundle(
                ctx.engine, ctx.node_id, globalconf=token,
                certificates_pem=certificate_pem(ctx.auth_certificate),
                since=_time(request, "from"), until=_time(request, "to"),
            )  # fmt: skip
        except AuditError as exc:
            raise web.HTTPNotFound(text=exc.message) from exc
        with tempfile.TemporaryDirectory() as directory:
            out = Path(directory) / "audit.tar.gz"
            write_bundle(content, out, now=ctx.clock())
            data = out.read_bytes()
        return web.Response(
            body=data, content_type="application/gzip",
            headers={"Content-Disposition": 'attachment; filename="audit.tar.gz"'},
        )  # fmt: skip

    async def subject(request: web.Request) -> web.Response:
        require_role(request, "auditor", "admin")
        name = request.match_info["subject"]
        rows, hidden = await subject_rows(ctx.engine, ctx.node_id, name)
        entries = subject_report(rows, name, now=ctx.clock(), hidden_until=hidden)
        return web.json_response(
            {"subject": name, "exchanges": [e.to_json_dict() for e in entries]}
        )

    async def operational(request: web.Request) -> web.Response:
        require_role(request, "admin")
        records = await operational_records(
            ctx.engine, ctx.node_id, service=request.query.get("service"),
            since=_time(request, "from"), limit=min(_int(request, "limit", 100), 10000),
        )  # fmt: skip
        return web.json_response({"node": ctx.node_id, "records": records})

    async def erase_bodies(request: web.Request) -> web.Response:
        require_role(request, "admin")
        name = request.match_info["subject"]
        erasure = await erase_subject_bodies(ctx.engine, ctx.node_id, name)
        note_change(request, before={"subject": name}, after=erasure.to_json_dict())
        return web.json_response(erasure.to_json_dict())

    # Registered before the subject report, whose pattern would swallow "/bodies".
    app.router.add_delete("/api/audit/subject/{subject:.+}/bodies", erase_bodies)
    app.router.add_get("/api/audit/rows", audit_rows)
    app.router.add_get("/api/audit/verify", audit_verify)
    app.router.add_get("/api/audit/checkpoints", checkpoints)
    app.router.add_get("/api/audit/proof/{kind:inclusion|consistency}", proof)
    app.router.add_get("/api/audit/export", export)
    app.router.add_get("/api/audit/subject/{subject:.+}", subject)
    app.router.add_get("/api/audit/operational", operational)
