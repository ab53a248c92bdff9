"""The ``renkei ca``, ``key`` and ``csr`` commands' implementations (certs/cli.py has the
parsers). User errors print one ``error: ...`` line on stderr and exit 1."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps

from cryptography import x509

from certs.ca import CertificateAuthority
from certs.errors import CertsError
from certs.identifiers import IdentifierError, MemberId, NodeId
from certs.keys import (
    fingerprint,
    generate_key,
    load_csr,
    load_private_key,
    save_certificate,
    save_csr,
    save_private_key,
)
from certs.profiles import identity_of, make_csr

Handler = Callable[[argparse.Namespace], int]


def _user_errors(handler: Handler) -> Handler:
    """Report the package's errors as one line on stderr and exit 1, never a traceback."""

    @wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (CertsError, IdentifierError) as exc:
            print(f"error: {exc} [{exc.code}]", file=sys.stderr)
            return 1
        except BrokenPipeError:
            raise  # the reader went away (renkei ... | head): ended quietly by renkei's main
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
