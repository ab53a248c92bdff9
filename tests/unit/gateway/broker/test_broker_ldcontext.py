"""The core @context is bundled, nothing is fetched, processed contexts are cached with a bound."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from pyld import jsonld  # type: ignore[import-untyped]

from gateway.broker.errors import BadRequestData, LdContextNotAvailable
from gateway.broker.ldcontext import CORE_CONTEXT_URL, NGSI_LD, ContextCache, ContextDocuments


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the broker tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(jsonld, "_default_document_loader", refuse)


@pytest.mark.usefixtures("no_network")
def test_core_context_and_its_older_names_resolve_offline() -> None:
    cache = ContextCache()
    for url in (
        CORE_CONTEXT_URL,
        NGSI_LD + "v1/ngsi-ld-core-context.jsonld",
        NGSI_LD + "v1/ngsi-ld-core-context-v1.6.jsonld",
    ):
        ctx = cache.resolve([url])
        assert ctx.expand("location") == NGSI_LD + "location"
        assert ctx.expand("observedAt") == NGSI_LD + "observedAt"
        assert ctx.expand("Point") == "https://purl.org/geojson/vocab#Point"
        assert ctx.expand("waterLevel") == NGSI_LD + "default-context/waterLevel"
        assert ctx.compact(NGSI_LD + "default-context/waterLevel") == "waterLevel"


@pytest.mark.usefixtures("no_network")
def test_a_remote_context_is_never_fetched() -> None:
    with pytest.raises(LdContextNotAvailable):
        ContextCache().resolve(["https://smartdatamodels.org/context.jsonld"])
    # Nor one imported from inside an inline context.
    with pytest.raises(LdContextNotAvailable):
        ContextCache().resolve([{"@import": "https://example.org/x.jsonld"}])


@pytest.mark.usefixtures("no_network")
def test_a_registered_context_is_served_from_memory() -> None:
    documents = ContextDocuments()
    url = "https://smartdatamodels.org/context.jsonld"
    documents.add(url, {"@context": {"WaterObserved": "https://sdm.example/WaterObserved"}})
    ctx = ContextCache(documents).resolve([url])
    assert ctx.expand("WaterObserved") == "https://sdm.example/WaterObserved"
    assert ctx.link_target() == url


def test_the_core_context_wins_over_a_user_redefinition() -> None:
    ctx = ContextCache().resolve([{"location": "https://example.org/myLocation"}])
    assert ctx.expand("location") == NGSI_LD + "location"


def test_invalid_contexts_are_bad_request_data() -> None:
    with pytest.raises(BadRequestData):
        ContextCache().resolve([{"@version": 2}])
    with pytest.raises(BadRequestData):
        ContextCache().resolve([42])


def test_processed_contexts_are_cached_with_a_bound() -> None:
    processed: list[int] = []
    cache = ContextCache(max_contexts=2, on_process=lambda: processed.append(1))
    for n in range(3):
        cache.resolve([{"t": f"https://example.org/{n}"}])
    cache.resolve([{"t": "https://example.org/2"}])
    assert (len(processed), cache.hits) == (3, 1)
    cache.resolve([{"t": "https://example.org/0"}])  # evicted: processed again
    assert len(processed) == 4
    assert len(cache._cache) == 2


def test_registered_documents_are_bounded() -> None:
    documents = ContextDocuments(max_documents=2)
    for n in range(3):
        documents.add(f"urn:c:{n}", {"@context": {}})
    assert documents.get("urn:c:0") is None
    assert documents.get("urn:c:2") is not None
    assert documents.get(CORE_CONTEXT_URL) is not None
