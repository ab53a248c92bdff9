"""JSON-LD ``@context`` handling: the bundled core context, user contexts, term mapping.

ETSI GS CIM 009 V1.8.1 clause 5.5.7: every request is interpreted with the user's
``@context`` (inline in an ``application/ld+json`` body, or named by a ``Link``
header) followed by the NGSI-LD core ``@context``, which always comes last and so
wins. The core context is bundled with the node and is never fetched; a remote
context is served only if it was registered before (``/jsonldContexts``, or by the
operator under its published URL). Any other URL is ``LdContextNotAvailable``:
nothing is downloaded while a request waits.

Contexts are processed by PyLD once and cached (bounded, least recently used), so
a request costs a dictionary lookup per term, not a context processing run (about
15 ms for the core context).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyld import jsonld  # type: ignore[import-untyped]

from gateway.broker.errors import BadRequestData, LdContextNotAvailable

__all__ = [
    "CORE_CONTEXT_URL",
    "NGSI_LD",
    "ActiveContext",
    "ContextCache",
    "ContextDocuments",
    "core_context_document",
]

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
CORE_CONTEXT_URL = NGSI_LD + "v1/ngsi-ld-core-context-v1.8.jsonld"
# Earlier and unversioned names of the core context: its terms did not change
# meaning between them, so they are served with the bundled V1.8 document.
_CORE_ALIASES = frozenset(
    {NGSI_LD + "v1/ngsi-ld-core-context.jsonld"}
    | {NGSI_LD + f"v1/ngsi-ld-core-context-v1.{minor}.jsonld" for minor in range(3, 9)}
)
_CORE_PATH = Path(__file__).with_name("core_context_v1.8.jsonld")
_MAX_CONTEXT_BYTES = 256 * 1024
_MAX_TERMS_MEMO = 4096


def core_context_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_CORE_PATH.read_text(encoding="utf-8"))
    return document


def is_core(url: str) -> bool:
    return url == CORE_CONTEXT_URL or url in _CORE_ALIASES


class ContextDocuments:
    """The context documents the JSON-LD processor may load: bundled or registered.

    Registered documents are held up to ``max_documents``; the store they come from
    (the node database) is the source of truth and refills this on a miss.
    """

    def __init__(self, max_documents: int = 256) -> None:
        self._core = core_context_document()
        self._pinned: dict[str, dict[str, Any]] = {}
        self._documents: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._max = max_documents

    def add(self, url: str, document: Mapping[str, Any]) -> None:
        check_context_document(document)
        self._documents[url] = dict(document)
        self._documents.move_to_end(url)
        while len(self._documents) > self._max:
            self._documents.popitem(last=False)

    def pin(self, url: str, document: Mapping[str, Any]) -> None:
        """A document shipped with the node (a Smart Data Models context): never evicted."""
        check_context_document(document)
        self._pinned[url] = dict(document)

    def discard(self, url: str) -> None:
        self._documents.pop(url, None)

    def get(self, url: str) -> dict[str, Any] | None:
        if is_core(url):
            return self._core
        if url in self._pinned:
            return self._pinned[url]
        document = self._documents.get(url)
        if document is not None:
            self._documents.move_to_end(url)
        return document

    def load(self, url: str, options: Any = None) -> dict[str, Any]:
        """PyLD's document loader: never touches the network."""
        document = self.get(url)
        if document is None:
            raise jsonld.JsonLdError(
                f"the @context {url} is neither the core context nor registered",
                "jsonld.LoadDocumentError",
                code="loading remote context failed",
            )
        return {"contentType": "application/ld+json", "contextUrl": None,
                "documentUrl": url, "document": document}


def check_context_document(document: Mapping[str, Any]) -> None:
    if "@context" not in document:
        raise BadRequestData("a JSON-LD context document has an @context member")
    if len(json.dumps(document)) > _MAX_CONTEXT_BYTES:
        raise BadRequestData(f"a @context document is limited to {_MAX_CONTEXT_BYTES} bytes")


