"""``renkei consent ...`` and ``renkei access ...``: the management API from the shell.

The node is named by ``--url`` (or ``RENKEI_MANAGEMENT_URL``) and the bearer
token by ``--token-file`` or ``RENKEI_TOKEN`` (a token given on the command
line would end up in the shell history).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "CliError",
    "call_management",
    "connection_options",
    "management_call",
    "management_options",
    "register",
]


class CliError(Exception):
    pass


def _connection(args: argparse.Namespace) -> tuple[str, str]:
    url = args.url or os.environ.get("RENKEI_MANAGEMENT_URL")
    if not url:
        raise CliError("give the node's management URL with --url or RENKEI_MANAGEMENT_URL")
    if args.token_file:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    else:
        token = os.environ.get("RENKEI_TOKEN", "")
    if not token:
        raise CliError("give a bearer token with --token-file or RENKEI_TOKEN")
    return url.rstrip("/"), token


async def _call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    import aiohttp  # here: ``renkei --help`` does not need the HTTP client

    url, token = _connection(args)
    headers = {"Authorization": f"Bearer {token}"}
    # A FHIR resource goes as it is, with its own media type (``renkei consent import``).
    fhir: bytes | None = getattr(args, "fhir_body", None)
    if fhir is not None:
        headers["Content-Type"] = "application/fhir+json"
    if getattr(args, "accept_fhir", False):
        headers["Accept"] = "application/fhir+json"
    async with aiohttp.ClientSession() as session:
        try:
            async with session.request(
                method,
                url + path,
                json=body if fhir is None else None,
                data=fhir,
                params={k: v for k, v in getattr(args, "params", {}).items() if v is not None},
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                text = await response.text()
                try:
                    document = json.loads(text) if text else {}
                except ValueError:
                    document = {"message": text}
                if response.status >= 400:
                    code = document.get("type", f"HTTP {response.status}")
                    raise CliError(f"{document.get('message', text)} [{code}]")
                return document
        except aiohttp.ClientError as exc:
            raise CliError(f"cannot reach {url}: {exc}") from exc


def _run(
    args: argparse.Namespace,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    human: Callable[[Any], None] | None = None,
) -> int:
    """Call the API; print the answer as ``human`` renders it, or as JSON (``--json``)."""
    import asyncio

    from gateway.cli_output import print_document, print_json

    try:
        document = asyncio.run(_call(args, method, path, body))
    except (CliError, OSError) as exc:
        print(f"renkei: error: {exc}", file=sys.stderr)
        return 1
    print_document(args, document, human or print_json)
    return 0


def _consent_line(consent: dict[str, Any]) -> str:
    until = consent.get("valid_until") or "until revoked"
    state = f", revoked {consent['revoked_at']}" if consent.get("revoked_at") else ""
    return (
        f"consent {consent['id']}: {consent['subject']} -> {consent['consumer']} on "
        f"{consent['service']} for {consent['purpose']}: {', '.join(consent['fields'])} "
        f"({consent['valid_from']} .. {until}{state})"
    )


def _show_granted(document: dict[str, Any]) -> None:
    from gateway.cli_output import print_summary

    signed = "a signed receipt" if document.get("receipt_jws") else "no signed receipt"
    print_summary(f"granted {_consent_line(document['consent'])}; {signed} (--json shows it)")


def _show_consents(document: dict[str, Any]) -> None:
    from gateway.cli_output import print_table

    print_table(
        None, ["id", "subject", "consumer", "service", "purpose", "fields", "until", "revoked"],
        ((c["id"], c["subject"], c["consumer"], c["service"], c["purpose"],
          ", ".join(c["fields"]), c.get("valid_until") or "-", c.get("revoked_at") or "-")
         for c in document["consents"]),
        empty="no consents",
    )  # fmt: skip


def _show_consent(document: dict[str, Any]) -> None:
    from gateway.cli_output import print_summary

    print_summary(_consent_line(document))


def _show_rights(document: dict[str, Any]) -> None:
    from gateway.cli_output import print_table

    print_table(
        None, ["id", "service", "grantee", "method", "path", "granted"],
        ((r["id"], r["service"], r["grantee"], r["method"], r["path"], r.get("granted_at") or "-")
         for r in document["access"]),
        empty="no access rights",
    )  # fmt: skip


def _show_right(document: dict[str, Any]) -> None:
    from gateway.cli_output import print_summary

    print_summary(
        f"granted {document['grantee']} {document['method']} {document['path']} on "
        f"{document['service']} (right {document['id']})"
    )


def _show_revoked(what: str) -> Callable[[Any], None]:
    def show(document: dict[str, Any]) -> None:
        from gateway.cli_output import print_summary

        if what == "consent":
            print_summary(f"revoked {_consent_line(document)}")
        else:
            print_summary(f"revoked access right {document['revoked']}")

    return show


def call_management(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """The management API's answer to one request; CliError when it refuses or is away."""
    import asyncio

    try:
        return asyncio.run(_call(args, method, path, body))
    except OSError as exc:
        raise CliError(str(exc)) from exc


