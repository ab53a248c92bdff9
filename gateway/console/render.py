"""Rendering a console page: the template, the reader's language, the session's CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.console.i18n import LANG_COOKIE, LANGUAGES, choose_language, format_when, translations
from gateway.console.security import SESSION

__all__ = ["language", "page", "redirect", "setup_templates", "translate"]

_TEMPLATES = Path(__file__).parent / "templates"


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True),  # every value escaped
        undefined=jinja2.StrictUndefined,
    )


def language(request: web.Request) -> str:
    return choose_language(request.cookies.get(LANG_COOKIE), request.headers.get("Accept-Language"))


def translate(request: web.Request, text: str) -> str:
    return translations(language(request)).gettext(text)


def page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    lang = language(request)
    catalogue = translations(lang)
    session = request.get(SESSION)
    return aiohttp_jinja2.render_template(
        template,
        request,
        {
            **context,
            "_": catalogue.gettext,
            "lang": lang,
            "languages": LANGUAGES,
            "when": lambda moment: format_when(moment, lang),
            "session": session,
            "csrf": session.csrf if session is not None else "",
            "here": request.path_qs,
        },
        status=status,
    )


def redirect(location: str) -> web.Response:
    # Returned, not raised: the management port turns raised refusals into JSON.
    return web.Response(status=303, headers={"Location": location})
