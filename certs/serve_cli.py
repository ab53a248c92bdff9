"""``renkei ocsp serve`` and ``renkei tsa serve`` (registered into ``renkei`` by :mod:`certs.cli`).

    renkei ocsp serve --ca-dir DIR [--host H] [--port N] [--validity SECONDS]
                      [--responder-cert PEM --responder-key KEY]
    renkei tsa serve  (--ca-dir DIR | --cert PEM --key KEY) [--host H] [--port N] [--policy OID]

Both print ``... listening on http://HOST:PORT`` on stdout once they accept
connections (``--port 0`` picks a free port) and stop cleanly on SIGINT/SIGTERM.
Without explicit key files, the service key and certificate live in
``DIR/services/`` and are issued by the CA on first start.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from certs.ca import CertificateAuthority
    from certs.service_keys import ServiceIdentity
    from certs.service_profiles import ServiceProfile

__all__ = ["register_services"]

Handler = Callable[[argparse.Namespace], int]


def _errors_reported(handler: Handler) -> Handler:
    """``handler`` with the package's errors as one line (certs/_cli_commands.py)."""

    def run(args: argparse.Namespace) -> int:
        from certs._cli_commands import _user_errors

        return _user_errors(handler)(args)

    return run


def register_services(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``ocsp serve`` and ``tsa serve``."""
    ocsp = commands.add_parser("ocsp", help="run the OCSP responder (RFC 6960)")
    ocsp_actions = ocsp.add_subparsers(dest="ocsp_command", required=True, metavar="ACTION")
    serve = ocsp_actions.add_parser("serve", help="answer OCSP requests for a CA")
    serve.add_argument("--ca-dir", type=Path, required=True, help="CA directory (index, ca.pem)")
    _listen_arguments(serve, default_port=8888)
    serve.add_argument(
        "--validity",
        type=int,
        default=3600,  # certs.ocsp_responder.DEFAULT_VALIDITY
        help="seconds from thisUpdate to nextUpdate (default 3600)",
    )
    serve.add_argument("--responder-cert", type=Path, help="delegated responder certificate")
    serve.add_argument("--responder-key", type=Path, help="delegated responder key")
    serve.set_defaults(handler=_errors_reported(_ocsp_serve))

    tsa = commands.add_parser("tsa", help="run the time-stamping authority (RFC 3161)")
    tsa_actions = tsa.add_subparsers(dest="tsa_command", required=True, metavar="ACTION")
    tsa_serve = tsa_actions.add_parser("serve", help="answer time-stamp requests")
    tsa_serve.add_argument("--ca-dir", type=Path, help="CA directory that issues the TSA cert")
    tsa_serve.add_argument("--cert", type=Path, help="TSA certificate (instead of --ca-dir)")
    tsa_serve.add_argument("--key", type=Path, help="TSA private key (instead of --ca-dir)")
    _listen_arguments(tsa_serve, default_port=8889)
    tsa_serve.add_argument("--policy", help="TSA policy OID (default: Renkei's)")
    tsa_serve.set_defaults(handler=_errors_reported(_tsa_serve))


def _listen_arguments(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=default_port, help="0 picks a free port")


def _now() -> datetime:
    return datetime.now(UTC)


def _identity(
    args: argparse.Namespace,
    ca: CertificateAuthority | None,
    profile: ServiceProfile,
    cert_path: Path | None,
    key_path: Path | None,
) -> ServiceIdentity:
    from certs.errors import CertsError
    from certs.keys import load_certificate, load_private_key
    from certs.service_keys import ServiceIdentity, load_or_issue_service_identity

    if (cert_path is None) != (key_path is None):
        raise CertsError("give both the certificate and the key, or neither")
    if cert_path is not None and key_path is not None:
        return ServiceIdentity(load_certificate(cert_path), load_private_key(key_path))
    if ca is None:
        raise CertsError("give --ca-dir, or --cert and --key")
    return load_or_issue_service_identity(ca, profile, now=_now())


def _announce(what: str) -> Callable[[str], None]:
    def announce(url: str) -> None:
        print(f"{what} listening on {url}", flush=True)

    return announce


def _ocsp_serve(args: argparse.Namespace) -> int:
    # The HTTP server is imported when a server runs, not for every ``renkei`` command.
    import asyncio

    from certs._serving import serve_until_stopped
    from certs.ca import CertificateAuthority
    from certs.errors import CertsError
    from certs.ocsp_responder import OcspResponder
    from certs.ocsp_server import create_ocsp_app

    if args.validity < 1:
        raise CertsError("--validity must be at least one second")
    ca = CertificateAuthority.load(args.ca_dir)
    identity = _identity(args, ca, "ocsp", args.responder_cert, args.responder_key)
    responder = OcspResponder(
        issuer=ca.certificate,
        responder_certificate=identity.certificate,
        responder_key=identity.key,
        status_of=ca.status_of,
        validity=timedelta(seconds=args.validity),
    )
    app = create_ocsp_app(responder, clock=_now)
    asyncio.run(
        serve_until_stopped(
            app, host=args.host, port=args.port, announce=_announce("OCSP responder")
        )
    )
    return 0


def _tsa_serve(args: argparse.Namespace) -> int:
    import asyncio

    from certs._serving import serve_until_stopped
    from certs.ca import CertificateAuthority
    from certs.tsa import DEFAULT_POLICY_OID, TimeStampAuthority
    from certs.tsa_server import create_tsa_app

    ca = CertificateAuthority.load(args.ca_dir) if args.ca_dir is not None else None
    identity = _identity(args, ca, "tsa", args.cert, args.key)
    tsa = TimeStampAuthority(
        identity.certificate, identity.key, policy_oid=args.policy or DEFAULT_POLICY_OID
    )
    app = create_tsa_app(tsa, clock=_now)
    asyncio.run(serve_until_stopped(app, host=args.host, port=args.port, announce=_announce("TSA")))
    return 0
