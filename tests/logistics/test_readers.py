"""Parsing RFID reader pushes, de-duplicating reads, idempotency keys, antenna mapping."""

from __future__ import annotations

import base64
import itertools
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logistics.readers import (
    MAX_ITEMS,
    ReadPayloadError,
    TagRead,
    check_antenna_map,
    dedupe,
    dedupe_key,
    normalize_epc,
    parse_reads,
    read_point_for,
)
from traceability.codes import decode_sgtin96

PROPERTY = settings(database=None, deadline=None, max_examples=200)

# The TDS worked example: urn:epc:tag:sgtin-96:3.0614141.812345.6789.
EPC_HEX = "3074257BF7194E4000001A85"
EPC_B64 = "MHQle/cZTkAAABqF"
OTHER_HEX = "3074257BF7194E4000001A86"
T0 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
JSON = "application/json"
NDJSON = "application/x-ndjson"


def impinj_event(epc_b64=EPC_B64, epc_hex=None, antenna=2, rssi_cdbm=-5750, **extra):
    event = {
        "epc": epc_b64,
        "antennaPort": antenna,
        "peakRssiCdbm": rssi_cdbm,
        "lastSeenTime": "2026-11-27T08:00:00.120Z",
        **extra,
    }
    if epc_hex is not None:
        event["epcHex"] = epc_hex
    if epc_b64 is None:
        del event["epc"]
    return {
        "timestamp": "2026-11-27T08:00:00.123Z",
        "hostname": "impinj-14-1f-2e",
        "eventType": "tagInventory",
        "tagInventoryEvent": event,
    }


def body_of(items) -> bytes:
    return json.dumps(items).encode()


def ndjson_of(*lines: str) -> bytes:
    return "\n".join(lines).encode()


def read(epc=EPC_HEX, antenna=1, seconds=0.0, index=0) -> TagRead:
    return TagRead(epc, antenna, -60.0, T0 + timedelta(seconds=seconds), index)


# -- Impinj IoT Device Interface -----------------------------------------------------


def test_impinj_base64_epc_decodes_to_the_same_hex_as_epc_hex():
    from_b64 = parse_reads(body_of([impinj_event(epc_b64=EPC_B64)]), JSON)
    from_hex = parse_reads(body_of([impinj_event(epc_b64=None, epc_hex=EPC_HEX)]), JSON)

    assert from_b64.reads[0].epc == from_hex.reads[0].epc == EPC_HEX
    assert base64.b64decode(EPC_B64).hex().upper() == EPC_HEX


def test_impinj_read_carries_antenna_rssi_in_dbm_and_last_seen_time():
    result = parse_reads(body_of([impinj_event(epc_hex=EPC_HEX)]), JSON)

    assert result.errors == []
    assert result.reads == [
        TagRead(EPC_HEX, 2, -57.5, datetime(2026, 11, 27, 8, 0, 0, 120000, tzinfo=UTC), 0)
    ]
    assert result.reads[0].seen_at.tzinfo is UTC


def test_impinj_epc_decodes_to_the_sgtin_the_traceability_codes_expect():
    epc = parse_reads(body_of([impinj_event()]), JSON).reads[0].epc

    assert decode_sgtin96(epc) == ("80614141123458", "6789", "0614141")


def test_impinj_read_without_last_seen_time_uses_the_event_timestamp():
    event = impinj_event()
    del event["tagInventoryEvent"]["lastSeenTime"]

    (tag,) = parse_reads(body_of([event]), JSON).reads

    assert tag.seen_at == datetime(2026, 11, 27, 8, 0, 0, 123000, tzinfo=UTC)


def test_impinj_events_without_reads_are_ignored_and_counted():
    status = {"timestamp": "2026-11-27T08:00:00Z", "eventType": "inventoryStatus"}
    antenna = {"timestamp": "2026-11-27T08:00:00Z", "eventType": "antennaEvent"}

    result = parse_reads(body_of([status, impinj_event(), antenna]), JSON)

    assert result.ignored == 2
    assert [r.raw_index for r in result.reads] == [1]
    assert result.errors == []


