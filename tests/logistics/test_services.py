"""Logistics rules: read points, readers, packing, shipping, checkpoints, cold chain."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from logistics import config, services
from logistics.carriers import WaybillError
from logistics.interfaces import TrackingStatus, TrackingUpdate
from logistics.models import (
    CheckpointKind,
    Excursion,
    Parcel,
    ParcelItem,
    ReadPointKind,
    Shipment,
    ShipmentStatus,
)
from market.errors import ConflictError
from market.extensions import db
from market.orders.models import OrderStatus
from market.types import utcnow
from tests.logistics.helpers import make_world, order_status, pack, prefix, ship, user
from traceability import codes
from traceability import services as trace
from traceability.models import ChainHead, EventBatch, TraceEvent


@pytest.fixture
def world(app):
    return make_world(app)


def _event(pk: int) -> dict:
    return json.loads(db.session.get(TraceEvent, pk).document)


def test_a_read_point_gets_an_sgln_under_its_cooperatives_gln(app, world):
    with app.app_context():
        point = services.create_read_point(
            db.session,
            cooperative_id=world.coop,
            name="1号冷库",
            kind=ReadPointKind.COLD_STORE,
            division_code="440811",
            company_prefix=prefix(app),
        )
        gln = codes.make_gln(prefix(app), world.coop)
        assert point.gln == gln
        assert point.sgln == codes.sgln_uri(prefix(app), gln, str(point.id))
        assert point.biz_step == "storing"
        # Traceability's timeline recognises the place as the cooperative's.
        assert trace.cooperative_of_location(prefix(app), point.sgln) == world.coop


def test_a_read_point_outside_the_division_list_is_refused(app, world):
    with app.app_context(), pytest.raises(services.LogisticsError) as caught:
        services.create_read_point(
            db.session,
            cooperative_id=world.coop,
            name="门",
            kind="gate",
            division_code="999999",
            company_prefix=prefix(app),
        )
    assert caught.value.field == "division_code"


def test_a_reader_may_only_map_antennas_to_its_owners_read_points(app, world):
    with app.app_context():
        own = services.create_read_point(
            db.session,
            cooperative_id=world.coop,
            name="门",
            kind="gate",
            division_code="440811",
            company_prefix=prefix(app),
        )
        foreign = services.create_read_point(
            db.session,
            cooperative_id=world.other_coop,
            name="别家门",
            kind="gate",
            division_code="440118",
            company_prefix=prefix(app),
        )
        with pytest.raises(services.LogisticsError) as caught:
            services.register_reader(
                db.session,
                cooperative_id=world.coop,
                name="R700",
                read_point_id=own.id,
                antenna_map={"2": str(foreign.id)},
            )
        assert caught.value.code == "read_point"
        reader, token = services.register_reader(
            db.session,
            cooperative_id=world.coop,
            name="R700",
            read_point_id=own.id,
            antenna_map={2: str(own.id)},
        )
        assert reader.antenna_map == {"2": str(own.id)}
        assert reader.token.scopes == [services.READER_SCOPE]
        assert token.startswith("yn_")


def test_packing_records_the_units_into_the_parcels_sscc_and_marks_the_order_packed(app, world):
    parcel_id = pack(app, world)
    assert order_status(app, world.order) is OrderStatus.PACKED
    with app.app_context():
        parcel = db.session.get(Parcel, parcel_id)
        assert parcel.sscc == codes.make_sscc(prefix(app), 1, parcel.id)
        assert parcel.sscc_uri == codes.sscc_uri(prefix(app), parcel.sscc)
        assert parcel.epc_hex.startswith("31")
        event = _event(parcel.pack_event_pk)
        assert event["type"] == "AggregationEvent"
        assert event["action"] == "ADD"
        assert event["parentID"] == parcel.sscc_uri
        assert event["bizStep"] == "packing"
        assert sorted(event["childEPCs"]) == sorted(
            codes.sgtin_pure_uri(prefix(app), world.gtin, s) for s in world.serials[:2]
        )
        assert event["bizTransactionList"] == [
            {"type": "po", "bizTransaction": f"urn:yuenong:order:{world.order_number}"}
        ]
        row = db.session.get(TraceEvent, parcel.pack_event_pk)
        assert row.chain_key == f"batch:{world.batch}"
        checked, problems = trace.verify_chains(db.session)
        assert checked >= 2
        assert problems == []


def test_packing_a_batch_quantity_names_the_lot(app, world):
    parcel_id = pack(app, world, serials=[], batch_quantity=2)
    with app.app_context():
        parcel = db.session.get(Parcel, parcel_id)
        event = _event(parcel.pack_event_pk)
        assert "childEPCs" not in event
        [quantity] = event["childQuantityList"]
        assert quantity["epcClass"].startswith("urn:epc:class:lgtin:")
        assert quantity["epcClass"].endswith("." + world.lot)
        # Two of the product's boxes (盒), not two of the batch's 斤 (which would be 1 KGM).
        assert quantity["quantity"] == 2
        assert "uom" not in quantity


@pytest.mark.parametrize(
    ("serials", "code"),
    [
        (["1"], "line_count"),
        (["99999999999"], "code_unknown"),
        ([0, 0], "code_twice"),
        (["https://example.test/01/09506000134352/21/12345"], "code_unknown"),
    ],
)
def test_packing_refuses_what_does_not_add_up(app, world, serials, code):
    chosen = [world.serials[s] if isinstance(s, int) else s for s in serials]
    if code == "line_count":
        chosen = world.serials[:1]
    with app.app_context():
        with pytest.raises(services.PackError) as caught:
            services.pack_order(
                db.session,
                world.order,
                user(world.admin),
                [services.LineAssignment(world.line, codes=chosen)],
                company_prefix=prefix(app),
            )
        db.session.rollback()
        assert caught.value.code == code
        assert caught.value.line_id == world.line
        assert db.session.scalar(select(func.count(Parcel.id))) == 0
    assert order_status(app, world.order) is OrderStatus.PAID


def test_a_unit_is_packed_only_once(app):
    world = make_world(app, units=3, quantity=2)
    pack(app, world)
    second = make_world_order(app, world)
    with app.app_context(), pytest.raises(services.PackError) as caught:
        services.pack_order(
            db.session,
            second,
            user(world.admin),
            [services.LineAssignment(_line_of(second), codes=world.serials[1:3])],
            company_prefix=prefix(app),
        )
    assert caught.value.code == "code_packed"


def make_world_order(app, world) -> int:
    from market.orders import services as orders
    from tests.orders.helpers import ADDRESS

    with app.app_context():
        [order] = orders.place_orders(
            db.session, world.buyer, [orders.LineRequest(world.product, 2, 8800)], ADDRESS
        )
        orders.transition(db.session, order, "pay")
        db.session.commit()
        return order.id


def _line_of(order_id: int) -> int:
    from market.orders.models import Order

    return db.session.get(Order, order_id).lines[0].id


def test_shipping_checks_the_waybill_and_moves_the_order_to_shipped(app, world):
    pack(app, world)
    with app.app_context():
        with pytest.raises(WaybillError) as caught:
            services.create_shipment(
                db.session,
                world.order,
                carrier_code="SF",
                waybill="YT7523618490215",
                actor_id=world.admin,
                company_prefix=prefix(app),
            )
        assert caught.value.code == "format"
        assert caught.value.field == "waybill"
        db.session.rollback()
    shipment_id = ship(app, world, waybill="sf 1311 0298 37165")
    assert order_status(app, world.order) is OrderStatus.SHIPPED
    with app.app_context():
        shipment = db.session.get(Shipment, shipment_id)
        assert shipment.waybill == "SF1311029837165"
        event = _event(shipment.ship_event_pk)
        assert event["bizStep"] == "shipping"
        assert event["disposition"] == "in_transit"
        assert event["epcList"] == [p.sscc_uri for p in shipment.parcels]
        assert {"type": "bol", "bizTransaction": "urn:yuenong:waybill:SF:SF1311029837165"} in event[
            "bizTransactionList"
        ]


def test_a_waybill_is_used_by_one_shipment_only(app, world):
    pack(app, world)
    ship(app, world)
    other = make_world_order(app, world)
    with app.app_context():
        services.pack_order(
            db.session,
            other,
            user(world.admin),
            [services.LineAssignment(_line_of(other), batch_id=world.batch, quantity=2)],
            company_prefix=prefix(app),
        )
        with pytest.raises(ConflictError) as caught:
            services.create_shipment(
                db.session,
                other,
                carrier_code="SF",
                waybill="SF1311029837165",
                actor_id=world.admin,
                company_prefix=prefix(app),
            )
        assert caught.value.code == "waybill_taken"


def test_an_order_packed_the_plain_way_still_ships_with_a_parcel(app, world):
    from market.orders import services as orders

    with app.app_context():
        orders.pack(db.session, world.order, user(world.admin))
        db.session.commit()
    shipment_id = ship(app, world, waybill="", carrier_code="COOP")
    with app.app_context():
        shipment = db.session.get(Shipment, shipment_id)
        assert shipment.waybill == world.order_number
        [parcel] = shipment.parcels
        assert parcel.items == []


def test_delivery_moves_the_order_on_and_a_resent_update_changes_nothing(app, world):
    pack(app, world)
    shipment_id = ship(app, world)
    update = TrackingUpdate(
        "SF1311029837165", TrackingStatus.DELIVERED, "广州市天河区", utcnow(), "440106", "已签收"
    )
    with app.app_context():
        shipment, outcomes = services.apply_tracking_updates(
            db.session, "SF", [update], company_prefix=prefix(app)
        )
        assert [o.created for o in outcomes] == [True]
        assert outcomes[0].delivered_order
        db.session.commit()
        _shipment, again = services.apply_tracking_updates(
            db.session, "SF", [update], company_prefix=prefix(app)
        )
        assert [o.created for o in again] == [False]
        db.session.commit()
        shipment = db.session.get(Shipment, shipment_id)
        assert shipment.status is ShipmentStatus.DELIVERED
        assert len(shipment.checkpoints) == 1
        event = _event(shipment.checkpoints[0].event_pk)
        assert event["bizStep"] == "receiving"
        assert event["yn:placeCode"] == "440106"
    assert order_status(app, world.order) is OrderStatus.DELIVERED


@pytest.mark.parametrize(
    ("kind", "disposition", "status"),
    [
        (CheckpointKind.DAMAGED, "damaged", ShipmentStatus.DAMAGED),
        (CheckpointKind.LOST, "urn:yuenong:disp:lost", ShipmentStatus.LOST),
        (CheckpointKind.RETURNED, "returned", ShipmentStatus.RETURNED),
    ],
)
def test_exceptions_are_recorded_and_leave_the_order_shipped(app, world, kind, disposition, status):
    pack(app, world)
    shipment_id = ship(app, world)
    with app.app_context():
        outcome = services.record_checkpoint(
            db.session,
            shipment_id,
            kind,
            at=utcnow(),
            company_prefix=prefix(app),
            note="外箱压坏",
            user_id=world.admin,
        )
        db.session.commit()
        assert _event(outcome.checkpoint.event_pk)["disposition"] == disposition
        assert db.session.get(Shipment, shipment_id).status is status
    assert order_status(app, world.order) is OrderStatus.SHIPPED


def test_a_checkpoint_in_the_future_is_refused(app, world):
    pack(app, world)
    shipment_id = ship(app, world)
    with app.app_context(), pytest.raises(services.LogisticsError) as caught:
        services.record_checkpoint(
            db.session,
            shipment_id,
            "arrived",
            at=utcnow() + timedelta(hours=2),
            company_prefix=prefix(app),
        )
    assert caught.value.code == "future_date"


def test_an_excursion_is_found_once_marked_on_the_timeline_and_updated(app, world):
    pack(app, world)
    shipment_id = ship(app, world)
    start = utcnow() - timedelta(hours=2)
    table = config.thresholds(app)
    with app.app_context():
        shipment = db.session.get(Shipment, shipment_id)
        parcel_id = shipment.parcels[0].id
        readings = [
            services.ParcelReading(
                parcel_id,
                services.coldchain.Reading(start + timedelta(minutes=10 * i), c, "logger:L1"),
            )
            for i, c in enumerate([3.0, 3.5, 6.5, 7.5, 6.0, 3.2])
        ]
        stored, shipments = services.record_temperatures(
            db.session, readings, source="logger:L1", table=table
        )
        assert (stored, shipments) == (6, {shipment_id})
        first = services.check_excursions(db.session, shipment_id, table=table)
        assert len(first) == 1
        again = services.check_excursions(db.session, shipment_id, table=table)
        assert again == []
        db.session.commit()
        excursion = db.session.get(Excursion, first[0])
        assert (excursion.kind, excursion.peak_c, excursion.high_c) == ("high", 7.5, 4.0)
        assert excursion.returned_at == start + timedelta(minutes=50)
        event = _event(excursion.event_pk)
        assert event["yn:excursion"] == "high"
        [element] = event["sensorElementList"]
        assert element["sensorReport"][0]["exception"] == "ALARM_CONDITION"
        # The same readings posted again are not stored twice.
        stored, _ = services.record_temperatures(
            db.session, readings, source="logger:L1", table=table
        )
        assert stored == 0


def test_events_naming_only_parcels_go_into_the_cooperatives_chain(app, world):
    pack(app, world)
    shipment_id = ship(app, world)
    with app.app_context():
        shipment = db.session.get(Shipment, shipment_id)
        row = db.session.get(TraceEvent, shipment.ship_event_pk)
        assert row.chain_key == f"coop:{world.coop}"
        assert (
            db.session.scalar(
                select(func.count()).select_from(EventBatch).where(EventBatch.event_pk == row.id)
            )
            == 0
        )
        head = db.session.get(ChainHead, f"coop:{world.coop}")
        assert head.head_hash == row.hash
        assert db.session.scalar(select(func.count(ParcelItem.id))) == 2
