"""Fixtures shared by all tests: the database backends every storage test runs on."""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_SERVER = os.environ.get(
    "RENKEI_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def postgres_reachable(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    """Skip when PostgreSQL is unreachable, except in CI where that is a failure."""
    if postgres_reachable():
        return
    if os.environ.get("CI"):
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and CI is set")
    pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
