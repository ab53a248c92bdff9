"""Per-token rate limits for the management APIs: a token bucket per key.

Each key (a token id, or a digest of an opaque token) gets ``burst`` requests
at once and ``rate`` more per second after that. A refused request learns how
long to wait (``Retry-After``). Buckets live in the limiter object, which the
application owns; idle buckets are dropped so the table cannot grow without
bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["RateLimiter"]

_MAX_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    rate: float = 20.0
    burst: int = 60
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def acquire(self, key: str, now: float) -> float:
        """Take one request for ``key`` at monotonic time ``now``.

        Returns 0 when allowed, else the seconds to wait before the next one fits.
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_KEYS:
                self._drop_full(now)
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))

    def _drop_full(self, now: float) -> None:
        for key in [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]:
            del self._buckets[key]
        if len(self._buckets) >= _MAX_KEYS:
            self._buckets.clear()  # under a flood of keys, forget rather than grow
