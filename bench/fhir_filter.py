"""Time the consent filter on a 1 MB FHIR Bundle, in process (target: at most 20 ms).

The Bundle repeats the sandbox's example resources (patients, allergies,
observations, conditions, encounters) until it is 1 MiB; half of the
declared fields are released, as for a typical consent, to the patient
``example`` (whose records most are; ``pat1``'s are withheld whole).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

from certs.identifiers import ServiceId
from policies.declarations import ServiceDeclaration
from policies.filter import FilterLimits, filter_body

__all__ = ["FilterTiming", "bundle_of_size", "time_filter"]

_RESOURCES = (
    "Patient-example.json", "Patient-pat1.json", "AllergyIntolerance-example.json",
    "Observation-example.json", "Condition-example.json", "Encounter-example.json",
)
_FIELDS = (
    "Patient.identifier", "Patient.active", "Patient.name", "Patient.telecom",
    "Patient.gender", "Patient.birthDate", "Patient.address", "Patient.contact",
    "AllergyIntolerance", "Observation", "Condition", "Encounter",
)
_RELEASED = ("Patient.name", "Patient.birthDate", "Patient.gender", "AllergyIntolerance",
             "Observation", "Condition")


@dataclass(frozen=True)
class FilterTiming:
    body_bytes: int
    entries: int
    median_ms: float
    p90_ms: float
    withheld: int


def bundle_of_size(target: int) -> bytes:
    """A FHIR searchset Bundle of at least ``target`` bytes."""
    folder = resources.files("gateway.sandbox").joinpath("data", "fhir")
    samples = [json.loads(folder.joinpath(name).read_text("utf-8")) for name in _RESOURCES]
    entries: list[dict[str, Any]] = []
    size = 0
    while size < target:
        resource = samples[len(entries) % len(samples)]
        entry = {"fullUrl": f"urn:uuid:{uuid.UUID(int=len(entries))}", "resource": resource}
        entries.append(entry)
        size += len(json.dumps(entry, separators=(",", ":")))
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
              "entry": entries}
    return json.dumps(bundle, separators=(",", ":")).encode()


def time_filter(size: int = 1024 * 1024, rounds: int = 30) -> FilterTiming:
    body = bundle_of_size(size)
    declaration = ServiceDeclaration(
        service=ServiceId.parse("BENCH/GOV/B/API/patients"),
        media_types=("application/fhir+json",),
        fields=_FIELDS,
        public_fields=("Patient.active",),
    )
    limits = FilterLimits()  # what a node uses
    times = []
    withheld = 0
    for _ in range(rounds):
        began = time.perf_counter()
        filtered = filter_body(
            body, content_type="application/fhir+json", declaration=declaration,
            subject="example",
            released_fields=_RELEASED, limits=limits,
        )
        times.append((time.perf_counter() - began) * 1000)
        withheld = len(filtered.withheld)
    times.sort()
    return FilterTiming(
        body_bytes=len(body),
        entries=json.loads(body)["total"],
        median_ms=statistics.median(times),
        p90_ms=times[int(len(times) * 0.9) - 1],
        withheld=withheld,
    )


if __name__ == "__main__":
    timing = time_filter()
    print(json.dumps(timing.__dict__))
