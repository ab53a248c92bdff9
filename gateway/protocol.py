"""The X-Road message protocol for REST (r1) as a node reads it (DESIGN §4.1).

Parsing is strict and happens once: the result is an immutable
:class:`ExchangeRequest` used by every later stage. Ambiguous input (encoded
separators, dot segments, control characters, repeated identity headers,
headers only a node may set) is refused with ``client.bad_request``; it is
never normalised into something else.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from certs.identifiers import ClientId, IdentifierError, MemberId, NodeId, ServiceId, SubsystemId
from gateway.errors import ClientError, InvalidClientIdentifier

__all__ = [
    "DEDUPLICATE_HEADER",
    "HOP_BY_HOP",
    "METHOD_OVERRIDE_HEADERS",
    "NGSI_LD_ROOT",
    "NODE_SET_HEADERS",
    "RESPONSE_ONLY_HEADERS",
    "ExchangeRequest",
    "check_path_parameters",
    "end_to_end_headers",
    "parse_client_header",
    "parse_exchange_request",
]

PROTOCOL_PREFIX = "/r1/"
# The NGSI-LD API on the client port (gateway/broker/): callers identified as on /r1/.
NGSI_LD_ROOT = "/ngsi-ld/v1"

# RFC 9110 §7.6.1 connection-specific fields, plus what a proxy must rewrite.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "user-agent",
        "server",
        "content-length",
        # The client port's credential (gateway/client_auth.py): consumed, never forwarded.
        "renkei-client-token",
    }
)

# Renkei's opt-in: refuse a second request with this X-Road-Id (gateway/dedup.py).
DEDUPLICATE_HEADER = "renkei-deduplicate"

# Headers that carry the exchange's identity: read once, signed as fields.
IDENTITY_HEADERS = {
    "x-road-client": "client",
    "x-road-id": "message_id",
    "x-road-userid": "user_id",
    "x-road-issue": "issue",
    "x-road-security-server": "security_server",
    "x-road-represented-party": "represented_party",
    "renkei-purpose": "purpose",
    "renkei-subject": "subject",
    DEDUPLICATE_HEADER: "deduplicate",
}

# X-Road's response-only headers (PR-REST §4.3). X-Road drops them from a
# request rather than refusing it, and so does a node: they never reach the
# provider, and the nodes set their own values on the response.
RESPONSE_ONLY_HEADERS = frozenset(
    {"x-road-service", "x-road-request-id", "x-road-request-hash", "x-road-error"}
)

# Renkei's own node-to-node headers; a caller that sends one is refused.
NODE_SET_HEADERS = frozenset(
    {
        "renkei-signature",
        "renkei-withheld",
        "renkei-consent",
        "renkei-break-glass",
        "renkei-auth-status",
    }
)

# Headers some frameworks read as the real method of a POST. Access rights are
# checked on the request's method, so one of these could turn a right granted for
# GET into a DELETE at the backend; they are refused, never forwarded or dropped
# (dropping would silently run another operation than the caller asked for).
METHOD_OVERRIDE_HEADERS = frozenset(
    {"x-http-method-override", "x-method-override", "x-http-method"}
)

_HEADER_VALUE = re.compile(r"[\x20-\x7e\x80-\xff\t]*")
_TOKEN_VALUE = re.compile(r"[\x21-\x7e]{1,255}")
_FREE_TEXT = re.compile(r"[\x20-\x7e]{1,1024}")


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """One client request, validated. ``service_path`` keeps the caller's encoding."""

    method: str
    service: ServiceId
    service_path: str
    decoded_path: str
    query: str
    client: ClientId
    message_id: str
    user_id: str | None
    issue: str | None
    security_server: NodeId | None
    represented_party: str | None
    purpose: str | None
    subject: str | None
    headers: tuple[tuple[str, str], ...]
    deduplicate: bool = False

    @property
    def target(self) -> str:
        """The path and query this request is sent to on the peer node."""
        path = f"{PROTOCOL_PREFIX}{_encode_service(self.service)}{self.service_path}"
        return f"{path}?{self.query}" if self.query else path


def _encode_service(service: ServiceId) -> str:
    # Identifier characters are all URL-safe except '?', which must not end the path.
    return str(service).replace("?", "%3F")