def connection_options(parser: argparse.ArgumentParser) -> None:
    """``--url`` and ``--token-file``, for commands that call the management API."""
    _connection_options(parser)


def _consent_grant(args: argparse.Namespace) -> int:
    body = {
        "subject": args.subject,
        "consumer": args.consumer,
        "service": args.service,
        "purpose": args.purpose,
        "fields": args.field,
        "valid_from": args.valid_from,
        "valid_until": args.valid_until,
    }
    return _run(
        args,
        "POST",
        "/api/consents",
        {k: v for k, v in body.items() if v is not None},
        _show_granted,
    )


def _consent_list(args: argparse.Namespace) -> int:
    args.params = {
        "subject": args.subject,
        "service": args.service,
        "include_inactive": "true" if args.all else None,
    }
    return _run(args, "GET", "/api/consents", human=_show_consents)


def _consent_revoke(args: argparse.Namespace) -> int:
    return _run(args, "DELETE", f"/api/consents/{args.consent_id}", human=_show_revoked("consent"))


def _consent_show(args: argparse.Namespace) -> int:
    return _run(args, "GET", f"/api/consents/{args.consent_id}", human=_show_consent)


def _consent_import(args: argparse.Namespace) -> int:
    try:
        args.fhir_body = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"renkei: error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    args.params = {"service": args.service, "root_type": args.root_type}
    return _run(args, "POST", "/api/consents", human=_show_imported)


def _show_imported(document: dict[str, Any]) -> None:
    from gateway.cli_output import print_summary, print_table

    print_summary(
        f"imported FHIR Consent {document['origin']} as {len(document['consents'])} rules"
    )
    print_table(
        None, ["id", "decision", "depth", "consumer", "purpose", "actor", "conditions"],
        ((c["id"], c["decision"], c["depth"], c["consumer"], c["purpose"], c["actor"] or "-",
          ", ".join(c["resource_types"] + c["resources"] + c["labels"]) or "-")
         for c in document["consents"]),
        empty="no rules",
    )  # fmt: skip


def _consent_export(args: argparse.Namespace) -> int:
    from gateway.cli_output import print_json

    args.accept_fhir = True
    return _run(args, "GET", f"/api/consents/{args.consent_id}", human=print_json)


def _consent_map(args: argparse.Namespace) -> int:
    body = {
        "kind": args.kind,
        "code": args.code,
        "target": args.target,
        "break_glass": args.break_glass,
    }
    return _run(args, "PUT", "/api/fhir-codes", body)


def _access_list(args: argparse.Namespace) -> int:
    args.params = {"service": args.service}
    return _run(args, "GET", "/api/access", human=_show_rights)


def _access_grant(args: argparse.Namespace) -> int:
    body = {
        "service": args.service,
        "grantee": args.grantee,
        "method": args.method,
        "path": args.path,
    }
    return _run(args, "POST", "/api/access", body, _show_right)


def _access_revoke(args: argparse.Namespace) -> int:
    return _run(args, "DELETE", f"/api/access/{args.right_id}", human=_show_revoked("access"))


