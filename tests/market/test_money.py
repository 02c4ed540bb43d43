from datetime import datetime

import pytest

from market.money import MoneyError, fen_to_yuan, format_fen, yuan_to_fen
from market.types import UTCDateTime, utcnow


@pytest.mark.parametrize(
    ("yuan", "fen"), [("12.30", 1230), ("0.01", 1), ("1,234.56", 123456), ("8", 800), (3, 300)]
)
def test_yuan_to_fen(yuan, fen):
    assert yuan_to_fen(yuan) == fen


@pytest.mark.parametrize("bad", ["12.345", "abc", "", "NaN", "Infinity"])
def test_yuan_to_fen_refuses_what_is_not_whole_fen(bad):
    with pytest.raises(MoneyError):
        yuan_to_fen(bad)


def test_yuan_to_fen_refuses_floats():
    with pytest.raises(MoneyError):
        yuan_to_fen(12.3)


def test_format_fen():
    assert format_fen(123456) == "¥1,234.56"
    assert format_fen(5) == "¥0.05"
    assert format_fen(-1280) == "-¥12.80"
    assert fen_to_yuan(1280) == "12.80"


def test_utc_datetime_refuses_naive_values():
    column = UTCDateTime()
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2026, 1, 1), None)  # noqa: DTZ001 - the point
    aware = utcnow()
    assert column.process_bind_param(aware, None) == aware
    assert column.process_result_value(aware.replace(tzinfo=None), None) == aware
