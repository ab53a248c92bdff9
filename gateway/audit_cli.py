"""``renkei audit ...``: export, checkpoint, verify, reconcile, subject report, visibility.

``export``, ``checkpoint``, ``subject --config`` and ``hide`` read or write the
node's database directly (run them on the node's host with its config);
``verify``, ``reconcile`` and ``subject --bundle`` need only bundles and the anchor.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.settings import NodeSettings

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    audit = commands.add_parser("audit", help="audit logs: export, verify, reconcile, report")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    export = sub.add_parser("export", help="write an export bundle from the node's database")
    export.add_argument("--config", type=Path, required=True)
    export.add_argument("--out", type=Path, required=True, help="directory or .tar.gz")
    export.add_argument("--from", dest="since", type=_time, help="ISO time (inclusive)")
    export.add_argument("--to", dest="until", type=_time, help="ISO time (exclusive)")
    export.set_defaults(handler=_guarded(_export))

    checkpoint = sub.add_parser("checkpoint", help="sign, time-stamp and cosign a checkpoint now")
    checkpoint.add_argument("--config", type=Path, required=True)
    checkpoint.set_defaults(handler=_guarded(_checkpoint))

    verify = sub.add_parser("verify", help="verify bundles (archives in order, then an export)")
    verify.add_argument("bundles", type=Path, nargs="+", metavar="BUNDLE")
    verify.add_argument("--anchor", type=Path, required=True)
    verify.add_argument("--allow-unstamped", action="store_true")
    verify.add_argument("--allow-uncosigned", action="store_true")
    verify.add_argument("--partial", action="store_true",
                        help="the first bundle may follow an archive that is not given")
    verify.add_argument("--witness-state", type=Path,
                        help="JSON from the registry's GET /witness/checkpoints/NODE")
    verify.set_defaults(handler=_guarded(_verify))

    reconcile = sub.add_parser("reconcile", help="match two nodes' bundles exchange by exchange")
    reconcile.add_argument("a", type=Path)
    reconcile.add_argument("b", type=Path)
    reconcile.set_defaults(handler=_guarded(_reconcile))

    subject = sub.add_parser("subject", help="who accessed this data subject's data")
    subject.add_argument("subject")
    source = subject.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path)
    source.add_argument("--bundle", type=Path)
    subject.set_defaults(handler=_guarded(_subject))

    hide = sub.add_parser("hide", help="hide an exchange from its subject's report until a time")
    hide.add_argument("message_id")
    hide.add_argument("--until", type=_time, required=True)
    hide.add_argument("--reason")
    hide.add_argument("--config", type=Path, required=True)
    hide.set_defaults(handler=_guarded(_hide))

    archive = sub.add_parser("archive", help="move rows older than a date to an archive file")
    archive.add_argument("--config", type=Path, required=True)
    archive.add_argument("--before", type=_time, required=True, help="ISO date or time")
    archive.add_argument("--out", type=Path, required=True, help="directory of archives")
    archive.set_defaults(handler=_guarded(_archive))

    erase = sub.add_parser("erase-subject", help="delete a data subject's logged bodies")
    erase.add_argument("subject")
    erase.add_argument("--config", type=Path, required=True)
    erase.set_defaults(handler=_guarded(_erase_subject))

    key = sub.add_parser("body-key", help="create a key file for encrypted body logging")
    key.add_argument("--out", type=Path, required=True)
    key.set_defaults(handler=_guarded(_body_key))

    body = sub.add_parser("body", help="decrypt an exchange's logged bodies (owner only)")
    body.add_argument("request_id", help="the exchange's X-Road-Request-Id")
    body.add_argument("--config", type=Path, required=True)
    body.set_defaults(handler=_guarded(_body))

    ops = sub.add_parser("operational", help="timings and sizes per exchange (owner only)")
    ops.add_argument("--config", type=Path, required=True)
    ops.add_argument("--service")
    ops.add_argument("--limit", type=int, default=100)
    ops.set_defaults(handler=_guarded(_operational))


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        from gateway.audit.errors import AuditError
        from gateway.auditor.errors import AuditorError
        from gateway.settings import SettingsError
        from member_registry.errors import RegistryBaseError

        _logs_to_stderr()
        try:
            return handler(args)
        except BrokenPipeError:
            raise  # the reader went away: renkei's main ends quietly
        except (AuditError, AuditorError, SettingsError, RegistryBaseError, OSError) as exc:
            code = getattr(exc, "code", "audit.error")
            print(f"renkei: error: {code}: {exc}", file=sys.stderr)
            return 1

    return run


def _load_settings(path: Path) -> NodeSettings:
    from gateway.settings import load_node_settings

    return load_node_settings(path)


def _logs_to_stderr() -> None:
    """Warnings (an unreachable TSA, say) go to stderr: stdout carries the JSON result."""
    import structlog

    if not structlog.is_configured():
        # Looked up per line, so a replaced sys.stderr (tests, daemons) is honoured.
        structlog.configure(logger_factory=lambda *_: structlog.PrintLogger(sys.stderr))


def _progress(message: str) -> None:
    """A step of a long command, on stderr (stdout carries the JSON result)."""
    from gateway.cli_output import progress

    progress(message)


def _print(document: Any) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))


async def _engine(settings: NodeSettings) -> Any:
    from gateway.db import Base, create_engine

    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return engine


def _conf_of(settings: NodeSettings) -> tuple[str, Any]:
    """The node's last good configuration, checked against its anchor."""
    from member_registry.anchor import load_anchor
    from member_registry.signing import claimed_time, verify_global_conf

    token = (settings.data_dir / "globalconf.jws").read_text("ascii").strip()
    generated = claimed_time(token, "generated_at")
    return token, verify_global_conf(token, load_anchor(settings.anchor), now=generated)


