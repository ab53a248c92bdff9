"""The API catalogue as DCAT-AP 3.0: one ``dcat:DataService`` per published service.

The graph is built with rdflib and serialised by it (JSON-LD or Turtle), so every
IRI, literal and datatype is what RDF says it is. Every IRI in it resolves at the
registry: the catalogue and its agents are ``{base}/catalogue/dcat`` and fragments of
it; a service is ``{base}/catalogue/services/{id}`` (its catalogue entry and how to
call it), and its description ``.../openapi.json``, the service id percent-encoded as
one path segment. ``tests/unit/member_registry/test_registry_dcat.py`` validates the
graph against the official DCAT-AP 3.0.0 SHACL shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote

from rdflib import RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF

from certs.identifiers import MemberId, ServiceId
from member_registry.catalogue import CatalogueEntry

__all__ = ["catalogue_graph", "jsonld_context", "member_iri", "service_iri"]

_CONTEXT = {
    "dcat": str(DCAT),
    "dct": str(DCTERMS),
    "foaf": str(FOAF),
    "rdfs": str(RDFS),
    "xsd": str(XSD),
}


def service_iri(base_url: str, service: ServiceId) -> str:
    """The registry's page of a service: ``/`` inside the id is encoded, as one segment."""
    return f"{base_url}/catalogue/services/{quote(str(service), safe='')}"


def member_iri(base_url: str, member: MemberId) -> str:
    return f"{base_url}/catalogue/dcat#member-{quote(str(member), safe='')}"


def catalogue_graph(
    entries: Iterable[CatalogueEntry],
    *,
    instance: str,
    member_names: Mapping[str, str],
    base_url: str,
) -> Graph:
    """The DCAT-AP graph of the catalogue."""
    graph = Graph()
    for prefix, namespace in _CONTEXT.items():
        graph.bind(prefix, Namespace(namespace))
    catalogue = URIRef(f"{base_url}/catalogue/dcat")
    operator = URIRef(f"{base_url}/catalogue/dcat#publisher")
    graph.add((catalogue, RDF.type, DCAT.Catalog))
    graph.add((catalogue, DCTERMS.title, Literal(f"Renkei API catalogue of {instance}", lang="en")))
    graph.add((catalogue, DCTERMS.description, Literal(
        f"The services the members of the {instance} federation publish; call them through "
        "your own Renkei (X-Road REST) node.", lang="en")))
    graph.add((catalogue, DCTERMS.publisher, operator))
    graph.add((operator, RDF.type, FOAF.Agent))
    graph.add((operator, FOAF.name, Literal(f"Member registry of {instance}")))
    latest = None
    for entry in entries:
        latest = entry.published_at if latest is None else max(latest, entry.published_at)
        _add_service(graph, catalogue, entry, member_names, base_url)
    if latest is not None:
        graph.add((catalogue, DCTERMS.modified, Literal(latest, datatype=XSD.dateTime)))
    return graph


def _add_service(
    graph: Graph,
    catalogue: URIRef,
    entry: CatalogueEntry,
    member_names: Mapping[str, str],
    base_url: str,
) -> None:
    node = URIRef(service_iri(base_url, entry.service))
    member = entry.service.member
    publisher = URIRef(member_iri(base_url, member))
    graph.add((catalogue, DCAT.service, node))
    graph.add((node, RDF.type, DCAT.DataService))
    graph.add((node, DCTERMS.identifier, Literal(str(entry.service))))
    graph.add((node, DCTERMS.title, Literal(entry.title)))
    graph.add((node, DCTERMS.description, Literal(entry.description or entry.title)))
    graph.add((node, DCTERMS.modified, Literal(entry.published_at, datatype=XSD.dateTime)))
    graph.add((node, DCTERMS.publisher, publisher))
    graph.add((publisher, RDF.type, FOAF.Agent))
    graph.add((publisher, FOAF.name, Literal(member_names.get(str(member), str(member)))))
    # The registry's page of the service says how to reach it: through one's own node.
    graph.add((node, DCAT.endpointURL, node))
    graph.add((node, RDF.type, RDFS.Resource))
    if entry.openapi is not None:
        description = URIRef(f"{node}/openapi.json")
        graph.add((node, DCAT.endpointDescription, description))
        graph.add((description, RDF.type, RDFS.Resource))


def jsonld_context() -> dict[str, str]:
    return dict(_CONTEXT)
