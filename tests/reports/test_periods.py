from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.reports import periods
from market.reports.periods import DateRange, DateRangeError, Period


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- bucketing in Shanghai time ----------------------------------------------------------------


def test_16_00_utc_is_already_the_next_day_in_shanghai():
    assert periods.bucket("day", utc(2026, 10, 1, 15, 59, 59)) == Period("day", date(2026, 10, 1))
    assert periods.bucket("day", utc(2026, 10, 1, 16, 0)) == Period("day", date(2026, 10, 2))


def test_the_last_utc_evening_of_a_month_counts_in_the_next_month_in_shanghai():
    assert periods.bucket("month", utc(2026, 10, 31, 15, 59)).key == "2026-10"
    assert periods.bucket("month", utc(2026, 10, 31, 16, 0)).key == "2026-11"
    assert periods.bucket("month", utc(2026, 12, 31, 16, 0)).key == "2027-01"


def test_a_sunday_evening_in_utc_is_monday_of_the_next_week_in_shanghai():
    # 2026-10-04 is a Sunday; 16:00 UTC that day is Monday 2026-10-05 00:00 in Shanghai.
    assert periods.bucket("week", utc(2026, 10, 4, 15, 0)) == Period("week", date(2026, 9, 28))
    assert periods.bucket("week", utc(2026, 10, 4, 16, 0)) == Period("week", date(2026, 10, 5))


def test_bucketing_works_from_any_aware_timezone_and_refuses_naive_datetimes():
    new_york = timezone(timedelta(hours=-4))
    assert periods.bucket("day", datetime(2026, 10, 1, 12, 0, tzinfo=new_york)).key == "2026-10-02"
    with pytest.raises(ValueError, match="naive"):
        periods.bucket("day", datetime(2026, 10, 1, 12, 0))  # noqa: DTZ001


def test_a_period_gives_its_bounds_as_utc_instants_for_queries():
    day = Period("day", date(2026, 10, 2))
    assert day.start_at == utc(2026, 10, 1, 16, 0)
    assert day.end_at == utc(2026, 10, 2, 16, 0)
    assert day.contains(utc(2026, 10, 1, 16, 0))
    assert not day.contains(utc(2026, 10, 2, 16, 0))
    month = Period("month", date(2026, 2, 1))
    assert (month.end, month.last_day, month.days) == (date(2026, 3, 1), date(2026, 2, 28), 28)
    assert month.start_at == utc(2026, 1, 31, 16, 0)
    assert month.end_at == utc(2026, 2, 28, 16, 0)


INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 2),  # noqa: DTZ001 (hypothesis bounds are naive)
    max_value=datetime(2099, 12, 30),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(INSTANTS)
def test_every_instant_falls_in_the_period_it_is_bucketed_into(at):
    for kind in periods.KINDS:
        period = periods.bucket(kind, at)
        assert period.start_at <= at < period.end_at
        assert period.contains(at)


# --- ISO weeks ---------------------------------------------------------------------------------


def test_iso_week_1_can_start_in_the_previous_december():
    # 2024-12-30 (Monday) starts ISO week 1 of 2025.
    week = periods.period_containing("week", date(2025, 1, 1))
    assert week.start == date(2024, 12, 30)
    assert week.key == "2025-W01"


def test_early_january_days_can_belong_to_the_last_iso_week_of_the_previous_year():
    # 2027-01-01 is a Friday: it is in week 53 of ISO year 2026.
    week = periods.period_containing("week", date(2027, 1, 3))
    assert week.start == date(2026, 12, 28)
    assert week.key == "2026-W53"
    assert periods.period_containing("week", date(2027, 1, 4)).key == "2027-W01"


def test_weeks_start_on_monday():
    assert periods.period_containing("week", date(2026, 10, 1)).start == date(2026, 9, 28)
    with pytest.raises(ValueError, match="Monday"):
        Period("week", date(2026, 10, 1))
    with pytest.raises(ValueError, match="1st"):
        Period("month", date(2026, 10, 2))
    with pytest.raises(ValueError, match="kind"):
        Period("year", date(2026, 1, 1))


# --- ranges --------------------------------------------------------------------------------------


