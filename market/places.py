"""Chinese administrative divisions (GB/T 2260 six-digit codes) for addresses and origins.

The data lives in ``market/data/divisions.json`` and is loaded once, lazily, on first use.
It holds all 34 provincial-level divisions, the prefecture-level divisions of every province
and autonomous region, and every county-level division of Guangdong (市辖区, 县级市, 县 and
自治县). Code that walks the tree must therefore cope with whatever depth is present: a
municipality such as Beijing has no children here, and outside Guangdong a city has none.

Codes follow the usual GB/T 2260 layout: ``PP0000`` is a province, ``PPCC00`` a
prefecture-level city inside province ``PP`` and ``PPCCDD`` a county-level division inside
city ``PPCC``. Look-ups are by exact code string; every function below accepts unknown
codes without raising.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal, get_args

__all__ = [
    "GUANGDONG",
    "Division",
    "Level",
    "children",
    "choices",
    "city_of",
    "full_name",
    "get",
    "guangdong_cities",
    "is_guangdong",
    "is_valid_guangdong_code",
    "name_of",
    "province_of",
    "provinces",
]

Level = Literal["province", "city", "county"]

GUANGDONG = "440000"
"""Code of Guangdong Province (广东省)."""

_LEVELS: frozenset[str] = frozenset(get_args(Level))


@dataclass(frozen=True)
class Division:
    """One administrative division.

    Attributes:
        code: Six-digit GB/T 2260 code, e.g. ``"440705"``.
        name: Simplified Chinese name, e.g. ``"新会区"``.
        name_en: English (pinyin) name, e.g. ``"Xinhui District"``.
        level: ``"province"``, ``"city"`` (prefecture level) or ``"county"`` (county level).
        parent_code: Code of the enclosing division, or ``None`` for a province.
    """

    code: str
    name: str
    name_en: str
    level: Level
    parent_code: str | None


@dataclass(frozen=True)
class _Index:
    by_code: dict[str, Division]
    children: dict[str, tuple[Division, ...]]
    provinces: tuple[Division, ...]


@cache
def _index() -> _Index:
    """Load ``divisions.json`` from the package and index it (runs once per process)."""
    raw = resources.files("market").joinpath("data/divisions.json").read_text(encoding="utf-8")
    by_code: dict[str, Division] = {}
    for entry in json.loads(raw)["divisions"]:
        division = Division(
            code=entry["code"],
            name=entry["name"],
            name_en=entry["name_en"],
            level=entry["level"],
            parent_code=entry["parent_code"],
        )
        if division.level not in _LEVELS:
            raise ValueError(f"Division {division.code} has an unknown level {division.level!r}")
        if division.code in by_code:
            raise ValueError(f"Division code {division.code} appears more than once")
        by_code[division.code] = division

    grouped: dict[str, list[Division]] = {}
    for division in by_code.values():
        if division.parent_code is None:
            continue
        if division.parent_code not in by_code:
            raise ValueError(
                f"Division {division.code} refers to a missing parent {division.parent_code}"
            )
        grouped.setdefault(division.parent_code, []).append(division)

    children = {
        parent: tuple(sorted(kids, key=lambda d: d.code)) for parent, kids in grouped.items()
    }
    top = sorted(
        (d for d in by_code.values() if d.level == "province"),
        key=lambda d: (d.code != GUANGDONG, d.code),
    )
    return _Index(by_code=by_code, children=children, provinces=tuple(top))


def get(code: str) -> Division | None:
    """Return the division with this exact code, or ``None`` if it is unknown."""
    if not isinstance(code, str):
        return None
    return _index().by_code.get(code)


def name_of(code: str) -> str:
    """Return the Chinese name of ``code``, or the code itself when it is unknown."""
    division = get(code)
    return division.name if division is not None else code


def provinces() -> list[Division]:
    """Return all 34 provincial-level divisions: Guangdong first, then the rest by code."""
    return list(_index().provinces)


def children(code: str) -> list[Division]:
    """Return the divisions directly below ``code``, ordered by code.

    Unknown codes, county-level divisions and divisions whose subdivisions are not part of
    the data set (for instance Beijing, or a city outside Guangdong) all give an empty list.
    """
    if not isinstance(code, str):
        return []
    return list(_index().children.get(code, ()))


def guangdong_cities() -> list[Division]:
    """Return the 21 prefecture-level cities of Guangdong, ordered by code."""
    return children(GUANGDONG)


def _lineage(code: str) -> list[Division]:
    """Return the chain of divisions from the province down to ``code`` (empty if unknown)."""
    chain: list[Division] = []
    division = get(code)
    while division is not None:
        chain.append(division)
        division = get(division.parent_code) if division.parent_code is not None else None
    chain.reverse()
    return chain


def city_of(code: str) -> Division | None:
    """Return the prefecture-level city that contains ``code``.

    A city code returns its own division; a county code returns its parent city. Provinces
    and unknown codes give ``None``.
    """
    return next((d for d in _lineage(code) if d.level == "city"), None)


def province_of(code: str) -> Division | None:
    """Return the provincial-level division that contains ``code`` (itself for a province)."""
    chain = _lineage(code)
    return chain[0] if chain else None


def full_name(code: str) -> str:
    """Return the Chinese names from province down to ``code`` joined together.

    For example ``full_name("440705") == "广东省江门市新会区"``. Unknown codes are returned
    unchanged, as with :func:`name_of`.
    """
    chain = _lineage(code)
    if not chain:
        return code
    return "".join(d.name for d in chain)


def is_guangdong(code: str) -> bool:
    """Return whether ``code`` is a known division in Guangdong (the province included)."""
    province = province_of(code)
    return province is not None and province.code == GUANGDONG


def is_valid_guangdong_code(code: str) -> bool:
    """Return whether ``code`` is an existing Guangdong prefecture-level or county-level code.

    The province code ``440000`` itself is not accepted: callers use this to check where in
    Guangdong something is, which needs at least a city.
    """
    division = get(code)
    return division is not None and division.level != "province" and is_guangdong(code)


def choices(parent_code: str | None = None) -> list[tuple[str, str]]:
    """Return ``(code, Chinese name)`` pairs for a form select.

    With no argument the provinces are listed, Guangdong first; otherwise the children of
    ``parent_code`` are listed by code (an empty list when there are none).
    """
    divisions = provinces() if parent_code is None else children(parent_code)
    return [(d.code, d.name) for d in divisions]