def _export(args: argparse.Namespace) -> int:
    import asyncio

    from certs.keys import certificate_pem, load_certificate
    from gateway.audit.export import collect_bundle, write_bundle

    settings = _load_settings(args.config)
    token, _ = _conf_of(settings)

    async def run() -> str:
        engine = await _engine(settings)
        try:
            content = await collect_bundle(
                engine, str(settings.node_id), globalconf=token,
                certificates_pem=certificate_pem(load_certificate(settings.auth_certificate)),
                since=args.since, until=args.until,
            )
        finally:
            await engine.dispose()
        return write_bundle(content, args.out, now=datetime.now(UTC))

    _progress(f"exporting the audit log to {args.out} ...")
    digest = asyncio.run(run())
    _print({"bundle": str(args.out), "manifest_sha256": digest})
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    import asyncio

    import aiohttp

    from gateway.audit.checkpoints import DEFAULT_LEASE_S
    from gateway.audit.service import checkpointer_for

    settings = _load_settings(args.config)
    _, conf = _conf_of(settings)

    async def run() -> dict[str, Any] | None:
        engine = await _engine(settings)
        try:
            async with aiohttp.ClientSession() as session:
                checkpointer = checkpointer_for(
                    settings, engine, lambda: conf, session, lambda: datetime.now(UTC)
                )
                # A running process of the node may hold the lease for a round.
                return await checkpointer.checkpoint(wait_s=DEFAULT_LEASE_S)
        finally:
            await engine.dispose()

    made = asyncio.run(run())
    if made is None:
        _print({"checkpoint": None,
                "reason": "no new rows since the last checkpoint, and it is cosigned "
                          "(or the witness still refuses: see the node's log)"})
        return 0
    _print({"tree_size": made["tree_size"], "root": made["root_hash"],
            "timestamped": made["timestamp_token"] is not None,
            "cosigned": made["cosignature"] is not None})
    return 0


def _verify(args: argparse.Namespace) -> int:
    from gateway.auditor import VerificationFailed, read_bundle, verify_bundles
    from member_registry.anchor import load_anchor

    state = json.loads(args.witness_state.read_text("utf-8")) if args.witness_state else None
    _progress(f"reading {len(args.bundles)} bundle(s) ...")
    bundles = [read_bundle(path) for path in args.bundles]
    _progress("verifying the chain, the checkpoints, their time-stamps and cosignatures ...")
    try:
        report = verify_bundles(
            bundles,
            anchor=load_anchor(args.anchor),
            now=datetime.now(UTC),
            allow_unstamped=args.allow_unstamped,
            allow_uncosigned=args.allow_uncosigned,
            witness_state=state,
            allow_partial=args.partial,
        )
    except VerificationFailed as exc:
        _print({"ok": False, "code": exc.code, "seq": exc.seq, "problem": exc.message})
        return 2
    _print(report.to_json_dict())
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from gateway.auditor import read_bundle, reconcile

    _progress("reading both bundles ...")
    a, b = read_bundle(args.a), read_bundle(args.b)
    _progress(f"matching {a.node_id}'s exchanges with {b.node_id}'s ...")
    report = reconcile(a.json_lines("rows.jsonl"), a.node_id, b.json_lines("rows.jsonl"),
                       b.node_id)
    _print(report.to_json_dict())
    return 0 if report.ok else 3


