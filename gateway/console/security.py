"""The console's security checks: headers, sessions on each request, CSRF, roles.

Every check fails closed: no session, a session of another role, a form
without the session's CSRF token are refused before any handler runs its
action. Pages are never cached and never framed; the policy allows styles and
images from the console itself and nothing else (no script at all).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.console.sessions import COOKIE, Session, SessionStore

__all__ = [
    "CSP",
    "SESSION",
    "Refused",
    "new_session",
    "require",
    "security_headers",
    "sessions_and_csrf",
]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a citizen link's token never leaks onwards
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
SESSION = web.RequestKey("console_session", Session)  # absent: no live session
_NEW_SESSION = web.RequestKey("console_new_session", Session)
STORE = web.AppKey("console_sessions", SessionStore)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Clock = Callable[[], object]


class Refused(Exception):
    """A request the console refuses: rendered as an error page with ``status``."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status, self.code = status, code


def require(request: web.Request, *roles: str) -> Session:
    """The request's session if its role is one of ``roles``; else 401/403."""
    session: Session | None = request.get(SESSION)
    if session is None or session.role is None:
        raise Refused(401, "console.login_required")
    if session.role not in roles:
        raise Refused(403, "console.forbidden")
    return session


def new_session(request: web.Request, session: Session) -> None:
    """Make ``session`` the request's, and send its cookie with the response."""
    request[SESSION] = session
    request[_NEW_SESSION] = session


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.update(HEADERS)
    return response


def sessions_and_csrf(now: Callable[[], object]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        store = request.app[STORE]
        moment = now()
        session = store.get(request.cookies.get(COOKIE), now=moment)  # type: ignore[arg-type]
        if session is not None:
            request[SESSION] = session
        if request.method not in ("GET", "HEAD"):
            form = await request.post()
            presented = form.get("csrf")
            if session is None or not session.csrf_matches(
                presented if isinstance(presented, str) else None
            ):
                raise Refused(403, "console.csrf")
        response = await handler(request)
        fresh: Session | None = request.get(_NEW_SESSION)
        if fresh is not None:
            response.set_cookie(
                COOKIE, fresh.id, path="/console/", httponly=True, samesite="Strict",
                secure=request.secure,
            )  # fmt: skip
        elif request.get(SESSION) is None and COOKIE in request.cookies:
            response.del_cookie(COOKIE, path="/console/")
        return response

    return check
