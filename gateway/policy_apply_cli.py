"""``renkei policy apply FILE [--dry-run]``: a declarative policy file, applied on request.

Through a running node's management API (``--url``/``--token-file``, the
operator trail names the token's subject), or, for a node that is not running
yet, straight into its database (``--config node.toml``; the trail names the
local user). Either way the changes are listed first and applied in one
transaction; ``--dry-run`` only lists them.
"""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["describe_changes", "register_apply"]

_SIGNS = {"add": "+", "change": "~", "remove": "-"}


def _changed_keys(before: dict[str, Any], after: dict[str, Any]) -> str:
    keys = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
    return "changes " + ", ".join(keys)


def describe_changes(document: dict[str, Any], source: str) -> list[str]:
    """One line per change, after a headline (what ``renkei policy apply`` prints)."""
    changes = document.get("changes", [])
    state = "applied" if document.get("applied") else "dry run, nothing written"
    if not changes:
        return [f"{source}: the node already matches the file ({state})"]
    lines = [f"{source}: {len(changes)} change(s) ({state})"]
    for change in changes:
        sign = _SIGNS.get(change["action"], "?")
        detail = ""
        if change["action"] == "change":
            detail = "  " + _changed_keys(change["before"] or {}, change["after"] or {})
        lines.append(f"  {sign} {change['kind']:<11} {change['key']}{detail}")
    return lines


async def _apply_locally(config: Path, text: str, source: str, dry_run: bool) -> dict[str, Any]:
    from gateway.bootstrap import record_change
    from gateway.db import create_engine
    from gateway.schema import upgrade_node_schema
    from gateway.settings import load_node_settings
    from policies.files import apply_policy_file, parse_policy_text
    from policies.store import PolicyStore

    settings = load_node_settings(config)
    policy_file = parse_policy_text(text, source)
    engine = create_engine(settings.database_url)
    try:
        await upgrade_node_schema(engine)
        store = PolicyStore(engine)
        await store.create_schema()
        now = datetime.now(UTC)
        report = await apply_policy_file(store, policy_file, now=now, dry_run=dry_run)
        if report.applied:
            await record_change(
                engine, now=now, actor=f"{getpass.getuser()}@local", role="local",
                action="/api/policy/apply", target=source, change=report.trail_change(),
            )  # fmt: skip
        return report.to_json()
    finally:
        await engine.dispose()


def _apply(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.cli_output import error, print_document, print_summary
    from policies.errors import PolicyError

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        error(f"cannot read {path}: {exc}")
        return 1
    try:
        if args.config:
            document = asyncio.run(_apply_locally(Path(args.config), text, str(path), args.dry_run))
        else:
            from gateway.policy_cli import CliError, call_management

            try:
                document = call_management(
                    args, "POST", "/api/policy/apply",
                    {"policy": text, "dry_run": args.dry_run, "source": path.name},
                )  # fmt: skip
            except CliError as exc:
                error(str(exc))
                return 1
    except PolicyError as exc:
        error(str(exc))
        return 1
    print_document(args, document, lambda doc: print_summary(
        "\n".join(describe_changes(doc, str(path)))
    ))  # fmt: skip
    return 0


def register_apply(actions: argparse._SubParsersAction[Any]) -> None:
    """``renkei policy apply`` (added beside ``renkei policy check``)."""
    from gateway.policy_cli import connection_options

    apply = actions.add_parser(
        "apply", help="make a node's policy match a file (lists the changes; --dry-run: only that)"
    )
    apply.add_argument("file", metavar="FILE", help="policy file (TOML)")
    apply.add_argument("--dry-run", action="store_true", help="list the changes, write nothing")
    connection_options(apply)
    apply.add_argument(
        "--config", help="apply into a stopped node's database (its node.toml) instead"
    )
    apply.set_defaults(handler=_apply)

