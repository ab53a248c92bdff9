"""FHIR R4 validity of what the filter releases, checked by an independent library.

``fhir.resources`` (8.x) models R5 by default; its ``R4B`` package models FHIR 4.3,
whose resources used here (Patient, Observation, Bundle, Condition, Consent,
AllergyIntolerance, MedicationRequest, Encounter, Composition, ...) have the same
elements and cardinalities as R4 (R4B changed the medication-definition, evidence and
subscription resources). The 6.x releases that model R4 itself need pydantic 1, which
the rest of the toolchain has left. Pydantic models do not check FHIR's "no empty
object, array or string" rule (ele-1), so that is checked here as well.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

__all__ = ["assert_valid_r4"]


def assert_valid_r4(document: Any) -> None:
    """Raise AssertionError unless ``document`` is a valid FHIR R4 resource."""
    assert isinstance(document, dict)
    assert isinstance(document.get("resourceType"), str)
    _no_empty(document, document["resourceType"])
    model = get_fhir_model_class(document["resourceType"])
    try:
        model.model_validate(document)
    except ValueError as exc:
        raise AssertionError(f"not valid FHIR R4: {exc}") from exc


def _no_empty(value: Any, path: str) -> None:
    if isinstance(value, dict):
        assert value, f"empty object at {path}"
        for key, member in value.items():
            _no_empty(member, f"{path}.{key}")
    elif isinstance(value, list):
        assert value, f"empty array at {path}"
        for item in value:
            _no_empty(item, f"{path}[]")
    elif isinstance(value, str):
        assert value.strip() or path.endswith(".div"), f"empty string at {path}"
