"""Server-side console sessions: an opaque cookie names a row held by the node.

The cookie carries only a random id; role, subject and CSRF token stay on the
server. A session ends after ``idle`` without a request, after ``absolute``
from login, or when its bearer token expires, whichever is first. A login
replaces the pre-login session with a new id (no fixation).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["COOKIE", "Session", "SessionStore"]

COOKIE = "renkei_console"
IDLE = timedelta(minutes=15)
ABSOLUTE = timedelta(hours=8)
MAX_SESSIONS = 10_000  # beyond it the oldest go first: anonymous visits cost memory


@dataclass
class Session:
    id: str
    created: datetime
    last_seen: datetime
    ends: datetime
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    role: str | None = None  # None before login
    subject: str = ""  # the token's subject, or the citizen's data-subject id

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "replace"), self.csrf.encode()
        )


class SessionStore:
    def __init__(
        self, *, idle: timedelta = IDLE, absolute: timedelta = ABSOLUTE,
        capacity: int = MAX_SESSIONS,
    ) -> None:  # fmt: skip
        self.idle, self.absolute, self._capacity = idle, absolute, capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str | None, *, now: datetime) -> Session | None:
        """The live session of that id (touching it), or None; an expired one is dropped."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if now >= session.ends or now - session.last_seen >= self.idle:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def start(
        self, *, now: datetime, role: str | None = None, subject: str = "",
        not_after: datetime | None = None,
    ) -> Session:  # fmt: skip
        ends = now + self.absolute
        if not_after is not None:
            ends = min(ends, not_after)
        session = Session(secrets.token_urlsafe(32), now, now, ends, role=role, subject=subject)
        self._sessions[session.id] = session
        while len(self._sessions) > self._capacity:
            self._sessions.popitem(last=False)
        return session

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
