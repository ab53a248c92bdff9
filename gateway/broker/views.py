"""The NGSI-LD HTTP binding, ETSI GS CIM 009 V1.8.1 clause 6, for one owner's entities.

:class:`NgsiLdApi` takes a transport-neutral :class:`NgsiRequest` (path below
``/ngsi-ld/v1``) and gives an :class:`NgsiResponse`, so the same code answers an
information system on the client port and a consumer node's signed request for a
provider's NGSI-LD service.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, unquote

from gateway.broker.entities import (
    Entity,
    check_entity_id,
    check_name,
    expand_type,
    parse_attribute,
    parse_attributes,
    parse_entity,
)
from gateway.broker.errors import (
    BadRequestData,
    InvalidRequest,
    NgsiLdError,
    ResourceNotFound,
    TooManyResults,
)
from gateway.broker.federation import WARNING_HEADER, RemoteEntities, merge_entities, warning
from gateway.broker.geoquery import parse_geo_query
from gateway.broker.ldcontext import ActiveContext, ContextCache
from gateway.broker.negotiation import (
    JSON_LD,
    body_context,
    choose_response_type,
    link_context,
    link_header,
)
from gateway.broker.qlang import parse_q
from gateway.broker.representation import Format, render_entity
from gateway.broker.service import BatchResult, EntityQuery, EntityService, UpdateResult
from gateway.protocol import NGSI_LD_ROOT

__all__ = ["API_ROOT", "NgsiLdApi", "NgsiRequest", "NgsiResponse", "problem_response"]

API_ROOT = NGSI_LD_ROOT
RESULTS_COUNT = "NGSILD-Results-Count"
PROBLEM_JSON = "application/problem+json"
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
MAX_BATCH = 1000
MAX_BODY = 8 * 1024 * 1024
_JSON_SEPARATORS = (",", ":")


@dataclass(frozen=True)
class NgsiRequest:
    method: str
    path: str  # below /ngsi-ld/v1, still percent-encoded
    query: str
    headers: Mapping[str, str]
    link_headers: tuple[str, ...] = ()
    body: bytes = b""
    # The caller's X-Road-Id, X-Road-UserId, X-Road-Issue and Renkei-Purpose: what
    # the legs of a distributed read carry on its behalf (federation.py).
    exchange_headers: tuple[tuple[str, str], ...] = ()


@dataclass
class NgsiResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def problem_response(error: NgsiLdError) -> NgsiResponse:
    return NgsiResponse(
        error.status,
        json.dumps(error.problem()).encode(),
        [("Content-Type", PROBLEM_JSON)],
    )


Handler = Callable[["_Call"], Awaitable[NgsiResponse]]


class _Answered(Exception):
    """A handler's answer given before it returns (an error with extra headers)."""

    def __init__(self, response: NgsiResponse) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass
class _Call:
    owner: str
    request: NgsiRequest
    params: dict[str, str]
    segments: list[str]

    def param(self, name: str) -> str | None:
        return self.params.get(name)