def test_impinj_epc_and_epc_hex_that_disagree_are_refused():
    result = parse_reads(body_of([impinj_event(epc_b64=EPC_B64, epc_hex=OTHER_HEX)]), JSON)

    assert result.reads == []
    assert [(e.index, e.code) for e in result.errors] == [(0, "bad_epc")]


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (impinj_event(epc_b64="not base64!"), "bad_epc"),
        (impinj_event(epc_b64=""), "missing_epc"),
        (impinj_event(epc_b64=None), "missing_epc"),
        (impinj_event(antenna=-1), "bad_antenna"),
        (impinj_event(rssi_cdbm="loud"), "bad_rssi"),
        (impinj_event(lastSeenTime="yesterday"), "bad_time"),
        ({"eventType": "tagInventory", "timestamp": "2026-11-27T08:00:00Z"}, "bad_item"),
    ],
)
def test_bad_impinj_events_are_reported_with_a_stable_code(event, code):
    result = parse_reads(body_of([event, impinj_event()]), JSON)

    assert [(e.index, e.code) for e in result.errors] == [(0, code)]
    assert [r.raw_index for r in result.reads] == [1]


# -- NDJSON ----------------------------------------------------------------------------


def test_ndjson_with_a_broken_line_keeps_the_good_lines():
    body = ndjson_of(
        json.dumps(impinj_event()),
        '{"timestamp": "2026-11-27T08:00:01Z", "eventType": "tagInv',
        "",
        json.dumps(impinj_event(antenna=3)),
    )

    result = parse_reads(body, NDJSON)

    assert [(r.raw_index, r.antenna) for r in result.reads] == [(0, 2), (3, 3)]
    assert [(e.index, e.code) for e in result.errors] == [(1, "bad_json")]


@pytest.mark.parametrize("content_type", [JSON, "application/json; charset=utf-8", "", None])
def test_ndjson_labelled_as_json_is_still_parsed(content_type):
    body = ndjson_of(json.dumps(impinj_event()), json.dumps(impinj_event(antenna=4)))

    result = parse_reads(body, content_type)

    assert [r.antenna for r in result.reads] == [2, 4]


def test_ndjson_with_crlf_line_endings_is_parsed():
    body = (json.dumps(impinj_event()) + "\r\n" + json.dumps(impinj_event()) + "\r\n").encode()

    assert len(parse_reads(body, NDJSON).reads) == 2


def test_ndjson_where_no_line_is_json_is_unparseable():
    with pytest.raises(ReadPayloadError) as info:
        parse_reads(b"hello\nworld\n", NDJSON)

    assert info.value.code == "bad_json"
    assert info.value.http_status == 400


# -- plain reads -------------------------------------------------------------------------


def test_plain_reads_accept_hex_and_epc_uris():
    urn = "urn:epc:id:sgtin:0614141.812345.6789"
    items = [
        {"epc": EPC_HEX.lower(), "antenna": 1, "rssi": -57.5, "time": "2026-11-27T08:00:00+08:00"},
        {"epc": urn, "antenna": "2", "time": "2026-11-27T00:00:05Z"},
    ]

    result = parse_reads(body_of(items), JSON)

    assert result.errors == []
    assert result.reads == [
        TagRead(EPC_HEX, 1, -57.5, T0, 0),
        TagRead(urn, 2, None, T0 + timedelta(seconds=5), 1),
    ]
    assert decode_sgtin96(result.reads[1].epc) == decode_sgtin96(result.reads[0].epc)


def test_a_single_plain_read_object_is_one_item():
    body = body_of({"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z"})

    (tag,) = parse_reads(body, JSON).reads

    assert (tag.epc, tag.antenna, tag.seen_count) == (EPC_HEX, 0, 1)


def test_reads_wrapper_object_is_accepted():
    body = body_of({"reads": [{"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z", "count": 4}]})

    (tag,) = parse_reads(body, JSON).reads

    assert tag.seen_count == 4


def test_time_without_offset_is_refused_unless_the_reader_zone_is_known():
    body = body_of([{"epc": EPC_HEX, "time": "2026-11-27 08:00:00"}])

    refused = parse_reads(body, JSON)
    local = parse_reads(body, JSON, naive_tz=ZoneInfo("Asia/Shanghai"))

    assert [e.code for e in refused.errors] == ["bad_time"]
    assert local.reads[0].seen_at == T0


