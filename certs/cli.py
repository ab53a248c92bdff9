"""Command-line interface of this package (registered into ``renkei``).

    renkei ca init   --dir DIR --instance INSTANCE [--algorithm ALG] [--days N]
    renkei ca issue  --dir DIR --csr FILE --profile auth|sign --out FILE [--days N]
    renkei ca list   --dir DIR [--json]
    renkei ca revoke SERIAL --dir DIR --reason REASON
    renkei ca crl    --dir DIR [--days N]
    renkei ca issue-service --dir DIR --profile ocsp|tsa --key KEY --out FILE [--days N]
    renkei ocsp serve ... / renkei tsa serve ...   (see certs.serve_cli)
    renkei key generate --out KEY [--algorithm ALG]
    renkei csr create --key KEY --profile auth|sign --id IDENTIFIER --out CSR

User errors print one ``error: ...`` line on stderr and exit 1; usage errors
exit 2 (argparse).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from certs.serve_cli import register_services

__all__ = ["KEY_ALGORITHMS", "PROFILES", "REVOCATION_REASONS", "SERVICE_PROFILES", "register"]

Handler = Callable[[argparse.Namespace], int]

# The choices, written out so that ``renkei --help`` loads no cryptography; a test
# keeps them equal to certs.keys, certs.profiles, certs.crl and certs.service_profiles.
KEY_ALGORITHMS = ("ec-p256", "ed25519", "rsa-2048", "rsa-3072")
PROFILES = ("auth", "sign")
SERVICE_PROFILES = ("ocsp", "tsa")
REVOCATION_REASONS = (
    "unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
    "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise",
)  # fmt: skip


def _handler(name: str) -> Handler:
    """The command ``name`` of certs/_cli_commands.py, imported when it runs."""

    def run(args: argparse.Namespace) -> int:
        from certs import _cli_commands

        handler: Handler = getattr(_cli_commands, name)
        return handler(args)

    return run


def parse_serial(text: str) -> int:
    from certs._cli_commands import parse_serial as parse

    return parse(text)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add this package's sub-commands to the ``renkei`` parser."""
    _register_ca(commands)
    _register_key(commands)
    _register_csr(commands)
    register_services(commands)


def _register_ca(commands: argparse._SubParsersAction[Any]) -> None:
    ca = commands.add_parser("ca", help="run the instance certificate authority")
    actions = ca.add_subparsers(dest="ca_command", required=True, metavar="ACTION")

    init = actions.add_parser("init", help="create a new CA in a directory")
    init.add_argument("--dir", type=Path, required=True, help="CA directory")
    init.add_argument("--instance", required=True, help="federation instance code")
    init.add_argument("--algorithm", choices=KEY_ALGORITHMS, default="ec-p256")
    init.add_argument("--days", type=int, default=3650, help="validity (default 3650)")
    init.set_defaults(handler=_handler("_ca_init"))

    issue = actions.add_parser("issue", help="issue a certificate from a CSR")
    issue.add_argument("--dir", type=Path, required=True, help="CA directory")
    issue.add_argument("--csr", type=Path, required=True, help="PEM CSR file")
    issue.add_argument("--profile", choices=PROFILES, required=True)
    issue.add_argument("--out", type=Path, required=True, help="where to write the PEM cert")
    issue.add_argument("--days", type=int, default=365, help="validity (default 365)")
    issue.set_defaults(handler=_handler("_ca_issue"))

    listing = actions.add_parser("list", help="list the certificates a CA has issued")
    listing.add_argument("--dir", type=Path, required=True, help="CA directory")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=_handler("_ca_list"))

    revoke = actions.add_parser("revoke", help="revoke an issued certificate")
    revoke.add_argument("serial", help="0x-prefixed or 40-digit hex (as listed), or decimal")
    revoke.add_argument("--dir", type=Path, required=True, help="CA directory")
    revoke.add_argument("--reason", choices=REVOCATION_REASONS, required=True)
    revoke.set_defaults(handler=_handler("_ca_revoke"))

    crl = actions.add_parser("crl", help="sign a new CRL (crl.pem, crl.der in the CA dir)")
    crl.add_argument("--dir", type=Path, required=True, help="CA directory")
    crl.add_argument("--days", type=int, default=7, help="days until nextUpdate (default 7)")
    crl.set_defaults(handler=_handler("_ca_crl"))

    service = actions.add_parser("issue-service", help="issue an OCSP responder or TSA cert")
    service.add_argument("--dir", type=Path, required=True, help="CA directory")
    service.add_argument("--profile", choices=SERVICE_PROFILES, required=True)
    service.add_argument("--key", type=Path, required=True, help="the service's private key")
    service.add_argument("--out", type=Path, required=True, help="where to write the PEM cert")
    service.add_argument("--days", type=int, default=365, help="validity (default 365)")
    service.set_defaults(handler=_handler("_ca_issue_service"))


def _register_key(commands: argparse._SubParsersAction[Any]) -> None:
    key = commands.add_parser("key", help="manage private keys")
    actions = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    generate = actions.add_parser("generate", help="generate a private key (PEM, mode 0600)")
    generate.add_argument("--out", type=Path, required=True, help="key file to create")
    generate.add_argument("--algorithm", choices=KEY_ALGORITHMS, default="ec-p256")
    generate.set_defaults(handler=_handler("_key_generate"))


def _register_csr(commands: argparse._SubParsersAction[Any]) -> None:
    csr = commands.add_parser("csr", help="make certificate signing requests")
    actions = csr.add_subparsers(dest="csr_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a CSR for a node or member")
    create.add_argument("--key", type=Path, required=True, help="private key file")
    create.add_argument("--profile", choices=PROFILES, required=True)
    create.add_argument(
        "--id", dest="identifier", required=True, help="node id (auth) or member id (sign)"
    )
    create.add_argument("--out", type=Path, required=True, help="where to write the PEM CSR")
    create.set_defaults(handler=_handler("_csr_create"))
