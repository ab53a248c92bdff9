"""The node's database engine: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.util import await_only

__all__ = ["READ_ONLY_OPTION", "Base", "create_engine", "is_sqlite", "read_only"]

# Execution option of connections that only read: on SQLite their transactions
# start with a plain (deferred) BEGIN, so they never wait for the write lock.
# policies/store.py sets the same literal (it may not import gateway).
READ_ONLY_OPTION = "renkei_read_only"
# Longest wait for this process's other writer, as SQLite's busy_timeout.
_WRITE_GATE_TIMEOUT_S = 10.0
_GATE_HELD = "renkei_write_gate_held"


class _WriteGate:
    """One SQLite write transaction at a time per process and event loop.

    Writers of one process queue here (FIFO, woken at once) rather than in
    SQLite's busy handler, which polls with sleeps of up to 100 ms. Other
    processes still meet at SQLite's own lock. After the timeout a writer
    goes on to SQLite's lock anyway, so a nested writer cannot deadlock.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def enter(self, connection: Any) -> None:
        """Called in SQLAlchemy's greenlet, so it may await the lock."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a synchronous caller: nothing to queue behind
            return
        lock = self._locks.setdefault(loop, asyncio.Lock())
        try:
            await_only(asyncio.wait_for(lock.acquire(), _WRITE_GATE_TIMEOUT_S))
        except TimeoutError:
            return
        connection.info[_GATE_HELD] = lock

    @staticmethod
    def leave(connection: Any) -> None:
        lock = connection.info.pop(_GATE_HELD, None)
        if lock is not None:
            lock.release()


class Base(DeclarativeBase):
    """Tables owned by the gateway: the audit log, its chain head, replay memory."""


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """``engine``'s pool, for transactions that never write.

    On SQLite they begin deferred: a WAL reader sees the last committed state
    without taking (or queueing for) the write lock. Elsewhere it changes nothing.
    """
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, ``secure_delete`` and
    immediate transactions.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock when a transaction starts,
    so two processes appending to one audit chain serialise instead of one
    failing half-way (PostgreSQL uses ``SELECT ... FOR UPDATE`` instead).
    Connections from :func:`read_only` begin deferred instead: readers must
    not queue behind writers in SQLite's sleeping busy handler.
    """
    if not is_sqlite(url):
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
        return create_async_engine(url, **kwargs)
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted content is overwritten with zeros (erasure, gateway/audit/erasure.py).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    gate = _WriteGate()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        gate.enter(connection)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            gate.leave(connection)
            raise

    @event.listens_for(engine.sync_engine, "commit")
    def _on_commit(connection: Any) -> None:
        if _GATE_HELD not in connection.info:
            return
        # The event comes before the driver's commit; committing here lets the
        # next writer in only once the write lock is really released.
        try:
            connection.exec_driver_sql("COMMIT")
        finally:
            gate.leave(connection)

    @event.listens_for(engine.sync_engine, "rollback")
    def _on_rollback(connection: Any) -> None:
        gate.leave(connection)

    return engine
