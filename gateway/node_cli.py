"""``renkei node ...``, ``renkei token ...`` and ``renkei sandbox ...`` sub-commands."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _fail(message: str) -> int:
    print(f"renkei: error: {message}", file=sys.stderr)
    return 1


def _use_uvloop() -> None:
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional speed-up
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _node_serve(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.logs import configure_logging
    from gateway.preflight import EXIT_CONFIG, StartupError
    from gateway.serve import run_node
    from gateway.settings import SettingsError, load_node_settings

    try:
        settings = load_node_settings(Path(args.config))
    except SettingsError as exc:
        print(f"renkei: error: {exc} [{SettingsError.code}]", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    _use_uvloop()
    # Database drivers run statements on worker threads; with the default 5 ms
    # interpreter switch interval each hop back to the event loop can wait that
    # long (measured in docs/benchmarks.md). The node's own threads are few.
    sys.setswitchinterval(0.0005)
    try:
        asyncio.run(run_node(settings))
    except StartupError as exc:
        # One line, nothing written (gateway/preflight.py); the exit code says which check.
        print(f"renkei: error: {exc.message} [{exc.code}]", file=sys.stderr)
        return exc.exit_code
    except SettingsError as exc:  # e.g. an unauthenticated client port on a shared node
        print(f"renkei: error: {exc} [{SettingsError.code}]", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def _parse_ttl(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1] in units:
            return timedelta(seconds=int(text[:-1]) * units[text[-1]])
        return timedelta(seconds=int(text))
    except (ValueError, IndexError) as exc:
        raise argparse.ArgumentTypeError(
            f"invalid TTL {text!r}; use e.g. 900s, 15m, 8h, 30d"
        ) from exc


def _token_issue(args: argparse.Namespace) -> int:
    if args.registry_config:
        return _registry_token_issue(args)
    from gateway.serve import token_issuer
    from gateway.settings import SettingsError, load_node_settings

    try:
        settings = load_node_settings(Path(args.config))
        issuer = token_issuer(settings)
        token = issuer.issue(
            role=args.role, subject=args.subject, now=datetime.now(UTC), ttl=args.ttl
        )
    except (SettingsError, ValueError, OSError) as exc:
        return _fail(str(exc))
    _print_token(args, token)
    return 0


def _print_token(args: argparse.Namespace, token: str) -> None:
    """The token alone (for $(...)), or with what it is as JSON."""
    if not args.json:
        print(token)
        return
    from gateway.cli_output import print_json

    expires = datetime.now(UTC) + args.ttl
    print_json({"token": token, "role": args.role, "subject": args.subject,
                "expires_at": expires.isoformat(timespec="seconds")})  # fmt: skip


def _registry_token_issue(args: argparse.Namespace) -> int:
    import os

    from member_registry.errors import RegistryBaseError
    from member_registry.ops_api import load_registry_tokens
    from member_registry.settings import load_settings

    try:
        tokens = load_registry_tokens(load_settings(args.registry_config, os.environ))
        if tokens is None:
            return _fail("the registry has no token_key_path; add one to issue tokens")
        token = tokens.issue(
            role=args.role, subject=args.subject, now=datetime.now(UTC), ttl=args.ttl
        )
    except (RegistryBaseError, ValueError) as exc:
        return _fail(str(exc))
    _print_token(args, token)
    return 0


def _sandbox_up(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.sandbox.run import run_sandbox

    _use_uvloop()
    return asyncio.run(
        run_sandbox(
            Path(args.description) if args.description else None,
            Path(args.dir) if args.dir else None,
            database=args.database,
        )
    )


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the gateway's sub-commands to the ``renkei`` parser."""
    from gateway.ops_cli import register as register_ops

    register_ops(commands)  # renkei config check, renkei db upgrade
    node = commands.add_parser("node", help="run and manage a node (security server)")
    node_commands = node.add_subparsers(dest="node_command", required=True, metavar="COMMAND")
    serve = node_commands.add_parser("serve", help="serve the node until SIGINT/SIGTERM")
    serve.add_argument("--config", required=True, help="the node's TOML settings file")
    serve.set_defaults(handler=_node_serve)
    _register_join_commands(node_commands)  # renkei node init, renkei node register
    _register_maintenance(node_commands)

    token = commands.add_parser("token", help="management API bearer tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    issue = token_commands.add_parser(
        "issue", help="issue a bearer token for a node or the registry"
    )
    audience = issue.add_mutually_exclusive_group(required=True)
    audience.add_argument("--config", help="the node's TOML settings file")
    audience.add_argument(
        "--registry-config", help="the registry's registry.toml (roles admin, auditor)"
    )
    issue.add_argument("--role", required=True, choices=["admin", "auditor", "consent"])
    issue.add_argument("--ttl", type=_parse_ttl, default=timedelta(hours=8))
    issue.add_argument("--subject", default="operator", help="who the token is for")
    issue.add_argument("--json", action="store_true", help="the token with its role and expiry")
    issue.set_defaults(handler=_token_issue)

    sandbox = commands.add_parser("sandbox", help="a complete local federation on loopback")
    sandbox_commands = sandbox.add_subparsers(
        dest="sandbox_command", required=True, metavar="COMMAND"
    )
    up = sandbox_commands.add_parser(
        "up", help="start it, print its description as JSON, run until SIGINT/SIGTERM"
    )
    up.add_argument("description", nargs="?", help="a sandbox description (TOML)")
    up.add_argument("--dir", help="working directory (default: a new temporary one)")
    up.add_argument(
        "--database",
        default=None,
        help="SQLAlchemy URL prefix for node databases, e.g. "
        "postgresql+asyncpg://postgres@127.0.0.1/test (default: SQLite files)",
    )
    up.set_defaults(handler=_sandbox_up)


