"""English and Japanese for the console: gettext catalogues read with Babel.

The Japanese catalogue is kept as a ``.po`` file and compiled in memory on
first use, so a fresh clone needs no build step. English is the source text.
The reader's language comes from the ``lang`` cookie (the switch) or else
``Accept-Language``; dates are formatted in that locale, in UTC, said so.
"""

from __future__ import annotations

import functools
import gettext
import io
from datetime import UTC, datetime
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = ["DEFAULT", "LANGUAGES", "choose_language", "format_when", "translations"]

LANGUAGES = ("en", "ja")
DEFAULT = "en"
LANG_COOKIE = "renkei_lang"
_LOCALE_DIR = Path(__file__).parent / "locale"


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    if language not in LANGUAGES or language == DEFAULT:
        return gettext.NullTranslations()
    path = _LOCALE_DIR / language / "LC_MESSAGES" / "console.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's choice if valid, else the best of ``Accept-Language``, else English."""
    if cookie in LANGUAGES:
        return str(cookie)
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-")[0].lower()
        if primary in LANGUAGES and weight > 0:
            ranked.append((-weight, index, primary))
    return min(ranked)[2] if ranked else DEFAULT


def format_when(moment: datetime | str | None, language: str) -> str:
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        text = moment
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    shown = format_datetime(moment.astimezone(UTC), format="medium", tzinfo=UTC,
                            locale=Locale.parse(language))
    return f"{shown} UTC"
