"""Whose data a FHIR resource holds, read from the resource itself, never from the request.

A ``Patient`` is about the patient its ``id`` names. Any other resource is about the
patients its subject elements reference: the built-in table below (the usual R4
patient element of each type: ``subject``, ``patient``, ``beneficiary``...), where a
declaration may replace the elements of a type. A subject is established only if every
reference found there names a patient: ``Patient/ID`` (relative, or absolute with
``_history``) or, inside a Bundle, the ``fullUrl`` of a Patient entry. A reference to
anything else (a Group, a contained ``#id``, a conditional ``Patient?identifier=``), or
no reference at all, leaves the subject unknown: the caller withholds such a resource
unless the declaration says its type carries no personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from policies._fieldpath import ITEMS, FhirPath, FieldPath

__all__ = ["DEFAULT_SUBJECT_ELEMENTS", "SubjectRules", "patient_id", "plain_patient_reference"]

# The element of each R4 type that names the patient it is about (the type's primary
# link into the Patient compartment).
DEFAULT_SUBJECT_ELEMENTS: Final[Mapping[str, str]] = {
    "Account": "subject",
    "AdverseEvent": "subject",
    "AllergyIntolerance": "patient",
    "Basic": "subject",
    "BodyStructure": "patient",
    "CarePlan": "subject",
    "CareTeam": "subject",
    "Claim": "patient",
    "ClaimResponse": "patient",
    "ClinicalImpression": "subject",
    "Communication": "subject",
    "CommunicationRequest": "subject",
    "Composition": "subject",
    "Condition": "subject",
    "Consent": "patient",
    "Contract": "subject",
    "Coverage": "beneficiary",
    "CoverageEligibilityRequest": "patient",
    "CoverageEligibilityResponse": "patient",
    "DetectedIssue": "patient",
    "DeviceRequest": "subject",
    "DeviceUseStatement": "subject",
    "DiagnosticReport": "subject",
    "DocumentManifest": "subject",
    "DocumentReference": "subject",
    "Encounter": "subject",
    "EpisodeOfCare": "patient",
    "ExplanationOfBenefit": "patient",
    "FamilyMemberHistory": "patient",
    "Flag": "subject",
    "Goal": "subject",
    "ImagingStudy": "subject",
    "Immunization": "patient",
    "ImmunizationEvaluation": "patient",
    "ImmunizationRecommendation": "patient",
    "Invoice": "subject",
    "List": "subject",
    "Media": "subject",
    "MedicationAdministration": "subject",
    "MedicationDispense": "subject",
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "MolecularSequence": "patient",
    "NutritionOrder": "patient",
    "Observation": "subject",
    "Procedure": "subject",
    "QuestionnaireResponse": "subject",
    "RelatedPerson": "patient",
    "RequestGroup": "subject",
    "ResearchSubject": "individual",
    "RiskAssessment": "subject",
    "ServiceRequest": "subject",
    "Specimen": "subject",
    "SupplyDelivery": "patient",
    "SupplyRequest": "deliverTo",
    "VisionPrescription": "patient",
}

_ID = r"[A-Za-z0-9\-.]{1,64}"
_PATIENT_ID = re.compile(_ID)
_PLAIN_PATIENT = re.compile(
    rf"(?:https?://[^?#\s]+/)?Patient/({_ID})(?:/_history/{_ID})?"
)


def patient_id(value: object) -> str | None:
    """``value`` if it is a well-formed FHIR id."""
    return value if type(value) is str and _PATIENT_ID.fullmatch(value) else None


def plain_patient_reference(reference: str) -> str | None:
    """The patient id of a literal ``Patient/ID`` reference (relative or absolute)."""
    match = _PLAIN_PATIENT.fullmatch(reference)
    return match.group(1) if match else None


class SubjectRules:
    """Where each resource type names its subject, and which types have none."""

    __slots__ = ("all_impersonal", "elements", "impersonal")

    def __init__(self, declared: Iterable[FhirPath] = (), impersonal: Iterable[str] = ()) -> None:
        elements: dict[str, list[FieldPath]] = {
            resource_type: [FieldPath((name,))]
            for resource_type, name in DEFAULT_SUBJECT_ELEMENTS.items()
        }
        replaced: set[str] = set()
        for path in declared:
            assert path.path is not None
            if path.resource_type not in replaced:
                elements[path.resource_type] = []
                replaced.add(path.resource_type)
            elements[path.resource_type].append(path.path)
        self.elements: dict[str, tuple[FieldPath, ...]] = {
            key: tuple(value) for key, value in elements.items()
        }
        kinds = frozenset(impersonal)
        self.all_impersonal = "*" in kinds
        self.impersonal = kinds - {"*"}

    def is_impersonal(self, resource_type: str) -> bool:
        return self.all_impersonal or resource_type in self.impersonal

    def subject_keys(self, resource_type: str) -> frozenset[str]:
        """Top-level members naming the subject (kept, reduced to the reference)."""
        return frozenset(
            path.steps[0]
            for path in self.elements.get(resource_type, ())
            if len(path.steps) == 1
        )

    def subjects_of(
        self,
        resource: Mapping[str, object],
        resource_type: str,
        *,
        bundle_patients: Mapping[str, str],
        contained: bool,
    ) -> frozenset[str] | None:
        """The patients ``resource`` is about, or None if that cannot be established."""
        if resource_type == "Patient":
            # A contained Patient's id is local to its container, not a patient's id.
            found = None if contained else patient_id(resource.get("id"))
            return None if found is None else frozenset({found})
        paths = self.elements.get(resource_type)
        if not paths:
            return None
        subjects: set[str] = set()
        for path in paths:
            for value in _values(resource, path.steps):
                subject = _reference_subject(value, bundle_patients)
                if subject is None:
                    return None
                subjects.add(subject)
        return frozenset(subjects) if subjects else None


def _values(value: object, steps: tuple[str, ...]) -> Iterable[object]:
    """Everything at ``steps`` below ``value``, stepping through arrays as FHIRPath does."""
    if type(value) is list:
        for item in value:
            yield from _values(item, steps)
        return
    if not steps:
        yield value
        return
    step, rest = steps[0], steps[1:]
    if step == ITEMS:
        yield from _values(value, rest)
    elif type(value) is dict and step in value:
        yield from _values(value[step], rest)


def _reference_subject(value: object, bundle_patients: Mapping[str, str]) -> str | None:
    if type(value) is not dict:
        return None
    reference = value.get("reference")
    if type(reference) is not str:
        return None
    if reference in bundle_patients:
        return bundle_patients[reference]
    return plain_patient_reference(reference)
