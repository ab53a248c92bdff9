"""``renkei config check FILE`` and ``renkei db upgrade --config FILE``.

Both accept a node's or the registry's settings file and tell which it is by
its keys (``node_id`` or ``instance``). Secrets are never printed: a check
reports whether a secret file can be read, never what it holds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["check_config", "register"]


def _kind(path: Path) -> str:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from exc
    if "node_id" in data or "RENKEI_NODE_NODE_ID" in os.environ:
        return "node"
    if "instance" in data:
        return "registry"
    raise ValueError(f"{path}: neither a node (node_id) nor a registry (instance) file")


def _readable(path: Path, what: str, problems: list[str]) -> None:
    if not path.is_file():
        problems.append(f"{what}: {path} does not exist or is not a file")
    elif not os.access(path, os.R_OK):
        problems.append(f"{what}: {path} is not readable by this user")


def _check_database(url: str, problems: list[str]) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        problems.append("database_url: not a SQLAlchemy URL (e.g. postgresql+asyncpg://...)")
        return
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        problems.append(
            f"database_url: driver {parsed.drivername!r} is not supported; "
            "use sqlite+aiosqlite or postgresql+asyncpg"
        )


def _check_node(path: Path, problems: list[str]) -> str:
    from gateway.settings import SettingsError, load_node_settings

    try:
        settings = load_node_settings(path)
    except SettingsError as exc:
        problems.append(f"{exc} (see docs/operations.md, 'Configuration')")
        return "node"
    _readable(
        settings.anchor, "anchor (the configuration anchor from the registry operator)", problems
    )
    _readable(settings.auth_key, "keys.auth_key (secret: the node's TLS key)", problems)
    _readable(settings.auth_certificate, "keys.auth_certificate", problems)
    _readable(settings.token_key, "keys.token_key (secret: signs management tokens)", problems)
    for entry in settings.sign_keys:
        _readable(entry.key, f"keys.sign {entry.member} key (secret)", problems)
        _readable(entry.certificate, f"keys.sign {entry.member} certificate", problems)
    if settings.policy_file is not None:
        _readable(settings.policy_file, "policy_file", problems)
    _check_database(settings.database_url, problems)
    ports: dict[int, tuple[str, str]] = {}
    for name, listen in (
        ("client", settings.client),
        ("peer", settings.peer),
        ("management", settings.management),
    ):
        if listen.port and listen.port in ports and listen.host == ports[listen.port][1]:
            problems.append(f"{name}.port: {listen.port} is also the {ports[listen.port][0]} port")
        ports[listen.port] = (name, listen.host)
    if settings.management.host not in ("127.0.0.1", "::1", "localhost"):
        problems.append(
            f"management.host: {settings.management.host} exposes the admin API beyond "
            "loopback; put it behind a firewall or a TLS reverse proxy (warning)"
        )
    return f"node {settings.node_id}"


def _check_registry(path: Path, problems: list[str]) -> str:
    from member_registry.errors import ConfigurationError
    from member_registry.settings import load_settings, read_admin_token

    try:
        settings = load_settings(path, os.environ)
    except ConfigurationError as exc:
        problems.append(f"{exc.message} (see docs/member_registry.md)")
        return "registry"
    _readable(settings.signing_key_path, "signing_key_path (secret)", problems)
    _readable(settings.signing_cert_path, "signing_cert_path", problems)
    try:
        read_admin_token(settings)
    except ConfigurationError as exc:
        problems.append(f"admin_token_file: {exc.message}")
    _check_database(settings.database_url, problems)
    return f"registry of {settings.instance}"


def check_config(path: Path) -> tuple[str, list[str]]:
    """What the file configures and the problems found (empty: valid)."""
    problems: list[str] = []
    try:
        kind = _kind(path)
    except ValueError as exc:
        return "unknown", [str(exc)]
    what = _check_node(path, problems) if kind == "node" else _check_registry(path, problems)
    return what, problems


def _config_check(args: argparse.Namespace) -> int:
    what, problems = check_config(Path(args.file))
    if args.json:
        from gateway.cli_output import print_json

        print_json({"file": args.file, "what": what, "valid": not problems,
                    "problems": problems})  # fmt: skip
        return 0 if not problems else 1
    if not problems:
        print(f"{args.file}: valid ({what})")
        return 0
    print(f"{args.file}: {len(problems)} problem(s) ({what})", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1


async def _upgrade(path: Path, revision: str) -> str:
    if _kind(path) == "node":
        from gateway.schema import migrate_node_database
        from gateway.settings import load_node_settings

        await migrate_node_database(load_node_settings(path).database_url, revision)
        return "node"
    from member_registry.database import create_engine
    from member_registry.schema import upgrade_registry_schema
    from member_registry.settings import load_settings

    engine = create_engine(load_settings(path, os.environ).database_url)
    try:
        await upgrade_registry_schema(engine, revision)
    finally:
        await engine.dispose()
    return "registry"


def _db_upgrade(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.settings import SettingsError
    from member_registry.errors import RegistryBaseError

    try:
        kind = asyncio.run(_upgrade(Path(args.config), args.revision))
    except (ValueError, SettingsError, RegistryBaseError) as exc:
        message = exc.message if isinstance(exc, RegistryBaseError) else str(exc)
        print(f"renkei: error: {message}", file=sys.stderr)
        return 1
    if args.json:
        from gateway.cli_output import print_json

        print_json({"kind": kind, "revision": args.revision})
    else:
        print(f"{kind} database upgraded to {args.revision}")
    return 0


def register(commands: argparse._SubParsersAction[Any]) -> None:
    config = commands.add_parser("config", help="settings files")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = config_commands.add_parser("check", help="validate a node or registry file")
    check.add_argument("file")
    check.add_argument("--json", action="store_true", help="the result as JSON (for scripts)")
    check.set_defaults(handler=_config_check)
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="apply the schema migrations")
    upgrade.add_argument("--config", required=True, help="a node's or the registry's file")
    upgrade.add_argument("--revision", default="head")
    upgrade.add_argument("--json", action="store_true", help="the result as JSON (for scripts)")
    upgrade.set_defaults(handler=_db_upgrade)