def test_period_range_covers_every_period_touching_the_dates():
    months = periods.period_range("month", date(2026, 10, 15), date(2027, 1, 3))
    assert [p.key for p in months] == ["2026-10", "2026-11", "2026-12", "2027-01"]
    weeks = periods.period_range("week", date(2026, 10, 1), date(2026, 10, 31))
    assert [p.key for p in weeks] == ["2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44"]
    assert weeks[0].start == date(2026, 9, 28)
    assert weeks[-1].last_day == date(2026, 11, 1)
    days = periods.period_range("day", date(2028, 2, 27), date(2028, 3, 1))
    assert [p.key for p in days] == ["2028-02-27", "2028-02-28", "2028-02-29", "2028-03-01"]


def test_period_range_of_one_day_is_one_period_and_a_reversed_range_is_refused():
    assert periods.period_range("month", date(2026, 10, 1), date(2026, 10, 1)) == [
        Period("month", date(2026, 10, 1))
    ]
    with pytest.raises(ValueError, match="before"):
        periods.period_range("day", date(2026, 10, 2), date(2026, 10, 1))
    with pytest.raises(ValueError, match="kind"):
        periods.period_range("quarter", date(2026, 10, 1), date(2026, 10, 2))


def test_leap_february_has_29_days_and_century_rules_apply():
    assert Period("month", date(2028, 2, 1)).days == 29
    assert Period("month", date(2026, 2, 1)).days == 28
    assert Period("month", date(2000, 2, 1)).days == 29  # divisible by 400
    assert Period("month", date(2100, 2, 1)).days == 28  # divisible by 100, not 400


# --- month-on-month and year-on-year -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "start", "previous"),
    [
        ("day", date(2026, 3, 1), date(2026, 2, 28)),
        ("day", date(2028, 3, 1), date(2028, 2, 29)),
        ("day", date(2027, 1, 1), date(2026, 12, 31)),
        ("week", date(2027, 1, 4), date(2026, 12, 28)),
        ("month", date(2026, 1, 1), date(2025, 12, 1)),
        ("month", date(2026, 3, 1), date(2026, 2, 1)),
    ],
)
def test_previous_period_is_the_one_just_before(kind, start, previous):
    assert periods.previous_period(Period(kind, start)) == Period(kind, previous)


@pytest.mark.parametrize(
    ("kind", "start", "last_year"),
    [
        ("day", date(2026, 10, 1), date(2025, 10, 1)),
        ("day", date(2028, 2, 29), date(2027, 2, 28)),
        ("day", date(2029, 2, 28), date(2028, 2, 28)),
        ("month", date(2028, 2, 1), date(2027, 2, 1)),
        ("month", date(2026, 1, 1), date(2025, 1, 1)),
        # ISO 2026-W40 -> 2025-W40
        ("week", date(2026, 9, 28), date(2025, 9, 29)),
        # 2026 has a week 53; 2025 does not, so W53 compares with 2025-W52.
        ("week", date(2026, 12, 28), date(2025, 12, 22)),
        # 2027-W01 starts 2027-01-04 -> 2026-W01 starts 2025-12-29.
        ("week", date(2027, 1, 4), date(2025, 12, 29)),
    ],
)
def test_same_period_last_year(kind, start, last_year):
    assert periods.same_period_last_year(Period(kind, start)) == Period(kind, last_year)


def test_year_on_year_week_keeps_the_week_number():
    week = periods.period_containing("week", date(2026, 10, 1))
    assert week.key == "2026-W40"
    assert periods.same_period_last_year(week).key == "2025-W40"


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [
        (125, 100, 0.25),
        (75, 100, -0.25),
        (100, 100, 0.0),
        (0, 100, -1.0),
        (Decimal("1.5"), Decimal("1.2"), 0.25),
        (3.0, 2.0, 0.5),
        (5, 0, None),
        (0, 0, None),
        (5, None, None),
        (None, 5, None),
    ],
)
def test_growth_is_the_relative_change_and_none_without_a_base(current, previous, expected):
    result = periods.growth(current, previous)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


# --- date ranges from query strings -------------------------------------------------------------

TODAY = date(2026, 10, 20)


def test_a_query_range_includes_both_ends():
    result = periods.parse_date_range({"from": "2026-10-01", "to": "2026-10-31"}, today=TODAY)
    assert result == DateRange(date(2026, 10, 1), date(2026, 10, 31))
    assert result.days == 31
    assert result.start_at == utc(2026, 9, 30, 16, 0)
    assert result.end_at == utc(2026, 10, 31, 16, 0)
    assert result.as_query() == {"from": "2026-10-01", "to": "2026-10-31"}
    assert [p.key for p in result.periods("month")] == ["2026-10"]


