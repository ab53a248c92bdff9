"""The Smart Data Models ``@context`` documents the converters' entities name, bundled.

Entities carry the published URL of their subject's context; the documents under
those URLs ship in ``contexts/`` so that nothing is fetched to interpret them.
``UrbanMobility.jsonld`` is the published file; ``Transportation.jsonld`` and
``Environment.jsonld`` are rebuilt from the Smart Data Models metadata by
``tests/tools/sdm_contexts.py``, the generator that reproduces the published
UrbanMobility file byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "CORE_CONTEXT",
    "ENVIRONMENT_CONTEXT",
    "TRANSPORTATION_CONTEXT",
    "URBAN_MOBILITY_CONTEXT",
    "bundled_context",
    "bundled_context_urls",
    "context_terms",
]

_SDM = "https://raw.githubusercontent.com/smart-data-models/"
URBAN_MOBILITY_CONTEXT = _SDM + "dataModel.UrbanMobility/master/context.jsonld"
TRANSPORTATION_CONTEXT = _SDM + "dataModel.Transportation/master/context.jsonld"
ENVIRONMENT_CONTEXT = _SDM + "dataModel.Environment/master/context.jsonld"
# The NGSI-LD core context goes last in every entity's @context (GS CIM 009 5.5.7).
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

_FILES = {
    URBAN_MOBILITY_CONTEXT: "UrbanMobility.jsonld",
    TRANSPORTATION_CONTEXT: "Transportation.jsonld",
    ENVIRONMENT_CONTEXT: "Environment.jsonld",
}
_DIRECTORY = Path(__file__).with_name("contexts")


def bundled_context_urls() -> tuple[str, ...]:
    return tuple(_FILES)


def bundled_context(url: str) -> dict[str, Any]:
    """The bundled document published under ``url``; ``KeyError`` if none is bundled."""
    document: dict[str, Any] = json.loads(
        (_DIRECTORY / _FILES[url]).read_text(encoding="utf-8")
    )
    return document


def context_terms(url: str) -> frozenset[str]:
    """The terms a bundled context defines (the attribute and type names it knows)."""
    return frozenset(bundled_context(url)["@context"])
