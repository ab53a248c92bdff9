"""A node's settings: one TOML file, every key overridable from the environment.

Environment variables are named ``RENKEI_NODE_`` plus the key path in upper
case with ``__`` between levels, e.g. ``RENKEI_NODE_DATABASE_URL`` or
``RENKEI_NODE_CLIENT__PORT``. Relative paths are resolved against the
directory of the file. Secrets are read from files and never logged.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certs.identifiers import IdentifierError, MemberId, NodeId, ServiceId
from gateway.limits import HttpLimits, LimitsError, limits_from_table

__all__ = [
    "ClientTlsSettings",
    "ListenSettings",
    "NodeSettings",
    "ServiceBackend",
    "SettingsError",
    "SignKeySettings",
    "load_node_settings",
]

ENV_PREFIX = "RENKEI_NODE_"


class SettingsError(ValueError):
    """A settings file or override is invalid; the message names the key."""

    code = "config.invalid"


@dataclass(frozen=True, slots=True)
class ListenSettings:
    host: str
    port: int
    # SO_REUSEPORT: several processes of one node share the port (scale-out).
    reuse_port: bool = False


@dataclass(frozen=True, slots=True)
class ClientTlsSettings:
    """The client TLS port ([client_tls]): HTTPS for information systems."""

    listen: ListenSettings
    certificate: Path
    key: Path


@dataclass(frozen=True, slots=True)
class SignKeySettings:
    member: MemberId
    key: Path
    certificate: Path


@dataclass(frozen=True, slots=True)
class ServiceBackend:
    service: ServiceId
    url: str
    timeout_s: float = 30.0
    # The service's OpenAPI document (getOpenAPI metaservice, catalogue).
    openapi: Path | None = None
    # The backend uses ";parameters" in path segments (matrix parameters). Off by
    # default: a ';' in the path is refused, since backends that cut parameters off
    # before routing would reach another path than the access right was checked on.
    path_parameters: bool = False
    # What the API catalogue shows when no OpenAPI document or declaration says it.
    title: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class NodeSettings:
    node_id: NodeId
    data_dir: Path
    database_url: str
    anchor: Path
    client: ListenSettings
    peer: ListenSettings
    management: ListenSettings
    auth_key: Path
    auth_certificate: Path
    sign_keys: tuple[SignKeySettings, ...]
    token_key: Path
    services: tuple[ServiceBackend, ...] = ()
    policy_file: Path | None = None
    body_memory_limit: int = 1024 * 1024
    max_body_bytes: int = 2 * 1024 * 1024 * 1024
    request_max_age_s: int = 300
    clock_skew_s: int = 30
    peer_timeout_s: float = 60.0
    log_level: str = "info"
    limits: HttpLimits = field(default_factory=HttpLimits)
    # [receipt_controller]: how consent receipts name the data holder (Kantara CR 1.1
    # contact, address, email, phone; jurisdiction, policy_url). Without it no receipt.
    receipt_controller: Mapping[str, str] = field(default_factory=dict)
    # [client] allow_unauthenticated: a node of several members may serve
    # callers that prove nothing (connection types HTTP, HTTPS_NO_AUTH).
    client_allow_unauthenticated: bool = False
    client_tls: ClientTlsSettings | None = None
    # [audit]: checkpoint period, witness endpoint (default: beside the anchor's
    # download URL), and the services whose bodies are logged encrypted with the key file.
    audit_checkpoint_interval_s: float = 60.0
    audit_witness_url: str | None = None
    audit_body_services: tuple[str, ...] = ()
    audit_body_key: Path | None = None
    # How long exchanges go on while checkpoints cannot be time-stamped.
    audit_timestamp_grace_s: float = 4 * 3600.0
    # [management] rate_limit_per_s / rate_limit_burst: per-token limit of /api/.
    # Raise them only for a fuzzing or load run.
    management_rate_limit_per_s: float = 20.0
    management_rate_limit_burst: int = 60
    extra: Mapping[str, Any] = field(default_factory=dict)


def _env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        target = data
        for part in path[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise SettingsError(f"{name}: {part} is not a table")
            target = nested
        target[path[-1]] = value


def _require(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise SettingsError(f"{where}: missing key '{key}'")
    return table[key]


def _int(value: Any, where: str) -> int:
    try:
        result = int(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{where}: expected an integer, got {value!r}") from exc
    return result


def _bool(value: Any, where: str) -> bool:
    text = str(value).lower()
    if text not in ("true", "false"):
        raise SettingsError(f"{where}: expected true or false, got {value!r}")
    return text == "true"


def _flag(table: Mapping[str, Any], key: str, where: str) -> bool:
    return _bool(table.get(key, "false"), f"{where}.{key}")


def _client_tls(
    data: Mapping[str, Any], resolve: Any, client_host: str
) -> ClientTlsSettings | None:
    table = data.get("client_tls")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise SettingsError("[client_tls] must be a table")
    return ClientTlsSettings(
        listen=_listen(data, "client_tls", client_host),
        certificate=resolve(_require(table, "certificate", "client_tls")),
        key=resolve(_require(table, "key", "client_tls")),
    )


def _listen(data: Mapping[str, Any], key: str, default_host: str) -> ListenSettings:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise SettingsError(f"[{key}] must be a table")
    port = _int(table.get("port", 0), f"{key}.port")
    if not 0 <= port <= 65535:
        raise SettingsError(f"{key}.port: {port} is not a TCP port")
    reuse = str(table.get("reuse_port", "false")).lower()
    if reuse not in ("true", "false"):
        raise SettingsError(f"{key}.reuse_port: expected true or false, got {reuse!r}")
    return ListenSettings(
        host=str(table.get("host", default_host)), port=port, reuse_port=reuse == "true"
    )


def load_node_settings(
    path: Path, environ: Mapping[str, str] | None = None
) -> NodeSettings:
    """Read and validate a node's settings file; raise :class:`SettingsError`."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}") from exc
    _env_overrides(data, os.environ if environ is None else environ)
    base = path.parent.resolve()

    def resolve(value: Any) -> Path:
        candidate = Path(str(value))
        return candidate if candidate.is_absolute() else base / candidate

    try:
        node_id = NodeId.parse(str(_require(data, "node_id", "settings")))
    except IdentifierError as exc:
        raise SettingsError(f"node_id: {exc}") from exc
    data_dir = resolve(data.get("data_dir", "."))
    keys = _require(data, "keys", "settings")
    sign_keys = []
    for index, entry in enumerate(keys.get("sign", [])):
        where = f"keys.sign[{index}]"
        try:
            member = MemberId.parse(str(_require(entry, "member", where)))
        except IdentifierError as exc:
            raise SettingsError(f"{where}.member: {exc}") from exc
        sign_keys.append(
            SignKeySettings(
                member=member,
                key=resolve(_require(entry, "key", where)),
                certificate=resolve(_require(entry, "certificate", where)),
            )
        )
    services = []
    for index, entry in enumerate(data.get("service", [])):
        where = f"service[{index}]"
        try:
            service = ServiceId.parse(str(_require(entry, "id", where)))
        except IdentifierError as exc:
            raise SettingsError(f"{where}.id: {exc}") from exc
        backend_url = str(_require(entry, "backend", where))
        # "ngsi-ld:store": an NGSI-LD service the node answers from its own entities.
        if not backend_url.startswith(("http://", "https://")) and backend_url != "ngsi-ld:store":
            raise SettingsError(
                f"{where}.backend: must be an http:// or https:// URL or ngsi-ld:store"
            )
        services.append(
            ServiceBackend(
                service=service,
                url=backend_url.rstrip("/"),
                timeout_s=float(entry.get("timeout_s", 30.0)),
                openapi=resolve(entry["openapi"]) if entry.get("openapi") else None,
                path_parameters=_bool(entry.get("path_parameters", False),
                                      f"{where}.path_parameters"),
                title=str(entry.get("title", "")),
                description=str(entry.get("description", "")),
            )
        )
    policy = data.get("policy_file")
    try:
        limits = limits_from_table(data.get("limits"))
    except LimitsError as exc:
        raise SettingsError(str(exc)) from exc
    database_url = str(
        data.get("database_url", f"sqlite+aiosqlite:///{data_dir / 'node.db'}")
    )
    client = _listen(data, "client", "127.0.0.1")
    client_table = data.get("client", {})
    return NodeSettings(
        node_id=node_id,
        data_dir=data_dir,
        database_url=database_url,
        anchor=resolve(_require(data, "anchor", "settings")),
        client=client,
        client_allow_unauthenticated=_flag(client_table, "allow_unauthenticated", "client"),
        client_tls=_client_tls(data, resolve, client.host),
        peer=_listen(data, "peer", "0.0.0.0"),  # noqa: S104 - peers connect from other hosts
        management=_listen(data, "management", "127.0.0.1"),
        auth_key=resolve(_require(keys, "auth_key", "keys")),
        auth_certificate=resolve(_require(keys, "auth_certificate", "keys")),
        sign_keys=tuple(sign_keys),
        token_key=resolve(_require(keys, "token_key", "keys")),
        services=tuple(services),
        policy_file=resolve(policy) if policy else None,
        body_memory_limit=_int(data.get("body_memory_limit", 1024 * 1024), "body_memory_limit"),
        max_body_bytes=_int(data.get("max_body_bytes", 2 * 1024**3), "max_body_bytes"),
        request_max_age_s=_int(data.get("request_max_age_s", 300), "request_max_age_s"),
        clock_skew_s=_int(data.get("clock_skew_s", 30), "clock_skew_s"),
        peer_timeout_s=float(data.get("peer_timeout_s", 60.0)),
        log_level=str(data.get("log_level", "info")),
        limits=limits,
        receipt_controller=_receipt_controller(data.get("receipt_controller", {})),
        **_audit(data.get("audit", {}), resolve),
        **_management_rate_limit(data.get("management", {})),
    )


