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
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any

from cryptography import x509

from certs.ca import CertificateAuthority
from certs.crl import REVOCATION_REASONS
from certs.errors import CertsError
from certs.identifiers import IdentifierError, MemberId, NodeId
from certs.keys import (
    KEY_ALGORITHMS,
    fingerprint,
    generate_key,
    load_csr,
    load_private_key,
    save_certificate,
    save_csr,
    save_private_key,
)
from certs.profiles import PROFILES, identity_of, make_csr
from certs.serve_cli import register_services
from certs.service_profiles import SERVICE_PROFILES

Handler = Callable[[argparse.Namespace], int]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add this package's sub-commands to the ``renkei`` parser."""
    _register_ca(commands)
    _register_key(commands)
    _register_csr(commands)
    register_services(commands, _user_errors)


def _register_ca(commands: argparse._SubParsersAction[Any]) -> None:
    ca = commands.add_parser("ca", help="run the instance certificate authority")
    actions = ca.add_subparsers(dest="ca_command", required=True, metavar="ACTION")

    init = actions.add_parser("init", help="create a new CA in a directory")
    init.add_argument("--dir", type=Path, required=True, help="CA directory")
    init.add_argument("--instance", required=True, help="federation instance code")
    init.add_argument("--algorithm", choices=KEY_ALGORITHMS, default="ec-p256")
    init.add_argument("--days", type=int, default=3650, help="validity (default 3650)")
    init.set_defaults(handler=_ca_init)

    issue = actions.add_parser("issue", help="issue a certificate from a CSR")
    issue.add_argument("--dir", type=Path, required=True, help="CA directory")
    issue.add_argument("--csr", type=Path, required=True, help="PEM CSR file")
    issue.add_argument("--profile", choices=PROFILES, required=True)
    issue.add_argument("--out", type=Path, required=True, help="where to write the PEM cert")
    issue.add_argument("--days", type=int, default=365, help="validity (default 365)")
    issue.set_defaults(handler=_ca_issue)

    listing = actions.add_parser("list", help="list the certificates a CA has issued")
    listing.add_argument("--dir", type=Path, required=True, help="CA directory")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=_ca_list)

    revoke = actions.add_parser("revoke", help="revoke an issued certificate")
    revoke.add_argument("serial", help="0x-prefixed or 40-digit hex (as listed), or decimal")
    revoke.add_argument("--dir", type=Path, required=True, help="CA directory")
    revoke.add_argument("--reason", choices=list(REVOCATION_REASONS), required=True)
    revoke.set_defaults(handler=_ca_revoke)

    crl = actions.add_parser("crl", help="sign a new CRL (crl.pem, crl.der in the CA dir)")
    crl.add_argument("--dir", type=Path, required=True, help="CA directory")
    crl.add_argument("--days", type=int, default=7, help="days until nextUpdate (default 7)")
    crl.set_defaults(handler=_ca_crl)

    service = actions.add_parser("issue-service", help="issue an OCSP responder or TSA cert")
    service.add_argument("--dir", type=Path, required=True, help="CA directory")
    service.add_argument("--profile", choices=SERVICE_PROFILES, required=True)
    service.add_argument("--key", type=Path, required=True, help="the service's private key")
    service.add_argument("--out", type=Path, required=True, help="where to write the PEM cert")
    service.add_argument("--days", type=int, default=365, help="validity (default 365)")
    service.set_defaults(handler=_ca_issue_service)


def _register_key(commands: argparse._SubParsersAction[Any]) -> None:
    key = commands.add_parser("key", help="manage private keys")
    actions = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    generate = actions.add_parser("generate", help="generate a private key (PEM, mode 0600)")
    generate.add_argument("--out", type=Path, required=True, help="key file to create")
    generate.add_argument("--algorithm", choices=KEY_ALGORITHMS, default="ec-p256")
    generate.set_defaults(handler=_key_generate)


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
    create.set_defaults(handler=_csr_create)


