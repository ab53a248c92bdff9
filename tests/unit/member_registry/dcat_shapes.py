"""Validating a graph with pyshacl against the checked-in official DCAT-AP 3.0.0 shapes."""

from __future__ import annotations

from pathlib import Path

from pyshacl import validate
from rdflib import Graph

SHAPES_FILE = Path(__file__).parents[2] / "vectors" / "dcat-ap" / "dcat-ap-3.0.0-SHACL-excerpt.ttl"


def shapes() -> Graph:
    return Graph().parse(SHAPES_FILE, format="turtle")


def violations(data: Graph) -> str:
    """pyshacl's report; empty when the graph conforms (no inference: nothing is assumed)."""
    conforms, _, report = validate(data, shacl_graph=shapes(), inference="none")
    return "" if conforms else str(report)