def test_read_without_time_uses_the_receive_time_only_when_given():
    body = body_of([{"epc": EPC_HEX}])
    received_at = datetime(2026, 11, 27, 8, 0, tzinfo=timezone(timedelta(hours=8)))

    assert [e.code for e in parse_reads(body, JSON).errors] == ["missing_time"]
    assert parse_reads(body, JSON, received_at=received_at).reads[0].seen_at == T0


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ({"time": "2026-11-27T08:00:00Z"}, "missing_epc"),
        ({"epc": "   ", "time": "2026-11-27T08:00:00Z"}, "missing_epc"),
        ({"epc": 3074, "time": "2026-11-27T08:00:00Z"}, "bad_epc"),
        ({"epc": "3074257BF7194E4000001A8", "time": "2026-11-27T08:00:00Z"}, "bad_epc"),
        ({"epc": "XYZ4257BF7194E4000001A85", "time": "2026-11-27T08:00:00Z"}, "bad_epc"),
        ({"epc": "30" * 63, "time": "2026-11-27T08:00:00Z"}, "bad_epc"),
        ({"epc": "urn:epc:id:", "time": "2026-11-27T08:00:00Z"}, "bad_epc"),
        ({"epc": "urn:isbn:0451450523", "time": "2026-11-27T08:00:00Z"}, "bad_epc"),
        ({"epc": EPC_HEX, "time": "2026-11-27"}, "bad_time"),
        ({"epc": EPC_HEX, "time": "2026-13-27T08:00:00Z"}, "bad_time"),
        ({"epc": EPC_HEX, "time": "1970-01-01T00:00:00Z"}, "bad_time"),
        ({"epc": EPC_HEX, "time": 1795766400}, "bad_time"),
        ({"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z", "antenna": 70000}, "bad_antenna"),
        ({"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z", "antenna": True}, "bad_antenna"),
        ({"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z", "antenna": "one"}, "bad_antenna"),
        ({"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z", "rssi": 57}, "bad_rssi"),
        ({"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z", "rssi": "-57"}, "bad_rssi"),
        ({"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z", "count": 0}, "bad_count"),
        ("3074257BF7194E4000001A85", "bad_item"),
        ([EPC_HEX], "bad_item"),
    ],
)
def test_bad_plain_reads_are_reported_and_the_good_ones_kept(item, code):
    good = {"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z"}

    result = parse_reads(body_of([good, item, good]), JSON)

    assert [(e.index, e.code) for e in result.errors] == [(1, code)]
    assert [r.raw_index for r in result.reads] == [0, 2]
    assert result.errors[0].message


def test_hex_epc_is_normalised_to_uppercase_without_spaces_or_prefix():
    assert normalize_epc(" 0x3074 257b f719 4e40 0000 1a85 ") == EPC_HEX
    assert normalize_epc("URN:EPC:ID:SGTIN:0614141.812345.6789") == (
        "urn:epc:id:sgtin:0614141.812345.6789"
    )
    with pytest.raises(ValueError, match="hex"):
        normalize_epc("not-an-epc")


# -- LLRP forwarded reads ------------------------------------------------------------


