"""Console sessions: idle and absolute timeouts, token expiry, CSRF comparison, capacity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.console.sessions import SessionStore

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_a_live_session_is_found_and_touched() -> None:
    store = SessionStore(idle=timedelta(minutes=15))
    session = store.start(now=NOW, role="auditor", subject="alice")
    later = NOW + timedelta(minutes=10)
    assert store.get(session.id, now=later) is session
    # Touched at +10 min: still alive at +20 min, 10 min after the last request.
    assert store.get(session.id, now=NOW + timedelta(minutes=20)) is session


def test_idle_timeout_ends_the_session() -> None:
    store = SessionStore(idle=timedelta(minutes=15))
    session = store.start(now=NOW, role="admin")
    assert store.get(session.id, now=NOW + timedelta(minutes=15)) is None
    # Dropped, not just hidden: coming back in time does not revive it.
    assert store.get(session.id, now=NOW) is None


def test_absolute_timeout_ends_even_a_busy_session() -> None:
    store = SessionStore(idle=timedelta(minutes=15), absolute=timedelta(hours=1))
    session = store.start(now=NOW, role="admin")
    moment = NOW
    for _ in range(5):
        moment += timedelta(minutes=14)
        if moment >= NOW + timedelta(hours=1):
            break
        assert store.get(session.id, now=moment) is session
    assert store.get(session.id, now=NOW + timedelta(hours=1)) is None


def test_the_token_expiry_bounds_the_session() -> None:
    store = SessionStore(absolute=timedelta(hours=8))
    session = store.start(now=NOW, role="admin", not_after=NOW + timedelta(minutes=5))
    assert store.get(session.id, now=NOW + timedelta(minutes=4)) is session
    assert store.get(session.id, now=NOW + timedelta(minutes=5)) is None


def test_unknown_or_empty_ids_find_nothing() -> None:
    store = SessionStore()
    session = store.start(now=NOW)
    assert store.get(None, now=NOW) is None
    assert store.get("", now=NOW) is None
    assert store.get(session.id + "x", now=NOW) is None
    assert store.get(session.csrf, now=NOW) is None  # the CSRF token is not a session id


def test_end_forgets_the_session() -> None:
    store = SessionStore()
    session = store.start(now=NOW, role="consent")
    store.end(session.id)
    assert store.get(session.id, now=NOW) is None
    store.end(session.id)  # twice is harmless


def test_csrf_matches_only_the_sessions_own_token() -> None:
    store = SessionStore()
    one, other = store.start(now=NOW), store.start(now=NOW)
    assert one.csrf_matches(one.csrf)
    assert not one.csrf_matches(other.csrf)
    assert not one.csrf_matches(None)
    assert not one.csrf_matches("")
    assert not one.csrf_matches(one.csrf[:-1])
    assert not one.csrf_matches(one.csrf + "\udcff")  # not even a valid string


def test_ids_and_tokens_are_random_and_distinct() -> None:
    store = SessionStore()
    sessions = [store.start(now=NOW) for _ in range(50)]
    values = {s.id for s in sessions} | {s.csrf for s in sessions}
    assert len(values) == 100
    assert all(len(s.id) >= 40 for s in sessions)


def test_capacity_drops_the_least_recently_used_first() -> None:
    store = SessionStore(capacity=3)
    first, second, third = (store.start(now=NOW) for _ in range(3))
    assert store.get(first.id, now=NOW) is first  # first is now the most recent
    fourth = store.start(now=NOW)
    assert len(store) == 3
    assert store.get(second.id, now=NOW) is None
    assert {s.id for s in (first, third, fourth)} == {
        s.id for s in (first, third, fourth) if store.get(s.id, now=NOW) is not None
    }
