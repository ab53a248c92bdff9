"""Errors of the member registry, one tree with a stable ``code`` on every class.

::

    RegistryBaseError                      (abstract root, never raised itself)
    ├── GlobalConfError                    server.clientproxy.global_conf_invalid
    │   ├── GlobalConfSignatureInvalid     server.clientproxy.global_conf_signature_invalid
    │   ├── GlobalConfExpired              server.clientproxy.global_conf_outdated
    │   ├── GlobalConfRollback             server.clientproxy.global_conf_rollback
    │   └── GlobalConfMalformed            server.clientproxy.global_conf_malformed
    ├── AnchorError                        registry.anchor_invalid
    └── RegistryError                      registry.error
        ├── NotFound                       registry.not_found
        ├── AlreadyExists                  registry.conflict
        ├── ValidationError                registry.bad_request
        │   └── RegistrationRefused        registry.registration_refused
        │       ├── RegistrationSignatureInvalid  registry.registration_signature_invalid
        │       ├── RegistrationCertificateInvalid registry.registration_certificate_invalid
        │       ├── RegistrationIdentityMismatch  registry.registration_identity_mismatch
        │       ├── RegistrationStale             registry.registration_stale
        │       ├── RegistrationReplayed          registry.registration_replayed
        │       └── RegistrationUnknownMember     registry.registration_unknown_member
        ├── RegistrationDecided            registry.registration_decided  (an AlreadyExists)
        ├── ConfigurationError             registry.config_invalid
        ├── TokenInvalid                   registry.unauthorized
        └── RoleRefused                    registry.forbidden

The ``GlobalConf*`` codes are the ones a node reports to its clients when its global
configuration cannot be trusted, hence their ``server.clientproxy`` prefix.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyExists",
    "AnchorError",
    "ConfigurationError",
    "GlobalConfError",
    "GlobalConfExpired",
    "GlobalConfMalformed",
    "GlobalConfRollback",
    "GlobalConfSignatureInvalid",
    "NotFound",
    "RegistrationCertificateInvalid",
    "RegistrationDecided",
    "RegistrationIdentityMismatch",
    "RegistrationRefused",
    "RegistrationReplayed",
    "RegistrationSignatureInvalid",
    "RegistrationStale",
    "RegistrationUnknownMember",
    "RegistryBaseError",
    "RegistryError",
    "RoleRefused",
    "TokenInvalid",
    "ValidationError",
]


class RegistryBaseError(Exception):
    """Root of every error raised by ``member_registry``."""

    code: ClassVar[str] = "registry.error"

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class GlobalConfError(RegistryBaseError):
    """A global configuration cannot be trusted or used."""

    code = "server.clientproxy.global_conf_invalid"


class GlobalConfSignatureInvalid(GlobalConfError):
    """The JWS is not signed by a key of the anchor, or not in the pinned form."""

    code = "server.clientproxy.global_conf_signature_invalid"


class GlobalConfExpired(GlobalConfError):
    """The configuration is past ``expires_at`` (or generated too far in the future)."""

    code = "server.clientproxy.global_conf_outdated"


class GlobalConfRollback(GlobalConfError):
    """The configuration's version is not newer than one already accepted."""

    code = "server.clientproxy.global_conf_rollback"


class GlobalConfMalformed(GlobalConfError):
    """The configuration document does not follow ``renkei-globalconf/1``."""

    code = "server.clientproxy.global_conf_malformed"


class AnchorError(RegistryBaseError):
    """The configuration anchor file is missing, unreadable or malformed."""

    code = "registry.anchor_invalid"


class RegistryError(RegistryBaseError):
    """A registry administration request failed."""

    code = "registry.error"


class NotFound(RegistryError):
    """A referenced entity does not exist."""

    code = "registry.not_found"


class AlreadyExists(RegistryError):
    """The entity to add exists already."""

    code = "registry.conflict"


class ValidationError(RegistryError):
    """A request is malformed or inconsistent with the registry's data."""

    code = "registry.bad_request"


class ConfigurationError(RegistryError):
    """The registry's configuration file, environment or secret files are unusable."""

    code = "registry.config_invalid"


class TokenInvalid(RegistryError):
    """A bearer token is missing, malformed, expired, for another audience or role.

    ``reason`` is one word from a fixed set (``malformed``, ``algorithm``,
    ``header``, ``signature``, ``audience``, ``claims``, ``expired``, ``role``),
    fit for a metric label and a log line, never the token itself.
    """

    code = "registry.unauthorized"

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class RoleRefused(RegistryError):
    """A valid bearer token whose role does not allow the request."""

    code = "registry.forbidden"


# -- node registration requests (member_registry.registration) ----------------------------


class RegistrationRefused(ValidationError):
    """An auth-certificate registration request is not acceptable."""

    code = "registry.registration_refused"


class RegistrationSignatureInvalid(RegistrationRefused):
    """A signature of the request is missing, malformed, not in the pinned form or wrong."""

    code = "registry.registration_signature_invalid"


class RegistrationCertificateInvalid(RegistrationRefused):
    """The auth or sign certificate does not chain to a trusted CA, has the wrong profile,
    or is not valid now."""

    code = "registry.registration_certificate_invalid"


class RegistrationIdentityMismatch(RegistrationRefused):
    """A certificate names another node or member than the request."""

    code = "registry.registration_identity_mismatch"


class RegistrationStale(RegistrationRefused):
    """The request was issued too long ago, or in the future."""

    code = "registry.registration_stale"


class RegistrationReplayed(RegistrationRefused):
    """The request's nonce was seen before."""

    code = "registry.registration_replayed"


class RegistrationUnknownMember(RegistrationRefused):
    """The node's member is not a member of the federation."""

    code = "registry.registration_unknown_member"


class RegistrationDecided(AlreadyExists):
    """The registration request was approved or rejected already."""

    code = "registry.registration_decided"
