"""``renkei service ...``: a node's services through its management API, without a restart.

    renkei service add ID --backend URL [--openapi FILE|URL] [--timeout S]
                       [--tls-ca FILE] [--no-tls-verify] [--path-parameters] [--disabled]
    renkei service list | show ID | update ID ... | enable ID | disable ID | remove ID
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    from gateway.policy_cli import call_management

    return call_management(args, method, path, body)


def _openapi(source: str) -> dict[str, Any]:
    """``openapi`` (a file's JSON) or ``openapi_url`` (the node fetches it) for a body."""
    if source.startswith(("http://", "https://")):
        return {"openapi_url": source}
    try:
        document = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        from gateway.policy_cli import CliError

        raise CliError(f"cannot read the OpenAPI description {source}: {exc}") from exc
    return {"openapi": document}


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for option, key in (("backend", "backend"), ("timeout", "timeout_s"),
                        ("title", "title"), ("description", "description")):  # fmt: skip
        value = getattr(args, option, None)
        if value is not None:
            body[key] = value
    if getattr(args, "path_parameters", None) is not None:
        body["path_parameters"] = args.path_parameters
    if getattr(args, "openapi", None):
        body.update(_openapi(args.openapi))
    tls: dict[str, Any] = {}
    if getattr(args, "tls_ca", None):
        from gateway.policy_cli import CliError

        try:
            tls["ca_pem"] = Path(args.tls_ca).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {args.tls_ca}: {exc}") from exc
    if getattr(args, "tls_verify", None) is not None:
        tls["verify"] = args.tls_verify
    if tls:
        body["tls"] = tls
    return body


def _line(service: dict[str, Any]) -> str:
    state = "enabled" if service["enabled"] else "disabled"
    endpoints = len(service.get("endpoints", []))
    return (
        f"{service['id']}: {service['service_type']} -> {service['backend']} ({state}, "
        f"timeout {service['timeout_s']:g} s, {endpoints} endpoint(s))"
    )


def _show(service: dict[str, Any]) -> None:
    from gateway.cli_output import print_summary, print_table

    print_summary(_line(service))
    print_table(
        None, ["method", "path"],
        ((e["method"], e["path"]) for e in service.get("endpoints", [])),
        empty="  no endpoints of its own: access rights name the whole service or paths",
    )  # fmt: skip


def _run(args: argparse.Namespace, action: Any) -> int:
    from gateway.cli_output import error
    from gateway.policy_cli import CliError

    try:
        action()
    except CliError as exc:
        error(str(exc))
        return 1
    return 0


def _list(args: argparse.Namespace) -> int:
    from gateway.cli_output import print_document, print_table

    def action() -> None:
        document = _call(args, "GET", "/api/services")
        print_document(args, document, lambda doc: print_table(
            None, ["service", "type", "backend", "enabled", "endpoints"],
            ((s["id"], s["service_type"], s["backend"], "yes" if s["enabled"] else "no",
              len(s["endpoints"])) for s in doc["services"]),
            empty="no services",
        ))  # fmt: skip

    return _run(args, action)


def _show_command(args: argparse.Namespace) -> int:
    from gateway.cli_output import print_document

    def action() -> None:
        print_document(args, _call(args, "GET", f"/api/services/{args.service}"), _show)

    return _run(args, action)


def _add(args: argparse.Namespace) -> int:
    from gateway.cli_output import print_document, print_summary

    def action() -> None:
        body = {"id": args.service, **_settings(args)}
        if args.disabled:
            body["enabled"] = False
        document = _call(args, "POST", "/api/services", body)
        print_document(args, document, lambda doc: print_summary("added " + _line(doc)))

    return _run(args, action)


def _patch(args: argparse.Namespace, body: Any, verb: str) -> int:
    """PATCH the service with ``body`` (or what ``body()`` builds from the options)."""
    from gateway.cli_output import print_document, print_summary
    from gateway.policy_cli import CliError

    def action() -> None:
        changes = body() if callable(body) else body
        if not changes:
            raise CliError("nothing to change; give at least one option")
        document = _call(args, "PATCH", f"/api/services/{args.service}", changes)
        print_document(args, document, lambda doc: print_summary(f"{verb} " + _line(doc)))

    return _run(args, action)


def _update(args: argparse.Namespace) -> int:
    return _patch(args, lambda: _settings(args), "changed")


def _enable(args: argparse.Namespace) -> int:
    return _patch(args, {"enabled": True}, "enabled")


def _disable(args: argparse.Namespace) -> int:
    return _patch(args, {"enabled": False}, "disabled")


def _remove(args: argparse.Namespace) -> int:
    from gateway.cli_output import print_document, print_summary

    def action() -> None:
        document = _call(args, "DELETE", f"/api/services/{args.service}")
        print_document(args, document, lambda doc: print_summary(
            f"removed {doc['removed']} and {doc['access_rights_revoked']} access right(s)"
        ))  # fmt: skip

    return _run(args, action)


def _options(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    parser.add_argument("--backend", required=creating, help="the backend's http(s):// URL")
    parser.add_argument(
        "--openapi", help="an OpenAPI 3 description: a JSON file, or a URL the node fetches once"
    )
    parser.add_argument("--timeout", type=float, help="seconds the backend may take (30)")
    parser.add_argument("--title", help="the catalogue's title without an OpenAPI one")
    parser.add_argument("--description", help="the catalogue's text without an OpenAPI one")
    parser.add_argument("--tls-ca", help="PEM file of the CA the https backend's certificate "
                        "must chain to (default: the system's roots)")  # fmt: skip
    verify = parser.add_mutually_exclusive_group()
    verify.add_argument("--no-tls-verify", dest="tls_verify", action="store_false",
                        default=None, help="do not verify the backend's certificate (testing)")
    verify.add_argument("--tls-verify", dest="tls_verify", action="store_true", default=None)
    params = parser.add_mutually_exclusive_group()
    params.add_argument("--path-parameters", dest="path_parameters", action="store_true",
                        default=None, help="the backend uses ';' parameters in paths")
    params.add_argument("--no-path-parameters", dest="path_parameters", action="store_false",
                        default=None)  # fmt: skip


def register(commands: argparse._SubParsersAction[Any]) -> None:
    from gateway.policy_cli import connection_options

    service = commands.add_parser("service", help="the node's services: add, change, remove")
    sub = service.add_subparsers(dest="service_command", required=True, metavar="COMMAND")

    def command(name: str, text: str, handler: Any, *, with_id: bool = True) -> Any:
        parser = sub.add_parser(name, help=text)
        if with_id:
            parser.add_argument(
                "service", metavar="ID", help="INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE"
            )
        connection_options(parser)
        parser.set_defaults(handler=handler)
        return parser

    command("list", "list the node's services", _list, with_id=False)
    command("show", "one service and its endpoints", _show_command)
    add = command("add", "add a service (REST, or from an OpenAPI description)", _add)
    _options(add, creating=True)
    add.add_argument("--disabled", action="store_true", help="add it disabled")
    update = command("update", "change some of a service's settings", _update)
    _options(update, creating=False)
    command("enable", "serve a disabled service again", _enable)
    command("disable", "stop serving a service (calls answer service_disabled)", _disable)
    command("remove", "remove a service and its access rights", _remove)
