"""The Swedish and Finnish catalogues are complete, compiled, and match the source."""

from __future__ import annotations

import gettext
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "web" / "translations"


def _extracted_ids() -> set[str]:
    ids: set[str] = set()
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "_l": None, "lazy_gettext": None}
    for folder in ("web", "forms"):
        method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map, keywords=keywords
        ):
            ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_template_is_up_to_date_with_the_source() -> None:
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    assert _extracted_ids() == template, "run `make translations`"


@pytest.mark.parametrize("locale", ["sv", "fi"])
def test_catalogue_is_complete_and_compiled(locale: str) -> None:
    folder = TRANSLATIONS / locale / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=locale)
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    messages = {m.id: m for m in catalog if m.id}
    assert set(messages) >= template
    untranslated = [
        m.id for m in messages.values() if not all(m.string if isinstance(m.string, tuple) else [m.string])
    ]
    assert untranslated == [] and not [m.id for m in messages.values() if m.fuzzy]
    with (folder / "messages.mo").open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    for message in messages.values():
        if isinstance(message.id, str):
            assert compiled.gettext(message.id) == message.string, f"recompile {locale}: {message.id!r}"
