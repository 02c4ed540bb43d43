"""The Guangdong plan's quantitative targets (粤府〔2013〕48号, section 二(三)) and progress.

The targets live in ``market/reports/data/plan_targets.json``, quoted from the plan, and are
loaded once per process on first use. Each target has milestones (2015, 2017, 2020); the
target "for" a year is the latest milestone at or before it, so a 2026 report is measured
against the plan's 2020 goal. Values are :class:`~decimal.Decimal`, as written in the plan.

Some indicators cannot be measured by the product itself; ``Target.comparison`` says how a
dashboard should use one: ``"proxy"`` — the product measures a stand-in, defined in
``Target.measured_as``, and may show progress; ``"reference"`` — shown for context only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args

from market.errors import NotFoundError

__all__ = [
    "Baseline",
    "Comparator",
    "Comparison",
    "Milestone",
    "Plan",
    "Progress",
    "Status",
    "Target",
    "Text",
    "UnknownTargetError",
    "milestone_for_year",
    "next_milestone",
    "plan",
    "progress",
    "target",
    "target_for_year",
    "targets",
]

#: ``at_least`` for the plan's 达 / 达到 (reach); ``above`` for 超过 / 突破 (exceed).
Comparator = Literal["at_least", "above"]
Comparison = Literal["proxy", "reference"]
Status = Literal["met", "behind", "no_target"]
Unit = Literal["percent", "trillion_cny"]

_DATA_FILE = "data/plan_targets.json"


class UnknownTargetError(NotFoundError):
    """No plan target has this id."""

    code = "unknown_target"


@dataclass(frozen=True)
class Text:
    """A text in Simplified Chinese and English."""

    zh: str
    en: str

    def for_locale(self, locale: object = None) -> str:
        """Return the text for a locale (``"zh_Hans_CN"``, ``"en"``, a babel Locale...).

        Chinese is the product's default language, so no locale means Chinese.
        """
        if locale is None or str(locale).lower().startswith("zh"):
            return self.zh
        return self.en


@dataclass(frozen=True)
class Milestone:
    """One year's goal, with the plan's own words for it."""

    year: int
    value: Decimal
    comparator: Comparator
    #: The plan's sentence, quoted verbatim.
    wording: str

    def is_met_by(self, actual: Decimal) -> bool:
        if self.comparator == "above":
            return actual > self.value
        return actual >= self.value


@dataclass(frozen=True)
class Baseline:
    """The value the plan reports for the year it was written (2012), where it gives one."""

    year: int
    value: Decimal
    section: str
    wording: str


@dataclass(frozen=True)
class Target:
    """One indicator of the plan with its milestones."""

    id: str
    indicator: Text
    #: The plan's section, e.g. ``"二(三)"``.
    section: str
    unit: Unit
    unit_label: Text
    comparison: Comparison
    milestones: tuple[Milestone, ...]
    baseline: Baseline | None
    #: How the product measures a stand-in for the indicator; ``None`` when it cannot.
    measured_as: Text | None

    def milestone_for(self, year: int) -> Milestone | None:
        """Return the latest milestone at or before ``year`` (``None`` before the first)."""
        _check_year(year)
        found = None
        for milestone in self.milestones:
            if milestone.year > year:
                break
            found = milestone
        return found

    def next_milestone_after(self, year: int) -> Milestone | None:
        """Return the first milestone after ``year`` (``None`` once the plan has ended)."""
        _check_year(year)
        return next((m for m in self.milestones if m.year > year), None)


@dataclass(frozen=True)
class Plan:
    """The document the targets come from."""

    title: str
    title_en: str
    document_number: str
    issued_by: Text
    issued_on: date


@dataclass(frozen=True)
class Progress:
    """How an actual value compares with the target for a year.

    ``ratio`` is actual ÷ target (1.0 = exactly the target); ``target`` and ``ratio`` are
    ``None`` with status ``"no_target"`` for a year before the first milestone.
    """

    actual: Decimal
    target: Decimal | None
    ratio: float | None
    status: Status
    milestone: Milestone | None


@dataclass(frozen=True)
class _Catalog:
    plan: Plan
    targets: tuple[Target, ...]
    by_id: dict[str, Target]


def targets() -> list[Target]:
    """Return every plan target, in the order of the data file."""
    return list(_catalog().targets)


def target(target_id: str) -> Target:
    """Return the target with this id, or raise :class:`UnknownTargetError`."""
    found = _catalog().by_id.get(target_id) if isinstance(target_id, str) else None
    if found is None:
        raise UnknownTargetError(f"no plan target with id {target_id!r}", field="target")
    return found


def plan() -> Plan:
    """Return the plan the targets are quoted from (for citations under a chart)."""
    return _catalog().plan


def milestone_for_year(target_id: str, year: int) -> Milestone | None:
    """Return the milestone that applies in ``year``: the latest at or before it."""
    return target(target_id).milestone_for(year)


def target_for_year(target_id: str, year: int) -> Decimal | None:
    """Return the target value that applies in ``year``, or ``None`` before the first one."""
    milestone = milestone_for_year(target_id, year)
    return milestone.value if milestone is not None else None


def next_milestone(target_id: str, year: int) -> Milestone | None:
    """Return the first milestone after ``year``, or ``None`` if there is none."""
    return target(target_id).next_milestone_after(year)


def progress(target_id: str, actual: int | float | Decimal, year: int) -> Progress:
    """Compare ``actual`` (in the target's unit) with the target that applies in ``year``.

    The status follows the plan's wording: a target "达到 40%" is met at 40, one "超过 10%"
    only above 10.
    """
    value = _as_decimal(actual)
    milestone = milestone_for_year(target_id, year)
    if milestone is None:
        return Progress(actual=value, target=None, ratio=None, status="no_target", milestone=None)
    status: Status = "met" if milestone.is_met_by(value) else "behind"
    ratio = float(value / milestone.value)
    return Progress(
        actual=value, target=milestone.value, ratio=ratio, status=status, milestone=milestone
    )


# --- loading -------------------------------------------------------------------------------


def _check_year(year: int) -> None:
    if isinstance(year, bool) or not isinstance(year, int):
        raise TypeError(f"year must be an int, not {type(year).__name__}")


def _as_decimal(actual: Any) -> Decimal:
    if isinstance(actual, bool) or not isinstance(actual, int | float | Decimal):
        raise TypeError(f"actual must be a number, not {type(actual).__name__}")
    if isinstance(actual, float):
        if not math.isfinite(actual):
            raise ValueError(f"actual must be finite, got {actual!r}")
        # repr() gives the shortest text that round-trips: 42.1 becomes Decimal("42.1").
        value = Decimal(repr(actual))
    else:
        value = Decimal(actual)
    if not value.is_finite():
        raise ValueError(f"actual must be finite, got {actual!r}")
    if value < 0:
        raise ValueError(f"actual must not be negative, got {actual!r}")
    return value


def _text(raw: Any, where: str) -> Text:
    if not isinstance(raw, dict) or not raw.get("zh") or not raw.get("en"):
        raise ValueError(f"{where}: needs a non-empty 'zh' and 'en' text")
    return Text(zh=raw["zh"], en=raw["en"])


def _value(raw: Any, where: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
        raise ValueError(f"{where}: value must be a number")
    value = Decimal(raw)
    if not value > 0:
        raise ValueError(f"{where}: value must be positive")
    return value


def _milestones(raw: Iterable[Any], where: str) -> tuple[Milestone, ...]:
    milestones = []
    for entry in raw:
        if entry["comparator"] not in get_args(Comparator):
            raise ValueError(f"{where}: unknown comparator {entry['comparator']!r}")
        if not entry.get("wording"):
            raise ValueError(f"{where}: milestone {entry['year']} has no wording")
        milestones.append(
            Milestone(
                year=int(entry["year"]),
                value=_value(entry["value"], f"{where} {entry['year']}"),
                comparator=entry["comparator"],
                wording=entry["wording"],
            )
        )
    years = [m.year for m in milestones]
    if not years or years != sorted(set(years)):
        raise ValueError(f"{where}: milestones must be given in strictly increasing years")
    return tuple(milestones)


def _target(raw: dict[str, Any]) -> Target:
    where = f"plan target {raw.get('id')!r}"
    if raw["unit"] not in get_args(Unit):
        raise ValueError(f"{where}: unknown unit {raw['unit']!r}")
    if raw["comparison"] not in get_args(Comparison):
        raise ValueError(f"{where}: unknown comparison {raw['comparison']!r}")
    measured_as = _text(raw["measured_as"], where) if raw.get("measured_as") else None
    if raw["comparison"] == "proxy" and measured_as is None:
        raise ValueError(f"{where}: a proxy comparison needs 'measured_as'")
    baseline = None
    if raw.get("baseline"):
        b = raw["baseline"]
        baseline = Baseline(
            year=int(b["year"]),
            value=_value(b["value"], f"{where} baseline"),
            section=b["section"],
            wording=b["wording"],
        )
    return Target(
        id=raw["id"],
        indicator=_text(raw["indicator"], where),
        section=raw["section"],
        unit=raw["unit"],
        unit_label=_text(raw["unit_label"], where),
        comparison=raw["comparison"],
        milestones=_milestones(raw["milestones"], where),
        baseline=baseline,
        measured_as=measured_as,
    )


@cache
def _catalog() -> _Catalog:
    """Read and check the data file (runs once per process)."""
    raw_text = resources.files("market.reports").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    raw = json.loads(raw_text, parse_float=Decimal)
    source = raw["source"]
    plan_ = Plan(
        title=source["title"],
        title_en=source["title_en"],
        document_number=source["document_number"],
        issued_by=_text(source["issued_by"], "plan source"),
        issued_on=date.fromisoformat(source["issued_on"]),
    )
    loaded = tuple(_target(entry) for entry in raw["targets"])
    by_id: dict[str, Target] = {}
    for t in loaded:
        if t.id in by_id:
            raise ValueError(f"plan target id {t.id!r} appears more than once")
        by_id[t.id] = t
    return _Catalog(plan=plan_, targets=loaded, by_id=by_id)