def _joining(name: str) -> Any:
    """``renkei node init``/``register``, importing gateway/node_init.py when they run."""

    def run(args: argparse.Namespace) -> int:
        from gateway import node_init

        for option, default in (
            ("peer_port", node_init.DEFAULT_PEER_PORT),
            ("client_port", node_init.DEFAULT_CLIENT_PORT),
            ("management_port", node_init.DEFAULT_MANAGEMENT_PORT),
        ):
            if getattr(args, option, 0) is None:
                setattr(args, option, default)
        result: int = getattr(node_init, name)(args)
        return result

    return run


def _register_join_commands(node_commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``init`` and ``register`` to ``renkei node`` (gateway/node_init.py does them)."""
    init = node_commands.add_parser("init", help="create a node directory: keys, CSRs, node.toml")
    init.add_argument("--dir", required=True, help="the node directory to create")
    init.add_argument("--id", required=True, help="the node, INSTANCE/CLASS/CODE/NODE")
    init.add_argument("--member", action="append", default=[],
                      help="a member whose sign key the node holds (default: the node's own "
                           "member, which is always included); repeatable")
    init.add_argument("--subsystem", action="append", default=[],
                      help="a subsystem of the member this node hosts; repeatable")
    init.add_argument("--anchor", help="the configuration anchor to install")
    init.add_argument("--address", default="127.0.0.1",
                      help="the address peers reach this node at (default 127.0.0.1)")
    init.add_argument("--peer-port", type=int, help="default 5500")
    init.add_argument("--client-port", type=int, help="default 8000")
    init.add_argument("--management-port", type=int, help="default 5588")
    init.add_argument("--database", help="SQLAlchemy URL (default: SQLite node.db in --dir)")
    init.set_defaults(handler=_joining("_init"))

    register = node_commands.add_parser(
        "register", help="ask the registry to list this node's auth certificate")
    register.add_argument("--config", required=True, help="the node's TOML settings file")
    register.add_argument("--registry", required=True, help="the registry's base URL")
    register.add_argument("--auth-key", help="a new auth key (renewal; default: the config's)")
    register.add_argument("--auth-cert", help="its certificate (renewal; default: the config's)")
    register.set_defaults(handler=_joining("_register"))


def _maintenance(args: argparse.Namespace) -> int:
    from gateway.cli_output import print_summary
    from gateway.policy_cli import management_call

    def show(document: dict[str, Any]) -> None:
        if not document["enabled"]:
            line = "maintenance off: the node reports ready"
        else:
            reason = f" ({document['reason']})" if document.get("reason") else ""
            line = (
                f"maintenance on since {document['since']}{reason}: /readyz answers 503; "
                f"{document['in_flight']} exchange(s) in flight"
            )
        print_summary(line)

    if args.state == "status":
        return management_call(args, "GET", "/api/maintenance", human=show)
    body = {"enabled": args.state == "on", "reason": args.reason or ""}
    return management_call(args, "PUT", "/api/maintenance", body, show)


def _register_maintenance(node_commands: argparse._SubParsersAction[Any]) -> None:
    from gateway.policy_cli import connection_options

    maintenance = node_commands.add_parser(
        "maintenance",
        help="drain the node: /readyz answers 503 while exchanges under way finish",
    )
    maintenance.add_argument("state", choices=["on", "off", "status"])
    maintenance.add_argument("--reason", help="why (shown by /readyz and in the trail)")
    connection_options(maintenance)
    maintenance.set_defaults(handler=_maintenance)
