"""Access rights, service and purpose declarations, per-field consent and the JSON field filter.

The public API is re-exported here; modules starting with ``_`` are private.

Names are imported on first use (PEP 562), so a command that needs one module
(``renkei --help``) does not pay for all of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {
    "ALL_DECLARED": "policies.consent_desk",
    "AccessPolicy": "policies.access",
    "AccessRight": "policies.access",
    "Consent": "policies.consent",
    "ConsentRequest": "policies.consent_desk",
    "FhirPath": "policies.filter",
    "FieldPath": "policies.filter",
    "FilterLimits": "policies.filter",
    "FilterOutcome": "policies.filter",
    "FilteredBody": "policies.filter",
    "LocalGroupRef": "policies.access",
    "PurposeDeclaration": "policies.declarations",
    "ServiceDeclaration": "policies.declarations",
    "SubjectLocator": "policies.declarations",
    "SubjectRules": "policies.filter",
    "check_consent_fields": "policies.consent",
    "check_consent_request": "policies.consent_desk",
    "decode_content": "policies.filter",
    "filter_body": "policies.filter",
    "filter_fhir_json": "policies.filter",
    "filter_json": "policies.filter",
    "parse_grantee": "policies.access",
    "released_fields": "policies.consent",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
