"""``renkei client ...``: how the node's client subsystems prove who they are.

Through the node's management API (``--url``/``--token-file`` as for
``renkei access``): connection types, registered TLS client certificates of
information systems, and client tokens for systems that cannot hold one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from certs.identifiers import IdentifierError, SubsystemId
from gateway.policy_cli import management_call, management_options

__all__ = ["register"]

_TYPES = ("HTTP", "HTTPS_NO_AUTH", "HTTPS", "TOKEN")


def _subsystem(text: str) -> SubsystemId:
    try:
        return SubsystemId.parse(text)
    except IdentifierError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _path(client: SubsystemId) -> str:
    # Identifier characters need no escaping in a path except '?'.
    parts = (client.instance, client.member_class, client.member_code, client.subsystem_code)
    return "/api/clients/" + "/".join(part.replace("?", "%3F") for part in parts)


def _ttl_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return int(text[:-1]) * units[text[-1]]
        return int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid TTL {text!r}; use e.g. 12h or 30d") from exc


def _list(args: argparse.Namespace) -> int:
    return management_call(args, "GET", "/api/clients")


def _connection_type(args: argparse.Namespace) -> int:
    body = {"connection_type": args.connection_type}
    return management_call(args, "PUT", f"{_path(args.client)}/connection-type", body)


def _cert_add(args: argparse.Namespace) -> int:
    body = {"certificate": Path(args.cert).read_text(encoding="ascii")}
    return management_call(args, "POST", f"{_path(args.client)}/certificates", body)


def _cert_remove(args: argparse.Namespace) -> int:
    return management_call(args, "DELETE", f"{_path(args.client)}/certificates/{args.sha256}")


def _token_issue(args: argparse.Namespace) -> int:
    body = {"ttl_s": args.ttl}
    return management_call(args, "POST", f"{_path(args.client)}/tokens", body)


def _token_revoke(args: argparse.Namespace) -> int:
    return management_call(args, "DELETE", f"{_path(args.client)}/tokens/{args.token_id}")


def register(commands: argparse._SubParsersAction[Any]) -> None:
    client = commands.add_parser(
        "client", help="how client subsystems prove who they are on the client port"
    )
    sub = client.add_subparsers(dest="client_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="connection types, certificates and tokens")
    management_options(listing)
    listing.set_defaults(handler=_list)

    kind = sub.add_parser("connection-type", help="set a client subsystem's connection type")
    management_options(kind)
    kind.add_argument("client", type=_subsystem, help="INSTANCE/CLASS/CODE/SUBSYSTEM")
    kind.add_argument("connection_type", choices=_TYPES)
    kind.set_defaults(handler=_connection_type)

    cert = sub.add_parser("cert", help="information systems' TLS client certificates")
    cert_commands = cert.add_subparsers(dest="cert_command", required=True, metavar="COMMAND")
    add = cert_commands.add_parser("add", help="register a certificate (PEM) for a subsystem")
    management_options(add)
    add.add_argument("client", type=_subsystem)
    add.add_argument("--cert", required=True, help="the information system's certificate (PEM)")
    add.set_defaults(handler=_cert_add)
    remove = cert_commands.add_parser("remove", help="unregister a certificate by fingerprint")
    management_options(remove)
    remove.add_argument("client", type=_subsystem)
    remove.add_argument("sha256", help="the certificate's SHA-256 fingerprint (hex)")
    remove.set_defaults(handler=_cert_remove)

    token = sub.add_parser("token", help="client tokens, for systems without a certificate")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    issue = token_commands.add_parser(
        "issue", help="issue a client token; it is printed once, keep it secret"
    )
    management_options(issue)
    issue.add_argument("client", type=_subsystem)
    issue.add_argument("--ttl", type=_ttl_seconds, default=30 * 86400, help="e.g. 12h, 30d")
    issue.set_defaults(handler=_token_issue)
    revoke = token_commands.add_parser("revoke", help="revoke a client token by its id")
    management_options(revoke)
    revoke.add_argument("client", type=_subsystem)
    revoke.add_argument("token_id")
    revoke.set_defaults(handler=_token_revoke)
