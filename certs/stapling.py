"""OCSP stapling for nodes: keeping own responses fresh, and checking peers' cheaply.

* :class:`OwnStatusStapler` holds the latest verified response for one of the
  node's own certificates; the node calls :meth:`~OwnStatusStapler.refresh` on a
  schedule (when :meth:`~OwnStatusStapler.refresh_due`) and
  :meth:`~OwnStatusStapler.staple` for every message it sends. ``staple``
  raises once no good, fresh response is held, so a node whose own
  certificate is revoked or whose responder is down too long stops sending.
* :class:`PeerStatusCache` verifies responses stapled by peers and remembers a
  ``good`` verdict until the response's ``fresh_until``, so a busy peer's
  repeated staple costs one hash and one dictionary look-up.

Trust roots are fixed per instance: build new objects when the global
configuration's trusted CAs change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from certs._time import require_aware
from certs.errors import OcspError, OcspRevoked, OcspStale, OcspUnknown
from certs.keys import fingerprint
from certs.ocsp import DEFAULT_SKEW, OcspStatus, verify_ocsp_response
from certs.ocsp_client import fetch_ocsp_response

__all__ = ["OwnStatusStapler", "PeerStatusCache", "StapledResponse"]


@dataclass(frozen=True, slots=True)
class StapledResponse:
    """A DER OCSP response and the ``good`` status it was verified to prove."""

    der: bytes
    status: OcspStatus


class OwnStatusStapler:
    """The freshest verified OCSP response for one of our own certificates."""

    def __init__(
        self,
        *,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        url: str,
        trust_roots: Sequence[x509.Certificate],
        max_age: timedelta,
        refresh_fraction: float = 0.5,
    ) -> None:
        if not 0 < refresh_fraction < 1:
            raise ValueError("refresh_fraction must be between 0 and 1")
        self.cert = cert
        self.issuer = issuer
        self.url = url
        self._trust_roots = tuple(trust_roots)
        self._max_age = max_age
        self._refresh_after = max_age * refresh_fraction
        self._current: StapledResponse | None = None
        self._last_error: OcspError | None = None

    @property
    def current(self) -> StapledResponse | None:
        return self._current

    @property
    def last_error(self) -> OcspError | None:
        """Why the last refresh failed (``None`` after a successful one)."""
        return self._last_error

    def refresh_due(self, *, now: datetime) -> bool:
        """Whether the held response is missing or past ``refresh_fraction`` of ``max_age``."""
        require_aware(now)
        if self._current is None:
            return True
        return now - self._current.status.this_update >= self._refresh_after

    async def refresh(self, session: aiohttp.ClientSession, *, now: datetime) -> OcspStatus:
        """Fetch and verify a new response; keep it if good, else remember and raise the error.

        A ``revoked`` or ``unknown`` answer also drops the held response: a
        node must not keep stapling ``good`` after learning otherwise.
        """
        try:
            der = await fetch_ocsp_response(session, self.url, self.cert, self.issuer)
            status = self.accept(der, now=now)
        except OcspError as exc:
            self._last_error = exc
            raise
        return status

    def accept(self, der: bytes, *, now: datetime) -> OcspStatus:
        """Verify ``der`` (fetched elsewhere) and hold it if it proves ``good``."""
        try:
            status = verify_ocsp_response(
                der,
                cert=self.cert,
                issuer=self.issuer,
                trust_roots=self._trust_roots,
                now=now,
                max_age=self._max_age,
            )
        except OcspError as exc:
            # Definite bad news drops the held response; a merely unusable
            # answer leaves the previous good one in place until it expires.
            if isinstance(exc, OcspRevoked | OcspUnknown):
                self._current = None
            self._last_error = exc
            raise
        self._current = StapledResponse(der, status)
        self._last_error = None
        return status

    def staple(self, *, now: datetime) -> bytes:
        """The response to staple now; raises if none is good and fresh."""
        require_aware(now)
        current = self._current
        if current is not None and now <= current.status.fresh_until:
            return current.der
        if self._last_error is not None:
            raise self._last_error
        raise OcspStale("no fresh OCSP response is held for our own certificate")


class PeerStatusCache:
    """Verifies peers' stapled OCSP responses and caches ``good`` verdicts while fresh."""

    def __init__(
        self,
        *,
        trust_roots: Sequence[x509.Certificate],
        max_age: timedelta,
        skew: timedelta = DEFAULT_SKEW,
        max_entries: int = 4096,
    ) -> None:
        self._trust_roots = tuple(trust_roots)
        self._max_age = max_age
        self._skew = skew
        self._max_entries = max_entries
        self._verdicts: OrderedDict[tuple[bytes, str], OcspStatus] = OrderedDict()

    def check(
        self, der: bytes, *, cert: x509.Certificate, issuer: x509.Certificate, now: datetime
    ) -> OcspStatus:
        """The ``good`` status ``der`` proves for ``cert`` at ``now``, or an ``OcspError``."""
        require_aware(now)
        key = (_sha256(der), fingerprint(cert) + fingerprint(issuer))
        cached = self._verdicts.get(key)
        if cached is not None:
            if cached.this_update - self._skew <= now <= cached.fresh_until:
                return cached
            del self._verdicts[key]
        status = verify_ocsp_response(
            der,
            cert=cert,
            issuer=issuer,
            trust_roots=self._trust_roots,
            now=now,
            max_age=self._max_age,
            skew=self._skew,
        )
        self._verdicts[key] = status
        if len(self._verdicts) > self._max_entries:
            self._verdicts.popitem(last=False)
        return status


def _sha256(data: bytes) -> bytes:
    hasher = hashes.Hash(hashes.SHA256())
    hasher.update(data)
    return hasher.finalize()
