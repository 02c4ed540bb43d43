"""The journey of a unit and of an order: which events, in which order, with which places."""

from __future__ import annotations

from datetime import timedelta

import pytest

from logistics import journey, services
from logistics.models import Parcel, Shipment
from market.extensions import db
from market.types import utcnow
from tests.logistics.helpers import gates, impinj, make_world, pack, prefix, ship
from traceability import codes, epcis
from traceability import services as trace


@pytest.fixture(autouse=True)
def _fresh_cache():
    journey.CACHE.clear()
    yield
    journey.CACHE.clear()


@pytest.fixture
def world(app):
    return make_world(app)


def _unit(app, world, index=0):
    with app.app_context():
        return journey.unit_journey(
            db.session,
            gtin=world.gtin,
            serial=world.serials[index],
            batch_id=world.batch,
            company_prefix=prefix(app),
        )


def test_a_unit_nothing_happened_to_has_no_journey(app, world):
    assert _unit(app, world) is None


def test_a_units_journey_has_the_batch_the_parcel_and_its_own_events_in_order(app, client, world):
    pack(app, world, at=utcnow() - timedelta(hours=3))
    shipment_id = ship(app, world, at=utcnow() - timedelta(hours=2))
    [(_point, reader, token)] = gates(app, world)[:1]
    with app.app_context():
        parcel = db.session.get(Shipment, shipment_id).parcels[0]
        parcel_hex = parcel.epc_hex
        services.record_checkpoint(
            db.session,
            shipment_id,
            "arrived",
            at=utcnow() - timedelta(minutes=1),
            company_prefix=prefix(app),
            location="江门中转场",
            division_code="440703",
        )
        db.session.commit()
    client.post(
        f"/logistics/readers/{reader}/reads",
        data=impinj([parcel_hex], utcnow() - timedelta(minutes=90)),
        headers={"Authorization": f"Bearer {token}"},
    )
    found = _unit(app, world)
    titles = [e.title for e in found.entries]
    assert titles == [
        "step:commissioning",
        "packed",
        "shipped",
        "step:departing",
        "checkpoint:arrived",
    ]
    assert [e.scope for e in found.entries] == ["batch", "unit", "parcel", "parcel", "parcel"]
    times = [e.at for e in found.entries]
    assert times == sorted(times)
    read, arrived = found.entries[3], found.entries[4]
    assert read.place == "合作社冷库 出库门 · 麻章区"
    assert arrived.place == "江门中转场 · 广东省江门市蓬江区"
    assert arrived.note_public is False
    assert found.parcels
    assert found.parcels[0].startswith("(00) 1 ")


def test_a_unit_not_in_the_parcel_does_not_get_the_parcels_events(app, world):
    pack(app, world, serials=world.serials[:2])
    ship(app, world)
    assert _unit(app, world, index=2) is None


def test_events_of_a_parcel_after_the_unit_was_taken_out_are_not_its_journey(app, world):
    parcel_id = pack(app, world, at=utcnow() - timedelta(hours=2))
    with app.app_context():
        parcel = db.session.get(Parcel, parcel_id)
        unit = codes.sgtin_pure_uri(prefix(app), world.gtin, world.serials[0])
        taken_out = utcnow() - timedelta(minutes=30)
        trace.append_event(
            db.session,
            epcis.aggregation_event(
                event_time=taken_out,
                action="DELETE",
                parent_id=parcel.sscc_uri,
                child_epcs=[unit],
                biz_step="unpacking",
                disposition="in_progress",
            ),
            chain_batch_id=world.batch,
            linked_batch_ids=[world.batch],
            owner_cooperative_id=world.coop,
            source="ui",
        )
        trace.append_event(
            db.session,
            epcis.object_event(
                event_time=taken_out + timedelta(minutes=5),
                action="OBSERVE",
                biz_step="storing",
                epcs=[parcel.sscc_uri],
            ),
            chain_batch_id=None,
            owner_cooperative_id=world.coop,
            source="ui",
        )
        db.session.commit()
    titles = [e.title for e in _unit(app, world).entries]
    assert "unpacked" in titles
    assert "step:storing" not in titles
    # ... but the unit still in the parcel does see it.
    assert "step:storing" in [e.title for e in _unit(app, world, index=1).entries]


def test_the_order_journey_and_its_epcis_document_validate(app, world):
    pack(app, world)
    ship(app, world)
    with app.app_context():
        found = journey.order_journey(db.session, world.order, company_prefix=prefix(app))
        assert [e.title for e in found.entries] == ["step:commissioning", "packed", "shipped"]
        document = journey.journey_document(db.session, found, utcnow())
        validator = epcis.load_validator(app.config["EPCIS_SCHEMA_DIR"])
        assert epcis.document_errors(validator, document) == []
        assert len(document["epcisBody"]["eventList"]) == 3


def test_the_scan_page_hook_renders_the_journey_for_unit_codes_only(app, world):
    pack(app, world)
    ship(app, world)
    from traceability.services import batch_scan_target, unit_scan_target

    with app.test_request_context("/"), db.engine.connect() as conn:
        unit = unit_scan_target(conn, world.gtin, world.serials[0])
        html = app.extensions["journey_provider"](conn, unit)
        assert 'data-testid="journey"' in html
        assert "SF1311029837165" not in html  # the waybill stays off the public page
        lot = batch_scan_target(conn, world.gtin, world.lot)
        assert app.extensions["journey_provider"](conn, lot) == ""
