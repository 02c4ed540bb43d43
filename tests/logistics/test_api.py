"""The reader and carrier endpoints: tag reads, temperatures, tracking pushes."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from logistics import providers, services
from logistics.interfaces import TIMESTAMP_HEADER
from logistics.models import (
    Checkpoint,
    Parcel,
    QuarantinedEpc,
    QuarantineReason,
    ReadStatus,
    Shipment,
    TagRead,
    TemperatureReading,
)
from market.extensions import db
from market.orders.models import OrderStatus
from market.types import utcnow
from tests.logistics.helpers import (
    bearer,
    gates,
    impinj,
    make_world,
    minutes_ago,
    order_status,
    pack,
    prefix,
    ship,
)
from traceability import codes
from traceability import services as trace
from traceability.models import TraceEvent

STRAY = "E2801160600002054E3D1A2B"


@pytest.fixture
def shipped(app):
    world = make_world(app)
    world.parcel = pack(app, world)
    world.shipment = ship(app, world)
    world.gates = gates(app, world)
    with app.app_context():
        world.parcel_epc = db.session.get(Parcel, world.parcel).epc_hex
        world.parcel_uri = db.session.get(Parcel, world.parcel).sscc_uri
    return world


def _post_reads(client, reader_id, token, body, content_type="application/x-ndjson"):
    return client.post(
        f"/logistics/readers/{reader_id}/reads",
        data=body,
        headers={**bearer(token), "Content-Type": content_type},
    )


def _events_at(app, read_point_id: int) -> list[dict]:
    with app.app_context():
        from logistics.models import ReadPoint

        sgln = db.session.get(ReadPoint, read_point_id).sgln
        rows = db.session.scalars(
            select(TraceEvent).where(TraceEvent.read_point == sgln).order_by(TraceEvent.id)
        )
        return [json.loads(r.document) for r in rows]


def test_impinj_reads_become_one_observe_event_at_the_read_point(app, client, shipped):
    point, reader, token = shipped.gates[0]
    unit_hex = shipped.epcs[0]
    response = _post_reads(
        client, reader, token, impinj([shipped.parcel_epc, unit_hex], minutes_ago(30))
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body == {
        "parsed": 6,
        "kept": 2,
        "stored": 2,
        "duplicates": 0,
        "ignored": 0,
        "errors": [],
    }
    [event] = _events_at(app, point)
    assert event["type"] == "ObjectEvent"
    assert event["action"] == "OBSERVE"
    assert event["bizStep"] == "departing"
    assert event["disposition"] == "in_transit"
    unit_uri = codes.sgtin_pure_uri(prefix(app), shipped.gtin, shipped.serials[0])
    assert event["epcList"] == [shipped.parcel_uri, unit_uri]
    with app.app_context():
        statuses = db.session.scalars(select(TagRead.status)).all()
        assert statuses == [ReadStatus.RECORDED, ReadStatus.RECORDED]
        _checked, problems = trace.verify_chains(db.session)
        assert problems == []


def test_posting_the_same_batch_twice_changes_nothing(app, client, shipped):
    _point, reader, token = shipped.gates[1]
    body = impinj([shipped.parcel_epc, STRAY], minutes_ago(20))
    first = _post_reads(client, reader, token, body).get_json()
    second = _post_reads(client, reader, token, body).get_json()
    assert (first["stored"], first["duplicates"]) == (2, 0)
    assert (second["stored"], second["duplicates"]) == (0, 2)
    with app.app_context():
        assert db.session.scalar(select(func.count(TagRead.id))) == 2
        assert (
            db.session.scalar(select(func.count(TraceEvent.id)).where(TraceEvent.source == "rfid"))
            == 1
        )
        [entry] = db.session.scalars(select(QuarantinedEpc)).all()
        assert (entry.epc, entry.read_count, entry.reason) == (STRAY, 1, QuarantineReason.UNKNOWN)


def test_a_burst_split_over_two_posts_is_one_event(app, client, shipped):
    point, reader, token = shipped.gates[2]
    at = minutes_ago(10)
    _post_reads(client, reader, token, impinj([shipped.parcel_epc], at, repeats=1))
    later = _post_reads(
        client, reader, token, impinj([shipped.parcel_epc], at + timedelta(seconds=25), repeats=1)
    ).get_json()
    assert later["stored"] in (0, 1)  # a new window bucket may store it, never a new event
    assert len(_events_at(app, point)) == 1


def test_base64_epcs_plain_arrays_and_llrp_reads_are_accepted(app, client, shipped):
    point, reader, token = shipped.gates[0]
    at = minutes_ago(40)
    encoded = base64.b64encode(bytes.fromhex(shipped.epcs[1])).decode()
    impinj_b64 = json.dumps(
        [
            {
                "timestamp": at.isoformat(),
                "eventType": "tagInventory",
                "tagInventoryEvent": {"epc": encoded, "antennaPort": 1},
            }
        ]
    )
    plain = json.dumps(
        [{"epc": shipped.parcel_epc, "antenna": 1, "rssi": -60.5, "time": at.isoformat()}]
    )
    micros = int(at.timestamp() * 1_000_000)
    llrp = json.dumps(
        {
            "tagReports": [
                {
                    "EPC": shipped.epcs[0],
                    "AntennaID": 1,
                    "FirstSeenTimestampUTC": micros,
                    "TagSeenCount": 4,
                }
            ]
        }
    )
    for body in (impinj_b64, plain, llrp):
        response = _post_reads(client, reader, token, body.encode(), "application/json")
        assert response.status_code == 202, response.get_data(as_text=True)
        assert response.get_json()["stored"] == 1
    # Each post is its own event (events are never changed afterwards).
    events = _events_at(app, point)
    assert [len(e["epcList"]) for e in events] == [1, 1, 1]
    assert events[1]["epcList"] == [shipped.parcel_uri]


def test_an_other_cooperatives_parcel_goes_to_the_quarantine(app, client, shipped):
    with app.app_context():
        point = services.create_read_point(
            db.session,
            cooperative_id=shipped.other_coop,
            name="荔枝冷库门",
            kind="gate",
            division_code="440118",
            company_prefix=prefix(app),
        )
        reader, token = services.register_reader(
            db.session, cooperative_id=shipped.other_coop, name="R700", read_point_id=point.id
        )
        reader_id = reader.id
        db.session.commit()
    _post_reads(client, reader_id, token, impinj([shipped.parcel_epc], minutes_ago(5)))
    with app.app_context():
        [entry] = db.session.scalars(select(QuarantinedEpc)).all()
        assert entry.reason is QuarantineReason.OTHER_COOPERATIVE
        assert entry.cooperative_id == shipped.other_coop


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer yn_not-a-real-token"}, 401, "unauthorized"),
        ({"Authorization": "Basic abc"}, 401, "unauthorized"),
    ],
)
def test_reads_without_the_readers_token_are_refused_in_json(
    app, client, shipped, headers, status, code
):
    _point, reader, _token = shipped.gates[0]
    response = client.post(f"/logistics/readers/{reader}/reads", data=b"[]", headers=headers)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_a_token_of_another_reader_or_without_the_scope_is_forbidden(app, client, shipped):
    _p, reader_a, _token_a = shipped.gates[0]
    _p, _reader_b, token_b = shipped.gates[1]
    response = _post_reads(client, reader_a, token_b, b"[]")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    with app.app_context():
        _row, plain = trace.create_token(
            db.session, name="epcis", scopes=["capture"], cooperative_id=shipped.coop, user_id=None
        )
        db.session.commit()
    assert _post_reads(client, reader_a, plain, b"[]").status_code == 403


def test_a_switched_off_reader_and_a_replaced_token_are_refused(app, client, shipped):
    _p, reader, token = shipped.gates[0]
    with app.app_context():
        new_token = services.rotate_reader_token(db.session, reader, user_id=None)
        db.session.commit()
    assert _post_reads(client, reader, token, b"[]").status_code == 401
    with app.app_context():
        services.get_reader(db.session, reader).active = False
        db.session.commit()
    response = _post_reads(client, reader, new_token, b"[]")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "reader_disabled"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"", "application/json", 400, "empty"),
        (b"{not json", "application/json", 400, "bad_json"),
        (b"<xml/>", "application/xml", 415, "unsupported_media_type"),
        (
            b'[{"epc": "XYZ", "time": "2026-11-27T08:00:00Z"}]',
            "application/json",
            400,
            "no_valid_reads",
        ),
        (b'[{"epc": "3074257BF7194E4000001A85"}]', "application/json", 202, None),
    ],
)
def test_bad_bodies_get_stable_json_errors_and_change_nothing(
    app, client, shipped, body, content_type, status, code
):
    _p, reader, token = shipped.gates[0]
    response = _post_reads(client, reader, token, body, content_type)
    assert response.status_code == status
    if code:
        assert response.get_json()["error"]["code"] == code
        with app.app_context():
            assert db.session.scalar(select(func.count(TagRead.id))) == 0
    else:
        # No time given: the time it arrived is used.
        assert response.get_json()["stored"] == 1


def test_one_bad_item_is_reported_and_the_rest_kept(app, client, shipped):
    _p, reader, token = shipped.gates[0]
    at = minutes_ago(3).isoformat()
    body = json.dumps(
        [{"epc": shipped.parcel_epc, "time": at}, {"epc": "12", "time": at}, {"time": at}]
    ).encode()
    response = _post_reads(client, reader, token, body, "application/json")
    assert response.status_code == 202
    data = response.get_json()
    assert data["stored"] == 1
    assert [(e["index"], e["code"]) for e in data["errors"]] == [(1, "bad_epc"), (2, "missing_epc")]


def test_temperatures_are_stored_as_sensor_events_and_excursions_found(app, client, shipped):
    _p, reader, token = shipped.gates[0]
    start = utcnow() - timedelta(hours=1)
    readings = [
        {
            "epc": shipped.parcel_epc,
            "time": (start + timedelta(minutes=5 * i)).isoformat(),
            "celsius": c,
        }
        for i, c in enumerate([2.5, 3.0, 8.0, 9.0, 8.5, 3.0])
    ]
    readings.append({"epc": STRAY, "time": start.isoformat(), "celsius": 3})
    response = client.post(
        f"/logistics/readers/{reader}/temperatures",
        json={"sensor": "urn:epc:id:giai:6970000.L01", "readings": readings},
        headers=bearer(token),
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    data = response.get_json()
    assert data["stored"] == 6
    assert [e["code"] for e in data["errors"]] == ["unknown_epc"]
    with app.app_context():
        assert db.session.scalar(select(func.count(TemperatureReading.id))) == 6
        sensor_events = db.session.scalars(
            select(TraceEvent).where(TraceEvent.biz_step == "sensor_reporting")
        ).all()
        documents = [json.loads(e.document) for e in sensor_events]
        assert len(documents) == 2  # the readings, and the excursion they show
        readings_event = next(d for d in documents if "yn:excursion" not in d)
        [element] = readings_event["sensorElementList"]
        assert element["sensorMetadata"]["deviceID"] == "urn:epc:id:giai:6970000.L01"
        alarms = [r for r in element["sensorReport"] if r.get("exception") == "ALARM_CONDITION"]
        assert [r["value"] for r in alarms] == [8.0, 9.0, 8.5]


def _push(client, app, shipment_id, updates, *, timestamp=None):
    with app.app_context():
        carrier = providers.tracking_provider(app)
        body, headers = carrier.push_request("SF", updates, timestamp=timestamp)
    return client.post("/logistics/carriers/SF/push", data=body, headers=headers)


def _journey(app, shipment_id, outcome="delivered"):
    with app.app_context():
        carrier = providers.tracking_provider(app)
        shipment = db.session.get(Shipment, shipment_id)
        updates = carrier.generate("SF", shipment.waybill, shipment.shipped_at, outcome=outcome)
        # Pulled back so every step is in the past.
        shift = updates[-1].at - utcnow() + timedelta(minutes=1)
        from dataclasses import replace

        return [replace(u, at=u.at - shift) for u in updates]


def test_a_signed_carrier_push_records_each_step_once_and_delivers(app, client, shipped):
    updates = _journey(app, shipped.shipment)
    half = _push(client, app, shipped.shipment, updates[:4])
    assert half.status_code == 200
    assert half.get_json()["result"] is True
    full = _push(client, app, shipped.shipment, updates)
    assert full.status_code == 200
    again = _push(client, app, shipped.shipment, updates)
    assert again.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count(Checkpoint.id))) == len(updates)
        kinds = db.session.scalars(select(Checkpoint.kind).order_by(Checkpoint.at)).all()
        assert kinds[0].value == "accepted"
        assert kinds[-1].value == "delivered"
    assert order_status(app, shipped.order) is OrderStatus.DELIVERED


def test_forged_stale_and_unknown_pushes_are_refused(app, client, shipped):
    updates = _journey(app, shipped.shipment)
    with app.app_context():
        body, headers = providers.tracking_provider(app).push_request("SF", updates)
    forged = client.post(
        "/logistics/carriers/SF/push", data=body.replace(b"SF", b"SF", 1) + b" ", headers=headers
    )
    assert forged.status_code == 401
    assert forged.get_json()["error"]["code"] == "bad_signature"
    stale = _push(client, app, shipped.shipment, updates, timestamp=utcnow() - timedelta(hours=1))
    assert stale.status_code == 401
    assert stale.get_json()["error"]["code"] == "stale"
    stamp = dict(headers)
    stamp.pop(TIMESTAMP_HEADER)
    assert client.post("/logistics/carriers/SF/push", data=body, headers=stamp).status_code == 401
    from dataclasses import replace

    other = [replace(u, waybill="SF1311029837166") for u in updates]
    unknown = _push(client, app, shipped.shipment, other)
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "unknown_waybill"
    assert client.post("/logistics/carriers/NOPE/push", data=b"{}").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count(Checkpoint.id))) == 0


def test_a_read_from_a_clock_running_ahead_is_refused(app, client, shipped):
    _p, reader, token = shipped.gates[0]
    ahead = (utcnow() + timedelta(hours=3)).isoformat()
    body = json.dumps([{"epc": shipped.parcel_epc, "time": ahead}]).encode()
    response = _post_reads(client, reader, token, body, "application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["errors"][0]["code"] == "bad_time"


def test_a_readers_token_cannot_write_or_read_epcis_documents(app, client, shipped):
    _p, _reader, token = shipped.gates[0]
    response = client.post(
        "/epcis/capture",
        data=b"{}",
        headers={**bearer(token), "Content-Type": "application/ld+json"},
    )
    assert response.status_code == 403
    assert client.get("/epcis/events", headers=bearer(token)).status_code == 403
