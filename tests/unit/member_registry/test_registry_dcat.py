"""The catalogue's DCAT-AP graph against the official DCAT-AP 3.0.0 SHACL shapes (pyshacl)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF

from certs.identifiers import NodeId, ServiceId
from member_registry.catalogue import CatalogueEntry
from member_registry.dcat import catalogue_graph, service_iri
from tests.unit.member_registry.dcat_shapes import SHAPES_FILE, shapes, violations
from tests.unit.member_registry.registry_samples import EHR, NODE1, NOW

SH = Namespace("http://www.w3.org/ns/shacl#")
BASE = "https://registry.example"


def _entries() -> list[CatalogueEntry]:
    return [
        CatalogueEntry(
            service=ServiceId.parse(f"{EHR}/patients"),
            node=NODE1,
            title="Patient records",
            description="FHIR R4 patient records, released per consent",
            declaration={"consent_governed": True},
            openapi={"openapi": "3.1.0"},
            published_at=NOW,
        ),
        # No OpenAPI description: still a titled, described service.
        CatalogueEntry(
            service=ServiceId.parse(f"{EHR}/feeds"),
            node=NodeId.parse(str(NODE1)),
            title="feeds",
            description="News feeds",
            declaration=None,
            openapi=None,
            published_at=NOW + timedelta(minutes=1),
        ),
    ]


def _graph() -> Graph:
    return catalogue_graph(
        _entries(), instance="RENKEI", member_names={str(EHR.member): "Hospital A"},
        base_url=BASE,
    )


def test_the_catalogue_conforms_to_dcat_ap_3() -> None:
    assert violations(_graph()) == ""


def test_every_class_of_the_graph_is_covered_by_the_checked_in_shapes() -> None:
    """The excerpt holds every official shape whose target class the graph uses.

    The official file's header lists all its node shapes; foaf:Agent has none, so no
    shape left out of the excerpt can apply to this graph.
    """
    shape_graph = shapes()
    targets = set(shape_graph.objects(None, SH.targetClass))
    official = {str(member) for member in shape_graph.objects(None, RDFS.member)}
    assert len(official) == 41
    assert not any(name.endswith("#foaf:AgentShape") for name in official)
    used = set(_graph().objects(None, RDF.type))
    assert used - targets == {FOAF.Agent}
    for target in used & targets:
        # Every official shape of a used class is in the excerpt.
        name = f"#{target.n3(shape_graph.namespace_manager).strip('<>')}Shape"
        assert any(member.endswith(name) for member in official), name


def test_the_catalogue_and_services_have_what_dcat_ap_requires() -> None:
    graph = _graph()
    catalogue = URIRef(f"{BASE}/catalogue/dcat")
    assert (catalogue, DCTERMS.publisher, None) in graph
    feeds = URIRef(service_iri(BASE, ServiceId.parse(f"{EHR}/feeds")))
    assert graph.value(feeds, DCTERMS.title) == Literal("feeds")
    assert graph.value(feeds, DCTERMS.description) == Literal("News feeds")
    assert graph.value(feeds, DCAT.endpointDescription) is None
    patients = URIRef(service_iri(BASE, ServiceId.parse(f"{EHR}/patients")))
    # The service id's "/" is encoded: one path segment, as the route expects.
    assert str(patients) == f"{BASE}/catalogue/services/RENKEI%2FGOV%2FHOSP-A%2FEHR%2Fpatients"
    assert graph.value(patients, DCAT.endpointDescription) == URIRef(f"{patients}/openapi.json")
    for endpoint in graph.objects(None, DCAT.endpointURL):
        assert str(endpoint).startswith(f"{BASE}/")


def _without(graph: Graph, triple: tuple[object, object, object]) -> Graph:
    changed = Graph()
    for existing in graph:
        if not (
            (triple[0] is None or existing[0] == triple[0])
            and (triple[1] is None or existing[1] == triple[1])
            and (triple[2] is None or existing[2] == triple[2])
        ):
            changed.add(existing)
    return changed


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # The catalogue's mandatory publisher missing.
        (lambda g: _without(g, (URIRef(f"{BASE}/catalogue/dcat"), DCTERMS.publisher, None)),
         "publisher"),
        # A publisher that is not a foaf:Agent (range).
        (lambda g: _without(g, (URIRef(f"{BASE}/catalogue/dcat#publisher"), RDF.type, None)),
         "publisher"),
        # An endpoint URL given as a string, not a resource.
        (lambda g: g.add((URIRef(service_iri(BASE, ServiceId.parse(f"{EHR}/feeds"))),
                          DCAT.endpointURL, Literal("urn:renkei:r1:feeds"))),
         "dcat:endpointURL"),
        # A service without a title.
        (lambda g: _without(g, (None, DCTERMS.title, Literal("feeds"))), "title"),
    ],
)
def test_the_shapes_catch_what_the_old_export_got_wrong(change: object, expected: str) -> None:
    broken = change(_graph())  # type: ignore[operator]
    report = violations(broken)
    assert report, "the shapes accepted a broken catalogue"
    assert expected in report


def test_the_shapes_file_names_its_source() -> None:
    readme = (SHAPES_FILE.parent / "README.md").read_text("utf-8")
    assert "88d2947f2df5af19cfda95f2535c6ad1faf2bae9" in readme
    assert "CC BY 4.0" in readme
