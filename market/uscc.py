"""Unified Social Credit Codes (统一社会信用代码, GB 32100-2015).

A code has 18 characters:

* position 1: registration authority (``1``-``9``, ``A``, ``N`` or ``Y``; ``9`` is market
  regulation, which registers companies and farmers' specialised cooperatives);
* position 2: organisation type within that authority (``93`` means a farmers' specialised
  cooperative, 农民专业合作社);
* positions 3-8: the GB/T 2260 division code of the registering authority;
* positions 9-17: the organisation code;
* position 18: a check character computed from the first 17.

Only the digits and the upper-case letters other than I, O, Z, S and V are used.
:func:`is_valid` checks length, character set and check character; it does not check the
authority and type values, which the check character already protects against typing errors.
"""

from __future__ import annotations

import unicodedata

__all__ = [
    "ALPHABET",
    "COOPERATIVE_PREFIX",
    "LENGTH",
    "WEIGHTS",
    "check_char",
    "division_code",
    "explain",
    "is_farmers_cooperative",
    "is_valid",
    "normalize",
]

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters a code may contain; a character's value is its index here."""

WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
"""Weights of positions 1-17 in the check character calculation."""

LENGTH = 18

COOPERATIVE_PREFIX = "93"
"""Authority and type characters of a farmers' specialised cooperative (农民专业合作社)."""

_VALUES = {char: value for value, char in enumerate(ALPHABET)}


def normalize(code: str) -> str:
    """Return ``code`` with all whitespace removed and letters upper-cased.

    Full-width digits and letters, as pasted from Chinese documents, become their ASCII forms.
    """
    folded = unicodedata.normalize("NFKC", code)
    return "".join(folded.split()).upper()


def check_char(first17: str) -> str:
    """Return the check character (position 18) for the first 17 characters of a code.

    The input is normalised first. Raises ``ValueError`` if it is not 17 characters long
    or contains a character outside :data:`ALPHABET`.
    """
    body = normalize(first17)
    if len(body) != LENGTH - 1:
        raise ValueError(f"Expected {LENGTH - 1} characters, got {len(body)}")
    total = 0
    for char, weight in zip(body, WEIGHTS, strict=True):
        value = _VALUES.get(char)
        if value is None:
            raise ValueError(f"Character {char!r} is not allowed in a unified social credit code")
        total += value * weight
    return ALPHABET[(31 - total % 31) % 31]


def explain(code: str) -> str | None:
    """Return ``None`` if ``code`` is valid, otherwise the first reason it is not.

    Reasons are short keys for the caller to translate: ``"length"`` (not 18 characters
    after normalising), ``"charset"`` (a character outside :data:`ALPHABET`, such as I, O,
    Z, S or V) or ``"check"`` (the check character does not match). Non-string input is
    reported as ``"charset"``.
    """
    if not isinstance(code, str):
        return "charset"
    normalized = normalize(code)
    if len(normalized) != LENGTH:
        return "length"
    if any(char not in _VALUES for char in normalized):
        return "charset"
    if check_char(normalized[:-1]) != normalized[-1]:
        return "check"
    return None


def is_valid(code: str) -> bool:
    """Return whether ``code`` is a well-formed code with a correct check character.

    Lower case and embedded spaces are accepted. Never raises, whatever string is given.
    """
    return explain(code) is None


def division_code(code: str) -> str | None:
    """Return the six-digit division code (positions 3-8) of a valid code, else ``None``."""
    if not is_valid(code):
        return None
    return normalize(code)[2:8]


def is_farmers_cooperative(code: str) -> bool:
    """Return whether ``code`` is valid and registers a farmers' specialised cooperative."""
    return is_valid(code) and normalize(code).startswith(COOPERATIVE_PREFIX)
