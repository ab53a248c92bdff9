"""Which catalogue entries a consumer node asks in a distributed read (legs.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.broker.legs import CatalogueSources, sources_of

MARK = {"openapi": "3.0.3", "paths": {}, "x-ngsi-ld": {"version": "1.8.1"}}


@pytest.mark.parametrize(
    "catalogue",
    [None, [], {"services": "x"}, {"services": [1, {"service": "I/C/M/S/s"}]},
     {"services": [{"service": "not an id", "openapi": MARK}]},
     {"services": [{"service": "I/C/M/S/s", "openapi": {"x-ngsi-ld": True}}]}],
)
def test_malformed_or_unmarked_entries_are_not_sources(catalogue: Any) -> None:
    assert sources_of(catalogue) == []


async def test_the_catalogue_is_read_at_most_once_per_ttl_and_kept_on_failure() -> None:
    served: list[int] = []
    fail = False

    async def catalogue(_: web.Request) -> web.Response:
        served.append(1)
        if fail:
            return web.Response(status=503)
        return web.json_response({"services": [{"service": "I/C/M/S/s", "openapi": MARK}]})

    app = web.Application()
    app.router.add_get("/catalogue", catalogue)
    now = [0.0]
    async with TestServer(app, host="127.0.0.1") as server:
        sources = CatalogueSources(lambda: str(server.make_url("/catalogue")), ttl_s=30,
                                   clock=lambda: now[0])
        assert [str(s) for s in await sources()] == ["I/C/M/S/s"]
        assert [str(s) for s in await sources()] == ["I/C/M/S/s"]
        assert len(served) == 1
        now[0] = 31.0
        fail = True
        assert [str(s) for s in await sources()] == ["I/C/M/S/s"]  # the last good list
        assert len(served) == 2
