"""Report calendars in Asia/Shanghai: day, ISO week and month periods, and date ranges.

Times are stored as aware UTC; a report's day is a day in Guangdong. 2026-10-01 16:00 UTC
is already 2026-10-02 00:00 in Shanghai, so it counts on 2 October. A :class:`Period` is
a half-open span of local days ``[start, end)``; ``start_at`` / ``end_at`` give the same
bounds as aware UTC datetimes for database queries (``start_at <= x.created_at < end_at``).

Weeks are ISO 8601 weeks (Monday first; week 1 holds the year's first Thursday), the
usual week of Chinese business reporting. Month-on-month (环比) compares a period with the
one before it, year-on-year (同比) with the same period a year earlier.

Date ranges come from query strings, ``?from=2026-10-01&to=2026-10-31``, both ends
inclusive; bad input raises :class:`DateRangeError` with a stable ``code`` and the
``field`` at fault; ``ERROR_MESSAGES`` has a user-facing text for each code.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from market.errors import DomainError
from market.types import utcnow

__all__ = [
    "DEFAULT_RANGE_DAYS",
    "ERROR_MESSAGES",
    "KINDS",
    "MAX_DATE",
    "MAX_RANGE_DAYS",
    "MIN_DATE",
    "SHANGHAI",
    "DateRange",
    "DateRangeError",
    "Kind",
    "Period",
    "bucket",
    "growth",
    "local_date",
    "local_today",
    "parse_date_range",
    "parse_kind",
    "period_containing",
    "period_range",
    "previous_period",
    "same_period_last_year",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")

Kind = Literal["day", "week", "month"]
KINDS: tuple[Kind, ...] = get_args(Kind)

#: The dates a report may ask about. Far enough for any real report, and it keeps local
#: midnights convertible to UTC (date.min in Shanghai is before datetime.min in UTC).
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2099, 12, 31)
#: A range with no ``from`` / ``to`` covers this many days, ending today.
DEFAULT_RANGE_DAYS = 30
#: The longest range :func:`parse_date_range` accepts unless told otherwise (~10 years).
MAX_RANGE_DAYS = 3660

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only

ERROR_MESSAGES = {
    "invalid_date": _l("Enter a date as YYYY-MM-DD, for example 2026-10-01."),
    "date_out_of_range": _l("Choose a date between 2000-01-01 and 2099-12-31."),
    "range_reversed": _l("The end date must not be before the start date."),
    "range_too_long": _l("Choose a range of at most %(days)s days."),
    "invalid_kind": _l("Group by day, week or month."),
}


class DateRangeError(DomainError):
    """A date range or grouping in a query string could not be used.

    ``code`` is one of the keys of :data:`ERROR_MESSAGES`; ``field`` is ``"from"``, ``"to"``
    or ``"by"``; ``max_days`` is set for ``range_too_long``.
    """

    code = "invalid_date"

    def __init__(self, message: str, *, field: str, code: str, max_days: int | None = None) -> None:
        super().__init__(message, field=field, code=code)
        self.max_days = max_days

    def user_message(self) -> str:
        """The error in the current user's language (needs a request context)."""
        return str(ERROR_MESSAGES[self.code]) % {"days": self.max_days}


