"""Languages: every console text has its Japanese, the reader's choice, dates in their locale."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import gateway.console
from gateway.console.i18n import choose_language, format_when, translations

ROOT = Path(gateway.console.__file__).parent
MSGID = re.compile(r'_\("((?:[^"\\]|\\.)*)"\)')


def console_texts() -> set[str]:
    found: set[str] = set()
    for path in [*ROOT.glob("templates/*.html"), *ROOT.glob("*.py")]:
        found.update(MSGID.findall(path.read_text("utf-8")))
    return found


def test_every_console_text_has_a_japanese_translation() -> None:
    with (ROOT / "locale/ja/LC_MESSAGES/console.po").open("rb") as source:
        catalog = read_po(source, locale="ja")
    texts = console_texts()
    assert len(texts) > 50
    missing = sorted(t for t in texts if not (catalog.get(t) and catalog.get(t).string))
    assert not missing, missing
    unused = sorted(m.id for m in catalog if m.id and m.id not in texts)
    assert not unused, unused
    ja = translations("ja")
    assert all(ja.gettext(t) != t or t == "OCSP" for t in texts)


def test_placeholders_survive_translation() -> None:
    ja = translations("ja")
    for text in console_texts():
        assert re.findall(r"%\(\w+\)s", text) == re.findall(r"%\(\w+\)s", ja.gettext(text)), text


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, "ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        (None, "en-US,ja;q=0.5", "en"),
        (None, "fr-FR, ja;q=0.3", "ja"),
        (None, "ja;q=0, en;q=0.1", "en"),
        (None, "ja;q=abc", "en"),
        (None, "", "en"),
        (None, None, "en"),
        ("ja", "en", "ja"),
        ("en", "ja", "en"),
        ("xx", "ja", "ja"),
        ("../../etc", None, "en"),
    ],
)
def test_choose_language(cookie: str | None, header: str | None, expected: str) -> None:
    assert choose_language(cookie, header) == expected


def test_dates_follow_the_readers_locale_in_utc() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert format_when(moment, "ja") == "2026/01/02 3:04:05 UTC"
    assert format_when("2026-01-02T03:04:05Z", "en").startswith("Jan 2, 2026")
    assert format_when("2026-01-02T12:04:05+09:00", "en").startswith("Jan 2, 2026, 3:04:05")
    assert format_when("not a date", "en") == "not a date"
    assert format_when(None, "ja") == ""
