"""Password policy (SEC-2..4) and argon2id hashing.

A password has at least 8 characters with an upper-case letter, a lower-case letter, a digit
and a special character; it may not be one of the user's previous passwords, contain the user
name, or be a common password dressed up with digits and symbols ("Password1!", "Matkhau@123").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
HISTORY = 5  # previous passwords that may not be reused
_COMMON = Path(__file__).with_name("common-passwords.txt")
_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)


class WeakPassword(ValueError):
    """The password breaks a rule; the message says which, in words a user can act on."""


def check_policy(password: str, username: str = "") -> None:
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"at least {MIN_LENGTH} characters")
    if not re.search(r"[A-Z]", _ascii(password)):
        problems.append("an upper-case letter")
    if not re.search(r"[a-z]", _ascii(password)):
        problems.append("a lower-case letter")
    if not re.search(r"\d", password):
        problems.append("a digit")
    if not re.search(r"[^\w\s]|_", password):
        problems.append("a special character (e.g. ! @ # $)")
    if problems:
        raise WeakPassword("the password needs " + ", ".join(problems))
    if username and username.lower() in password.lower():
        raise WeakPassword("the password may not contain the user name")
    if is_common(password):
        raise WeakPassword("the password is too common; choose one that is not a dictionary word")


def is_common(password: str) -> bool:
    """True when the letters of the password, lower-cased, form a common password or word."""
    core = re.sub(r"[^a-z]", "", _ascii(password).lower())
    whole = password.lower()
    words = common_passwords()
    return whole in words or core in words or len(core) < 3


def _ascii(text: str) -> str:
    """Vietnamese letters count as letters: "Đ" → "D", "ệ" → "e"."""
    text = text.replace("Đ", "D").replace("đ", "d")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = _COMMON.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def reused(password: str, previous_hashes: list[str]) -> bool:
    return any(verify_password(h, password) for h in previous_hashes[:HISTORY])