def _decode_segment(raw: str) -> str:
    if raw in (".", ".."):
        raise ClientError("dot segments are not allowed in the path")
    if "%" in raw and re.search(r"%(?![0-9A-Fa-f]{2})", raw):
        raise ClientError("malformed percent-encoding in the path")
    try:
        decoded = unquote_to_bytes(raw).decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise ClientError("path segment is not valid UTF-8") from exc
    if decoded in (".", ".."):
        raise ClientError("encoded dot segments are not allowed in the path")
    if "/" in decoded or "\\" in decoded:
        raise ClientError("encoded path separators are not allowed")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
        raise ClientError("control characters are not allowed in the path")
    return decoded


def _split_target(raw_target: str) -> tuple[list[str], str]:
    if "#" in raw_target:
        raise ClientError("fragments are not allowed in the request target")
    path, sep, query = raw_target.partition("?")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in raw_target):
        raise ClientError("control characters or spaces in the request target")
    if not path.startswith(PROTOCOL_PREFIX):
        raise ClientError("the request path must start with /r1/")
    segments = path[len(PROTOCOL_PREFIX) :].split("/")
    return segments, query if sep else ""


def _single(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in IDENTITY_HEADERS:
            if key in seen:
                raise ClientError(f"header {name} must appear at most once")
            seen[key] = value
    return seen


def end_to_end_headers(
    headers: Iterable[tuple[str, str]], *, allowed_node_headers: frozenset[str] = frozenset()
) -> tuple[tuple[str, str], ...]:
    """The headers passed unmodified to the other end, in their original order.

    Drops hop-by-hop fields (including those a ``Connection`` header names),
    X-Road's response-only headers, and the identity headers, which travel as
    signed fields instead. A Renkei node-to-node header is refused unless
    ``allowed_node_headers`` names it.
    """
    pairs = list(headers)
    connection_named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
        if token.strip()
    }
    kept: list[tuple[str, str]] = []
    for name, value in pairs:
        key = name.lower()
        if key in NODE_SET_HEADERS:
            if key in allowed_node_headers:
                continue
            raise ClientError(f"header {name} is set by the nodes and may not be sent")
        if key in METHOD_OVERRIDE_HEADERS:
            raise ClientError(f"header {name} is refused: send the method itself")
        if (
            key in HOP_BY_HOP
            or key in connection_named
            or key in IDENTITY_HEADERS
            or key in RESPONSE_ONLY_HEADERS
        ):
            continue
        if not _HEADER_VALUE.fullmatch(value):
            raise ClientError(f"header {name} contains control characters")
        kept.append((key, value))
    return tuple(kept)


def check_path_parameters(service_path: str, *, allowed: bool) -> None:
    """Refuse ``;`` in the path after the service code unless the service uses it.

    Backends that cut ``;parameters`` off a segment before routing read
    ``/open/..;/admin`` as ``/admin``; access rights are matched on the path the
    backend will read (``policies._pathpattern``), and a service that does not
    declare ``path_parameters`` gets no ``;`` at all. An encoded ``;`` is
    refused either way, since backends disagree on whether it delimits.
    """
    if re.search(r"%3[Bb]", service_path):
        raise ClientError("an encoded ';' is not allowed in the path")
    if ";" in service_path and not allowed:
        raise ClientError("this service accepts no ';' parameters in its path")


def _parse_client(text: str) -> ClientId:
    """``X-Road-Client``: each part percent-decoded on its own, as path parts are.

    PR-REST §4.3 says the parts "MUST be represented as UTF-8 and encoded
    using percent-encoding"; a decoded part must still be a valid identifier
    part, so an encoded ``/`` or control character is refused, not cleaned.
    Three parts name a member, four a subsystem ("Including the subsystem code
    is OPTIONAL", PR-REST §4.1).
    """
    try:
        parts = [_decode_segment(part) for part in text.split("/")]
    except ClientError as exc:
        raise InvalidClientIdentifier(f"invalid X-Road-Client: {exc.message}") from exc
    if len(parts) not in (3, 4):
        raise InvalidClientIdentifier(
            f"invalid X-Road-Client: a client identifier has 3 or 4 parts, got {len(parts)}"
        )
    try:
        return MemberId(*parts) if len(parts) == 3 else SubsystemId(*parts)
    except IdentifierError as exc:
        raise InvalidClientIdentifier(f"invalid X-Road-Client: {exc}") from exc