def _user_errors(handler: Handler) -> Handler:
    """Report the package's errors as one line on stderr and exit 1, never a traceback."""

    @wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (CertsError, IdentifierError) as exc:
            print(f"error: {exc} [{exc.code}]", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


@_user_errors
def _ca_init(args: argparse.Namespace) -> int:
    ca = CertificateAuthority.create(
        args.dir,
        instance=args.instance,
        now=datetime.now(UTC),
        validity_days=args.days,
        algorithm=args.algorithm,
    )
    print(f"created CA for instance {ca.instance} in {args.dir}")
    print(f"certificate: {args.dir / 'ca.pem'}")
    print(f"sha256 fingerprint: {fingerprint(ca.certificate)}")
    return 0


@_user_errors
def _ca_issue(args: argparse.Namespace) -> int:
    ca = CertificateAuthority.load(args.dir)
    csr = load_csr(args.csr)
    certificate = ca.issue(
        csr, profile=args.profile, now=datetime.now(UTC), validity_days=args.days
    )
    save_certificate(certificate, args.out)
    identity = identity_of(certificate, args.profile)
    print(f"issued {args.profile} certificate for {identity} -> {args.out}")
    print(f"serial: {certificate.serial_number:040x}")
    print(f"sha256 fingerprint: {fingerprint(certificate)}")
    return 0


@_user_errors
def _ca_list(args: argparse.Namespace) -> int:
    records = CertificateAuthority.load(args.dir).issued()
    if args.json:
        print(json.dumps([record.to_json() for record in records], indent=2))
        return 0
    for record in records:
        print(
            f"{record.serial_hex}  {record.profile:<4}  {record.status:<7}  "
            f"{record.not_after.isoformat()}  {record.identity}"
        )
    return 0


def parse_serial(text: str) -> int:
    """A serial as typed: ``0x``-prefixed or 40 hex digits (as listed) is hex, else decimal."""
    cleaned = text.strip().lower()
    try:
        if cleaned.startswith("0x"):
            return int(cleaned[2:], 16)
        if len(cleaned) == 40:
            return int(cleaned, 16)
        if cleaned.isdigit():
            return int(cleaned, 10)
        return int(cleaned, 16)
    except ValueError:
        raise CertsError(f"not a certificate serial: {text!r}") from None


@_user_errors
def _ca_revoke(args: argparse.Namespace) -> int:
    ca = CertificateAuthority.load(args.dir)
    record = ca.revoke(parse_serial(args.serial), reason=args.reason, now=datetime.now(UTC))
    print(f"revoked {record.serial_hex} ({record.identity}): {args.reason}")
    print("run `renkei ca crl` to publish a new CRL; OCSP answers 'revoked' at once")
    return 0


@_user_errors
def _ca_crl(args: argparse.Namespace) -> int:
    ca = CertificateAuthority.load(args.dir)
    now = datetime.now(UTC)
    crl = ca.build_crl(now, now + timedelta(days=args.days))
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    print(f"CRL number {number} with {len(crl)} revoked certificate(s) -> {args.dir / 'crl.pem'}")
    return 0


@_user_errors
def _ca_issue_service(args: argparse.Namespace) -> int:
    ca = CertificateAuthority.load(args.dir)
    key = load_private_key(args.key)
    certificate = ca.issue_service_certificate(
        key.public_key(), profile=args.profile, now=datetime.now(UTC), validity_days=args.days
    )
    save_certificate(certificate, args.out)
    print(f"issued {args.profile} certificate -> {args.out}")
    print(f"serial: {certificate.serial_number:040x}")
    print(f"sha256 fingerprint: {fingerprint(certificate)}")
    return 0


@_user_errors
def _key_generate(args: argparse.Namespace) -> int:
    save_private_key(generate_key(args.algorithm), args.out)
    print(f"wrote {args.algorithm} private key to {args.out}")
    return 0


@_user_errors
def _csr_create(args: argparse.Namespace) -> int:
    identity = (
        NodeId.parse(args.identifier) if args.profile == "auth" else MemberId.parse(args.identifier)
    )
    csr = make_csr(load_private_key(args.key), identity, args.profile)
    save_csr(csr, args.out)
    print(f"wrote {args.profile} CSR for {identity} to {args.out}")
    return 0
