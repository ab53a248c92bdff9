"""Rebuild the bundled Smart Data Models ``@context`` files from the SDM metadata.

Usage (needs ``pip install pysmartdatamodels``, which ships the metadata of every
model; not a dependency of Renkei)::

    python -m tests.tools.sdm_contexts dataModel.Transportation > \
        gateway/broker/convert/contexts/Transportation.jsonld

A subject's context maps each property and model name of its models to the IRI the
metadata gives, plus the fixed GeoJSON and JSON-LD terms. Run on
``dataModel.UrbanMobility`` it reproduces the published context file byte for byte,
which is how the generated files were checked.
"""

from __future__ import annotations

import gzip
import json
import sys
from importlib import resources
from typing import Any


def subject_context(subject: str) -> dict[str, Any]:
    metadata = resources.files("pysmartdatamodels") / "model-assets/smartdatamodels.json.gz"
    with metadata.open("rb") as raw, gzip.open(raw) as unpacked:
        rows = json.load(unpacked)
    terms: dict[str, Any] = {}
    for row in rows:
        if row.get("repoName") != subject:
            continue
        terms[row["dataModel"]] = f"https://smartdatamodels.org/{subject}/{row['dataModel']}"
        if isinstance(row["context"], str):
            terms[row["property"]] = row["context"]
    for name in ("bbox", "coordinates"):
        terms[name] = {"@container": "@list", "@id": f"https://purl.org/geojson/vocab#{name}"}
    terms.update({"id": "@id", "type": "@type", "ngsi-ld": "https://uri.etsi.org/ngsi-ld/",
                  "location": "https://uri.etsi.org/ngsi-ld/location"})
    return {"@context": dict(sorted(terms.items()))}


if __name__ == "__main__":
    print(json.dumps(subject_context(sys.argv[1]), indent=4, ensure_ascii=False))
