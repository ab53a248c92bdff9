"""Logging in with a management token, logging out, the language switch, the start page."""

from __future__ import annotations

from aiohttp import web

from gateway.console.i18n import LANG_COOKIE, LANGUAGES
from gateway.console.links import CitizenLinkInvalid
from gateway.console.render import page, redirect
from gateway.console.security import SESSION, STORE, new_session
from gateway.console.state import CONSOLE
from gateway.rejections import MANAGEMENT_BEARER
from gateway.tokens import TokenError

__all__ = ["add_auth_routes", "safe_next"]

HOME = {
    "admin": "/console/overview",
    "auditor": "/console/audit",
    "consent": "/console/consents",
    "citizen": "/console/citizen",
}


def safe_next(value: str | None) -> str:
    """Only a console path: never another site, never ``//host`` nor a backslash trick."""
    if (
        value
        and value.startswith("/console/")
        and "\\" not in value
        and not any(ord(c) < 0x20 for c in value)
    ):
        return value
    return "/console/"


def add_auth_routes(app: web.Application) -> None:
    async def home(request: web.Request) -> web.Response:
        session = request.get(SESSION)
        if session is None or session.role is None:
            return redirect("/console/login")
        return redirect(HOME[session.role])

    async def login_form(request: web.Request) -> web.Response:
        console = request.app[CONSOLE]
        if request.get(SESSION) is None:  # the login form's CSRF token needs a session
            new_session(request, request.app[STORE].start(now=console.ctx.clock()))
        return page(request, "login.html", {"failed": False})

    async def login(request: web.Request) -> web.Response:
        console = request.app[CONSOLE]
        store = request.app[STORE]
        form = await request.post()
        token = form.get("token")
        now = console.ctx.clock()
        try:
            if not isinstance(token, str) or not token.strip():
                raise TokenError("no token", reason="missing")
            claims = console.tokens.verify(token.strip(), now=now)
        except TokenError as exc:
            # Counted and logged with the API's refused tokens (renkei_rejected_credentials).
            console.ctx.rejections.record(
                MANAGEMENT_BEARER, exc.reason, remote=request.remote, path=request.path[:256]
            )
            return page(request, "login.html", {"failed": True}, status=401)
        store.end(request[SESSION].id)  # a new id at login: a planted id is worth nothing
        session = store.start(
            now=now, role=claims.role, subject=claims.subject, not_after=claims.expires_at
        )
        new_session(request, session)
        return redirect(HOME[claims.role])

    async def citizen_enter(request: web.Request) -> web.Response:
        console = request.app[CONSOLE]
        store = request.app[STORE]
        now = console.ctx.clock()
        try:
            claims = console.links.verify(request.query.get("t", ""), now=now)
        except CitizenLinkInvalid:
            return page(request, "error.html", {"code": "console.link_invalid"}, status=401)
        current = request.get(SESSION)
        if current is not None:
            store.end(current.id)
        session = store.start(
            now=now, role=claims.role, subject=claims.subject, not_after=claims.expires_at
        )
        new_session(request, session)
        return redirect(HOME[claims.role])  # the token leaves the address bar

    async def logout(request: web.Request) -> web.Response:
        request.app[STORE].end(request[SESSION].id)
        request.pop(SESSION, None)
        return redirect("/console/login")

    async def switch_language(request: web.Request) -> web.Response:
        chosen = request.match_info["lang"]
        response = redirect(safe_next(request.query.get("next")))
        if chosen in LANGUAGES:
            response.set_cookie(
                LANG_COOKIE, chosen, path="/console/", httponly=True, samesite="Strict",
                secure=request.secure, max_age=365 * 24 * 3600,
            )  # fmt: skip
        return response

    app.router.add_get("/", home)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/citizen/enter", citizen_enter)
    app.router.add_get("/lang/{lang}", switch_language)
