"""Cold-chain limits, excursion detection and EPCIS sensor elements."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, FormatChecker

from logistics.coldchain import (
    DEFAULT_THRESHOLDS,
    TEMPERATURE_TYPE,
    ColdChainConfigError,
    Excursion,
    Reading,
    Threshold,
    excursions,
    excursions_by_source,
    load_thresholds,
    threshold_for,
    to_epcis_sensor_element,
)
from market.catalog.models import Category

PROPERTY = settings(database=None, deadline=None, max_examples=200)
T0 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
TEN_MIN = timedelta(minutes=10)
LOGGER = "urn:epc:id:giai:6970000.1001"

_STANDARDS = [
    Path("/work/shared/standards/epcis"),
    Path(__file__).resolve().parents[2] / "traceability" / "schemas",
]
EPCIS_DIR = next((p for p in _STANDARDS if (p / "EPCIS-JSON-Schema.json").is_file()), _STANDARDS[0])


def series(*celsius: float, step: timedelta = timedelta(minutes=5), source: str = "") -> list:
    return [Reading(T0 + i * step, c, source) for i, c in enumerate(celsius)]


def minutes(moment: datetime) -> float:
    return (moment - T0) / timedelta(minutes=1)


# -- limits ------------------------------------------------------------------------------


def test_every_product_category_has_a_default_entry():
    assert {c.value for c in Category} <= set(DEFAULT_THRESHOLDS)


@pytest.mark.parametrize(
    ("category", "profile", "expected"),
    [
        (Category.AQUATIC, None, Threshold(0.0, 4.0)),
        (Category.AQUATIC, "live", Threshold(4.0, 10.0)),
        (Category.AQUATIC, "frozen", Threshold(None, -18.0)),
        (Category.FRUIT, None, Threshold(1.0, 5.0)),
        ("fruit", "tropical", Threshold(10.0, 15.0)),
        (Category.FRUIT, "unknown_profile", Threshold(1.0, 5.0)),
        (Category.VEGETABLE, None, Threshold(0.0, 8.0)),
        (Category.TEA, None, Threshold(None, 30.0)),
        (Category.DRIED, None, Threshold(None, 30.0)),
        (Category.POULTRY_EGG, None, Threshold(0.0, 8.0)),
        (Category.POULTRY_EGG, "chilled", Threshold(0.0, 4.0)),
        (Category.FLOWERS, None, Threshold(2.0, 8.0)),
        (Category.OTHER, None, None),
        ("no_such_category", None, None),
    ],
)
def test_threshold_for_looks_up_profile_then_category(category, profile, expected):
    assert threshold_for(category, profile) == expected


def test_config_overrides_replace_add_and_disable_entries():
    table = load_thresholds(
        {
            "fruit": {"low_c": 2, "high_c": 6},
            "fruit:citrus": {"low_c": 4.0, "high_c": 10.0},
            "flowers": None,
        }
    )

    assert threshold_for("fruit", table=table) == Threshold(2.0, 6.0)
    assert threshold_for("fruit", "citrus", table=table) == Threshold(4.0, 10.0)
    assert threshold_for("flowers", table=table) is None
    assert threshold_for("aquatic", table=table) == Threshold(0.0, 4.0)
    # The defaults themselves are untouched.
    assert DEFAULT_THRESHOLDS["fruit"] == {"low_c": 1.0, "high_c": 5.0}


@pytest.mark.parametrize(
    "overrides",
    [
        ["fruit"],
        {"Fruit": {"low_c": 1, "high_c": 5}},
        {"fruit:": {"low_c": 1, "high_c": 5}},
        {"fruit": {"low_c": 6, "high_c": 5}},
        {"fruit": {"low_c": "1", "high_c": 5}},
        {"fruit": {"low_c": True, "high_c": 5}},
        {"fruit": {"low": 1, "high_c": 5}},
        {"fruit": [1, 5]},
        {"fruit": {"low_c": float("nan")}},
    ],
)
def test_malformed_config_is_refused_with_the_entry_named(overrides):
    with pytest.raises(ColdChainConfigError, match="COLD_CHAIN_THRESHOLDS"):
        load_thresholds(overrides)


# -- readings ------------------------------------------------------------------------


def test_reading_needs_an_aware_time_and_a_plausible_value():
    with pytest.raises(ValueError, match="aware"):
        Reading(datetime(2026, 11, 27), 3.0)  # noqa: DTZ001
    for bad in (float("nan"), float("inf"), 400.0, True, "3.0"):
        with pytest.raises(ValueError, match=r"reading|number"):
            Reading(T0, bad)
    assert Reading(T0, 3).celsius == 3.0


# -- excursions ------------------------------------------------------------------------


def test_readings_within_the_limits_inclusive_are_no_excursion():
    assert excursions(series(0.0, 2.0, 4.0, 4.0, 0.0), 0.0, 4.0) == []


def test_a_run_lasting_the_minimum_duration_is_an_excursion():
    readings = series(3.0, 5.0, 5.5, 5.2, 3.5, step=timedelta(minutes=5))

    (found,) = excursions(readings, 0.0, 4.0, TEN_MIN)

    assert found == Excursion(
        start=T0 + timedelta(minutes=5),
        end=T0 + timedelta(minutes=15),
        peak_c=5.5,
        kind="high",
        count=3,
        returned_at=T0 + timedelta(minutes=20),
    )
    assert found.duration == TEN_MIN


def test_a_run_just_shorter_than_the_minimum_is_not():
    readings = [
        Reading(T0, 5.0),
        Reading(T0 + TEN_MIN - timedelta(seconds=1), 5.0),
        Reading(T0 + TEN_MIN, 3.0),
    ]

    assert excursions(readings, 0.0, 4.0, TEN_MIN) == []
    assert len(excursions(readings, 0.0, 4.0, TEN_MIN - timedelta(seconds=1))) == 1


def test_a_single_reading_more_than_two_degrees_out_is_an_excursion():
    spike = series(3.0, 6.01, 3.0)
    at_two = series(3.0, 6.0, 3.0)
    low_spike = series(3.0, -2.5, 3.0)

    (high,) = excursions(spike, 0.0, 4.0)
    (low,) = excursions(low_spike, 0.0, 4.0)

    assert (high.kind, high.peak_c, high.count, high.start, high.end) == (
        "high",
        6.01,
        1,
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=5),
    )
    assert excursions(at_two, 0.0, 4.0) == []
    assert (low.kind, low.peak_c) == ("low", -2.5)


def test_low_excursions_report_the_coldest_reading():
    (found,) = excursions(series(1.0, -0.5, -1.5, -0.8, 1.0), 0.0, 4.0)

    assert (found.kind, found.peak_c, found.count) == ("low", -1.5, 3)


def test_an_excursion_still_open_at_the_end_has_not_returned():
    (found,) = excursions(series(3.0, 5.0, 5.0, 5.0), 0.0, 4.0)

    assert found.returned_at is None
    assert minutes(found.end) == 15


def test_high_then_directly_low_are_two_runs():
    readings = series(9.0, 9.0, 9.0, -5.0, -5.0, -5.0, 2.0)

    found = excursions(readings, 0.0, 4.0)

    assert [(f.kind, minutes(f.start), minutes(f.end)) for f in found] == [
        ("high", 0, 10),
        ("low", 15, 25),
    ]
    assert found[0].returned_at is None
    assert minutes(found[1].returned_at) == 30


def test_readings_are_sorted_before_runs_are_found():
    readings = series(3.0, 5.0, 5.0, 5.0, 3.0)

    assert excursions(reversed(readings), 0.0, 4.0) == excursions(readings, 0.0, 4.0)


def test_open_ended_limits_check_one_side_only():
    tea = series(-10.0, 20.0, 31.0, 31.5, 32.0, 25.0)

    (found,) = excursions(tea, None, 30.0)

    assert (found.kind, found.peak_c) == ("high", 32.0)
    assert excursions(tea, None, None) == []


def test_zero_minimum_duration_flags_every_out_of_range_run():
    assert len(excursions(series(3.0, 4.5, 3.0, 4.5), 0.0, 4.0, timedelta(0))) == 2


def test_excursions_refuse_inverted_limits_or_negative_durations():
    with pytest.raises(ValueError, match="above"):
        excursions([], 5.0, 4.0)
    with pytest.raises(ValueError, match="negative"):
        excursions([], 0.0, 4.0, timedelta(minutes=-1))


def test_each_logger_is_judged_on_its_own_readings():
    # Interleaved, the two loggers look like one long warm run; apart, only one is warm.
    warm = series(5.0, 5.0, 5.0, source="door", step=timedelta(minutes=6))
    cold = [Reading(r.at + timedelta(minutes=3), 2.0, "back") for r in warm]

    found = excursions_by_source(warm + cold, 0.0, 4.0)

    assert found["back"] == []
    assert [(f.count, minutes(f.end)) for f in found["door"]] == [(3, 12)]


temperatures = st.lists(
    st.floats(min_value=-10, max_value=15, allow_nan=False), min_size=0, max_size=40
)


@PROPERTY
@given(temperatures, st.integers(0, 30))
def test_excursion_properties(values, min_minutes):
    readings = series(*values)
    found = excursions(readings, 0.0, 4.0, timedelta(minutes=min_minutes))

    for before, after in itertools.pairwise(found):
        assert before.end < after.start
    for exc in found:
        inside = [r for r in readings if exc.start <= r.at <= exc.end]
        assert len(inside) == exc.count
        if exc.kind == "high":
            assert all(r.celsius > 4.0 for r in inside)
            assert exc.peak_c == max(r.celsius for r in inside)
        else:
            assert all(r.celsius < 0.0 for r in inside)
            assert exc.peak_c == min(r.celsius for r in inside)
        assert (
            exc.duration >= timedelta(minutes=min_minutes)
            or exc.peak_c > 6.0
            or (exc.peak_c < -2.0)
        )
    # Nothing out of range for long enough escapes.
    if min_minutes == 0:
        flagged = sum(exc.count for exc in found)
        assert flagged == sum(1 for v in values if not 0.0 <= v <= 4.0)


# -- EPCIS sensor elements ------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads((EPCIS_DIR / "EPCIS-JSON-Schema.json").read_text(encoding="utf-8"))
    return Draft7Validator(schema, format_checker=FormatChecker())


def epcis_document(element: dict) -> dict:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-27T10:00:00.000+08:00",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": "2026-11-27T10:00:00.000+08:00",
                    "eventTimeZoneOffset": "+08:00",
                    "action": "OBSERVE",
                    "bizStep": "sensor_reporting",
                    "epcList": ["urn:epc:id:sscc:6970000.1000000001"],
                    "readPoint": {"id": "urn:epc:id:sgln:6970000.00001.0"},
                    "sensorElementList": [element],
                }
            ]
        },
    }


def errors(validator: Draft7Validator, element: dict) -> list[str]:
    return [e.message for e in validator.iter_errors(epcis_document(element))]


def test_sensor_element_validates_against_the_epcis_schema(validator):
    readings = series(3.0, 3.5, 5.2, 3.9)

    element = to_epcis_sensor_element(
        readings,
        device_id=LOGGER,
        device_metadata="https://id.gs1.org/8004/69700001001",
        low_c=0.0,
        high_c=4.0,
    )

    assert errors(validator, element) == []
    assert element["sensorMetadata"] == {
        "time": "2026-11-27T08:15:00.000+08:00",
        "startTime": "2026-11-27T08:00:00.000+08:00",
        "endTime": "2026-11-27T08:15:00.000+08:00",
        "deviceID": LOGGER,
        "deviceMetadata": "https://id.gs1.org/8004/69700001001",
    }
    assert element["sensorReport"][0] == {
        "type": "Temperature",
        "time": "2026-11-27T08:00:00.000+08:00",
        "value": 3.0,
        "uom": "CEL",
    }
    assert [r.get("exception") for r in element["sensorReport"]] == [
        None,
        None,
        "ALARM_CONDITION",
        None,
    ]


def test_summary_sensor_element_validates_and_carries_statistics(validator):
    element = to_epcis_sensor_element(series(2.0, 4.0, 6.0), summary=True, high_c=4.0)

    assert errors(validator, element) == []
    (report,) = element["sensorReport"]
    assert (report["minValue"], report["maxValue"], report["meanValue"]) == (2.0, 6.0, 4.0)
    assert report["sDev"] == pytest.approx(1.633, abs=0.001)
    assert report["exception"] == "ALARM_CONDITION"


def test_the_sensor_element_has_the_shape_of_the_gs1_example():
    example_file = EPCIS_DIR / "examples" / "SensorDataExample1.jsonld"
    if not example_file.is_file():
        pytest.skip("GS1's EPCIS examples are not available here")
    example = json.loads(example_file.read_text(encoding="utf-8"))
    theirs = example["epcisBody"]["eventList"][0]["sensorElementList"][0]
    temperature = next(r for r in theirs["sensorReport"] if r["type"] == "Temperature")

    element = to_epcis_sensor_element(
        series(3.0),
        device_id=LOGGER,
        device_metadata="https://id.gs1.org/8004/69700001001",
        raw_data="https://example.org/8004/69700001001",
    )
    ours = element["sensorReport"][0]

    assert set(element) == set(theirs) == {"sensorMetadata", "sensorReport"}
    assert set(temperature) <= set(ours)
    assert (ours["type"], ours["uom"]) == (temperature["type"], temperature["uom"])
    assert set(theirs["sensorMetadata"]) <= set(element["sensorMetadata"])


def test_temperature_is_the_json_ld_term_for_gs1_temperature():
    context = json.loads((EPCIS_DIR / "epcis-context.jsonld").read_text(encoding="utf-8"))
    text = json.dumps(context)

    assert f'"{TEMPERATURE_TYPE}": "gs1:Temperature"' in text
    assert '"gs1": "https://gs1.org/voc/"' in text


@pytest.mark.parametrize(
    ("part", "key", "bad"),
    [
        ("sensorMetadata", "time", "27/11/2026 08:00"),
        ("sensorMetadata", "deviceID", "logger 1001"),
        ("report", "value", "3.0"),
        ("report", "type", "Celsius"),
    ],
)
def test_the_schema_check_catches_a_broken_sensor_element(validator, part, key, bad):
    element = to_epcis_sensor_element(series(3.0), device_id=LOGGER)
    target = element["sensorMetadata"] if part == "sensorMetadata" else element["sensorReport"][0]
    target[key] = bad

    assert errors(validator, element) != []


def test_sensor_element_needs_readings():
    with pytest.raises(ValueError, match="at least one"):
        to_epcis_sensor_element([])