# --- periods -------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Period:
    """One day, ISO week or calendar month of local (Shanghai) days: ``[start, end)``."""

    kind: Kind
    #: The first local day. A week starts on a Monday, a month on its 1st.
    start: date

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown period kind {self.kind!r}")
        if self.kind == "week" and self.start.isoweekday() != 1:
            raise ValueError(f"a week starts on a Monday, not on {self.start}")
        if self.kind == "month" and self.start.day != 1:
            raise ValueError(f"a month starts on its 1st, not on {self.start}")

    @property
    def end(self) -> date:
        """The first local day after the period (exclusive bound)."""
        if self.kind == "day":
            return self.start + timedelta(days=1)
        if self.kind == "week":
            return self.start + timedelta(days=7)
        return _add_months(self.start, 1)

    @property
    def last_day(self) -> date:
        """The period's last local day (inclusive)."""
        return self.end - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def start_at(self) -> datetime:
        """Local midnight at the start, as an aware UTC datetime."""
        return _local_midnight_utc(self.start)

    @property
    def end_at(self) -> datetime:
        """Local midnight after the end, as an aware UTC datetime (exclusive bound)."""
        return _local_midnight_utc(self.end)

    @property
    def key(self) -> str:
        """A stable label: ``2026-10-01`` (day), ``2026-W40`` (ISO week), ``2026-10`` (month)."""
        if self.kind == "day":
            return self.start.isoformat()
        if self.kind == "week":
            iso_year, iso_week, _ = self.start.isocalendar()
            return f"{iso_year}-W{iso_week:02d}"
        return f"{self.start.year}-{self.start.month:02d}"

    def contains(self, at: datetime) -> bool:
        """Whether the instant ``at`` (aware) falls in the period, in Shanghai time."""
        return self.start <= local_date(at) < self.end

    def __str__(self) -> str:
        return self.key


def local_date(at: datetime) -> date:
    """Return the Shanghai calendar day of an aware datetime."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime given where an aware datetime is required")
    return at.astimezone(SHANGHAI).date()


def local_today(now: datetime | None = None) -> date:
    """Return today's date in Shanghai (of ``now`` if given, else of the current time)."""
    return local_date(now if now is not None else utcnow())


def period_containing(kind: Kind, day: date) -> Period:
    """Return the day, ISO week or month that contains the local day ``day``."""
    if kind == "week":
        return Period("week", day - timedelta(days=day.isoweekday() - 1))
    if kind == "month":
        return Period("month", day.replace(day=1))
    return Period(_check_kind(kind), day)


def bucket(kind: Kind, at: datetime) -> Period:
    """Return the period of ``kind`` that the aware instant ``at`` falls in, in Shanghai."""
    return period_containing(kind, local_date(at))


def period_range(kind: Kind, start: date, end: date) -> list[Period]:
    """Return every period of ``kind`` that overlaps the local days ``start`` … ``end``.

    Both ends are inclusive, as in a query string: the first period is the one containing
    ``start`` (a week or month may begin before it), the last the one containing ``end``.
    """
    _check_kind(kind)
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    periods = []
    current = period_containing(kind, start)
    while current.start <= end:
        periods.append(current)
        current = Period(kind, current.end)
    return periods


def previous_period(period: Period) -> Period:
    """Return the period just before (环比: the previous day, week or month)."""
    if period.kind == "month":
        return Period("month", _add_months(period.start, -1))
    return period_containing(period.kind, period.start - timedelta(days=1))


def same_period_last_year(period: Period) -> Period:
    """Return the same period a year earlier (同比).

    A day maps to the same date (29 February to 28 February); a month to the same month;
    an ISO week to the week with the same number in the previous ISO year, or to that
    year's last week when it has no week 53.
    """
    if period.kind == "day":
        return Period("day", _minus_one_year(period.start))
    if period.kind == "month":
        return Period("month", period.start.replace(year=period.start.year - 1))
    iso_year, iso_week, _ = period.start.isocalendar()
    weeks_last_year = date(iso_year - 1, 12, 28).isocalendar().week  # 28 Dec: always last week
    return Period("week", date.fromisocalendar(iso_year - 1, min(iso_week, weeks_last_year), 1))


def growth(
    current: int | float | Decimal | None, previous: int | float | Decimal | None
) -> float | None:
    """Return the relative change from ``previous`` to ``current`` (0.25 = +25 %).

    ``None`` when there is nothing to compare with: no previous value, or a previous value
    of 0 (growth from nothing is not a percentage).
    """
    if current is None or previous is None or previous == 0:
        return None
    return float((Decimal(str(current)) - Decimal(str(previous))) / abs(Decimal(str(previous))))


