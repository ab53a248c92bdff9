"""Certificate status on every exchange: our own OCSP staples, and checks of peers'.

Each node fetches OCSP responses for its own auth and sign certificates on a
schedule and staples them to what it sends: the sign certificate's response
inside the signature's protected header, the auth certificate's in the
``Renkei-Auth-Status`` header of peer requests. A receiving node verifies
the stapled response (signature, responder authority, freshness against the
global configuration's ``ocsp_freshness_s``) without calling the responder.

Status is required for every certificate whose issuing CA the global
configuration lists with OCSP URLs; a CA listed without any opts its
certificates out (documented in docs/trust.md). A node whose own required
status is not good and fresh refuses to send and reports not ready.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from certs.errors import OcspError
from certs.identifiers import MemberId
from certs.stapling import OwnStatusStapler, PeerStatusCache
from gateway.errors import GatewayError
from member_registry.globalconf import GlobalConf, TrustedCa

__all__ = ["AUTH", "StatusError", "StatusService", "decode_staple", "encode_staple"]

log = structlog.get_logger(__name__)

AUTH = "auth"
_MAX_STAPLE = 16 * 1024
# Issuers remembered per certificate until the trust roots change; past this, start over.
_MAX_ISSUERS = 1024


class StatusError(GatewayError):
    """A certificate's status is missing, not good, stale or not trustworthy."""

    def __init__(self, message: str, *, side: str, cause: str) -> None:
        # cause is the certs code's suffix, e.g. "ocsp_revoked"; side is the proxy.
        super().__init__(message, code=f"server.{side}.{cause}")
        self.status = 503 if side == "clientproxy" else 500


def encode_staple(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def decode_staple(text: object) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str) or len(text) > _MAX_STAPLE:
        raise ValueError("stapled OCSP response is malformed")
    return base64.b64decode(text, validate=True)


@dataclass
class _Issuer:
    certificate: x509.Certificate
    ocsp_urls: tuple[str, ...]


def _issuer_of(cert: x509.Certificate, cas: tuple[TrustedCa, ...]) -> _Issuer | None:
    for ca in cas:
        if ca.certificate.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca.certificate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return _Issuer(ca.certificate, ca.ocsp_urls)
    return None


class StatusService:
    """Own staplers (keyed ``"auth"`` or a member id) and the peer-staple cache."""

    def __init__(
        self,
        auth_certificate: x509.Certificate,
        sign_certificates: Mapping[MemberId, x509.Certificate],
    ) -> None:
        self._own: dict[str, x509.Certificate] = {AUTH: auth_certificate}
        self._own.update({str(member): cert for member, cert in sign_certificates.items()})
        self._staplers: dict[str, OwnStatusStapler] = {}
        self._cas: tuple[TrustedCa, ...] = ()
        self._peers: PeerStatusCache | None = None
        # Finding a certificate's issuer verifies a signature; done once per
        # certificate (keyed by its DER, which x509.Certificate hashes) per trust roots.
        self._issuers: dict[x509.Certificate, _Issuer | None] = {}

    def _issuer(self, cert: x509.Certificate) -> _Issuer | None:
        if cert in self._issuers:
            return self._issuers[cert]
        issuer = _issuer_of(cert, self._cas)
        if len(self._issuers) >= _MAX_ISSUERS:
            self._issuers.clear()
        self._issuers[cert] = issuer
        return issuer

    def configure(self, conf: GlobalConf) -> None:
        """New trust roots or freshness: rebuild staplers, keeping what they hold."""
        self._cas = conf.trusted_cas
        self._issuers = {}
        max_age = timedelta(seconds=conf.settings.ocsp_freshness_s)
        roots = conf.trust_roots()
        self._peers = PeerStatusCache(trust_roots=roots, max_age=max_age)
        staplers: dict[str, OwnStatusStapler] = {}
        for name, cert in self._own.items():
            issuer = _issuer_of(cert, self._cas)
            if issuer is None or not issuer.ocsp_urls:
                continue
            old = self._staplers.get(name)
            stapler = OwnStatusStapler(
                cert=cert,
                issuer=issuer.certificate,
                url=issuer.ocsp_urls[0],
                trust_roots=roots,
                max_age=max_age,
            )
            if old is not None and old.current is not None:
                with contextlib.suppress(OcspError):
                    stapler.accept(old.current.der, now=old.current.status.this_update)
            staplers[name] = stapler
        self._staplers = staplers

    def own_staple(
        self, name: str, *, now: datetime, side: str = "clientproxy"
    ) -> bytes | None:
        """The staple for our certificate ``name``; None when status is not required."""
        stapler = self._staplers.get(name)
        if stapler is None:
            if name not in self._own:
                raise StatusError(
                    f"no certificate {name} on this node", side=side, cause="ocsp_missing"
                )
            return None
        try:
            return stapler.staple(now=now)
        except OcspError as exc:
            raise StatusError(
                f"our own certificate's status is not good: {exc}",
                side=side,
                cause="certificate_status_unavailable",
            ) from exc

    def check_peer(
        self, cert: x509.Certificate, staple: bytes | None, *, now: datetime, side: str
    ) -> None:
        """Raise :class:`StatusError` unless ``cert``'s required status is stapled and good."""
        issuer = self._issuer(cert)
        if issuer is None:
            raise StatusError(
                "the certificate's issuer is not trusted", side=side, cause="ocsp_invalid"
            )
        if not issuer.ocsp_urls:
            return
        if staple is None:
            raise StatusError("no OCSP response is stapled", side=side, cause="ocsp_missing")
        assert self._peers is not None
        try:
            self._peers.check(staple, cert=cert, issuer=issuer.certificate, now=now)
        except OcspError as exc:
            cause = exc.code.split(".", 1)[1]
            raise StatusError(f"certificate status refused: {exc}", side=side, cause=cause) from exc

    def readiness(self, *, now: datetime) -> dict[str, object]:
        states: dict[str, object] = {}
        for name, stapler in self._staplers.items():
            try:
                stapler.staple(now=now)
                current = stapler.current
                age = (now - current.status.this_update).total_seconds() if current else None
                states[name] = {"ok": True, "age_s": age}
            except OcspError as exc:
                states[name] = {"ok": False, "error": exc.code}
        return states

    def ocsp_ages(self, *, now: datetime) -> dict[str, float]:
        return {
            name: (now - stapler.current.status.this_update).total_seconds()
            for name, stapler in self._staplers.items()
            if stapler.current is not None
        }

    async def refresh(self, session: aiohttp.ClientSession, *, now: datetime) -> None:
        for name, stapler in list(self._staplers.items()):
            if not stapler.refresh_due(now=now):
                continue
            try:
                await stapler.refresh(session, now=now)
            except OcspError as exc:
                log.warning("ocsp_refresh_failed", certificate=name, code=exc.code, error=str(exc))

    async def run(self, clock: Callable[[], datetime], interval_s: float = 5.0) -> None:
        """Refresh due staples until cancelled (started by the node)."""
        async with aiohttp.ClientSession() as session:
            while True:
                await self.refresh(session, now=clock())
                await asyncio.sleep(interval_s)