def test_llrp_tag_reports_use_microsecond_first_seen_times():
    first_us = int((T0 - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000 + 123456
    report = {
        "EPC": EPC_HEX,
        "AntennaID": 3,
        "PeakRSSI": -61,
        "FirstSeenTimestampUTC": first_us,
        "LastSeenTimestampUTC": first_us + 2_000_000,
        "TagSeenCount": 7,
    }

    (tag,) = parse_reads(body_of({"tagReports": [report]}), JSON).reads

    assert tag == TagRead(EPC_HEX, 3, -61.0, T0 + timedelta(microseconds=123456), 0, 7)


def test_llrp_keys_are_matched_case_insensitively_and_last_seen_is_the_fallback():
    last_us = 1_795_766_400_000_000
    line = json.dumps({"epc-96": EPC_HEX.lower(), "antennaId": 1, "lastSeenTimestampUtc": last_us})

    (tag,) = parse_reads(ndjson_of(line, line), NDJSON).reads[:1]

    assert tag.epc == EPC_HEX
    assert tag.seen_at == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=last_us)


@pytest.mark.parametrize(
    ("report", "code"),
    [
        ({"EPC": EPC_HEX, "AntennaID": 1, "FirstSeenTimestampUTC": 0}, "bad_time"),
        ({"EPC": EPC_HEX, "AntennaID": 1, "FirstSeenTimestampUTC": -5}, "bad_time"),
        ({"EPC": EPC_HEX, "AntennaID": 1, "FirstSeenTimestampUTC": 10**30}, "bad_time"),
        ({"EPC": EPC_HEX, "AntennaID": 1, "FirstSeenTimestampUTC": "soon"}, "bad_time"),
        ({"EPC": EPC_HEX, "AntennaID": 1}, "missing_time"),
        ({"AntennaID": 1, "FirstSeenTimestampUTC": 1_795_766_400_000_000}, "missing_epc"),
        (
            {"EPC": "urn:epc:id:sgtin:0614141.812345.6789", "FirstSeenTimestampUTC": 1},
            "bad_epc",
        ),
        (
            {"EPC": EPC_HEX, "TagSeenCount": -1, "FirstSeenTimestampUTC": 1_795_766_400_000_000},
            "bad_count",
        ),
        (
            {"EPC": EPC_HEX, "PeakRSSI": 200, "FirstSeenTimestampUTC": 1_795_766_400_000_000},
            "bad_rssi",
        ),
    ],
)
def test_bad_llrp_reports_are_reported(report, code):
    result = parse_reads(body_of({"tagReports": [report]}), JSON)

    assert [e.code for e in result.errors] == [code]


# -- whole bodies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "code", "status"),
    [
        (b"", JSON, "empty", 400),
        (b"  \n ", NDJSON, "empty", 400),
        (b"\xff\xfe[]", JSON, "bad_encoding", 400),
        (b"[{", JSON, "bad_json", 400),
        (b"42", JSON, "bad_shape", 400),
        (b'{"tagReports": 5}', JSON, "bad_shape", 400),
        (b'[{"epc": "3074", "rssi": NaN}]', JSON, "bad_json", 400),
        (b"[" * 100_000 + b"]" * 100_000, JSON, "bad_json", 400),
        (b"<reads/>", "application/xml", "unsupported_media_type", 415),
        (b"[]", "multipart/form-data; boundary=x", "unsupported_media_type", 415),
    ],
)
def test_unusable_bodies_raise_with_a_stable_code(body, content_type, code, status):
    with pytest.raises(ReadPayloadError) as info:
        parse_reads(body, content_type)

    assert (info.value.code, info.value.http_status) == (code, status)


def test_a_bom_and_a_json_suffix_media_type_are_accepted():
    body = b"\xef\xbb\xbf" + body_of([{"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z"}])

    assert len(parse_reads(body, "application/vnd.impinj+json").reads) == 1


def test_more_items_than_the_limit_are_refused_as_a_whole():
    item = {"epc": EPC_HEX, "time": "2026-11-27T08:00:00Z"}

    assert len(parse_reads(body_of([item] * MAX_ITEMS), JSON).reads) == MAX_ITEMS
    with pytest.raises(ReadPayloadError) as info:
        parse_reads(body_of([item] * (MAX_ITEMS + 1)), JSON)
    assert (info.value.code, info.value.http_status) == ("too_many_items", 413)

    lines = ndjson_of(*[json.dumps(item)] * 4)
    with pytest.raises(ReadPayloadError, match="At most 3"):
        parse_reads(lines, NDJSON, max_items=3)


def test_a_body_over_the_byte_limit_is_refused():
    with pytest.raises(ReadPayloadError) as info:
        parse_reads(b"[" + b" " * 100 + b"]", JSON, max_bytes=50)

    assert info.value.code == "too_large"


def test_an_empty_array_gives_no_reads_and_no_errors():
    result = parse_reads(b"[]", JSON)

    assert (result.reads, result.errors, result.ignored) == ([], [], 0)