# --- date ranges from query strings --------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    """Local days ``start`` … ``end``, both inclusive."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_at(self) -> datetime:
        """Local midnight at the start, as an aware UTC datetime."""
        return _local_midnight_utc(self.start)

    @property
    def end_at(self) -> datetime:
        """Local midnight after the last day, as an aware UTC datetime (exclusive bound)."""
        return _local_midnight_utc(self.end + timedelta(days=1))

    def contains(self, at: datetime) -> bool:
        return self.start <= local_date(at) <= self.end

    def periods(self, kind: Kind) -> list[Period]:
        """Every period of ``kind`` that overlaps the range."""
        return period_range(kind, self.start, self.end)

    def previous(self) -> DateRange:
        """The range of as many days just before this one (环比 for a custom range)."""
        return DateRange(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def last_year(self) -> DateRange:
        """The same dates a year earlier (同比; 29 February becomes 28 February)."""
        return DateRange(_minus_one_year(self.start), _minus_one_year(self.end))

    def as_query(self) -> dict[str, str]:
        """The range as query-string arguments, for links (``url_for(..., **r.as_query())``)."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def parse_date_range(
    args: Mapping[str, str],
    *,
    today: date | None = None,
    default_days: int = DEFAULT_RANGE_DAYS,
    max_days: int | None = MAX_RANGE_DAYS,
) -> DateRange:
    """Read ``from`` and ``to`` (``YYYY-MM-DD``, both inclusive) from query arguments.

    A missing ``to`` means today (in Shanghai); a missing ``from`` means ``default_days``
    days ending on ``to``; with neither, the last ``default_days`` days ending today.
    Raises :class:`DateRangeError` for a malformed or impossible date, a date outside
    :data:`MIN_DATE` … :data:`MAX_DATE`, an end before the start, or a range longer than
    ``max_days`` days.
    """
    if default_days < 1:
        raise ValueError("default_days must be at least 1")
    start = _parse_date(args.get("from"), "from")
    end = _parse_date(args.get("to"), "to")
    if end is None:
        end = today if today is not None else local_today()
        if start is not None and end < start:
            # `from` alone, in the future: a one-day range rather than an error the user
            # did not cause by anything they typed in `to`.
            end = start
    if start is None:
        start = max(MIN_DATE, end - timedelta(days=default_days - 1))
    if end < start:
        raise DateRangeError(
            f"end date {end} is before start date {start}", field="to", code="range_reversed"
        )
    result = DateRange(start, end)
    if max_days is not None and result.days > max_days:
        raise DateRangeError(
            f"range of {result.days} days is longer than {max_days}",
            field="to",
            code="range_too_long",
            max_days=max_days,
        )
    return result


def parse_kind(value: str | None, default: Kind = "month") -> Kind:
    """Read a grouping (``?by=day|week|month``); an empty or missing value gives ``default``."""
    text = (value or "").strip().lower()
    if not text:
        return default
    if text not in KINDS:
        raise DateRangeError(f"unknown grouping {value!r}", field="by", code="invalid_kind")
    return text  # type: ignore[return-value]  # checked against KINDS above


def _parse_date(value: str | None, field: str) -> date | None:
    text = (value or "").strip()
    if not text:
        return None
    # fromisoformat alone would also take 20261001 and 2026-W40-4; ask for one spelling.
    if not _ISO_DATE.fullmatch(text):
        raise DateRangeError(
            f"{field}: {text!r} is not YYYY-MM-DD", field=field, code="invalid_date"
        )
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise DateRangeError(
            f"{field}: {text!r} is not a calendar date", field=field, code="invalid_date"
        ) from None
    if not MIN_DATE <= parsed <= MAX_DATE:
        raise DateRangeError(
            f"{field}: {parsed} is outside {MIN_DATE} to {MAX_DATE}",
            field=field,
            code="date_out_of_range",
        )
    return parsed


# --- helpers -------------------------------------------------------------------------------


def _check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown period kind {kind!r}")
    return kind  # type: ignore[return-value]


def _local_midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(UTC)


def _add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _minus_one_year(day: date) -> date:
    year = day.year - 1
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))