@dataclass
class ActiveContext:
    """One processed context: what a request's term names mean, both ways."""

    local: tuple[Any, ...]  # the user's contexts, without the core context
    _processed: Any
    _processor: Any
    _expanded: dict[str, str] = field(default_factory=dict)
    _compacted: dict[str, str] = field(default_factory=dict)

    @property
    def is_core_only(self) -> bool:
        return not self.local

    def expand(self, term: str) -> str:
        """A term, compact IRI or IRI as the full IRI it names (vocabulary-relative)."""
        iri = self._expanded.get(term)
        if iri is None:
            iri = str(self._processor._expand_iri(self._processed, term, vocab=True))
            _remember(self._expanded, term, iri)
        return iri

    def compact(self, iri: str) -> str:
        """A full IRI as the shortest term this context has for it."""
        term = self._compacted.get(iri)
        if term is None:
            term = str(self._processor._compact_iri(self._processed, iri, vocab=True))
            _remember(self._compacted, iri, term)
        return term

    def response_context(self) -> str | list[Any]:
        """The ``@context`` to give back: the request's, core context last."""
        if not self.local:
            return CORE_CONTEXT_URL
        return [*self.local, CORE_CONTEXT_URL]

    def link_target(self) -> str:
        """The context a ``Link`` header names: the user's URL, or the core context."""
        for item in self.local:
            if isinstance(item, str):
                return item
        return CORE_CONTEXT_URL


def _remember(memo: dict[str, str], key: str, value: str) -> None:
    if len(memo) >= _MAX_TERMS_MEMO:
        memo.clear()  # a bound, not a policy: hot terms come back at once
    memo[key] = value


class ContextCache:
    """Processed contexts by their content, at most ``max_contexts`` of them."""

    def __init__(
        self,
        documents: ContextDocuments | None = None,
        *,
        max_contexts: int = 128,
        on_process: Callable[[], None] | None = None,
    ) -> None:
        self.documents = documents if documents is not None else ContextDocuments()
        self._cache: OrderedDict[str, ActiveContext] = OrderedDict()
        self._max = max_contexts
        self._processor = jsonld.JsonLdProcessor()
        self._on_process = on_process
        self.hits = 0
        self.misses = 0

    def resolve(self, local: Iterable[Any] = ()) -> ActiveContext:
        """The active context for the user's contexts (core context appended)."""
        user = tuple(item for item in local if not (isinstance(item, str) and is_core(item)))
        for item in user:
            if not isinstance(item, str | dict):
                raise BadRequestData("an @context is a URL, an object or a list of them")
        key = json.dumps(user, sort_keys=True, separators=(",", ":"))
        cached = self._cache.get(key)
        if cached is not None:
            self.hits += 1
            self._cache.move_to_end(key)
            return cached
        self.misses += 1
        if len(key) > _MAX_CONTEXT_BYTES:
            raise BadRequestData(f"an @context is limited to {_MAX_CONTEXT_BYTES} bytes")
        try:
            processed = self._processor.process_context(
                self._processor._get_initial_context({}),
                [*user, CORE_CONTEXT_URL],
                {"documentLoader": self.documents.load},
            )
        except jsonld.JsonLdError as exc:
            if _is_load_failure(exc):
                missing = [u for u in user if isinstance(u, str) and self.documents.get(u) is None]
                raise LdContextNotAvailable(
                    f"@context {', '.join(missing) or 'import'} is neither the bundled core"
                    " context nor registered; this node fetches no context while serving"
                ) from exc
            raise BadRequestData(f"the @context is not valid JSON-LD: {_reason(exc)}") from exc
        if self._on_process is not None:
            self._on_process()
        active = ActiveContext(local=user, _processed=processed, _processor=self._processor)
        self._cache[key] = active
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return active

    def core(self) -> ActiveContext:
        return self.resolve(())


def _is_load_failure(exc: Any) -> bool:
    while exc is not None:
        if getattr(exc, "code", None) == "loading remote context failed":
            return True
        if getattr(exc, "type", None) == "jsonld.LoadDocumentError":
            return True
        exc = getattr(exc, "cause", None)
    return False


def _reason(exc: Any) -> str:
    deepest = exc
    while getattr(deepest, "cause", None) is not None:
        deepest = deepest.cause
    return str(getattr(deepest, "message", deepest)).splitlines()[0][:300]
