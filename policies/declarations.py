"""Service declarations (what a provider's service returns and how its data subject is
found) and purpose declarations (why a consumer asks)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from certs.identifiers import ServiceId, SubsystemId
from policies._fieldpath import RESOURCE_TYPE_RE, FhirPath, FieldPath
from policies._mediatype import FHIR_JSON
from policies._pathpattern import split_request_path
from policies.errors import DeclarationError, SubjectRequired

__all__ = [
    "DEFAULT_SUBJECT_HEADER",
    "PurposeDeclaration",
    "ServiceDeclaration",
    "SubjectLocator",
]

DEFAULT_SUBJECT_HEADER = "Renkei-Subject"
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
_QUERY_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_PURPOSE_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SUBJECT_SLOT = "{subject}"
_REST = "**"
_MAX_SUBJECT = 255
# Cookies are the backend's session state with its own callers; no consumer gets them.
_NEVER_RELEASED_HEADERS = frozenset({"set-cookie", "set-cookie2"})

Values = Callable[[str], Sequence[str]]


def _check_subject(value: str, where: str) -> str:
    if not value or len(value) > _MAX_SUBJECT:
        raise SubjectRequired(f"the data subject in {where} is empty or too long")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise SubjectRequired(f"the data subject in {where} contains a control character")
    return value


@dataclass(frozen=True, slots=True)
class SubjectLocator:
    """Where a request names its data subject: a header, a path template or a query
    parameter. Build with :meth:`header`, :meth:`path` or :meth:`query`."""

    kind: Literal["header", "path", "query"]
    name: str

    @classmethod
    def header(cls, name: str = DEFAULT_SUBJECT_HEADER) -> SubjectLocator:
        return cls("header", name)

    @classmethod
    def path(cls, template: str) -> SubjectLocator:
        return cls("path", template)

    @classmethod
    def query(cls, parameter: str) -> SubjectLocator:
        return cls("query", parameter)

    def __post_init__(self) -> None:
        if self.kind == "header" and not _HEADER_NAME.fullmatch(self.name):
            raise DeclarationError(f"subject header name {self.name!r} is malformed")
        if self.kind == "query" and not _QUERY_NAME.fullmatch(self.name):
            raise DeclarationError(f"subject query parameter {self.name!r} is malformed")
        if self.kind == "path":
            segments = self.name.split("/")
            if (
                not self.name.startswith("/")
                or segments.count(_SUBJECT_SLOT) != 1
                or any(not part for part in segments[1:])
                or any("{" in part or "}" in part for part in segments if part != _SUBJECT_SLOT)
                or any("*" in part for part in segments[:-1])
                or ("*" in segments[-1] and segments[-1] != _REST)
            ):
                raise DeclarationError(
                    f"subject path template {self.name!r} must start with '/', contain "
                    "'{subject}' once as a whole segment and may end in '/**', "
                    "e.g. /Patient/{subject} or /Patient/{subject}/**"
                )
        if self.kind not in ("header", "path", "query"):
            raise DeclarationError(f"subject locator kind {self.kind!r} is unknown")

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    def locate(self, *, headers: Values, path: str, query: Values) -> str:
        """The data subject of a request, or SubjectRequired.

        ``headers``/``query`` return every value of a name (e.g. ``multidict.getall``);
        ``path`` is the raw request path after the service code (as for
        ``AccessPolicy.check_query``); its segments are percent-decoded one by one. A
        subject given more than once is ambiguous and refused.
        """
        if self.kind == "path":
            split = split_request_path(path)
            if split is None:
                raise SubjectRequired("the request path cannot be split unambiguously")
            segments: Sequence[str] = split
            template = self.name[1:].split("/")
            if template[-1] == _REST:
                # Trailing "/**": any further segments (e.g. /Patient/7/$everything).
                template = template[:-1]
                segments = segments[: len(template)]
            if len(template) != len(segments):
                raise SubjectRequired(f"the request path does not match {self.name}")
            subject: str | None = None
            for expected, actual in zip(template, segments, strict=True):
                if expected == _SUBJECT_SLOT:
                    subject = actual
                elif expected != actual:
                    raise SubjectRequired(f"the request path does not match {self.name}")
            assert subject is not None
            return _check_subject(subject, "the path")
        values = headers(self.name) if self.kind == "header" else query(self.name)
        if len(values) != 1:
            raise SubjectRequired(f"the request must give {self.kind} {self.name} exactly once")
        return _check_subject(values[0], f"{self.kind} {self.name}")


@dataclass(frozen=True, slots=True)
class ServiceDeclaration:
    """What a provider's service returns, which fields are public, and consent rules.

    ``fields`` are field paths (FHIR paths ``Type.path`` when the service declares
    ``application/fhir+json``); ``public_fields`` are released without consent.

    ``subject`` says where a *request* names its data subject; that name only narrows
    what is released. Whose data a response holds is read from the data itself:
    ``subject_fields`` are the elements naming it (FHIR: references such as
    ``Observation.subject``, added to or replacing per type the built-in R4 table,
    ``Patient.id`` always; plain JSON: field paths whose values are the subject).
    ``impersonal`` lists the FHIR resource types that carry no personal data (released
    under the request's consent without a subject of their own), or ``*``: the whole
    service carries none. ``response_headers`` are the backend response headers a
    consent-governed service may pass to the consumer (besides the content type).
    """

    service: ServiceId
    media_types: tuple[str, ...]
    fields: tuple[str, ...]
    public_fields: tuple[str, ...] = ()
    consent_governed: bool = True
    subject: SubjectLocator = SubjectLocator.header()  # noqa: RUF009 - frozen value
    description: str = ""
    subject_fields: tuple[str, ...] = ()
    impersonal: tuple[str, ...] = ()
    response_headers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "media_types",
            "fields",
            "public_fields",
            "subject_fields",
            "impersonal",
            "response_headers",
        ):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise DeclarationError(f"{name} of {self.service} must be a tuple of strings")
        if not self.media_types:
            raise DeclarationError(f"service {self.service} declares no media type")
        for media_type in self.media_types:
            if not _MEDIA_TYPE.fullmatch(media_type):
                raise DeclarationError(
                    f"media type {media_type!r} must be a lower-case type/subtype "
                    "without parameters"
                )
        parse = FhirPath.parse if self.is_fhir else FieldPath.parse
        for field in self.fields:
            parse(field)
        for label, values in (("fields", self.fields), ("public_fields", self.public_fields)):
            if len(set(values)) != len(values):
                raise DeclarationError(f"{label} of {self.service} lists a path twice")
        unknown = sorted(set(self.public_fields) - set(self.fields))
        if unknown:
            raise DeclarationError(
                f"public fields {', '.join(unknown)} of {self.service} are not among its fields"
            )
        if self.consent_governed and not self.fields:
            raise DeclarationError(f"consent-governed service {self.service} declares no fields")
        if not isinstance(self.description, str) or len(self.description) > 2000:
            raise DeclarationError("description must be a string of at most 2000 characters")
        self._check_subject_rules()
        for name in self.response_headers:
            if not _HEADER_NAME.fullmatch(name):
                raise DeclarationError(f"response header name {name!r} is malformed")
            if name.lower() in _NEVER_RELEASED_HEADERS:
                raise DeclarationError(f"{name} never crosses the federation")

    def _check_subject_rules(self) -> None:
        for label in ("subject_fields", "impersonal"):
            values = getattr(self, label)
            if len(set(values)) != len(values):
                raise DeclarationError(f"{label} of {self.service} lists an entry twice")
        if not self.is_fhir:
            for text in self.subject_fields:
                if not FieldPath.parse(text).steps:
                    raise DeclarationError("a subject field must name a field, not '*'")
            if self.impersonal not in ((), ("*",)):
                raise DeclarationError(
                    "impersonal of a plain JSON service is '*' (no personal data) or absent"
                )
            return
        for text in self.subject_fields:
            path = FhirPath.parse(text)
            if path.path is None or path.resource_type in ("Patient", "Bundle"):
                raise DeclarationError(
                    f"subject field {text!r} must name an element of a resource type other "
                    "than Patient (whose subject is its id) or Bundle, e.g. Observation.subject"
                )
        for resource_type in self.impersonal:
            if resource_type != "*" and (
                not RESOURCE_TYPE_RE.fullmatch(resource_type)
                or resource_type in ("Patient", "Bundle")
            ):
                raise DeclarationError(
                    f"impersonal entry {resource_type!r} must be '*' or a resource type "
                    "other than Patient and Bundle"
                )

    @property
    def carries_personal_data(self) -> bool:
        """False if the declaration says the service returns no personal data at all."""
        return "*" not in self.impersonal

    @property
    def is_fhir(self) -> bool:
        """Fields are per resource type and bodies are filtered in FHIR mode."""
        return FHIR_JSON in self.media_types


@dataclass(frozen=True, slots=True)
class PurposeDeclaration:
    """A consumer's purpose code and the text a data subject reads."""

    consumer: SubsystemId
    code: str
    text: str

    def __post_init__(self) -> None:
        if not _PURPOSE_CODE.fullmatch(self.code):
            raise DeclarationError(
                f"purpose code {self.code!r} must be 1-64 of A-Z a-z 0-9 _ . : -"
            )
        if not self.text.strip() or len(self.text) > 2000:
            raise DeclarationError(f"purpose {self.code!r} needs a text of 1-2000 characters")
