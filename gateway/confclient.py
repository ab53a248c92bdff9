"""The configuration client: keeps a verified, current global configuration.

It trusts only the anchor installed out of band. On start it loads the last
good copy from disk (verified again, expired or not), then refreshes from the
anchor's download URLs on the interval the configuration itself sets. A
newer version replaces the current one and is written to disk atomically; an
older one is a rollback and is refused; a bad signature is refused. Once the
current copy expires, :meth:`current` raises, so every exchange fails closed
until a fresh copy arrives.

The refresh interval is an upper bound, not a fixed period
(:func:`next_refresh_delay`): a copy is refreshed when half of the time it has
left has passed, if that comes sooner, so a copy never lapses between two
refreshes; and while refreshes fail or no valid copy is held, the client
retries after 1, 2, 4 ... s (at most 10 s), so a node whose registry was down
is served again within seconds of its return. The loop outlives any one
failed refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import structlog

from gateway.downloads import DownloadTooLarge, read_capped
from gateway.errors import GlobalConfOutdated
from member_registry.anchor import Anchor, load_anchor
from member_registry.errors import GlobalConfError, GlobalConfExpired
from member_registry.globalconf import GlobalConf
from member_registry.signing import claimed_time, verify_global_conf

__all__ = ["ConfigurationClient", "next_refresh_delay"]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]

MIN_RETRY_S = 1.0
# A configuration names nodes by certificate fingerprints, so even a large
# federation's stays far below this; [limits] max_globalconf_bytes overrides it.
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
MAX_RETRY_S = 10.0


def next_refresh_delay(conf: GlobalConf | None, now: datetime, failures: int) -> float:
    """Seconds until the next refresh, given the held copy and the failures in a row."""
    delay = float(max(1, conf.settings.refresh_interval_s)) if conf is not None else MAX_RETRY_S
    left = (conf.expires_at - now).total_seconds() if conf is not None else 0.0
    if left > 0:
        # Halving what is left: several attempts before the copy lapses.
        delay = min(delay, max(MIN_RETRY_S, left / 2))
    if failures or left <= 0:
        backoff = MIN_RETRY_S * 2 ** min(max(failures - 1, 0), 5)
        delay = min(delay, backoff, MAX_RETRY_S)
    return delay


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ConfigurationClient:
    def __init__(
        self,
        anchor_path: Path,
        cache_path: Path,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = _utcnow,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._anchor: Anchor = load_anchor(anchor_path)
        self._max_bytes = max_bytes
        self._cache_path = cache_path
        self._session = session
        self._clock = clock
        self._conf: GlobalConf | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.last_refresh: datetime | None = None
        self._listeners: list[Callable[[GlobalConf], None]] = []

    @property
    def anchor(self) -> Anchor:
        return self._anchor

    @property
    def version(self) -> int | None:
        return self._conf.version if self._conf else None

    def on_change(self, listener: Callable[[GlobalConf], None]) -> None:
        self._listeners.append(listener)

    def current(self, now: datetime | None = None) -> GlobalConf:
        """The valid configuration, or :class:`GlobalConfOutdated` (fail closed)."""
        conf = self._conf
        when = now or self._clock()
        if conf is None:
            raise GlobalConfOutdated("no global configuration has been received yet")
        if conf.is_expired(when):
            raise GlobalConfOutdated(
                f"the global configuration expired at {conf.expires_at.isoformat()}"
            )
        return conf

    def latest(self) -> GlobalConf | None:
        """The newest verified copy, valid or not (for diagnostics)."""
        return self._conf

    def load_cached(self) -> None:
        """Load the last good copy from disk, if any; it may be expired."""
        try:
            token = self._cache_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return
        try:
            conf = self._verify(token, allow_expired=True)
        except GlobalConfError as exc:
            log.warning("cached_globalconf_refused", error=str(exc), code=exc.code)
            return
        self._install(conf, token, persist=False)

    def _verify(self, token: str, *, allow_expired: bool) -> GlobalConf:
        now = self._clock()
        min_version = self._conf.version - 1 if self._conf else None
        try:
            return verify_global_conf(token, self._anchor, now=now, min_version=min_version)
        except GlobalConfExpired:
            if not allow_expired:
                raise
        # An expired copy on disk still sets the version floor (rollback
        # protection across restarts); verify it fully as of just before expiry.
        as_of = claimed_time(token, "expires_at") - timedelta(seconds=1)
        return verify_global_conf(token, self._anchor, now=as_of, min_version=min_version)

    def _install(self, conf: GlobalConf, token: str, *, persist: bool) -> None:
        if self._conf is not None and conf.version == self._conf.version:
            return
        self._conf = conf
        if persist:
            self._cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._cache_path.with_suffix(".tmp")
            tmp.write_text(token, encoding="ascii")
            os.replace(tmp, self._cache_path)
        log.info("globalconf_installed", version=conf.version, expires_at=str(conf.expires_at))
        for listener in self._listeners:
            listener(conf)

    async def refresh(self) -> GlobalConf:
        """Fetch, verify and install the newest configuration from the anchor's URLs."""
        errors: list[str] = []
        session = self._session
        own_session = session is None
        if session is None:
            session = aiohttp.ClientSession()
        try:
            for url in self._anchor.download_urls:
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                        if resp.status != 200:
                            errors.append(f"{url}: HTTP {resp.status}")
                            continue
                        raw = await read_capped(
                            resp, self._max_bytes, what="the global configuration"
                        )
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors.append(f"{url}: {exc.__class__.__name__}")
                    continue
                except DownloadTooLarge as exc:
                    errors.append(f"{url}: {exc.code}: {exc}")
                    continue
                token = raw.decode("ascii", "replace").strip()
                try:
                    conf = self._verify(token, allow_expired=False)
                except GlobalConfError as exc:
                    errors.append(f"{url}: {exc.code}: {exc}")
                    continue
                self._install(conf, token, persist=True)
                self.last_error = None
                self.last_refresh = self._clock()
                return conf
        finally:
            if own_session:
                await session.close()
        self.last_error = "; ".join(errors) or "no download URL in the anchor"
        raise GlobalConfOutdated(f"global configuration refresh failed: {self.last_error}")

    async def start(self) -> None:
        self.load_cached()
        failures = 0
        try:
            await self.refresh()
        except GlobalConfOutdated as exc:
            failures = 1
            log.warning("globalconf_refresh_failed", error=str(exc))
        self._task = asyncio.create_task(self._loop(failures), name="globalconf-refresh")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, failures: int) -> None:
        while True:
            await asyncio.sleep(next_refresh_delay(self._conf, self._clock(), failures))
            try:
                await self.refresh()
                failures = 0
            except GlobalConfOutdated as exc:
                failures += 1
                log.warning("globalconf_refresh_failed", error=str(exc), failures=failures)
            except Exception:  # a dead loop would fail the node closed for good
                failures += 1
                log.exception("globalconf_refresh_crashed", failures=failures)
