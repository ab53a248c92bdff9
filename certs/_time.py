"""Checks on the ``now`` parameter every time-dependent function takes."""

from __future__ import annotations

from datetime import datetime, timedelta

from certs.errors import CertsError


def require_aware(now: datetime) -> datetime:
    """Return ``now`` if it is timezone-aware; naive times are ambiguous and refused."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise CertsError("'now' must be a timezone-aware datetime (UTC)")
    return now


def days(count: int) -> timedelta:
    """A validity period in days; zero or negative periods are refused."""
    if count < 1:
        raise CertsError(f"validity must be at least one day, got {count}")
    return timedelta(days=count)
