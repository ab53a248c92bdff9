"""Errors of the policy library, one tree, each with a stable ``code``.

    PolicyError                      policies.error
    ├── AccessDenied                 server.serverproxy.access_denied
    ├── DeclarationError             policies.declaration_invalid
    ├── PurposeRequired              server.serverproxy.purpose_required
    ├── PurposeNotDeclared           server.serverproxy.purpose_undeclared
    ├── SubjectRequired              server.serverproxy.subject_required
    ├── ConsentError                 policies.consent_invalid
    │   ├── ConsentNotFound          policies.consent_not_found
    │   └── FhirConsentRefused       policies.fhir_consent_refused
    ├── FilterError                  server.serverproxy.response_unfilterable
    │   ├── UnsupportedMediaType     policies.unsupported_media_type
    │   ├── UnsupportedCharset       policies.unsupported_charset
    │   ├── UnsupportedEncoding      policies.unsupported_encoding
    │   ├── BodyInvalid              policies.body_invalid
    │   ├── BodyTooLarge             policies.body_too_large
    │   └── BodyTooDeep              policies.body_too_deep
    ├── ReleaseRefused               server.serverproxy.release_refused
    │   ├── ResourceWithheld         server.serverproxy.resource_withheld
    │   └── DocumentWithheld         server.serverproxy.document_withheld
    ├── AccessRightNotFound          policies.access_right_not_found
    ├── ReceiptError                 policies.receipt_invalid
    ├── PolicyStoreError             policies.store_failed
    └── PolicyFileError              policies.file_invalid

The codes prefixed ``server.serverproxy.`` are shown to consumers as ``X-Road-Error``;
the ``policies.*`` codes of ``FilterError`` subclasses say why a response was refused
(for the node's log and audit row); the gateway may report them as the parent code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

__all__ = [
    "AccessDenied",
    "AccessRightNotFound",
    "BodyInvalid",
    "BodyTooDeep",
    "BodyTooLarge",
    "ConsentError",
    "ConsentNotFound",
    "DeclarationError",
    "DocumentWithheld",
    "FhirConsentRefused",
    "FilterError",
    "PolicyError",
    "PolicyFileError",
    "PolicyStoreError",
    "PurposeNotDeclared",
    "PurposeRequired",
    "ReceiptError",
    "ReleaseRefused",
    "ResourceWithheld",
    "SubjectRequired",
    "UnsupportedCharset",
    "UnsupportedEncoding",
    "UnsupportedMediaType",
]


class PolicyError(Exception):
    """Base of every error raised by ``policies``."""

    code: ClassVar[str] = "policies.error"


class AccessDenied(PolicyError):
    """No access right allows this client to make this query (deny by default)."""

    code: ClassVar[str] = "server.serverproxy.access_denied"


class DeclarationError(PolicyError):
    """A declaration, access right, field path or path pattern is malformed."""

    code: ClassVar[str] = "policies.declaration_invalid"


class PurposeRequired(PolicyError):
    """A consent-governed service was called without ``Renkei-Purpose``."""

    code: ClassVar[str] = "server.serverproxy.purpose_required"


class PurposeNotDeclared(PolicyError):
    """The consumer has not declared the purpose code it sent."""

    code: ClassVar[str] = "server.serverproxy.purpose_undeclared"


class SubjectRequired(PolicyError):
    """A consent-governed request does not name its data subject."""

    code: ClassVar[str] = "server.serverproxy.subject_required"


class ConsentError(PolicyError):
    """A consent is malformed or does not fit the service's declaration."""

    code: ClassVar[str] = "policies.consent_invalid"


class ConsentNotFound(ConsentError):
    """No consent has the given id."""

    code: ClassVar[str] = "policies.consent_not_found"


class FhirConsentRefused(ConsentError):
    """A FHIR Consent the node cannot enforce faithfully; ``problems`` are
    (element, why) pairs, each naming the FHIR element."""

    code: ClassVar[str] = "policies.fhir_consent_refused"

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{element}: {why}" for element, why in self.problems))


class FilterError(PolicyError):
    """A response body cannot be filtered safely, so it must not be forwarded."""

    code: ClassVar[str] = "server.serverproxy.response_unfilterable"


class UnsupportedMediaType(FilterError):
    """The body's media type is not one the declaration lists as filterable JSON."""

    code: ClassVar[str] = "policies.unsupported_media_type"


class UnsupportedCharset(FilterError):
    """The body declares a charset other than UTF-8."""

    code: ClassVar[str] = "policies.unsupported_charset"


class UnsupportedEncoding(FilterError):
    """The body has a Content-Encoding this library cannot decode."""

    code: ClassVar[str] = "policies.unsupported_encoding"


class BodyInvalid(FilterError):
    """The body is not valid UTF-8 JSON, has duplicate keys or is not the expected shape."""

    code: ClassVar[str] = "policies.body_invalid"


class BodyTooLarge(FilterError):
    """The body, its decompressed form, or a number in it exceeds the limits."""

    code: ClassVar[str] = "policies.body_too_large"


class BodyTooDeep(FilterError):
    """The body nests deeper than the limit."""

    code: ClassVar[str] = "policies.body_too_deep"


class ReleaseRefused(PolicyError):
    """The body could be filtered, but what consent leaves of it cannot be released."""

    code: ClassVar[str] = "server.serverproxy.release_refused"


class ResourceWithheld(ReleaseRefused):
    """The response's only resource is withheld whole: it is about another data subject
    than the request names, its subject cannot be established, or consent leaves out an
    element FHIR requires. A stub would misstate it, so nothing is released."""

    code: ClassVar[str] = "server.serverproxy.resource_withheld"


class DocumentWithheld(ReleaseRefused):
    """A FHIR document Bundle is attested as a whole: it is released whole or not at all."""

    code: ClassVar[str] = "server.serverproxy.document_withheld"


class AccessRightNotFound(PolicyError):
    """No access right has the given id."""

    code: ClassVar[str] = "policies.access_right_not_found"


class PolicyStoreError(PolicyError):
    """The policy database failed or holds a row the library cannot read."""

    code: ClassVar[str] = "policies.store_failed"


class ReceiptError(PolicyError):
    """A consent receipt's signature or content does not verify."""

    code: ClassVar[str] = "policies.receipt_invalid"


class PolicyFileError(PolicyError):
    """A policy file is malformed; the message names the file, table and key."""

    code: ClassVar[str] = "policies.file_invalid"

    def __init__(self, message: str, errors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors or (message,)