def _deduplicate(value: str | None) -> bool:
    if value is None:
        return False
    if value.strip().lower() != "true":
        raise ClientError("header Renkei-Deduplicate may only be 'true'")
    return True


def _optional(value: str | None, pattern: re.Pattern[str], name: str) -> str | None:
    if value is None:
        return None
    if not pattern.fullmatch(value):
        raise ClientError(f"header {name} has an invalid value")
    return value


def parse_client_header(headers: Iterable[tuple[str, str]]) -> SubsystemId:
    """The ``X-Road-Client`` of a request outside ``/r1/`` (the NGSI-LD API): exactly once."""
    client_text = _single(list(headers)).get("x-road-client")
    if client_text is None:
        raise ClientError("the X-Road-Client header is required")
    try:
        return SubsystemId.parse(client_text)
    except IdentifierError as exc:
        raise InvalidClientIdentifier(f"invalid X-Road-Client: {exc}") from exc


def parse_exchange_request(
    method: str,
    raw_target: str,
    headers: Iterable[tuple[str, str]],
    *,
    allowed_node_headers: frozenset[str] = frozenset(),
    instance: str | None = None,
) -> ExchangeRequest:
    """Validate one r1 request; raise :class:`ClientError` on anything ambiguous.

    A missing ``X-Road-Id`` is generated in X-Road's form, ``{instance}-{uuid}``
    (a bare UUID when no ``instance`` is given).
    """
    pairs = list(headers)
    if not re.fullmatch(r"[A-Z]{1,16}", method):
        raise ClientError("invalid HTTP method")
    segments, query = _split_target(raw_target)
    if len(segments) < 5:
        raise ClientError("the path must name a service: /r1/INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE")
    decoded = [_decode_segment(segment) for segment in segments]
    for index, part in enumerate(decoded):
        if part == "" and index != len(decoded) - 1:
            raise ClientError("empty path segments are not allowed")
    try:
        service = ServiceId(*decoded[:5])
    except IdentifierError as exc:
        raise ClientError(f"invalid service identifier: {exc}") from exc
    rest_raw = segments[5:]
    service_path = "/" + "/".join(rest_raw) if rest_raw else ""
    decoded_path = "/" + "/".join(decoded[5:]) if rest_raw else ""

    identity = _single(pairs)
    client_text = identity.get("x-road-client")
    if client_text is None:
        raise ClientError("the X-Road-Client header is required")
    client = _parse_client(client_text)
    security_server: NodeId | None = None
    if "x-road-security-server" in identity:
        try:
            security_server = NodeId.parse(identity["x-road-security-server"])
        except IdentifierError as exc:
            raise ClientError(f"invalid X-Road-Security-Server: {exc}") from exc
    message_id = _optional(identity.get("x-road-id"), _TOKEN_VALUE, "X-Road-Id")
    deduplicate = _deduplicate(identity.get(DEDUPLICATE_HEADER))
    if deduplicate and message_id is None:
        raise ClientError("Renkei-Deduplicate needs an X-Road-Id to deduplicate on")
    if message_id is None:
        message_id = f"{instance}-{uuid.uuid4()}" if instance else str(uuid.uuid4())
    return ExchangeRequest(
        method=method,
        service=service,
        service_path=service_path,
        decoded_path=decoded_path,
        query=query,
        client=client,
        message_id=message_id,
        user_id=_optional(identity.get("x-road-userid"), _FREE_TEXT, "X-Road-UserId"),
        issue=_optional(identity.get("x-road-issue"), _FREE_TEXT, "X-Road-Issue"),
        security_server=security_server,
        represented_party=_optional(
            identity.get("x-road-represented-party"), _FREE_TEXT, "X-Road-Represented-Party"
        ),
        purpose=_optional(identity.get("renkei-purpose"), _TOKEN_VALUE, "Renkei-Purpose"),
        subject=_optional(identity.get("renkei-subject"), _FREE_TEXT, "Renkei-Subject"),
        headers=end_to_end_headers(pairs, allowed_node_headers=allowed_node_headers),
        deduplicate=deduplicate,
    )
