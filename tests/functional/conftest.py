"""A running sandbox federation per database backend, shared by a test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import POSTGRES_SERVER, require_postgres
from tests.functional.sandbox_helpers import sandbox_process


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def federation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    database = None
    if request.param == "postgres":
        require_postgres()
        database = POSTGRES_SERVER
    directory = tmp_path_factory.mktemp(f"federation-{request.param}") / "sandbox"
    with sandbox_process(directory, database=database) as document:
        document["_backend"] = request.param
        yield document
