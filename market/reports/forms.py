"""The dashboards' query string: place (drill-down), date range and grouping.

Dashboards are GET pages that people bookmark and share, so their "form" is the query
string, read here into a :class:`ReportQuery`; bad input raises a
:class:`~market.reports.periods.DateRangeError` (dates, grouping) or
:class:`BadPlaceError` (drill-down), each naming the field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from flask_babel import lazy_gettext as _l

from market.errors import DomainError
from market.reports import periods
from market.reports.periods import DateRange, Kind

_AREA = re.compile(r"[0-9]{6}")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")

#: The longest range per grouping: a year of days, ten years of weeks or months.
MAX_DAYS = {"day": 366, "week": periods.MAX_RANGE_DAYS, "month": periods.MAX_RANGE_DAYS}

KIND_LABELS = {"day": _l("By day"), "week": _l("By week"), "month": _l("By month")}


class BadPlaceError(DomainError):
    """A drill-down argument that is not a division code or a cooperative id."""

    code = "bad_place"


class BadMonthError(DomainError):
    code = "bad_month"


@dataclass(frozen=True)
class ReportQuery:
    range: DateRange
    kind: Kind
    area: str | None = None
    coop: int | None = None

    def place_args(self) -> dict[str, str]:
        if self.coop is not None:
            return {"coop": str(self.coop)}
        return {"area": self.area} if self.area else {}

    def args(self) -> dict[str, str]:
        """Everything, for links that keep the user's choices (exports, print)."""
        return {**self.place_args(), **self.range.as_query(), "by": self.kind}


def parse_place(args: Mapping[str, str]) -> tuple[str | None, int | None]:
    area = (args.get("area") or "").strip() or None
    coop_text = (args.get("coop") or "").strip()
    if area is not None and not _AREA.fullmatch(area):
        raise BadPlaceError(f"area {area!r} is not a division code", field="area")
    coop = None
    if coop_text:
        if not coop_text.isascii() or not coop_text.isdigit() or len(coop_text) > 9:
            raise BadPlaceError(f"coop {coop_text!r} is not an id", field="coop")
        coop = int(coop_text)
    return area, coop


def parse_query(args: Mapping[str, str], *, today: date | None = None) -> ReportQuery:
    """Read ``area`` / ``coop``, ``from`` / ``to`` and ``by`` (default: the last 30 days,
    by day)."""
    area, coop = parse_place(args)
    kind = periods.parse_kind(args.get("by"), default="day")
    dr = periods.parse_date_range(args, today=today, max_days=MAX_DAYS[kind])
    return ReportQuery(range=dr, kind=kind, area=area, coop=coop)


def parse_month(value: str | None, *, today: date | None = None) -> DateRange:
    """A month as ``YYYY-MM`` (default: the last whole month), as a range of its days."""
    text = (value or "").strip()
    if not text:
        first = (today or periods.local_today()).replace(day=1)
        month = periods.previous_period(periods.Period("month", first))
        return DateRange(month.start, month.last_day)
    match = _MONTH.fullmatch(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise BadMonthError(f"not a month: {text!r}", field="month")
    first = date(int(match.group(1)), int(match.group(2)), 1)
    if not periods.MIN_DATE <= first <= periods.MAX_DATE:
        raise BadMonthError(f"month out of range: {text!r}", field="month")
    month = periods.Period("month", first)
    return DateRange(month.start, month.last_day)
