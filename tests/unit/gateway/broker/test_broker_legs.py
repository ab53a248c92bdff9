"""Which catalogue entries a consumer node asks in a distributed read (legs.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from certs.identifiers import ServiceId
from gateway.broker.legs import CatalogueSources, sources_of
from gateway.broker.registration import source_of

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
        assert [str(s.service) for s in await sources()] == ["I/C/M/S/s"]
        assert [str(s.service) for s in await sources()] == ["I/C/M/S/s"]
        assert len(served) == 1
        now[0] = 31.0
        fail = True
        assert [str(s.service) for s in await sources()] == ["I/C/M/S/s"]  # the last good
        assert len(served) == 2


@pytest.mark.parametrize(
    ("registration", "types", "area_known", "bbox"),
    [
        ({}, None, False, None),
        ({"information": [{"entities": [{"type": "urn:T"}]}], "bbox": None},
         frozenset({"urn:T"}), True, None),
        ({"information": [{"entities": [{"type": 1}]}], "bbox": [0, 0, 1, 1]},
         None, True, (0.0, 0.0, 1.0, 1.0)),
        ({"information": "x", "bbox": [0, 0, True, 1]}, None, False, None),
        ({"information": [{"entities": [{"type": "urn:T"}]}, {}], "bbox": "x"}, None, False, None),
    ],
)
def test_a_registration_is_read_and_what_is_malformed_is_not_said(
    registration: dict[str, Any], types: Any, area_known: bool, bbox: Any
) -> None:
    source = source_of(ServiceId.parse("I/C/M/S/s"), registration)
    assert (source.types, source.area_known, source.bbox) == (types, area_known, bbox)