_RECEIPT_KEYS = ("name", "contact", "address", "email", "phone", "jurisdiction", "policy_url")


def _receipt_controller(table: Any) -> dict[str, str]:
    if not isinstance(table, dict):
        raise SettingsError("[receipt_controller] must be a table")
    unknown = sorted(set(table) - set(_RECEIPT_KEYS))
    if unknown:
        raise SettingsError(f"[receipt_controller] has unknown keys {', '.join(unknown)}")
    if not all(isinstance(value, str) for value in table.values()):
        raise SettingsError("[receipt_controller] values must be strings")
    return dict(table)


def _management_rate_limit(table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise SettingsError("[management] must be a table")
    try:
        rate = float(table.get("rate_limit_per_s", 20.0))
    except (TypeError, ValueError) as exc:
        raise SettingsError("management.rate_limit_per_s: expected a number") from exc
    burst = _int(table.get("rate_limit_burst", 60), "management.rate_limit_burst")
    if not (math.isfinite(rate) and rate > 0) or burst <= 0:
        raise SettingsError("management.rate_limit_per_s and rate_limit_burst must be positive")
    return {"management_rate_limit_per_s": rate, "management_rate_limit_burst": burst}


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    """A TOML list, or a comma-separated string (the form an environment variable has)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SettingsError(f"{where}: expected a list of strings")


def _audit(table: Any, resolve: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise SettingsError("[audit] must be a table")
    interval = float(table.get("checkpoint_interval_s", 60.0))
    if not interval > 0:
        raise SettingsError("audit.checkpoint_interval_s must be positive")
    key = table.get("body_key_file")
    grace = float(table.get("timestamp_grace_s", 4 * 3600.0))
    if not grace > 0:
        raise SettingsError("audit.timestamp_grace_s must be positive")
    return {
        "audit_timestamp_grace_s": grace,
        "audit_checkpoint_interval_s": interval,
        "audit_witness_url": str(table["witness_url"]) if "witness_url" in table else None,
        "audit_body_services": _string_list(table.get("body_services", ()), "audit.body_services"),
        "audit_body_key": resolve(key) if key else None,
    }