class NgsiLdApi:
    def __init__(
        self,
        service: EntityService,
        contexts: ContextCache,
        remote: RemoteEntities | None = None,
    ) -> None:
        self.service = service
        self.contexts = contexts
        # The providers' entities, for reads that are not ``local=true``
        # (federation.py); None answers from this node's store only.
        self.remote = remote
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"entities/?"), self._query),
            ("POST", re.compile(r"entities/?"), self._create),
            ("GET", re.compile(r"entities/[^/]+"), self._retrieve),
            ("DELETE", re.compile(r"entities/[^/]+"), self._delete),
            ("PUT", re.compile(r"entities/[^/]+"), self._replace),
            ("PATCH", re.compile(r"entities/[^/]+"), self._merge),
            ("POST", re.compile(r"entities/[^/]+/attrs/?"), self._append),
            ("PATCH", re.compile(r"entities/[^/]+/attrs/?"), self._update),
            ("PATCH", re.compile(r"entities/[^/]+/attrs/[^/]+"), self._patch_attribute),
            ("PUT", re.compile(r"entities/[^/]+/attrs/[^/]+"), self._replace_attribute),
            ("DELETE", re.compile(r"entities/[^/]+/attrs/[^/]+"), self._delete_attribute),
            ("POST", re.compile(r"entityOperations/(create|upsert|update|delete)"), self._batch),
            ("POST", re.compile(r"entityOperations/query"), self._query_post),
            ("GET", re.compile(r"types/?"), self._types),
            ("GET", re.compile(r"types/[^/]+"), self._type),
            ("GET", re.compile(r"attributes/?"), self._attributes),
            ("GET", re.compile(r"attributes/[^/]+"), self._attribute),
            ("GET", re.compile(r"jsonldContexts/?"), self._contexts_list),
            ("POST", re.compile(r"jsonldContexts/?"), self._context_add),
            ("GET", re.compile(r"jsonldContexts/[^/]+"), self._context_get),
            ("DELETE", re.compile(r"jsonldContexts/[^/]+"), self._context_delete),
        ]

    def with_remote(self, remote: RemoteEntities) -> NgsiLdApi:
        """The same API and store, also reading the providers' entities."""
        return NgsiLdApi(self.service, self.contexts, remote)

    async def handle(self, owner: str, request: NgsiRequest) -> NgsiResponse:
        try:
            path = request.path.lstrip("/")
            methods = [(m, h) for m, p, h in self._routes if p.fullmatch(path)]
            if not methods:
                raise ResourceNotFound(f"{API_ROOT}/{path[:200]} is not a resource of this API")
            handler = next((h for m, h in methods if m == request.method), None)
            if handler is None:
                allowed = ", ".join(sorted({m for m, _ in methods}))
                response = problem_response(InvalidRequest(f"{request.method} is not allowed here"))
                response.status = 405
                response.headers.append(("Allow", allowed))
                return response
            pairs = parse_qsl(request.query, keep_blank_values=True, strict_parsing=False)
            params: dict[str, str] = {}
            for name, value in pairs:
                if name in params:
                    raise BadRequestData(f"the parameter {name} is given twice")
                params[name] = value
            segments = [unquote(part) for part in path.rstrip("/").split("/")]
            return await handler(_Call(owner, request, params, segments))
        except NgsiLdError as exc:
            return problem_response(exc)
        except _Answered as answered:
            return answered.response

    # --- helpers ---------------------------------------------------------

    async def _read_context(self, call: _Call) -> tuple[ActiveContext, Any]:
        """The request's active context and its parsed body (None without a body)."""
        link = link_context(call.request.link_headers)
        body: Any = None
        if call.request.method in ("POST", "PATCH", "PUT"):
            if len(call.request.body) > MAX_BODY:
                raise BadRequestData(f"a request body is limited to {MAX_BODY} bytes")
            try:
                body = json.loads(call.request.body, object_pairs_hook=_unique_keys)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidRequest(f"the body is not JSON: {exc}") from exc
            local = body_context(call.request.headers.get("Content-Type"), link, body)
        else:
            local = [link] if link is not None else []
        for item in local:
            # Registered in another process of this node: the database has it.
            if isinstance(item, str) and self.contexts.documents.get(item) is None:
                document = await self.service.store.context(item)
                if document is not None:
                    self.contexts.documents.add(item, document)
        return self.contexts.resolve(local), body

    def _answer(
        self, call: _Call, ctx: ActiveContext, payload: Any, status: int = 200,
        extra: Sequence[tuple[str, str]] = (),
    ) -> NgsiResponse:
        kind = choose_response_type(call.request.headers.get("Accept"))
        headers = [("Content-Type", kind), *extra]
        if kind == JSON_LD:
            context = ctx.response_context()
            if isinstance(payload, list):
                payload = [{"@context": context, **item} for item in payload]
            else:
                payload = {"@context": context, **payload}
        else:
            headers.append(("Link", link_header(ctx.link_target())))
        return NgsiResponse(status, json.dumps(payload, separators=_JSON_SEPARATORS).encode(),
                            headers)

    def _render_options(self, call: _Call) -> tuple[Format, bool]:
        options = {o for o in (call.param("options") or "").split(",") if o}
        unknown = options - {"keyValues", "concise", "normalized", "sysAttrs", "noOverwrite",
                             "update", "replace"}
        if unknown:
            raise BadRequestData(f"options {', '.join(sorted(unknown))} not understood")
        fmt = call.param("format")
        if fmt is not None and fmt not in ("normalized", "concise", "keyValues", "simplified"):
            raise BadRequestData(f"format {fmt!r} is not normalized, concise or keyValues")
        chosen: Format = "normalized"
        if fmt in ("keyValues", "simplified") or (fmt is None and "keyValues" in options):
            chosen = "keyValues"
        elif fmt == "concise" or (fmt is None and "concise" in options):
            chosen = "concise"
        return chosen, "sysAttrs" in options

    def _attrs(self, call: _Call, ctx: ActiveContext) -> list[str] | None:
        raw = call.param("attrs") or call.param("pick")
        if raw is None:
            return None
        return [ctx.expand(check_name(name, "an attrs name")) for name in raw.split(",") if name]

    # --- entities ------------------------------------------------------------

    async def _create(self, call: _Call) -> NgsiResponse:
        ctx, body = await self._read_context(call)
        entity = parse_entity(body, ctx, now=self.service.now())
        await self.service.create(call.owner, entity)
        return NgsiResponse(201, headers=[("Location", f"{API_ROOT}/entities/{entity['id']}")])

    async def _retrieve(self, call: _Call) -> NgsiResponse:
        ctx, _ = await self._read_context(call)
        entity_id = check_entity_id(call.segments[1])
        warnings: list[str] = []
        if self.remote is None or call.param("local") == "true":
            entity = await self.service.retrieve(call.owner, entity_id)
        else:
            entity, warnings = await self._retrieve_everywhere(
                call.owner, entity_id, call.request.exchange_headers
            )
        wanted_type = call.param("type")
        if wanted_type is not None and expand_type(wanted_type, ctx) != entity["type"]:
            raise ResourceNotFound(f"no entity {entity_id} of type {wanted_type}")
        fmt, sys_attrs = self._render_options(call)
        attrs = self._attrs(call, ctx)
        return self._answer(
            call, ctx, render_entity(entity, ctx, fmt=fmt, attrs=attrs, sys_attrs=sys_attrs),
            extra=[(WARNING_HEADER, w) for w in warnings],
        )

    async def _retrieve_everywhere(
        self, owner: str, entity_id: str, headers: tuple[tuple[str, str], ...]
    ) -> tuple[Entity, list[str]]:
        """Clause 4.3.6: the entity merged from this node and every source holding it."""
        assert self.remote is not None
        groups: list[Sequence[Entity]] = []
        with contextlib.suppress(ResourceNotFound):
            groups.append([await self.service.retrieve(owner, entity_id)])
        legs = await self.remote.retrieve(owner, entity_id, headers)
        groups += [leg.entities for leg in legs]
        warnings = [warning(leg) for leg in legs if leg.failure is not None]
        merged = merge_entities(groups)
        if not merged:
            error = ResourceNotFound(f"no entity {entity_id}")
            response = problem_response(error)
            response.headers += [(WARNING_HEADER, w) for w in warnings]
            raise _Answered(response)
        return merged[0], warnings

    async def _delete(self, call: _Call) -> NgsiResponse:
        await self.service.delete(call.owner, check_entity_id(call.segments[1]))
        return NgsiResponse(204)

    async def _replace(self, call: _Call) -> NgsiResponse:
        ctx, body = await self._read_context(call)
        entity_id = check_entity_id(call.segments[1])
        if isinstance(body, dict):
            body = {**body, "id": body.get("id", entity_id)}
        entity = parse_entity(body, ctx, now=self.service.now(), require_type=False)
        if entity["id"] != entity_id:
            raise BadRequestData("the body's id differs from the entity in the path")
        await self.service.replace(call.owner, entity_id, entity)
        return NgsiResponse(204)

    async def _merge(self, call: _Call) -> NgsiResponse:
        ctx, body = await self._read_context(call)
        entity_id = check_entity_id(call.segments[1])
        fragment = _object(body)
        if "id" in fragment and fragment["id"] != entity_id:
            raise BadRequestData("the body's id differs from the entity in the path")
        new_type = expand_type(fragment["type"], ctx) if "type" in fragment else None
        attrs = parse_attributes(fragment, ctx, now=self.service.now(), allow_null=True)
        await self.service.merge(call.owner, entity_id, new_type, attrs)
        return NgsiResponse(204)

    async def _append(self, call: _Call) -> NgsiResponse:
        ctx, body = await self._read_context(call)
        self._render_options(call)  # refuses unknown options
        attrs = _no_nulls(parse_attributes(_object(body), ctx, now=self.service.now()))
        no_overwrite = "noOverwrite" in (call.param("options") or "").split(",")
        result = await self.service.append(
            call.owner, check_entity_id(call.segments[1]), attrs, no_overwrite=no_overwrite
        )
        return _update_result(result, ctx)

    async def _update(self, call: _Call) -> NgsiResponse:
        ctx, body = await self._read_context(call)
        attrs = _no_nulls(parse_attributes(_object(body), ctx, now=self.service.now()))
        result = await self.service.update(call.owner, check_entity_id(call.segments[1]), attrs)
        return _update_result(result, ctx)

    def _attribute_target(self, call: _Call, ctx: ActiveContext) -> tuple[str, str, str]:
        entity_id = check_entity_id(call.segments[1])
        name = check_name(call.segments[3], "an attribute name")
        return entity_id, name, ctx.expand(name)

    async def _patch_attribute(self, call: _Call) -> NgsiResponse:
        ctx, body = await self._read_context(call)
        entity_id, name, iri = self._attribute_target(call, ctx)
        fragment = _object(body)
        current = await self.service.retrieve(call.owner, entity_id)
        old = current["attrs"].get(iri)
        if old is None:
            raise ResourceNotFound(f"entity {entity_id} has no attribute {name}")
        # A partial fragment may leave out the type: it keeps the attribute's.
        full = {"type": old["type"], **fragment}
        attribute = parse_attribute(full, ctx, name=name, now=self.service.now())
        assert attribute is not None
        given = {k: v for k, v in attribute.items()
                 if k in fragment or k in ("modifiedAt", "type") or k.startswith(("http", "urn"))}
        await self.service.patch_attribute(call.owner, entity_id, iri, given)
        return NgsiResponse(204)

    async def _replace_attribute(self, call: _Call) -> NgsiResponse:
        ctx, body = await self._read_context(call)
        entity_id, name, iri = self._attribute_target(call, ctx)
        attribute = parse_attribute(_object(body), ctx, name=name, now=self.service.now())
        assert attribute is not None
        await self.service.replace_attribute(call.owner, entity_id, iri, attribute)
        return NgsiResponse(204)

    async def _delete_attribute(self, call: _Call) -> NgsiResponse:
        ctx, _ = await self._read_context(call)
        entity_id, _name, iri = self._attribute_target(call, ctx)
        await self.service.delete_attribute(call.owner, entity_id, iri)
        return NgsiResponse(204)

    # --- queries ---------------------------------------------------------------

    def _entity_query(self, call: _Call, ctx: ActiveContext) -> EntityQuery:
        params = call.params
        types = None
        if "type" in params:
            types = [expand_type(t, ctx) for t in params["type"].split(",")]
        ids = [check_entity_id(i) for i in params["id"].split(",")] if "id" in params else None
        pattern = None
        if "idPattern" in params:
            if len(params["idPattern"]) > 256:
                raise BadRequestData("idPattern is limited to 256 characters")
            try:
                pattern = re.compile(params["idPattern"])
            except re.error as exc:
                raise BadRequestData(f"idPattern is not a regular expression: {exc}") from exc
        q = parse_q(params["q"], ctx) if "q" in params else None
        geo = parse_geo_query(params.get("georel"), params.get("geometry"),
                              params.get("coordinates"), params.get("geoproperty"))
        attrs = self._attrs(call, ctx)
        if not any(x is not None for x in (types, ids, pattern, q, geo, attrs)) and (
            params.get("local") != "true"
        ):
            raise BadRequestData(
                "a query names at least one of type, id, idPattern, attrs, q or a geo-query"
            )
        limit = _integer(params.get("limit"), DEFAULT_LIMIT, "limit")
        if limit > MAX_LIMIT:
            raise TooManyResults(f"limit is at most {MAX_LIMIT}")
        count = params.get("count", "false")
        if count not in ("true", "false"):
            raise BadRequestData("count is true or false")
        if limit == 0 and count != "true":
            raise BadRequestData("limit=0 only goes with count=true")
        return EntityQuery(
            types=types, ids=ids, id_pattern=pattern, q=q, attrs=attrs, geo=geo,
            geo_attribute=ctx.expand(geo.geoproperty) if geo is not None else None,
            limit=limit, offset=_integer(params.get("offset"), 0, "offset"),
            count=count == "true",
        )

    async def _query(self, call: _Call) -> NgsiResponse:
        ctx, _ = await self._read_context(call)
        query = self._entity_query(call, ctx)
        fmt, sys_attrs = self._render_options(call)
        warnings: list[str] = []
        if self.remote is None or call.param("local") == "true":
            entities, total = await self.service.query(call.owner, query)
        else:
            entities, total, warnings = await self._query_everywhere(call, query)
        rendered = [render_entity(e, ctx, fmt=fmt, attrs=query.attrs, sys_attrs=sys_attrs)
                    for e in entities]
        extra = [(RESULTS_COUNT, str(total))] if total is not None else []
        extra += [(WARNING_HEADER, w) for w in warnings]
        return self._answer(call, ctx, rendered, extra=extra)

    async def _query_everywhere(
        self, call: _Call, query: EntityQuery
    ) -> tuple[list[Entity], int | None, list[str]]:
        """Clause 4.3.6: this node's matches and every source's, merged by entity id.

        Every group is read from its start to ``offset + limit`` (the most a
        page can need), merged, then paged; ``count`` counts what was merged.
        """
        assert self.remote is not None
        wanted = min(MAX_LIMIT, query.offset + query.limit)
        own, _ = await self.service.query(
            call.owner, replace(query, offset=0, limit=wanted, count=False)
        )
        legs = await self.remote.query(
            call.owner, query, call.params, call.request.exchange_headers
        )
        q = query.q
        groups: list[Sequence[Entity]] = [own]
        groups += [[e for e in leg.entities if q is None or q(e)] for leg in legs]
        merged = merge_entities(groups)
        page = merged[query.offset:query.offset + query.limit]
        warnings = [warning(leg) for leg in legs if leg.failure is not None]
        return page, len(merged) if query.count else None, warnings

    async def _query_post(self, call: _Call) -> NgsiResponse:
        raise InvalidRequest("POST /entityOperations/query is not supported: use GET /entities")

    # --- batch -------------------------------------------------------------------

    async def _batch(self, call: _Call) -> NgsiResponse:
        ctx, body = await self._read_context(call)
        operation = call.segments[1]
        if not isinstance(body, list) or not body:
            raise BadRequestData("a batch body is a non-empty JSON array")
        if len(body) > MAX_BATCH:
            raise BadRequestData(f"a batch has at most {MAX_BATCH} items")
        options = set((call.param("options") or "").split(","))
        if operation == "delete":
            ids = [check_entity_id(item) for item in body]
            return _batch_result(await self.service.batch_delete(call.owner, ids), created=False)
        items: list[Entity | NgsiLdError] = []
        for item in body:
            try:
                items.append(parse_entity(item, ctx, now=self.service.now(),
                                          require_type=operation != "update"))
            except NgsiLdError as exc:
                items.append(exc)
        if operation == "create":
            return _batch_result(await self.service.batch_create(call.owner, items), created=True)
        if operation == "upsert":
            result = await self.service.batch_upsert(
                call.owner, items, replace="update" not in options
            )
            if not result.errors and not result.created:
                return NgsiResponse(204)
            return _batch_result(result, created=True)
        result = await self.service.batch_update(
            call.owner, items, no_overwrite="noOverwrite" in options
        )
        return _batch_result(result, created=False)

    # --- discovery ---------------------------------------------------------------

    async def _types(self, call: _Call) -> NgsiResponse:
        ctx, _ = await self._read_context(call)
        types = await self.service.store.types(call.owner)
        if call.param("details") == "true":
            payload: Any = [
                {"id": t, "type": "EntityType", "typeName": ctx.compact(t),
                 "attributeNames": sorted({ctx.compact(a) for a, _ in attrs})}
                for t, _, attrs in types
            ]
        else:
            payload = {"id": _list_id("EntityTypeList", types), "type": "EntityTypeList",
                       "typeList": [ctx.compact(t) for t, _, _ in types]}
        return self._answer(call, ctx, payload)

    async def _type(self, call: _Call) -> NgsiResponse:
        ctx, _ = await self._read_context(call)
        wanted = expand_type(call.segments[1], ctx)
        for name, count, attrs in await self.service.store.types(call.owner):
            if name == wanted:
                details: dict[str, list[str]] = {}
                for attribute, kind in attrs:
                    details.setdefault(attribute, []).append(kind)
                payload = {
                    "id": name, "type": "EntityTypeInfo", "typeName": ctx.compact(name),
                    "entityCount": count,
                    "attributeDetails": [
                        {"id": a, "type": "Attribute", "attributeName": ctx.compact(a),
                         "attributeTypes": kinds}
                        for a, kinds in sorted(details.items())
                    ],
                }
                return self._answer(call, ctx, payload)
        raise ResourceNotFound(f"no entity of type {call.segments[1]}")

    async def _attributes(self, call: _Call) -> NgsiResponse:
        ctx, _ = await self._read_context(call)
        table = await self.service.store.attributes(call.owner)
        if call.param("details") == "true":
            payload: Any = [_attribute_info(row, ctx) for row in table]
        else:
            payload = {"id": _list_id("AttributeList", table), "type": "AttributeList",
                       "attributeList": [ctx.compact(row[0]) for row in table]}
        return self._answer(call, ctx, payload)

    async def _attribute(self, call: _Call) -> NgsiResponse:
        ctx, _ = await self._read_context(call)
        wanted = ctx.expand(check_name(call.segments[1], "an attribute name"))
        for row in await self.service.store.attributes(call.owner):
            if row[0] == wanted:
                return self._answer(call, ctx, _attribute_info(row, ctx))
        raise ResourceNotFound(f"no attribute {call.segments[1]}")

    # --- @contexts (clause 5.13) -------------------------------------------------

    async def _contexts_list(self, call: _Call) -> NgsiResponse:
        urls = await self.service.store.context_urls()
        return NgsiResponse(200, json.dumps(urls).encode(), [("Content-Type", "application/json")])

    async def _context_add(self, call: _Call) -> NgsiResponse:
        try:
            document = json.loads(call.request.body, object_pairs_hook=_unique_keys)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"the body is not JSON: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("@context"), dict | list):
            raise BadRequestData("a @context document is an object with an @context member")
        digest = hashlib.sha256(
            json.dumps(document, sort_keys=True, separators=_JSON_SEPARATORS).encode()
        ).hexdigest()[:32]
        url = f"urn:ngsi-ld:jsonldContext:{digest}"
        self.contexts.documents.add(url, document)
        try:
            self.contexts.resolve([url])  # it must process, or it is not kept
        except NgsiLdError:
            self.contexts.documents.discard(url)
            raise
        await self.service.store.add_context(url, document, self.service.now())
        return NgsiResponse(201, headers=[("Location", f"{API_ROOT}/jsonldContexts/{url}")])

    async def _context_get(self, call: _Call) -> NgsiResponse:
        url = call.segments[1]
        document = await self.service.store.context(url)
        if document is None:
            raise ResourceNotFound(f"no registered @context {url}")
        return NgsiResponse(200, json.dumps(document).encode(), [("Content-Type", JSON_LD)])

    async def _context_delete(self, call: _Call) -> NgsiResponse:
        url = call.segments[1]
        await self.service.store.remove_context(url)
        self.contexts.documents.discard(url)
        return NgsiResponse(204)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the member {key!r} appears twice")
        result[key] = value
    return result


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequestData("the body is a JSON object")
    return body


