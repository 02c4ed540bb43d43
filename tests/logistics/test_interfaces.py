"""The carrier tracking interface and the offline sandbox carrier."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logistics.carriers import WaybillError
from logistics.interfaces import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CarrierTracking,
    SandboxCarrier,
    TrackingError,
    TrackingStatus,
    TrackingUpdate,
    sign_push,
    verify_push_signature,
)
from market import places

PROPERTY = settings(database=None, deadline=None, max_examples=100)
SECRET = b"sandbox-push-secret-0123456789"
SHIPPED_AT = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # 14:00 in Guangdong
PUSHED_AT = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
WAYBILLS = [f"SF13110298371{n:02d}" for n in range(40)]
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def sandbox() -> SandboxCarrier:
    return SandboxCarrier(SECRET, seed=2026)


def signed(sandbox, waybill="SF1311029837165", outcome="delivered"):
    updates = sandbox.generate("SF", waybill, SHIPPED_AT, outcome=outcome)
    body, headers = sandbox.push_request("SF", updates, timestamp=PUSHED_AT)
    return updates, body, headers


# -- the journey -----------------------------------------------------------------------


def test_sandbox_is_a_carrier_tracking_adapter(sandbox):
    assert isinstance(sandbox, CarrierTracking)
    assert "SF" in sandbox.carrier_codes
    assert "COOP" not in sandbox.carrier_codes


def test_generated_journey_is_deterministic_for_a_seed(sandbox):
    again = SandboxCarrier(SECRET, seed=2026)
    other = SandboxCarrier(SECRET, seed=7)

    journeys = [sandbox.generate("SF", w, SHIPPED_AT) for w in WAYBILLS]

    assert journeys == [again.generate("SF", w, SHIPPED_AT) for w in WAYBILLS]
    assert journeys != [other.generate("SF", w, SHIPPED_AT) for w in WAYBILLS]
    assert len({tuple(u.message for u in j) for j in journeys}) > 1


def test_journey_runs_from_jiangmen_through_the_guangzhou_hub(sandbox):
    journey = sandbox.generate("SF", "SF1311029837165", SHIPPED_AT, outcome="delivered")

    assert journey[0].status == TrackingStatus.ACCEPTED
    assert journey[0].at == SHIPPED_AT
    assert journey[0].location.startswith("江门市")
    assert "顺丰速运已揽收" in journey[0].message
    assert "广州转运中心" in [u.location for u in journey]
    assert journey[-2].status == TrackingStatus.OUT_FOR_DELIVERY
    assert journey[-1].status == TrackingStatus.DELIVERED
    assert all(u.waybill == "SF1311029837165" for u in journey)


@pytest.mark.parametrize("outcome", ["delivered", "exception", "returned"])
def test_every_journey_is_ordered_in_time_and_placed_in_guangdong(sandbox, outcome):
    for waybill in WAYBILLS:
        journey = sandbox.generate("SF", waybill, SHIPPED_AT, outcome=outcome)

        times = [u.at for u in journey]
        assert times == sorted(times)
        assert all(u.at.tzinfo is UTC for u in journey)
        for update in journey:
            assert places.is_guangdong(update.division_code)
            assert places.get(update.division_code) is not None
        statuses = [u.status for u in journey]
        assert statuses[0] == TrackingStatus.ACCEPTED
        assert statuses.count(TrackingStatus.ACCEPTED) == 1
        if outcome == "returned":
            assert statuses[-1] == TrackingStatus.RETURNED
            assert journey[-1].division_code == journey[0].division_code
        else:
            assert statuses[-1] == TrackingStatus.DELIVERED
        assert (TrackingStatus.EXCEPTION in statuses) == (outcome != "delivered")


def test_place_names_match_the_division_codes(sandbox):
    for waybill in WAYBILLS:
        for update in sandbox.generate("SF", waybill, SHIPPED_AT, outcome="returned"):
            if not update.location.endswith(("中转场", "转运中心")):
                assert places.full_name(update.division_code) == "广东省" + update.location


def test_couriers_deliver_in_working_hours(sandbox):
    for waybill in WAYBILLS:
        for update in sandbox.generate("SF", waybill, SHIPPED_AT):
            if update.status in (TrackingStatus.OUT_FOR_DELIVERY, TrackingStatus.DELIVERED):
                assert 8 <= update.at.astimezone(SHANGHAI).hour < 20


def test_the_default_outcomes_are_mostly_delivered(sandbox):
    endings = [
        sandbox.generate("YTO", f"YT75236184{n:05d}", SHIPPED_AT)[-1].status for n in range(400)
    ]

    delivered = endings.count(TrackingStatus.DELIVERED)
    assert 300 < delivered < 400
    assert TrackingStatus.RETURNED in endings


def test_generate_validates_the_waybill_and_the_time(sandbox):
    with pytest.raises(WaybillError):
        sandbox.generate("SF", "YT7523618490215", SHIPPED_AT)
    with pytest.raises(ValueError, match="aware"):
        sandbox.generate("SF", "SF1311029837165", datetime(2026, 11, 27))  # noqa: DTZ001


# -- subscriptions -------------------------------------------------------------------


def test_subscribe_records_the_normalised_waybill(sandbox):
    sandbox.subscribe("sf", "sf 1311 0298 3716 5", phone="13800138000")

    assert sandbox.subscriptions == {"SF1311029837165": "SF"}


def test_subscribe_refuses_bad_waybills_and_own_delivery(sandbox):
    with pytest.raises(WaybillError):
        sandbox.subscribe("SF", "123")
    with pytest.raises(TrackingError) as info:
        sandbox.subscribe("COOP", "QY-0007")
    assert info.value.code == "untracked_carrier"
    assert sandbox.subscriptions == {}


# -- signed pushes ---------------------------------------------------------------------


def test_a_push_round_trips_to_the_same_updates(sandbox):
    updates, body, headers = signed(sandbox, outcome="exception")

    assert sandbox.verify_push(body, headers, now=PUSHED_AT)
    assert sandbox.parse_push(body, headers, now=PUSHED_AT) == updates


def test_the_push_looks_like_a_kuaidi100_subscription_push(sandbox):
    updates, body, headers = signed(sandbox)
    payload = json.loads(body)
    result = payload["lastResult"]

    assert headers["Content-Type"] == "application/json"
    assert headers[TIMESTAMP_HEADER] == str(int(PUSHED_AT.timestamp()))
    assert (result["com"], result["nu"], result["state"], result["ischeck"]) == (
        "shunfeng",
        "SF1311029837165",
        "3",
        "1",
    )
    newest = result["data"][0]
    assert newest["status"] == "签收"
    assert newest["time"] == updates[-1].at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert newest["areaCode"] == updates[-1].division_code + "000000"
    assert len(result["data"]) == len(updates)


def test_header_names_are_matched_case_insensitively(sandbox):
    _, body, headers = signed(sandbox)
    lowered = {k.lower(): v for k, v in headers.items()}
    shouted = {k.upper(): v for k, v in headers.items()}

    assert sandbox.verify_push(body, lowered, now=PUSHED_AT)
    assert sandbox.verify_push(body, shouted, now=PUSHED_AT)


def test_a_forged_body_is_refused(sandbox):
    _, body, headers = signed(sandbox)
    forged = body.replace("签收".encode(), "退回".encode(), 1)

    assert forged != body
    assert not sandbox.verify_push(forged, headers, now=PUSHED_AT)
    with pytest.raises(TrackingError) as info:
        sandbox.parse_push(forged, headers, now=PUSHED_AT)
    assert info.value.code == "bad_signature"


def test_a_push_signed_with_another_secret_is_refused(sandbox):
    impostor = SandboxCarrier(b"not-the-real-secret-at-all", seed=2026)
    _, body, headers = signed(impostor)

    assert not sandbox.verify_push(body, headers, now=PUSHED_AT)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {TIMESTAMP_HEADER: "1795824000"},
        {SIGNATURE_HEADER: "00" * 32},
        {TIMESTAMP_HEADER: "soon", SIGNATURE_HEADER: "00" * 32},
        {TIMESTAMP_HEADER: "1795824000", SIGNATURE_HEADER: "签名"},
    ],
)
def test_unsigned_or_malformed_headers_are_refused(sandbox, headers):
    _, body, _ = signed(sandbox)

    with pytest.raises(TrackingError) as info:
        sandbox.parse_push(body, headers, now=PUSHED_AT)
    assert info.value.code == "bad_signature"


def test_a_replayed_push_is_refused_as_stale(sandbox):
    _, body, headers = signed(sandbox)

    assert sandbox.verify_push(body, headers, now=PUSHED_AT + timedelta(minutes=5))
    assert not sandbox.verify_push(body, headers, now=PUSHED_AT + timedelta(minutes=5, seconds=1))
    assert not sandbox.verify_push(body, headers, now=PUSHED_AT - timedelta(minutes=6))
    with pytest.raises(TrackingError) as info:
        sandbox.parse_push(body, headers, now=PUSHED_AT + timedelta(hours=1))
    assert info.value.code == "stale"


def test_a_signed_but_unreadable_push_is_a_bad_payload(sandbox):
    for body in (b"not json", b"[]", b'{"lastResult": {"nu": "SF1", "data": [{"x": 1}]}}'):
        stamp = int(PUSHED_AT.timestamp())
        headers = {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign_push(SECRET, body, stamp)}

        with pytest.raises(TrackingError) as info:
            sandbox.parse_push(body, headers, now=PUSHED_AT)
        assert info.value.code == "bad_payload"


@PROPERTY
@given(st.data())
def test_flipping_any_byte_of_a_push_breaks_its_signature(data):
    sandbox = SandboxCarrier(SECRET, seed=1)
    _, body, headers = signed(sandbox)
    position = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(body)
    tampered[position] ^= flip

    assert not verify_push_signature(SECRET, bytes(tampered), headers, now=PUSHED_AT)


def test_push_response_tells_the_service_to_stop_retrying(sandbox):
    body, content_type = sandbox.push_response(True)

    assert content_type == "application/json"
    assert json.loads(body) == {"result": True, "returnCode": "200", "message": "成功"}
    assert json.loads(sandbox.push_response(False)[0])["result"] is False


def test_secrets_must_be_long_enough():
    with pytest.raises(ValueError, match="16 bytes"):
        SandboxCarrier(b"short")
    with pytest.raises(ValueError, match="16 bytes"):
        sign_push(b"short", b"{}", 0)


def test_a_push_carries_one_waybill(sandbox):
    one = sandbox.generate("SF", "SF1311029837165", SHIPPED_AT)
    two = sandbox.generate("SF", "SF1311029837166", SHIPPED_AT)

    with pytest.raises(ValueError, match="one waybill"):
        sandbox.push_request("SF", one + two, timestamp=PUSHED_AT)
    with pytest.raises(ValueError, match="at least one"):
        sandbox.push_request("SF", [], timestamp=PUSHED_AT)


def test_tracking_update_keeps_times_in_utc_and_ignores_raw_in_comparisons():
    local = datetime(2026, 11, 27, 14, 0, tzinfo=SHANGHAI)
    a = TrackingUpdate("SF1311029837165", "in_transit", "广州转运中心", local, raw={"a": 1})
    b = TrackingUpdate("SF1311029837165", TrackingStatus.IN_TRANSIT, "广州转运中心", SHIPPED_AT)

    assert a == b
    assert a.at.tzinfo is UTC
    assert a.status is TrackingStatus.IN_TRANSIT
    with pytest.raises(ValueError, match="aware"):
        TrackingUpdate("SF1311029837165", "delivered", "", datetime(2026, 11, 27))  # noqa: DTZ001
    with pytest.raises(ValueError, match="lost"):
        TrackingUpdate("SF1311029837165", "lost", "", SHIPPED_AT)
