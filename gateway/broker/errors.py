"""NGSI-LD errors as ProblemDetails (IETF RFC 7807), ETSI GS CIM 009 V1.8.1 clause 5.5.2.

::

    NgsiLdError                  .../errors/InternalError           500
    ├── InvalidRequest           .../errors/InvalidRequest          400
    ├── BadRequestData           .../errors/BadRequestData          400
    ├── AlreadyExists            .../errors/AlreadyExists           409
    ├── OperationNotSupported    .../errors/OperationNotSupported   422
    ├── ResourceNotFound         .../errors/ResourceNotFound        404
    ├── TooComplexQuery          .../errors/TooComplexQuery         403
    ├── TooManyResults           .../errors/TooManyResults          403
    ├── LdContextNotAvailable    .../errors/LdContextNotAvailable   503
    └── NotAcceptable            (HTTP 406, clause 6.3.4; the type is InvalidRequest)

The ``type`` is the spec's URI; ``title`` is fixed per type; ``detail`` says what
happened this time.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ERROR_TYPE_PREFIX",
    "AlreadyExists",
    "BadRequestData",
    "InternalError",
    "InvalidRequest",
    "LdContextNotAvailable",
    "NgsiLdError",
    "NotAcceptable",
    "OperationNotSupported",
    "ResourceNotFound",
    "TooComplexQuery",
    "TooManyResults",
    "UnsupportedMediaType",
]

ERROR_TYPE_PREFIX = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiLdError(Exception):
    name: ClassVar[str] = "InternalError"
    title: ClassVar[str] = "Internal error"
    status: ClassVar[int] = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def type(self) -> str:
        return ERROR_TYPE_PREFIX + self.name

    def problem(self) -> dict[str, Any]:
        return {"type": self.type, "title": self.title, "status": self.status,
                "detail": self.detail}


InternalError = NgsiLdError


class InvalidRequest(NgsiLdError):
    name = "InvalidRequest"
    title = "Invalid request"
    status = 400


class BadRequestData(NgsiLdError):
    name = "BadRequestData"
    title = "Bad request data"
    status = 400


class AlreadyExists(NgsiLdError):
    name = "AlreadyExists"
    title = "Already exists"
    status = 409


class OperationNotSupported(NgsiLdError):
    name = "OperationNotSupported"
    title = "Operation not supported"
    status = 422


class ResourceNotFound(NgsiLdError):
    name = "ResourceNotFound"
    title = "Resource not found"
    status = 404


class TooComplexQuery(NgsiLdError):
    name = "TooComplexQuery"
    title = "Too complex query"
    status = 403


class TooManyResults(NgsiLdError):
    name = "TooManyResults"
    title = "Too many results"
    status = 403


class LdContextNotAvailable(NgsiLdError):
    name = "LdContextNotAvailable"
    title = "@context not available"
    status = 503


class NotAcceptable(NgsiLdError):
    """The ``Accept`` header names no media type the API serves (clause 6.3.4)."""

    name = "InvalidRequest"
    title = "Not acceptable"
    status = 406


class UnsupportedMediaType(NgsiLdError):
    """The request body's media type is neither JSON nor JSON-LD (clause 6.3.4)."""

    name = "InvalidRequest"
    title = "Unsupported media type"
    status = 415