def _no_nulls(attrs: dict[str, Any]) -> dict[str, Any]:
    return {name: attribute for name, attribute in attrs.items() if attribute is not None}


def _integer(raw: str | None, default: int, name: str) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequestData(f"{name} is a non-negative integer")
    return int(raw)


def _list_id(kind: str, rows: Sequence[Any]) -> str:
    digest = hashlib.sha256(repr(rows).encode()).hexdigest()[:24]
    return f"urn:ngsi-ld:{kind}:{digest}"


def _attribute_info(
    row: tuple[str, int, list[str], list[str]], ctx: ActiveContext
) -> dict[str, Any]:
    name, count, kinds, types = row
    return {"id": name, "type": "Attribute", "attributeName": ctx.compact(name),
            "attributeCount": count, "attributeTypes": kinds,
            "typeNames": [ctx.compact(t) for t in types]}


def _update_result(result: UpdateResult, ctx: ActiveContext) -> NgsiResponse:
    if not result.not_updated:
        return NgsiResponse(204)
    payload = {
        "updated": [ctx.compact(name) for name in result.updated],
        "notUpdated": [{"attributeName": ctx.compact(name), "reason": reason}
                       for name, reason in result.not_updated],
    }
    return NgsiResponse(207, json.dumps(payload).encode(), [("Content-Type", "application/json")])


def _batch_result(result: BatchResult, *, created: bool) -> NgsiResponse:
    if not result.errors:
        if created:
            return NgsiResponse(201, json.dumps(result.created).encode(),
                                [("Content-Type", "application/json")])
        return NgsiResponse(204)
    payload = {
        "success": result.success,
        "errors": [{"entityId": entity_id, "error": error.problem()}
                   for entity_id, error in result.errors],
    }
    return NgsiResponse(207, json.dumps(payload).encode(), [("Content-Type", "application/json")])
