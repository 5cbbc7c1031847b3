"""Console texts: every UI string is a message in the catalogs, every message has a Vietnamese
translation (NFC, same placeholders), and templates hold no text outside ``_()``."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from mekong.shared.console import i18n

CONSOLE = Path(i18n.__file__).parent
TEMPLATES = CONSOLE / "templates"
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def extracted() -> set[str]:
    found = extract_from_dir(CONSOLE, METHODS, options_map=OPTIONS, keywords=KEYWORDS)
    ids = set()
    for _file, _line, message, _comments, _context in found:
        ids.add(message[0] if isinstance(message, tuple) else message)
    return ids


def catalog(language: str):  # type: ignore[no-untyped-def]
    with open(i18n.catalog_path(language), "rb") as handle:
        return read_po(handle, locale=language)


def test_every_message_has_a_vietnamese_translation() -> None:
    vietnamese = catalog("vi")
    ids = extracted()
    assert len(ids) > 100
    untranslated = []
    for message_id in sorted(ids):
        message = vietnamese.get(message_id)
        strings = message.string if message and isinstance(message.string, tuple) else (
            (message.string,) if message else ("",))  # fmt: skip
        if not message or message.fuzzy or not all(strings):
            untranslated.append(message_id)
    assert not untranslated, f"run `make messages` and translate: {untranslated}"


def test_both_catalogs_list_every_message() -> None:
    ids = extracted()
    for language in i18n.LANGUAGES:
        listed = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog(language) if m.id}
        assert ids <= listed, f"{language}: run `make messages` for {sorted(ids - listed)}"


def test_vietnamese_is_nfc_and_keeps_the_placeholders() -> None:
    for message in catalog("vi"):
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            assert unicodedata.is_normalized("NFC", text), text
            assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(source)), text


def test_translations_load_and_english_falls_back_to_the_message_ids() -> None:
    i18n.activate("vi")
    assert i18n.gettext("Sign in") == "Đăng nhập"
    i18n.activate("en")
    assert i18n.gettext("Sign in") == "Sign in"
    i18n.activate("xx")  # unknown: the default language
    assert i18n.current() == "vi"


class _Text(HTMLParser):
    """Text and human-readable attributes of a template with its Jinja code removed."""

    READABLE = ("title", "alt", "placeholder", "aria-label", "data-confirm")

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")
        self.found += [v for k, v in attrs if k in self.READABLE and v and _words(v)]

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip and _words(data):
            self.found.append(data.strip())


def _words(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_hold_no_text_outside_gettext(template: str) -> None:
    source = (TEMPLATES / template).read_text(encoding="utf-8")
    code_free = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", source, flags=re.S)
    parser = _Text()
    parser.feed(code_free)
    assert not parser.found, f"{template}: text not marked for translation: {parser.found}"


def test_vendored_htmx_is_the_checked_release() -> None:
    data = (CONSOLE / "static" / "htmx.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256  # docs/third-party/htmx.md
    assert b'version:"2.0.11"' in data