def _subject(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.auditor import read_bundle, subject_report

    now = datetime.now(UTC)
    if args.bundle is not None:
        bundle = read_bundle(args.bundle)
        hidden = {v["message_id"]: v["hidden_from_subject_until"]
                  for v in bundle.json_lines("visibility.jsonl")}
        rows: list[dict[str, Any]] = bundle.json_lines("rows.jsonl")
    else:
        from gateway.audit.queries import subject_rows

        settings = _load_settings(args.config)

        async def run() -> tuple[list[dict[str, Any]], dict[str, str]]:
            engine = await _engine(settings)
            try:
                return await subject_rows(engine, str(settings.node_id), args.subject)
            finally:
                await engine.dispose()

        rows, hidden = asyncio.run(run())
    entries = subject_report(rows, args.subject, now=now, hidden_until=hidden)
    _print({"subject": args.subject, "exchanges": [e.to_json_dict() for e in entries]})
    return 0


def _hide(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.audit.queries import hide_from_subject

    settings = _load_settings(args.config)

    async def run() -> None:
        engine = await _engine(settings)
        try:
            await hide_from_subject(engine, str(settings.node_id), args.message_id,
                                    until=args.until, reason=args.reason)
        finally:
            await engine.dispose()

    asyncio.run(run())
    _print({"message_id": args.message_id, "hidden_until": args.until.isoformat()})
    return 0


def _operational(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.audit.queries import operational_records

    settings = _load_settings(args.config)

    async def run() -> list[dict[str, Any]]:
        engine = await _engine(settings)
        try:
            return await operational_records(engine, str(settings.node_id),
                                             service=args.service, limit=args.limit)
        finally:
            await engine.dispose()

    _print({"records": asyncio.run(run())})
    return 0


def _erase_subject(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.audit.erasure import Erasure, erase_subject_bodies

    settings = _load_settings(args.config)

    async def run() -> Erasure:
        engine = await _engine(settings)
        try:
            return await erase_subject_bodies(engine, str(settings.node_id), args.subject)
        finally:
            await engine.dispose()

    erasure = asyncio.run(run())
    _print(erasure.to_json_dict())
    # The key is gone either way; a storage that kept old versions is worth a non-zero exit.
    return 0 if erasure.storage_released else 1


def _body_key(args: argparse.Namespace) -> int:
    from gateway.audit.bodies import write_body_key

    write_body_key(args.out)
    _print({"key_file": str(args.out)})
    return 0


def _body(args: argparse.Namespace) -> int:
    import asyncio
    import base64

    from gateway.audit.bodies import body_vault_for, read_bodies
    from gateway.audit.errors import BodyStoreError

    settings = _load_settings(args.config)
    vault = body_vault_for(settings)
    if vault is None:
        raise BodyStoreError("this node logs no bodies ([audit] body_services is empty)")

    async def run() -> list[dict[str, Any]]:
        engine = await _engine(settings)
        try:
            found = await read_bodies(engine, vault, str(settings.node_id), args.request_id)
        finally:
            await engine.dispose()
        return [
            {"kind": b.kind, "kept": b.kept,
             "body_base64": base64.b64encode(b.body).decode() if b.body is not None else None}
            for b in found
        ]  # fmt: skip

    _print({"request_id": args.request_id, "bodies": asyncio.run(run())})
    return 0


def _archive(args: argparse.Namespace) -> int:
    import asyncio

    from certs.keys import certificate_pem, load_certificate
    from gateway.audit.archive import archive_before

    settings = _load_settings(args.config)
    token, _ = _conf_of(settings)

    async def run() -> Any:
        engine = await _engine(settings)
        try:
            return await archive_before(
                engine, str(settings.node_id), before=args.before, out_dir=args.out,
                globalconf=token,
                certificates_pem=certificate_pem(load_certificate(settings.auth_certificate)),
                now=datetime.now(UTC),
            )  # fmt: skip
        finally:
            await engine.dispose()

    made = asyncio.run(run())
    if made is None:
        _print({"archive": None, "reason": "no checkpointed rows older than that"})
        return 0
    _print({"archive": str(made.path), "first_seq": made.first_seq, "last_seq": made.last_seq,
            "manifest_sha256": made.sha256, "previous_archive_sha256": made.previous_sha256})
    return 0
