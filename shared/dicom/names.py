"""Person-name forms for searching Vietnamese names.

``case_insensitive`` is what standard C-FIND PN matching compares (upper case, accents kept).
``folded`` drops accents and case (``Nguyễn^Thị`` → `` NGUYEN THI ``) so a search for "nguyen"
finds "Nguyễn" and the ASCII names old modalities write; components are space-separated and the
value padded with spaces so each word can be prefix-matched with ``LIKE '% WORD%'``.
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\^=\s,]+")
# đ/Đ are letters of their own in Unicode, not d + a combining mark, so NFD leaves them alone.
_NON_DECOMPOSING = str.maketrans({"đ": "d", "Đ": "D"})


def case_insensitive(name: str) -> str:
    return name.upper()


def fold(text: str) -> str:
    """Remove accents and case: 'Nguyễn Thị' → 'NGUYEN THI'."""
    return _without_marks(text).upper()


def ascii_text(text: str) -> str:
    """Remove accents, keep case: 'Nguyễn^Thị' → 'Nguyen^Thi', 'Đức' → 'Duc'; any character
    still outside ASCII becomes '?' (for modalities that show only the default repertoire)."""
    return _without_marks(text).encode("ascii", "replace").decode("ascii")


def _without_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.translate(_NON_DECOMPOSING))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def folded_words(name: str) -> str:
    """Searchable folded form of a whole PN value: ' NGUYEN THI HONG NHUNG '."""
    words = [w for w in _SEPARATORS.split(fold(name)) if w]
    return f" {' '.join(words)} " if words else ""


def fuzzy_tokens(query: str) -> list[str]:
    """Words of a fuzzy query, folded, wildcards removed."""
    return [w for w in _SEPARATORS.split(fold(query).replace("*", " ").replace("?", " ")) if w]