ITEM_KEYS = [
    "epc",
    "time",
    "antenna",
    "rssi",
    "eventType",
    "tagInventoryEvent",
    "epcHex",
    "AntennaID",
    "FirstSeenTimestampUTC",
    "tagReports",
    "reads",
    "x",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(ITEM_KEYS),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@PROPERTY
@given(st.binary(max_size=300), st.sampled_from([JSON, NDJSON, "", "text/plain"]))
def test_any_bytes_give_a_result_or_a_payload_error(body, content_type):
    try:
        result = parse_reads(body, content_type)
    except ReadPayloadError as exc:
        code = exc.code
    else:
        code = None
        assert all(isinstance(r, TagRead) for r in result.reads)
    assert code in {None, "empty", "bad_encoding", "bad_json", "bad_shape"}


@PROPERTY
@given(st.lists(json_values, max_size=6))
def test_any_json_items_are_each_a_read_an_error_or_ignored(items):
    result = parse_reads(body_of(items), JSON)

    assert len(result.reads) + len(result.errors) + result.ignored == len(items)
    for tag in result.reads:
        assert tag.seen_at.tzinfo is UTC
        assert re.fullmatch(r"[0-9A-F]+|urn:epc:.+", tag.epc)


@PROPERTY
@given(st.binary(min_size=1, max_size=31).map(lambda b: b if len(b) % 2 == 0 else b + b"\0"))
def test_impinj_base64_epc_round_trips_to_hex(raw):
    event = impinj_event(epc_b64=base64.b64encode(raw).decode())

    (tag,) = parse_reads(body_of([event]), JSON).reads

    assert tag.epc == raw.hex().upper()


def test_tag_read_refuses_naive_times_and_stores_utc():
    with pytest.raises(ValueError, match="aware"):
        TagRead(EPC_HEX, 1, None, datetime(2026, 11, 27), 0)  # noqa: DTZ001

    eight_local = datetime(2026, 11, 27, 8, tzinfo=ZoneInfo("Asia/Shanghai"))
    local = TagRead(EPC_HEX, 1, None, eight_local, 0)
    assert (local.seen_at, local.seen_at.tzinfo) == (T0, UTC)


# -- de-duplication ------------------------------------------------------------------


def test_dedupe_keeps_the_first_read_of_each_burst():
    reads = [read(seconds=s, index=i) for i, s in enumerate([0, 1, 2, 12, 13])]

    kept = dedupe(reads, timedelta(seconds=10))

    assert [r.raw_index for r in kept] == [0, 3]


def test_dedupe_counts_the_window_from_the_last_kept_read_not_the_last_seen():
    reads = [read(seconds=s, index=i) for i, s in enumerate(range(0, 31, 3))]

    kept = dedupe(reads, timedelta(seconds=10))

    assert [(r.seen_at - T0).seconds for r in kept] == [0, 12, 24]


def test_dedupe_window_edges():
    window = timedelta(seconds=10)
    at_edge = [read(seconds=0, index=0), read(seconds=10, index=1)]
    past_edge = [read(seconds=0, index=0), read(seconds=10.000001, index=1)]

    assert [r.raw_index for r in dedupe(at_edge, window)] == [0]
    assert [r.raw_index for r in dedupe(past_edge, window)] == [0, 1]


def test_dedupe_with_a_zero_window_only_drops_identical_times():
    reads = [read(seconds=0, index=0), read(seconds=0, index=1), read(seconds=0.001, index=2)]

    assert [r.raw_index for r in dedupe(reads, timedelta(0))] == [0, 2]


def test_dedupe_keys_on_epc_and_antenna():
    reads = [
        read(antenna=1, index=0),
        read(antenna=2, index=1),
        read(epc=OTHER_HEX, antenna=1, index=2),
        read(antenna=1, seconds=1, index=3),
    ]

    assert [r.raw_index for r in dedupe(reads, timedelta(seconds=10))] == [0, 1, 2]


def test_dedupe_decides_in_time_order_but_returns_input_order():
    reads = [
        read(epc=OTHER_HEX, seconds=5, index=0),
        read(seconds=3, index=1),
        read(seconds=0, index=2),
        read(seconds=14, index=3),
        read(epc=OTHER_HEX, seconds=1, index=4),
    ]

    kept = dedupe(reads, timedelta(seconds=10))

    assert [r.raw_index for r in kept] == [2, 3, 4]


def test_dedupe_refuses_a_negative_window():
    with pytest.raises(ValueError, match="negative"):
        dedupe([], timedelta(seconds=-1))


reads_strategy = st.lists(
    st.builds(
        read,
        epc=st.sampled_from([EPC_HEX, OTHER_HEX]),
        antenna=st.integers(1, 2),
        seconds=st.integers(0, 120).map(float),
    ),
    max_size=40,
).map(lambda rs: [TagRead(r.epc, r.antenna, r.rssi_dbm, r.seen_at, i) for i, r in enumerate(rs)])


@PROPERTY
@given(reads_strategy, st.integers(0, 30).map(lambda s: timedelta(seconds=s)))
def test_dedupe_properties(reads, window):
    kept = dedupe(reads, window)
    kept_ids = {id(r) for r in kept}

    # A stable subsequence of the input ...
    assert [r.raw_index for r in kept] == sorted(r.raw_index for r in kept)
    # ... where no two kept reads of one key are within the window ...
    by_key: dict[tuple[str, int], list[datetime]] = {}
    for r in kept:
        by_key.setdefault((r.epc, r.antenna), []).append(r.seen_at)
    for times in by_key.values():
        times.sort()
        assert all(b - a > window for a, b in itertools.pairwise(times))
    # ... and every dropped read is within the window after a kept read of its key.
    for r in reads:
        if id(r) not in kept_ids:
            assert any(timedelta(0) <= r.seen_at - t <= window for t in by_key[(r.epc, r.antenna)])
    assert dedupe(kept, window) == kept


# -- idempotency keys ------------------------------------------------------------------


def test_posting_the_same_reads_twice_gives_the_same_dedupe_keys():
    body = ndjson_of(
        *[json.dumps(impinj_event(lastSeenTime=f"2026-11-27T08:00:{s:02d}Z")) for s in range(30)]
    )
    window = timedelta(seconds=10)

    def keys() -> list[str]:
        kept = dedupe(parse_reads(body, NDJSON).reads, window)
        return [dedupe_key(r, window, reader_id=7) for r in kept]

    first, second = keys(), keys()

    assert first == second
    assert len(first) == len(set(first)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) for key in first)


