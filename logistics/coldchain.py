"""Cold chain: temperature limits per product category, excursions, EPCIS sensor data.

A pure module (no Flask, no database).

Limits
------

:data:`DEFAULT_THRESHOLDS` maps a product category (the values of
``market.catalog.models.Category``) or a ``"category:profile"`` refinement to the range a
parcel must stay in, as ``{"low_c": ..., "high_c": ...}`` (either end may be None: open).
The application config key :data:`CONFIG_KEY` (``COLD_CHAIN_THRESHOLDS``, settable as JSON
through ``YUENONG_COLD_CHAIN_THRESHOLDS``) overrides entries one by one or adds profiles;
an entry set to None means "not monitored". :func:`load_thresholds` merges and validates,
:func:`threshold_for` looks one up (profile first, then the category).

The defaults are common handling ranges for Guangdong's products, a starting point and no
substitute for the storage temperature on a product's own label:

==================  ===========  ====================================================
key                 range °C     for
==================  ===========  ====================================================
aquatic             0 to 4       chilled (冰鲜) fish and seafood
aquatic:live        4 to 10      live shellfish and crabs (生蚝, 膏蟹), which die near 0
aquatic:frozen      ≤ -18        frozen (冻品) seafood
fruit               1 to 5       lychee, longan and most fresh fruit
fruit:tropical      10 to 15     mango, banana, pineapple (chilling injury below ~10)
vegetable           0 to 8       leafy and fresh vegetables
poultry_egg         0 to 8       eggs and poultry products
poultry_egg:chilled 0 to 4       chilled poultry meat (冰鲜鸡)
flowers             2 to 8       cut flowers
tea                 ≤ 30         tea (ambient, kept dry)
dried               ≤ 30         dried and processed goods (陈皮, 腊味 ...)
grain_oil           ≤ 30         grain and oil
other               none         not monitored unless configured
==================  ===========  ====================================================

Excursions
----------

Readings are taken in time order; a reading above ``high_c`` is "high", below ``low_c``
"low" (the limits themselves are in range). A run is a maximal sequence of consecutive
readings of the same kind. A run is an :class:`Excursion` when it lasts at least
``min_duration`` (from its first to its last reading: two consecutive high readings ten
minutes apart are a ten-minute excursion) or when any reading in it is more than
``spike_c`` (2 °C) beyond the limit, however short. A single slightly-high reading (a door
opened at a stop) is not. Give :func:`excursions` one sensor's series: mixing loggers
interleaves their readings into runs neither of them saw (see :func:`excursions_by_source`).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_THRESHOLDS",
    "TEMPERATURE_TYPE",
    "ColdChainConfigError",
    "Excursion",
    "Reading",
    "Threshold",
    "excursions",
    "excursions_by_source",
    "load_thresholds",
    "threshold_for",
    "to_epcis_sensor_element",
]

CONFIG_KEY = "COLD_CHAIN_THRESHOLDS"

DEFAULT_THRESHOLDS: dict[str, dict[str, float | None] | None] = {
    "aquatic": {"low_c": 0.0, "high_c": 4.0},
    "aquatic:live": {"low_c": 4.0, "high_c": 10.0},
    "aquatic:frozen": {"low_c": None, "high_c": -18.0},
    "fruit": {"low_c": 1.0, "high_c": 5.0},
    "fruit:tropical": {"low_c": 10.0, "high_c": 15.0},
    "vegetable": {"low_c": 0.0, "high_c": 8.0},
    "poultry_egg": {"low_c": 0.0, "high_c": 8.0},
    "poultry_egg:chilled": {"low_c": 0.0, "high_c": 4.0},
    "flowers": {"low_c": 2.0, "high_c": 8.0},
    "tea": {"low_c": None, "high_c": 30.0},
    "dried": {"low_c": None, "high_c": 30.0},
    "grain_oil": {"low_c": None, "high_c": 30.0},
    "other": None,
}

#: The EPCIS measurement type: the JSON-LD term the EPCIS context expands to gs1:Temperature.
TEMPERATURE_TYPE = "Temperature"
#: UN/CEFACT Rec. 20 code for degrees Celsius, as EPCIS ``uom`` wants it.
CELSIUS_UOM = "CEL"
#: EPCIS sensor alert for a reading beyond its limits.
ALARM_CONDITION = "ALARM_CONDITION"
#: Guangdong's offset, used for EPCIS times as the project's events are.
SHANGHAI = ZoneInfo("Asia/Shanghai")

_KEY_RE = re.compile(r"[a-z_]+(:[a-z_]+)?")
# Any physically sensible reading from a cold-chain logger.
_MIN_C, _MAX_C = -100.0, 150.0


class ColdChainConfigError(ValueError):
    """``COLD_CHAIN_THRESHOLDS`` is malformed (the message names the entry)."""


@dataclass(frozen=True)
class Threshold:
    """The range a parcel must stay in; None at either end means open."""

    low_c: float | None
    high_c: float | None

    def __post_init__(self) -> None:
        for value in (self.low_c, self.high_c):
            if value is not None and (isinstance(value, bool) or not math.isfinite(value)):
                raise ValueError("A temperature limit must be a finite number")
        if self.low_c is not None and self.high_c is not None and self.low_c > self.high_c:
            raise ValueError(f"low_c {self.low_c} is above high_c {self.high_c}")

    def contains(self, celsius: float) -> bool:
        return (self.low_c is None or celsius >= self.low_c) and (
            self.high_c is None or celsius <= self.high_c
        )


def _limit(entry: Mapping[str, Any], name: str, key: str) -> float | None:
    value = entry.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ColdChainConfigError(f"{CONFIG_KEY}[{key!r}].{name} must be a number or null")
    return float(value)


def load_thresholds(overrides: Mapping[str, Any] | None = None) -> dict[str, Threshold | None]:
    """The defaults with ``overrides`` (the app's ``COLD_CHAIN_THRESHOLDS``) applied per key.

    Raises :class:`ColdChainConfigError` for a bad key, value or range.
    """
    merged: dict[str, Any] = dict(DEFAULT_THRESHOLDS)
    if overrides is not None:
        if not isinstance(overrides, Mapping):
            raise ColdChainConfigError(f"{CONFIG_KEY} must be an object of category -> range")
        merged.update(overrides)
    table: dict[str, Threshold | None] = {}
    for key, entry in merged.items():
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ColdChainConfigError(f"{CONFIG_KEY} key {key!r} is not 'category[:profile]'")
        if entry is None:
            table[key] = None
            continue
        if not isinstance(entry, Mapping) or not set(entry) <= {"low_c", "high_c"}:
            raise ColdChainConfigError(
                f"{CONFIG_KEY}[{key!r}] must be {{'low_c': ..., 'high_c': ...}} or null"
            )
        try:
            table[key] = Threshold(_limit(entry, "low_c", key), _limit(entry, "high_c", key))
        except ValueError as exc:
            raise ColdChainConfigError(f"{CONFIG_KEY}[{key!r}]: {exc}") from None
    return table


def threshold_for(
    category: object,
    profile: str | None = None,
    table: Mapping[str, Threshold | None] | None = None,
) -> Threshold | None:
    """The limits for a category (a ``Category`` or its value) and optional profile.

    Looks up ``"category:profile"``, then ``"category"``; None when not monitored.
    """
    thresholds = load_thresholds() if table is None else table
    value = str(getattr(category, "value", category))
    if profile:
        specific = f"{value}:{profile}"
        if specific in thresholds:
            return thresholds[specific]
    return thresholds.get(value)


# -- readings and excursions --------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One temperature reading: when (aware, kept in UTC), °C, and which sensor."""

    at: datetime
    celsius: float
    source: str = ""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("Reading.at must be timezone-aware")
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        if isinstance(self.celsius, bool) or not isinstance(self.celsius, int | float):
            raise ValueError("Reading.celsius must be a number")
        if not math.isfinite(self.celsius) or not _MIN_C <= self.celsius <= _MAX_C:
            raise ValueError(f"{self.celsius} °C is not a plausible reading")
        object.__setattr__(self, "celsius", float(self.celsius))


Kind = Literal["high", "low"]


@dataclass(frozen=True)
class Excursion:
    """A run of readings beyond a limit: first and last reading times, worst value."""

    start: datetime
    end: datetime
    peak_c: float
    kind: Kind
    #: How many readings the run holds.
    count: int
    #: The first reading back in range, or None if the series ends out of range.
    returned_at: datetime | None

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def _kind(celsius: float, low_c: float | None, high_c: float | None) -> Kind | None:
    if high_c is not None and celsius > high_c:
        return "high"
    if low_c is not None and celsius < low_c:
        return "low"
    return None


def excursions(
    readings: Iterable[Reading],
    low_c: float | None,
    high_c: float | None,
    min_duration: timedelta = timedelta(minutes=10),
    *,
    spike_c: float = 2.0,
) -> list[Excursion]:
    """The excursions beyond ``[low_c, high_c]`` in one sensor's readings, in time order.

    See the module docstring for the rule. Readings may come in any order.
    """
    Threshold(low_c, high_c)  # validates the pair
    if min_duration < timedelta(0) or spike_c < 0:
        raise ValueError("min_duration and spike_c must not be negative")
    found: list[Excursion] = []
    run: list[Reading] = []
    run_kind: Kind | None = None

    def close(returned_at: datetime | None) -> None:
        if run_kind is None:
            return
        if run_kind == "high":
            peak = max(r.celsius for r in run)
            spiked = high_c is not None and peak - high_c > spike_c
        else:
            peak = min(r.celsius for r in run)
            spiked = low_c is not None and low_c - peak > spike_c
        if spiked or run[-1].at - run[0].at >= min_duration:
            found.append(Excursion(run[0].at, run[-1].at, peak, run_kind, len(run), returned_at))

    for reading in sorted(readings, key=lambda r: r.at):
        kind = _kind(reading.celsius, low_c, high_c)
        if kind == run_kind:
            if kind is not None:
                run.append(reading)
            continue
        close(reading.at if kind is None else None)
        run, run_kind = ([reading] if kind else []), kind
    close(None)
    return found


def excursions_by_source(
    readings: Iterable[Reading],
    low_c: float | None,
    high_c: float | None,
    min_duration: timedelta = timedelta(minutes=10),
    *,
    spike_c: float = 2.0,
) -> dict[str, list[Excursion]]:
    """:func:`excursions` for each sensor (``Reading.source``) separately."""
    series: dict[str, list[Reading]] = {}
    for reading in readings:
        series.setdefault(reading.source, []).append(reading)
    return {
        source: excursions(items, low_c, high_c, min_duration, spike_c=spike_c)
        for source, items in series.items()
    }


# -- EPCIS --------------------------------------------------------------------------


def _epcis_time(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="milliseconds")


def to_epcis_sensor_element(
    readings: Iterable[Reading],
    *,
    device_id: str | None = None,
    device_metadata: str | None = None,
    raw_data: str | None = None,
    low_c: float | None = None,
    high_c: float | None = None,
    summary: bool = False,
    tz: tzinfo = SHANGHAI,
) -> dict[str, Any]:
    """One EPCIS 2.0 ``sensorElementList`` entry for a series of temperature readings.

    ``sensorMetadata`` carries ``time`` (the last reading, when the series was complete),
    ``startTime``/``endTime`` and the optional device URIs (e.g. a logger's
    ``urn:epc:id:giai:...``). By default there is one ``sensorReport`` per reading, each
    with its ``time``; ``summary=True`` gives one report with ``minValue``, ``maxValue``,
    ``meanValue`` and ``sDev`` instead, for long series. With limits given, a report beyond
    them (or a summary whose extremes are) carries ``"exception": "ALARM_CONDITION"``.
    Times are written in ``tz`` (Asia/Shanghai, +08:00) with milliseconds.
    """
    series = sorted(readings, key=lambda r: r.at)
    if not series:
        raise ValueError("A sensor element needs at least one reading")
    limits = Threshold(low_c, high_c)
    metadata: dict[str, Any] = {
        "time": _epcis_time(series[-1].at, tz),
        "startTime": _epcis_time(series[0].at, tz),
        "endTime": _epcis_time(series[-1].at, tz),
    }
    for key, value in (
        ("deviceID", device_id),
        ("deviceMetadata", device_metadata),
        ("rawData", raw_data),
    ):
        if value:
            metadata[key] = value

    reports: list[dict[str, Any]]
    if summary:
        values = [r.celsius for r in series]
        report: dict[str, Any] = {
            "type": TEMPERATURE_TYPE,
            "minValue": min(values),
            "maxValue": max(values),
            "meanValue": round(statistics.fmean(values), 3),
            "sDev": round(statistics.pstdev(values), 3),
            "uom": CELSIUS_UOM,
        }
        if not (limits.contains(min(values)) and limits.contains(max(values))):
            report["exception"] = ALARM_CONDITION
        reports = [report]
    else:
        reports = []
        for reading in series:
            report = {
                "type": TEMPERATURE_TYPE,
                "time": _epcis_time(reading.at, tz),
                "value": reading.celsius,
                "uom": CELSIUS_UOM,
            }
            if not limits.contains(reading.celsius):
                report["exception"] = ALARM_CONDITION
            reports.append(report)
    return {"sensorMetadata": metadata, "sensorReport": reports}
