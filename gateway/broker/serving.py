"""A provider's NGSI-LD service answered from its own entity store.

A service whose backend is ``ngsi-ld:store`` (``gateway.services.NGSI_LD_STORE``)
is served by the provider node itself: after the usual checks of the peer
exchange (signature, access right, consent), the request reaches the node's
NGSI-LD API as a read of the provider subsystem's own entities. Only reads
are served (query, retrieval by id, ``/types``, ``/attributes``): what a
provider publishes, it publishes to its own node, never through a peer.

Names arrive expanded (a consumer node expands them before it sends the leg,
``federation.py``), so the request needs no user ``@context``: the answer is
compacted with the core context only, and a consumer node expands it again.
"""

from __future__ import annotations

import re

from gateway.broker.errors import InvalidRequest
from gateway.broker.views import NgsiLdApi, NgsiRequest, NgsiResponse, problem_response
from gateway.protocol import ExchangeRequest
from gateway.relay import response_headers_from
from gateway.spool import SpooledBody

__all__ = ["answer_from_store"]

_READABLE = re.compile(r"/(entities|types|attributes)(/[^/]+)?/?")


async def answer_from_store(
    api: NgsiLdApi, request: ExchangeRequest
) -> tuple[int, tuple[tuple[str, str], ...], SpooledBody]:
    """The NGSI-LD answer of the provider subsystem's own store, as a backend's."""
    if request.method != "GET" or not _READABLE.fullmatch(request.service_path):
        response = problem_response(InvalidRequest(
            "an NGSI-LD service of a node answers GET on /entities, /types and /attributes"
        ))
        response.status = 405
        response.headers.append(("Allow", "GET"))
    else:
        accept = [value for name, value in request.headers if name.lower() == "accept"]
        response = await api.handle(
            str(request.service.subsystem),
            NgsiRequest(
                method="GET",
                path=request.service_path,
                query=request.query or "",
                headers={"Accept": ",".join(accept)} if accept else {},
            ),
        )
    # As a backend's would be: in the form the consumer node rebuilds and checks.
    return response.status, response_headers_from(response.headers), _spooled(response)


def _spooled(response: NgsiResponse) -> SpooledBody:
    body = SpooledBody(memory_limit=max(len(response.body), 1))
    body.feed(response.body)
    return body