def test_a_custom_range_compares_with_the_days_just_before_and_with_last_year():
    october = DateRange(date(2026, 10, 1), date(2026, 10, 31))
    assert october.previous() == DateRange(date(2026, 8, 31), date(2026, 9, 30))
    assert october.previous().days == october.days
    assert october.last_year() == DateRange(date(2025, 10, 1), date(2025, 10, 31))
    leap = DateRange(date(2028, 2, 1), date(2028, 2, 29))
    assert leap.last_year() == DateRange(date(2027, 2, 1), date(2027, 2, 28))


def test_missing_dates_default_to_the_last_30_days_ending_today():
    assert periods.parse_date_range({}, today=TODAY) == DateRange(date(2026, 9, 21), TODAY)
    assert periods.parse_date_range({"from": " ", "to": ""}, today=TODAY).end == TODAY
    assert periods.parse_date_range({"from": "2026-10-10"}, today=TODAY) == DateRange(
        date(2026, 10, 10), TODAY
    )
    assert periods.parse_date_range({"to": "2026-06-30"}, today=TODAY) == DateRange(
        date(2026, 6, 1), date(2026, 6, 30)
    )
    assert periods.parse_date_range({}, today=TODAY, default_days=7).start == date(2026, 10, 14)


def test_today_defaults_to_the_shanghai_date():
    assert periods.local_today(utc(2026, 10, 19, 16, 30)) == TODAY
    assert periods.parse_date_range({}).end == periods.local_today()


def test_a_start_in_the_future_without_an_end_is_that_one_day():
    assert periods.parse_date_range({"from": "2026-12-01"}, today=TODAY) == DateRange(
        date(2026, 12, 1), date(2026, 12, 1)
    )


def test_a_one_day_range_is_allowed_and_leap_day_parses():
    assert periods.parse_date_range({"from": "2028-02-29", "to": "2028-02-29"}).days == 1


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ({"from": "2026/10/01"}, "from", "invalid_date"),
        ({"from": "20261001"}, "from", "invalid_date"),
        ({"from": "2026-W40-1"}, "from", "invalid_date"),
        ({"from": "2026-10-1"}, "from", "invalid_date"),
        ({"to": "yesterday"}, "to", "invalid_date"),
        ({"to": "2026-02-29"}, "to", "invalid_date"),
        ({"from": "2026-13-01"}, "from", "invalid_date"),
        ({"from": "١٢٣٤-10-01"}, "from", "invalid_date"),
        ({"from": "1999-12-31"}, "from", "date_out_of_range"),
        ({"to": "2100-01-01"}, "to", "date_out_of_range"),
        ({"from": "2026-10-31", "to": "2026-10-01"}, "to", "range_reversed"),
        ({"from": "2000-01-01", "to": "2026-10-01"}, "to", "range_too_long"),
    ],
)
def test_bad_query_dates_raise_a_clear_error_naming_the_field(query, field, code):
    with pytest.raises(DateRangeError) as caught:
        periods.parse_date_range(query, today=TODAY)
    assert (caught.value.field, caught.value.code) == (field, code)
    assert code in periods.ERROR_MESSAGES


def test_the_longest_range_can_be_chosen_by_the_caller():
    query = {"from": "2026-01-01", "to": "2026-12-31"}
    assert periods.parse_date_range(query, max_days=365).days == 365
    assert periods.parse_date_range(query, max_days=None).days == 365
    with pytest.raises(DateRangeError) as caught:
        periods.parse_date_range(query, max_days=364)
    assert caught.value.max_days == 364


def test_a_range_error_has_a_message_for_the_user(app):
    with pytest.raises(DateRangeError) as too_long:
        periods.parse_date_range({"from": "2026-01-01", "to": "2026-12-31"}, max_days=90)
    with pytest.raises(DateRangeError) as malformed:
        periods.parse_date_range({"from": "2026-1-1"})
    with app.test_request_context(headers={"Cookie": "lang=en"}):
        assert too_long.value.user_message() == "Choose a range of at most 90 days."
        assert "2026-10-01" in malformed.value.user_message()
    with app.test_request_context():  # the default language, Chinese
        assert "90" in too_long.value.user_message()
        assert "2026-10-01" in malformed.value.user_message()


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "month"), ("", "month"), ("day", "day"), (" Week ", "week")]
)
def test_grouping_is_read_from_the_query(value, expected):
    assert periods.parse_kind(value) == expected


def test_an_unknown_grouping_is_a_clear_error():
    with pytest.raises(DateRangeError) as caught:
        periods.parse_kind("quarter")
    assert (caught.value.field, caught.value.code) == ("by", "invalid_kind")
