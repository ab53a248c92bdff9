"""Access rights, service and purpose declarations, per-field consent and the JSON field filter.

The public API is re-exported here; modules starting with ``_`` are private.
"""

from policies.access import AccessPolicy, AccessRight, LocalGroupRef, parse_grantee
from policies.consent import Consent, check_consent_fields, released_fields
from policies.consent_desk import ALL_DECLARED, ConsentRequest, check_consent_request
from policies.declarations import PurposeDeclaration, ServiceDeclaration, SubjectLocator
from policies.filter import (
    FhirPath,
    FieldPath,
    FilteredBody,
    FilterLimits,
    FilterOutcome,
    SubjectRules,
    decode_content,
    filter_body,
    filter_fhir_json,
    filter_json,
)

__all__ = [
    "ALL_DECLARED",
    "AccessPolicy",
    "AccessRight",
    "Consent",
    "ConsentRequest",
    "FhirPath",
    "FieldPath",
    "FilterLimits",
    "FilterOutcome",
    "FilteredBody",
    "LocalGroupRef",
    "PurposeDeclaration",
    "ServiceDeclaration",
    "SubjectLocator",
    "SubjectRules",
    "check_consent_fields",
    "check_consent_request",
    "decode_content",
    "filter_body",
    "filter_fhir_json",
    "filter_json",
    "parse_grantee",
    "released_fields",
]
