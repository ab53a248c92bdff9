"""HTTP routes for node registration, added to the application of ``member_registry.api``.

``POST /registrations`` is public: the request authenticates itself by its two signatures
(the new auth key and the member's sign key), which ``RegistrationService.submit``
verifies against the registry's trusted CAs. Listing and deciding are admin routes under
``/api/`` and so need the admin token like every other.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from member_registry._strict_json import FormatError, loads_strict
from member_registry.errors import RegistrationRefused, ValidationError
from member_registry.registration import (
    AutoApprovePolicy,
    RegistrationService,
    parse_status,
)
from member_registry.registration_request import SignedRegistration
from member_registry.service import RegistryService

__all__ = ["REGISTRATIONS", "add_registration_routes"]

Clock = Callable[[], datetime]

REGISTRATIONS = web.AppKey("registry_registrations", RegistrationService)
_REGISTRATION_CLOCK: web.AppKey[Clock] = web.AppKey("registry_registration_clock")


def add_registration_routes(
    app: web.Application, service: RegistryService, auto_approve: tuple[str, ...], clock: Clock
) -> None:
    """Serve registrations from the registry's database, with the given auto-approve list."""
    app[REGISTRATIONS] = RegistrationService(
        service.engine, instance=service.instance, policy=AutoApprovePolicy.parse(auto_approve))
    app[_REGISTRATION_CLOCK] = clock
    app.router.add_post("/registrations", _submit)
    app.router.add_get("/api/registrations", _list)
    app.router.add_get("/api/registrations/{id}", _get)
    app.router.add_post("/api/registrations/{id}/approve", _approve)
    app.router.add_post("/api/registrations/{id}/reject", _reject)


def _id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ValidationError("a registration id is a positive integer")
    return int(text)


async def _submit(request: web.Request) -> web.Response:
    try:
        document = loads_strict(await request.read())
    except FormatError as exc:
        raise RegistrationRefused(f"malformed registration: {exc}") from exc
    signed = SignedRegistration.from_json_dict(document)
    registration = await request.app[REGISTRATIONS].submit(
        signed, now=request.app[_REGISTRATION_CLOCK]())
    return web.json_response(registration.to_json_dict(), status=202)


async def _list(request: web.Request) -> web.Response:
    status = parse_status(request.query.get("status"))
    registrations = await request.app[REGISTRATIONS].list(status)
    return web.json_response([r.to_json_dict() for r in registrations])


async def _get(request: web.Request) -> web.Response:
    registration = await request.app[REGISTRATIONS].get(_id(request))
    return web.json_response(registration.to_json_dict())


async def _approve(request: web.Request) -> web.Response:
    registration = await request.app[REGISTRATIONS].approve(
        _id(request), now=request.app[_REGISTRATION_CLOCK]())
    return web.json_response(registration.to_json_dict())


async def _reject(request: web.Request) -> web.Response:
    registration = await request.app[REGISTRATIONS].reject(
        _id(request), now=request.app[_REGISTRATION_CLOCK]())
    return web.json_response(registration.to_json_dict())
