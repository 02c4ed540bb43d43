"""Parse what RFID readers push, de-duplicate the reads and map antennas to read points.

A pure module (no Flask, no database): :func:`parse_reads` turns the body of
``POST /logistics/readers/<id>/reads`` into :class:`TagRead` values, :func:`dedupe` drops
the repeats a reader sends while a tag sits in its field, :func:`dedupe_key` gives each
kept read a deterministic id for idempotent storage, and :func:`read_point_for` maps an
antenna to the read point configured for it.

Accepted bodies
---------------

The body is UTF-8 JSON, either one JSON document (an array of items, a wrapper object or a
single item) or newline-delimited JSON (NDJSON: one item per line). ``application/json``,
``application/x-ndjson`` (and ``application/ndjson``, ``application/jsonl``,
``application/x-jsonlines``), ``text/plain``, ``application/octet-stream`` and an empty
content type are accepted; a body labelled JSON that is really NDJSON (what many readers
send) is parsed as NDJSON. Each item is one of three shapes, told apart by its keys:

1. **Impinj IoT Device Interface event** (R700 family; an array from the reader's webhook,
   NDJSON from its ``/api/v1/data/stream``), recognised by ``eventType``::

       {"timestamp": "2026-11-27T08:00:00.123Z", "hostname": "impinj-14-1f-2e",
        "eventType": "tagInventory",
        "tagInventoryEvent": {"epc": "MHQle/cZTkAAABqF", "epcHex": "3074257BF7194E4000001A85",
                              "antennaPort": 2, "peakRssiCdbm": -5750,
                              "lastSeenTime": "2026-11-27T08:00:00.120Z"}}

   Only ``tagInventory`` events carry reads; any other event type (``inventoryStatus``,
   ``antennaEvent``, ``inventoryTerminated`` ...) is counted in ``ParseResult.ignored``.
   The EPC is ``epcHex`` when the reader's preset includes it, otherwise the base64 ``epc``
   decoded to hex (when both are present they must agree). ``peakRssiCdbm`` is centi-dBm. The read
   time is ``lastSeenTime``, else the event ``timestamp``.

2. **Plain read** (any integration that can write JSON)::

       {"epc": "3074257BF7194E4000001A85", "antenna": 1, "rssi": -57.5,
        "time": "2026-11-27T08:00:00+08:00", "count": 1}

   ``epc`` is hex or an EPC URI (``urn:epc:id:sgtin:...``, ``urn:epc:tag:...``,
   ``urn:epc:raw:...``), kept as given for the ingest to map (SGTIN URIs with
   ``traceability.codes.decode_sgtin96``). ``rssi`` is dBm, ``antenna`` and ``count`` are
   optional.

3. **LLRP read forwarded by an edge process** (an LLRP client such as one for an Impinj
   Speedway or Zebra FX reader turns each ``TagReportData`` of an ``RO_ACCESS_REPORT`` into
   one object; the app never speaks LLRP itself). Recognised by any LLRP field name; keys
   are matched case-insensitively, so ``AntennaID`` and ``antennaId`` both work::

       {"tagReports": [
         {"EPC": "3074257BF7194E4000001A85", "AntennaID": 1, "PeakRSSI": -57,
          "FirstSeenTimestampUTC": 1795766400123456, "LastSeenTimestampUTC": 1795766401123456,
          "TagSeenCount": 3}]}

   ``EPC`` (also ``EPC-96`` or ``EPCData``) is hex; ``PeakRSSI`` is dBm; the timestamps
   are LLRP ``UTCTimestamp`` values, integer microseconds since the Unix epoch. The read
   time is the first-seen time (when the tag arrived in the field), else the last-seen
   one. The objects may also come bare, in an array or as NDJSON lines.

A wrapper ``{"reads": [...]}`` is accepted like ``{"tagReports": [...]}``.

Every read's time must carry a UTC offset (or the caller passes ``naive_tz`` for a reader
known to send local time) and lie between 2000 and 2100: a reader whose clock was never set
reports 1970, and such reads are refused rather than filed decades in the past.

Errors
------

A body that cannot be used at all raises :class:`ReadPayloadError`; its ``code`` is one of
``empty``, ``bad_encoding``, ``bad_json``, ``bad_shape``, ``too_large``, ``too_many_items``,
``unsupported_media_type``, and ``http_status`` suggests the answer (400, 413 or 415).
Otherwise each bad item becomes a :class:`ReadError` and the good ones are still parsed.
Item codes: ``bad_json`` (an NDJSON line that is not JSON), ``bad_item`` (not an object, or
an event without its payload), ``missing_epc``, ``bad_epc``, ``missing_time``, ``bad_time``,
``bad_antenna``, ``bad_rssi``, ``bad_count``. An item's index is its position in the array
(or ``tagReports`` / ``reads`` list) or, for NDJSON, its 0-based line number.

Idempotency
-----------

:func:`dedupe` keeps the first read of each burst per (EPC, antenna). :func:`dedupe_key`
then names each kept read ``sha256("v1|reader|epc|antenna|window_us|bucket")`` (first 32
hex digits), where ``bucket = seen_at_us // window_us``. The ingest stores reads under a
unique constraint on that key and inserts with "on conflict do nothing": posting the same
body twice gives the same reads, the same kept reads and the same keys, so it changes
nothing; a reader that re-sends overlapping batches adds at most one row per tag, antenna
and window-long bucket. A burst that straddles a bucket boundary may keep one row in each
bucket, which is harmless. Keys of a hex EPC and of the same tag as a URI differ: the
ingest canonicalises first if it wants them to collapse.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar

from market.errors import DomainError

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ITEMS",
    "ParseResult",
    "ReadError",
    "ReadPayloadError",
    "TagRead",
    "check_antenna_map",
    "dedupe",
    "dedupe_key",
    "normalize_epc",
    "parse_reads",
    "read_point_for",
]

#: Most items (events, reads or NDJSON lines) one request may carry.
MAX_ITEMS = 10_000
#: Largest body accepted, in bytes (10,000 verbose Impinj events take about 4 MB).
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Reads outside [EARLIEST_READ_AT, LATEST_READ_AT) come from a reader with a wrong clock.
EARLIEST_READ_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_READ_AT = datetime(2100, 1, 1, tzinfo=UTC)
#: Antenna numbers: 0 means "the reader did not say"; LLRP antenna ids are 1-65535.
MAX_ANTENNA = 65535

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
# An EPC is a whole number of 16-bit words, at most 496 bits (EPC Gen2 / TDS).
_MAX_EPC_HEX = 124
_HEX_RE = re.compile(r"[0-9A-F]+")
_URN_RE = re.compile(r"urn:epc:(id|tag|raw):[a-z0-9-]+:[!-~]+")
_MAX_URN = 256
_ISO_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_LLRP_KEYS = frozenset(
    {
        "antennaid",
        "peakrssi",
        "firstseentimestamputc",
        "lastseentimestamputc",
        "tagseencount",
        "epc-96",
        "epcdata",
    }
)
_JSON_TYPES = frozenset({"application/json", "text/json"})
_NDJSON_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
        "application/json-lines",
    }
)
_SNIFF_TYPES = frozenset({"", "text/plain", "application/octet-stream"})


@dataclass(frozen=True)
class TagRead:
    """One tag seen by one antenna at one moment.

    ``epc`` is uppercase hex or an EPC URI; ``antenna`` is 0 when the reader did not say;
    ``rssi_dbm`` is the peak signal strength in dBm; ``seen_at`` is aware UTC;
    ``raw_index`` is the item's position in the body; ``seen_count`` how many times the
    reader saw the tag in this report (LLRP ``TagSeenCount``; 1 otherwise).
    """

    epc: str
    antenna: int
    rssi_dbm: float | None
    seen_at: datetime
    raw_index: int
    seen_count: int = 1

    def __post_init__(self) -> None:
        if self.seen_at.tzinfo is None or self.seen_at.utcoffset() is None:
            raise ValueError("TagRead.seen_at must be timezone-aware")
        if self.seen_at.utcoffset() != timedelta(0) or self.seen_at.tzinfo is not UTC:
            object.__setattr__(self, "seen_at", self.seen_at.astimezone(UTC))


@dataclass(frozen=True)
class ReadError:
    """An item of the body that could not be used; ``code`` is stable (module docstring)."""

    index: int
    code: str
    message: str


@dataclass
class ParseResult:
    """The reads parsed from one body, the items refused, and the events ignored."""

    reads: list[TagRead] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)
    #: Reader events that carry no tag read (Impinj ``inventoryStatus`` and the like).
    ignored: int = 0


class ReadPayloadError(DomainError):
    """The whole body is unusable; ``code`` is stable, ``http_status`` the fitting answer."""

    _STATUS: ClassVar[dict[str, int]] = {
        "too_large": 413,
        "too_many_items": 413,
        "unsupported_media_type": 415,
    }

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)

    @property
    def http_status(self) -> int:
        return self._STATUS.get(self.code, 400)


class _ItemError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- values -------------------------------------------------------------------------


def normalize_epc(value: object) -> str:
    """Return an EPC as uppercase hex, or an ``urn:epc:`` URI with its scheme lowercased.

    Hex may come with a ``0x`` prefix or spaces between groups; it must be a whole number
    of 16-bit words (4 hex digits), at most 496 bits. Raises ``ValueError`` otherwise.
    """
    try:
        return _epc(value)
    except _ItemError as exc:
        raise ValueError(exc.message) from None


def _epc(value: object) -> str:
    if value is None:
        raise _ItemError("missing_epc", "The read has no EPC")
    if not isinstance(value, str):
        raise _ItemError("bad_epc", "The EPC must be a string")
    text = value.strip()
    if not text:
        raise _ItemError("missing_epc", "The read has no EPC")
    if text[:4].lower() == "urn:":
        parts = text.split(":", 4)
        if len(parts) < 5 or len(text) > _MAX_URN:
            raise _ItemError("bad_epc", f"Not an EPC URI: {text[:80]!r}")
        head = ":".join(p.lower() for p in parts[:4])
        urn = f"{head}:{parts[4]}"
        if not _URN_RE.fullmatch(urn):
            raise _ItemError("bad_epc", f"Not an EPC URI: {text[:80]!r}")
        return urn
    hex_text = text.replace(" ", "").upper()
    if hex_text.startswith("0X"):
        hex_text = hex_text[2:]
    if not _HEX_RE.fullmatch(hex_text):
        raise _ItemError("bad_epc", f"An EPC is hex digits or an EPC URI, got {text[:80]!r}")
    return _check_hex_length(hex_text)


def _check_hex_length(hex_text: str) -> str:
    if len(hex_text) % 4 or len(hex_text) > _MAX_EPC_HEX:
        raise _ItemError(
            "bad_epc",
            f"An EPC is a whole number of 16-bit words up to 496 bits, got {len(hex_text)} "
            "hex digits",
        )
    return hex_text


def _epc_from_base64(value: object) -> str:
    if not isinstance(value, str):
        raise _ItemError("bad_epc", "The base64 EPC must be a string")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _ItemError("bad_epc", f"The EPC is not valid base64: {value[:80]!r}") from None
    if not raw:
        raise _ItemError("missing_epc", "The read has no EPC")
    return _check_hex_length(raw.hex().upper())


def _iso_time(value: object, naive_tz: tzinfo | None) -> datetime:
    if not isinstance(value, str) or not _ISO_TIME_RE.match(value.strip()):
        raise _ItemError("bad_time", f"Not an ISO 8601 date and time: {str(value)[:60]!r}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _ItemError("bad_time", f"Not an ISO 8601 date and time: {value[:60]!r}") from None
    if moment.tzinfo is None:
        if naive_tz is None:
            raise _ItemError("bad_time", f"The time {value[:60]!r} has no UTC offset")
        moment = moment.replace(tzinfo=naive_tz)
    return _check_range(moment.astimezone(UTC))


def _micros_time(value: object) -> datetime:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _ItemError(
            "bad_time", "An LLRP timestamp is a whole number of microseconds since 1970"
        )
    try:
        moment = _EPOCH + timedelta(microseconds=value)
    except OverflowError:
        raise _ItemError("bad_time", f"The LLRP timestamp {value} is out of range") from None
    return _check_range(moment)


def _check_range(moment: datetime) -> datetime:
    if not EARLIEST_READ_AT <= moment < LATEST_READ_AT:
        raise _ItemError(
            "bad_time",
            f"The read time {moment.isoformat()} is implausible; is the reader's clock set?",
        )
    return moment


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _antenna(value: object) -> int:
    if value is None:
        return 0
    number = _whole_number(value)
    if number is None or not 0 <= number <= MAX_ANTENNA:
        raise _ItemError("bad_antenna", f"The antenna must be a number 1-65535, got {value!r}")
    return number


def _rssi(value: object, scale: float = 1.0) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _ItemError("bad_rssi", f"The RSSI must be a number, got {value!r}")
    dbm = value / scale
    # Received power: nothing above +30 dBm reaches a reader; below -150 dBm is noise.
    if not -150.0 <= dbm <= 30.0:
        raise _ItemError("bad_rssi", f"The RSSI {dbm:g} dBm is out of range; send dBm")
    return float(dbm)


def _count(value: object) -> int:
    if value is None:
        return 1
    number = _whole_number(value)
    if number is None or number < 1:
        raise _ItemError("bad_count", f"The seen count must be a whole number >= 1, got {value!r}")
    return number


# -- items --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    naive_tz: tzinfo | None
    received_at: datetime | None

    def fallback_time(self) -> datetime:
        if self.received_at is None:
            raise _ItemError("missing_time", "The read has no time")
        return _check_range(self.received_at.astimezone(UTC))


def _impinj_read(item: Mapping[str, Any], index: int, ctx: _Context) -> TagRead:
    event = item.get("tagInventoryEvent")
    if not isinstance(event, Mapping):
        raise _ItemError("bad_item", "A tagInventory event without its tagInventoryEvent")
    epc_hex, epc_b64 = event.get("epcHex"), event.get("epc")
    if epc_hex is not None:
        epc = _epc(epc_hex)
        if epc_b64 is not None and _epc_from_base64(epc_b64) != epc:
            raise _ItemError("bad_epc", "The event's epc and epcHex disagree")
    elif epc_b64 is not None:
        epc = _epc_from_base64(epc_b64)
    else:
        raise _ItemError("missing_epc", "The event has neither epcHex nor epc")
    if event.get("lastSeenTime") is not None:
        seen_at = _iso_time(event["lastSeenTime"], ctx.naive_tz)
    elif item.get("timestamp") is not None:
        seen_at = _iso_time(item["timestamp"], ctx.naive_tz)
    else:
        seen_at = ctx.fallback_time()
    return TagRead(
        epc=epc,
        antenna=_antenna(event.get("antennaPort")),
        rssi_dbm=_rssi(event.get("peakRssiCdbm"), scale=100.0),
        seen_at=seen_at,
        raw_index=index,
    )


def _llrp_read(item: Mapping[str, Any], index: int, ctx: _Context) -> TagRead:
    fields = {str(k).lower(): v for k, v in item.items()}
    epc_value = next(
        (fields[k] for k in ("epc", "epc-96", "epcdata") if fields.get(k) is not None), None
    )
    epc = _epc(epc_value)
    if epc.startswith("urn:"):
        raise _ItemError("bad_epc", "An LLRP EPC is hex")
    first, last = fields.get("firstseentimestamputc"), fields.get("lastseentimestamputc")
    if first is not None:
        seen_at = _micros_time(first)
    elif last is not None:
        seen_at = _micros_time(last)
    else:
        seen_at = ctx.fallback_time()
    return TagRead(
        epc=epc,
        antenna=_antenna(fields.get("antennaid")),
        rssi_dbm=_rssi(fields.get("peakrssi")),
        seen_at=seen_at,
        raw_index=index,
        seen_count=_count(fields.get("tagseencount")),
    )


def _plain_read(item: Mapping[str, Any], index: int, ctx: _Context) -> TagRead:
    time_value = item.get("time")
    seen_at = ctx.fallback_time() if time_value is None else _iso_time(time_value, ctx.naive_tz)
    return TagRead(
        epc=_epc(item.get("epc")),
        antenna=_antenna(item.get("antenna")),
        rssi_dbm=_rssi(item.get("rssi")),
        seen_at=seen_at,
        raw_index=index,
        seen_count=_count(item.get("count")),
    )


def _parse_item(item: object, index: int, ctx: _Context, result: ParseResult) -> None:
    if not isinstance(item, Mapping):
        result.errors.append(ReadError(index, "bad_item", "An item must be a JSON object"))
        return
    try:
        if "eventType" in item:
            if item["eventType"] != "tagInventory":
                result.ignored += 1
                return
            read = _impinj_read(item, index, ctx)
        elif any(str(key).lower() in _LLRP_KEYS for key in item):
            read = _llrp_read(item, index, ctx)
        else:
            read = _plain_read(item, index, ctx)
    except _ItemError as exc:
        result.errors.append(ReadError(index, exc.code, exc.message))
    else:
        result.reads.append(read)


# -- bodies -------------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _top_level_items(data: object, max_items: int) -> list[Any]:
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict):
        wrapped = data.get("tagReports", data.get("reads"))
        if wrapped is None:
            items = [data]
        elif isinstance(wrapped, list):
            items = wrapped
        else:
            raise ReadPayloadError("bad_shape", "tagReports / reads must be an array")
    else:
        raise ReadPayloadError("bad_shape", "The body must be a JSON array or object")
    if len(items) > max_items:
        raise ReadPayloadError(
            "too_many_items", f"At most {max_items} reads per request, got {len(items)}"
        )
    return items


def _ndjson_lines(text: str, max_items: int) -> list[tuple[int, str]]:
    lines = [(number, line.strip()) for number, line in enumerate(text.split("\n")) if line.strip()]
    if len(lines) > max_items:
        raise ReadPayloadError(
            "too_many_items", f"At most {max_items} reads per request, got {len(lines)} lines"
        )
    return lines


def _parse_ndjson(text: str, ctx: _Context, max_items: int) -> ParseResult:
    result = ParseResult()
    parsed_any = False
    for number, line in _ndjson_lines(text, max_items):
        try:
            item = _loads(line)
        except (ValueError, RecursionError):
            result.errors.append(ReadError(number, "bad_json", "The line is not valid JSON"))
            continue
        parsed_any = True
        _parse_item(item, number, ctx, result)
    if not parsed_any:
        raise ReadPayloadError("bad_json", "The body is neither JSON nor NDJSON")
    return result


def parse_reads(
    body: bytes,
    content_type: str | None,
    *,
    naive_tz: tzinfo | None = None,
    received_at: datetime | None = None,
    max_items: int = MAX_ITEMS,
    max_bytes: int = MAX_BODY_BYTES,
) -> ParseResult:
    """Parse a reader's pushed body into tag reads (formats in the module docstring).

    ``naive_tz`` is the zone assumed for times without a UTC offset (refused when None);
    ``received_at`` (aware) is used for items that carry no time at all (refused when
    None). Raises :class:`ReadPayloadError` when nothing in the body can be used.
    """
    if len(body) > max_bytes:
        raise ReadPayloadError("too_large", f"The body is larger than {max_bytes} bytes")
    media_type = _media_type(content_type)
    is_ndjson = media_type in _NDJSON_TYPES
    if not (
        is_ndjson
        or media_type in _JSON_TYPES
        or media_type in _SNIFF_TYPES
        or media_type.endswith("+json")
    ):
        raise ReadPayloadError(
            "unsupported_media_type", f"Send JSON or NDJSON, not {media_type[:60]!r}"
        )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReadPayloadError("bad_encoding", "The body is not UTF-8") from None
    if not text.strip():
        raise ReadPayloadError("empty", "The body is empty")
    if received_at is not None and received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    ctx = _Context(naive_tz=naive_tz, received_at=received_at)

    if is_ndjson:
        return _parse_ndjson(text, ctx, max_items)
    try:
        data = _loads(text)
    except (ValueError, RecursionError):
        if sum(1 for line in text.split("\n") if line.strip()) > 1:
            return _parse_ndjson(text, ctx, max_items)
        raise ReadPayloadError("bad_json", "The body is not valid JSON") from None
    result = ParseResult()
    for index, item in enumerate(_top_level_items(data, max_items)):
        _parse_item(item, index, ctx, result)
    return result


# -- de-duplication -----------------------------------------------------------------


def dedupe(reads: Iterable[TagRead], window: timedelta) -> list[TagRead]:
    """Keep the first read of each burst per (EPC, antenna); drop repeats within ``window``.

    Reads are considered in time order (ties in input order): a read is kept when no read
    of its (EPC, antenna) was kept yet, or when it is more than ``window`` after the last
    kept one. The kept reads come back in their input order. O(n log n).
    """
    if window < timedelta(0):
        raise ValueError("The de-duplication window must not be negative")
    items = list(reads)
    keep = [False] * len(items)
    last_kept: dict[tuple[str, int], datetime] = {}
    for i in sorted(range(len(items)), key=lambda i: items[i].seen_at):
        read = items[i]
        key = (read.epc, read.antenna)
        previous = last_kept.get(key)
        if previous is None or read.seen_at - previous > window:
            keep[i] = True
            last_kept[key] = read.seen_at
    return [read for read, kept in zip(items, keep, strict=True) if kept]


def dedupe_key(read: TagRead, window: timedelta, *, reader_id: int | str) -> str:
    """A deterministic 32-hex-digit id for a read: same reader, tag, antenna and bucket, same id.

    ``bucket`` is the read time in whole ``window`` lengths since the Unix epoch; see the
    module docstring for how the ingest uses it.
    """
    window_us = window // _ONE_US
    if window_us <= 0:
        raise ValueError("The de-duplication window must be positive")
    bucket = ((read.seen_at - _EPOCH) // _ONE_US) // window_us
    canonical = f"v1|{reader_id}|{read.epc}|{read.antenna}|{window_us}|{bucket}"
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


# -- read points --------------------------------------------------------------------


def check_antenna_map(mapping: object) -> dict[str, str]:
    """Validate a reader's antenna -> read point map (JSON: antenna numbers as strings).

    Keys are antenna numbers 1-65535 (``"1"``, or ints, stored as strings); values are
    non-empty read point ids (an SGLN URI or other identifier). Raises ``ValueError``.
    """
    if not isinstance(mapping, Mapping):
        raise ValueError("The antenna map must be an object of antenna -> read point")
    checked: dict[str, str] = {}
    for key, value in mapping.items():
        number = _whole_number(key)
        if number is None or not 1 <= number <= MAX_ANTENNA:
            raise ValueError(f"Antenna numbers are 1-65535, got {key!r}")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"Antenna {key} needs a read point")
        checked[str(number)] = value.strip()
    return checked


def read_point_for(antenna: int, antenna_map: Mapping[str, str], default: str | None) -> str | None:
    """The read point configured for ``antenna``, else ``default`` (the reader's own)."""
    return (antenna_map or {}).get(str(antenna)) or default