def _consent_link(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"subject": args.subject}
    if args.ttl_s is not None:
        body["ttl_s"] = args.ttl_s
    base = (args.url or os.environ.get("RENKEI_MANAGEMENT_URL") or "").rstrip("/")

    def show(document: dict[str, Any]) -> None:
        print(f"{base}{document['path']}")
        print(f"(for {document['subject']}, valid until {document['expires_at']}; "
              "whoever holds the link sees that person's page)")  # fmt: skip

    return _run(args, "POST", "/api/citizen-links", body, show)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--token-file`` and ``--json``: every management command has them."""
    parser.add_argument("--url", help="the node's management URL (or RENKEI_MANAGEMENT_URL)")
    parser.add_argument("--token-file", help="a file holding the bearer token (or RENKEI_TOKEN)")
    parser.add_argument(
        "--json", action="store_true", help="print the API's JSON answer (for scripts)"
    )


# For the other management commands (gateway/client_cli.py).
management_call = _run
management_options = _connection_options


def register(commands: argparse._SubParsersAction[Any]) -> None:
    consent = commands.add_parser("consent", help="grant, list and revoke data subjects' consents")
    sub = consent.add_subparsers(dest="consent_command", required=True, metavar="COMMAND")
    grant = sub.add_parser("grant", help="record a consent; prints it and its signed receipt")
    _connection_options(grant)
    grant.add_argument("--subject", required=True, help="the data subject, e.g. a patient id")
    grant.add_argument("--consumer", required=True, help="subsystem or global group allowed")
    grant.add_argument("--service", required=True, help="INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE")
    grant.add_argument("--purpose", required=True, help="the purpose code consented to")
    grant.add_argument(
        "--field",
        action="append",
        required=True,
        help="a declared field path; repeat (or * alone for every declared field)",
    )
    grant.add_argument("--valid-from", help="RFC 3339 time (default: now)")
    grant.add_argument("--valid-until", help="RFC 3339 time (default: until revoked)")
    grant.set_defaults(handler=_consent_grant)
    listing = sub.add_parser("list", help="list consents")
    _connection_options(listing)
    listing.add_argument("--subject")
    listing.add_argument("--service")
    listing.add_argument("--all", action="store_true", help="include revoked and expired ones")
    listing.set_defaults(handler=_consent_list)
    for name, handler, text in (
        ("revoke", _consent_revoke, "revoke a consent; applies to the next request"),
        ("show", _consent_show, "show one consent"),
    ):
        command = sub.add_parser(name, help=text)
        _connection_options(command)
        command.add_argument("consent_id")
        command.set_defaults(handler=handler)
    imports = sub.add_parser(
        "import", help="import a FHIR R4 Consent; refused whole, naming each element, if it "
        "cannot be enforced as written",
    )  # fmt: skip
    _connection_options(imports)
    imports.add_argument("file", help="a FHIR Consent in JSON")
    imports.add_argument("--service", required=True, help="the service it governs")
    imports.add_argument(
        "--root-type", choices=("permit", "deny"),
        help="the root rule's effect, where the resource leaves it out",
    )  # fmt: skip
    imports.set_defaults(handler=_consent_import)
    link = sub.add_parser(
        "link", help="a signed, expiring link to a data subject's page in the web console"
    )
    _connection_options(link)
    link.add_argument("--subject", required=True, help="the data subject, e.g. a patient id")
    link.add_argument("--ttl-s", type=int, help="lifetime in seconds (default 7 days, max 30)")
    link.set_defaults(handler=_consent_link)
    export = sub.add_parser("export", help="a consent (rule or FHIR Consent id) as FHIR")
    _connection_options(export)
    export.add_argument("consent_id")
    export.set_defaults(handler=_consent_export)
    mapping = sub.add_parser(
        "map", help="map a FHIR purpose or actor onto this node, or set a service's base policy"
    )
    _connection_options(mapping)
    mapping.add_argument("kind", choices=("purpose", "actor", "base"))
    mapping.add_argument("code", help="system|code, a FHIR reference, or a service id")
    mapping.add_argument("target", help="a purpose code, a consumer, *, self, opt-in or opt-out")
    mapping.add_argument(
        "--break-glass", action="store_true", help="the purpose overrides denies (emergency)"
    )
    mapping.set_defaults(handler=_consent_map)

    access = commands.add_parser("access", help="access rights of this node's services")
    sub = access.add_subparsers(dest="access_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="list access rights")
    _connection_options(listing)
    listing.add_argument("--service")
    listing.set_defaults(handler=_access_list)
    grant = sub.add_parser("grant", help="grant a subsystem or group access to a service")
    _connection_options(grant)
    grant.add_argument("--service", required=True)
    grant.add_argument("--grantee", required=True, help="subsystem, global group or local:...")
    grant.add_argument("--method", default="*")
    grant.add_argument("--path", default="**", help="path pattern; * one segment, ** any")
    grant.set_defaults(handler=_access_grant)
    revoke = sub.add_parser("revoke", help="revoke an access right by id")
    _connection_options(revoke)
    revoke.add_argument("right_id")
    revoke.set_defaults(handler=_access_revoke)