def test_dedupe_key_is_the_same_within_a_bucket_and_differs_across():
    window = timedelta(seconds=10)

    def key(**kwargs) -> str:
        reader_id = kwargs.pop("reader_id", 1)
        return dedupe_key(read(**kwargs), window, reader_id=reader_id)

    assert key(seconds=0) == key(seconds=9.999999)
    assert key(seconds=0) != key(seconds=10)
    assert key(seconds=0) != key(seconds=0, antenna=2)
    assert key(seconds=0) != key(seconds=0, epc=OTHER_HEX)
    assert key(seconds=0) != key(seconds=0, reader_id=2)
    assert key(seconds=0) != dedupe_key(read(), timedelta(seconds=20), reader_id=1)


def test_dedupe_key_needs_a_positive_window():
    with pytest.raises(ValueError, match="positive"):
        dedupe_key(read(), timedelta(0), reader_id=1)


# -- antenna -> read point -------------------------------------------------------------

DOOR = "urn:epc:id:sgln:6970000.00001.1"
COLD_ROOM = "urn:epc:id:sgln:6970000.00001.2"
READER = "urn:epc:id:sgln:6970000.00001.0"


def test_read_point_for_uses_the_antenna_map_then_the_default():
    antenna_map = {"1": DOOR, "2": COLD_ROOM}

    assert read_point_for(1, antenna_map, READER) == DOOR
    assert read_point_for(2, antenna_map, None) == COLD_ROOM
    assert read_point_for(3, antenna_map, READER) == READER
    assert read_point_for(0, antenna_map, READER) == READER
    assert read_point_for(3, antenna_map, None) is None
    assert read_point_for(1, {}, READER) == READER


def test_check_antenna_map_normalises_keys_and_refuses_bad_entries():
    assert check_antenna_map({1: DOOR, "02": f" {COLD_ROOM} "}) == {"1": DOOR, "2": COLD_ROOM}
    for bad in ({"0": DOOR}, {"a": DOOR}, {"1": ""}, {"1": 5}, [DOOR]):
        with pytest.raises(ValueError, match="ntenna"):
            check_antenna_map(bad)
