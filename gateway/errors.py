"""Errors a node reports, each with its stable X-Road-style code and HTTP status.

::

    GatewayError                      server.clientproxy.internal_error      500
    ├── ClientError                   client.bad_request                     400
    │   ├── InvalidClientIdentifier   client.invalid_client_identifier       400
    │   ├── UnknownClient             client.unknown_client                  400
    │   ├── ClientAuthenticationFailed client.authentication_failed          401
    │   ├── PurposeUndeclared         client.purpose_undeclared              400
    │   ├── BodyTooLarge              client.body_too_large                  413
    │   ├── MalformedHttp             client.malformed_http                  400
    │   ├── NotFound                  client.not_found                       404
    │   ├── MethodNotAllowed          client.method_not_allowed              405
    │   ├── RequestTimeout            client.request_timeout                 408
    │   ├── DuplicateMessageId        client.duplicate_message_id            400
    │   ├── UriTooLong                client.uri_too_long                    414
    │   ├── ExpectationFailed         client.expectation_failed              417
    │   ├── TooManyRequests           client.too_many_requests               429
    │   ├── HeaderTooLarge            client.header_too_large                431
    │   ├── NoOpenApiDescription      client.no_openapi_description          400
    │   └── HttpVersionNotSupported   client.http_version_not_supported      505
    ├── ConsumerError  (raised by the client-side proxy)
    │   ├── GlobalConfOutdated        server.clientproxy.global_conf_outdated 503
    │   ├── UnknownProvider           server.clientproxy.unknown_subsystem   500
    │   ├── NetworkError              server.clientproxy.network_error       503
    │   ├── ProviderTimeout           server.clientproxy.timeout             504
    │   ├── ResponseInvalid           server.clientproxy.response_invalid    500
    │   ├── ProviderNotAuthenticated  server.clientproxy.ssl_authentication_failed 500
    │   └── CertificateNotReady       server.clientproxy.certificate_invalid 503
    ├── ProviderError  (raised by the server-side proxy)
    │   ├── PeerAuthenticationFailed  server.serverproxy.ssl_authentication_failed 500
    │   ├── SignatureInvalid          server.serverproxy.signature_invalid   500
    │   ├── Replayed                  server.serverproxy.replay              500
    │   ├── WrongDestination          server.serverproxy.wrong_destination   500
    │   ├── ClientNotHosted           server.serverproxy.client_not_hosted   500
    │   ├── UnknownService            server.serverproxy.unknown_service     500
    │   ├── ServiceDisabled           server.serverproxy.service_disabled    500
    │   ├── AccessDenied              server.serverproxy.access_denied       500
    │   ├── ServiceFailed             server.serverproxy.service_failed      500
    │   └── ServiceTimeout            server.serverproxy.service_timeout     504
    ├── TimestampingFailed            server.timestamping_failed             503
    └── DatabaseUnavailable           server.database_unavailable            503

A node that relays a provider's refusal keeps the provider's code, so the
client sees the same code whichever node raised it. On the r1 client port the
status follows X-Road (``gateway.responses.r1_status``): 500 for ``server.*``,
400 otherwise, except 401, 413 and 429; the statuses above are what the other
ports and the transport-level guard answer.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "BodyTooLarge",
    "CertificateNotReady",
    "ClientAuthenticationFailed",
    "ClientError",
    "ClientNotHosted",
    "ConsumerError",
    "DatabaseUnavailable",
    "DuplicateMessageId",
    "ExpectationFailed",
    "GatewayError",
    "GlobalConfOutdated",
    "HeaderTooLarge",
    "HttpVersionNotSupported",
    "InvalidClientIdentifier",
    "MalformedHttp",
    "MethodNotAllowed",
    "NetworkError",
    "NoOpenApiDescription",
    "NotFound",
    "PeerAuthenticationFailed",
    "ProviderError",
    "ProviderNotAuthenticated",
    "ProviderTimeout",
    "PurposeUndeclared",
    "RemoteError",
    "Replayed",
    "RequestTimeout",
    "ResponseInvalid",
    "ServiceDisabled",
    "ServiceFailed",
    "ServiceTimeout",
    "SignatureInvalid",
    "TimestampingFailed",
    "TooManyRequests",
    "UnknownClient",
    "UnknownProvider",
    "UnknownService",
    "UriTooLong",
    "WrongDestination",
]


class GatewayError(Exception):
    """Base of every error a node turns into an ``X-Road-Error`` response."""

    code = "server.clientproxy.internal_error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ClientError(GatewayError):
    code = "client.bad_request"
    status = 400


class InvalidClientIdentifier(ClientError):
    code = "client.invalid_client_identifier"


class UnknownClient(ClientError):
    code = "client.unknown_client"


class ClientAuthenticationFailed(ClientError):
    """The caller did not prove that it is the client subsystem it names.

    X-Road reports these as ``server.clientproxy.ssl_authentication_failed``;
    Renkei gives that code to a provider node whose certificate is not the
    registered one, so the caller's own failure has a code of its own.
    """

    code = "client.authentication_failed"
    status = 401


class PurposeUndeclared(ClientError):
    code = "client.purpose_undeclared"


class BodyTooLarge(ClientError):
    code = "client.body_too_large"
    status = 413


class MalformedHttp(ClientError):
    """Framing the node will not guess at: smuggling, obs-fold, bad chunks, odd encodings."""

    code = "client.malformed_http"


class NotFound(ClientError):
    """A path outside the protocol (not ``/r1/...``) on the client or peer port."""

    code = "client.not_found"
    status = 404


class MethodNotAllowed(ClientError):
    code = "client.method_not_allowed"
    status = 405


class RequestTimeout(ClientError):
    """Headers or body not received within their deadline (slow or stalled client)."""

    code = "client.request_timeout"
    status = 408


class DuplicateMessageId(ClientError):
    """The client asked for deduplication and reused an X-Road-Id within the window."""

    code = "client.duplicate_message_id"


class UriTooLong(ClientError):
    code = "client.uri_too_long"
    status = 414


class TooManyRequests(ClientError):
    """A connection or in-flight cap was reached; the reply carries ``Retry-After``."""

    code = "client.too_many_requests"
    status = 429


class ExpectationFailed(ClientError):
    """An ``Expect`` other than ``100-continue``."""

    code = "client.expectation_failed"
    status = 417


class HeaderTooLarge(ClientError):
    code = "client.header_too_large"
    status = 431


class NoOpenApiDescription(ClientError):
    """``getOpenAPI`` named a service that has no OpenAPI description (PR-MREST §5)."""

    code = "client.no_openapi_description"


class HttpVersionNotSupported(ClientError):
    code = "client.http_version_not_supported"
    status = 505


class ConsumerError(GatewayError):
    code = "server.clientproxy.internal_error"


class GlobalConfOutdated(ConsumerError):
    code = "server.clientproxy.global_conf_outdated"
    status = 503


class UnknownProvider(ConsumerError):
    code = "server.clientproxy.unknown_subsystem"


class NetworkError(ConsumerError):
    code = "server.clientproxy.network_error"
    status = 503


class ProviderTimeout(ConsumerError):
    code = "server.clientproxy.timeout"
    status = 504


class ResponseInvalid(ConsumerError):
    code = "server.clientproxy.response_invalid"


class ProviderNotAuthenticated(ConsumerError):
    code = "server.clientproxy.ssl_authentication_failed"


class CertificateNotReady(ConsumerError):
    code = "server.clientproxy.certificate_invalid"
    status = 503


class ProviderError(GatewayError):
    code = "server.serverproxy.internal_error"


class PeerAuthenticationFailed(ProviderError):
    code = "server.serverproxy.ssl_authentication_failed"


class SignatureInvalid(ProviderError):
    code = "server.serverproxy.signature_invalid"


class Replayed(ProviderError):
    code = "server.serverproxy.replay"


class WrongDestination(ProviderError):
    code = "server.serverproxy.wrong_destination"


class ClientNotHosted(ProviderError):
    code = "server.serverproxy.client_not_hosted"


class UnknownService(ProviderError):
    code = "server.serverproxy.unknown_service"


class ServiceDisabled(ProviderError):
    """The service exists on this node but its operator disabled it."""

    code = "server.serverproxy.service_disabled"


class AccessDenied(ProviderError):
    code = "server.serverproxy.access_denied"


class ServiceFailed(ProviderError):
    code = "server.serverproxy.service_failed"


class ServiceTimeout(ProviderError):
    code = "server.serverproxy.service_timeout"
    status = 504


class TimestampingFailed(GatewayError):
    """Checkpoints could not be time-stamped for longer than the grace period."""

    code = "server.timestamping_failed"
    status = 503


class AuditChainMismatch(GatewayError):
    """The audit chain disagrees with what the witness cosigned: the node does not serve."""

    code = "server.audit_chain_mismatch"
    status = 503


class DatabaseUnavailable(GatewayError):
    code = "server.database_unavailable"
    status = 503


class RemoteError(GatewayError):
    """A refusal made by the peer node, relayed with the peer's code and status.

    ``signature`` is the peer's signed refusal (bound to the request) and
    ``body_sha256`` the digest of the refusal it covers; the consumer keeps both.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int,
        signature: str | None = None,
        body_sha256: str | None = None,
        subject: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.signature = signature
        self.body_sha256 = body_sha256
        self.subject = subject  # the data subject the peer's signed refusal names
