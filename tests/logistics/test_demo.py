"""The demo data ships its orders: parcels, shipments with valid waybills, the carrier's
checkpoints and RFID reads at a share that rises towards now, once however often it is
loaded; a shipped demo order's buyer sees its journey, and the journey exports as valid
EPCIS 2.0."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from logistics import journey
from logistics.carriers import s10_check_digit, validate_waybill
from logistics.epc import canonical_epc
from logistics.models import (
    Checkpoint,
    CheckpointKind,
    Parcel,
    ParcelItem,
    Reader,
    ReadStatus,
    Shipment,
    ShipmentStatus,
    TagRead,
)
from market import demo
from market.auth.models import Role, User
from market.extensions import db
from market.orders.models import Order, OrderEvent, OrderStatus
from market.reports import periods
from market.reports import services as reports
from market.reports.demo import BUYERS
from tests.conftest import login
from traceability import config as trace_config
from traceability import epcis
from traceability import services as trace
from traceability.models import TraceCode, TraceEvent


@pytest.fixture(autouse=True)
def _fresh_cache():
    journey.CACHE.clear()
    yield
    journey.CACHE.clear()


def _counts() -> tuple[int, ...]:
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Parcel, ParcelItem, Shipment, Checkpoint, TagRead, TraceEvent, OrderEvent)
    )


def _indicators(node, start, end) -> dict[str, reports.Indicator]:
    found = reports.informatization(db.session, node, periods.DateRange(start, end))
    return {i.key: i for i in found}


def test_demo_orders_are_shipped_once_with_valid_waybills_and_rising_rfid_use(app):
    with app.app_context():
        first = demo.load(db.session)
        db.session.commit()
        assert any(line.startswith("demo shipments") for line in first.created)
        counts = _counts()
        assert demo.load(db.session).created == []
        db.session.commit()
        assert _counts() == counts

        demo_orders = db.session.scalars(
            select(Order)
            .join(User, User.id == Order.buyer_id)
            .where(User.phone.in_([b[0] for b in BUYERS]))
        ).all()
        shipments = {s.order_id: s for s in db.session.scalars(select(Shipment))}
        assert len(shipments) > 500
        for order in demo_orders:
            shipment = shipments.get(order.id)
            if order.status not in (OrderStatus.SHIPPED, OrderStatus.COMPLETED):
                assert shipment is None, order.number
                continue
            # As the services leave it: a numbered parcel, shipped when the order was,
            # packed before; the order's own history says so.
            assert shipment.shipped_at == order.shipped_at
            assert validate_waybill(shipment.carrier_code, shipment.waybill) == shipment.waybill
            if shipment.carrier_code == "EMS" and not shipment.waybill.isdigit():
                assert int(shipment.waybill[10]) == s10_check_digit(shipment.waybill[2:10])
            [parcel] = shipment.parcels
            assert parcel.sscc_uri.startswith("urn:epc:id:sscc:")
            assert canonical_epc(parcel.epc_hex) == parcel.sscc_uri
            assert order.packed_at is not None
            assert order.packed_at <= order.shipped_at
            assert parcel.packed_at <= order.shipped_at
            actions = [e.action for e in order.events]
            assert actions[:4] == ["place", "pay", "pack", "ship"]
            kinds = [c.kind for c in shipment.checkpoints]
            assert kinds[:3] == [
                CheckpointKind.ACCEPTED,
                CheckpointKind.DEPARTED,
                CheckpointKind.ARRIVED,
            ]
            assert all(c.at > order.shipped_at for c in shipment.checkpoints)
            if order.status is OrderStatus.COMPLETED:
                assert kinds[-1] is CheckpointKind.DELIVERED
                assert shipment.status is ShipmentStatus.DELIVERED
                assert shipment.delivered_at == shipment.checkpoints[-1].at == order.delivered_at
                assert actions[-2:] == ["deliver", "complete"]
            else:
                # Still "shipped": no delivery the order does not know of.
                assert CheckpointKind.DELIVERED not in kinds
                assert shipment.status is ShipmentStatus.IN_TRANSIT
        carriers = {s.carrier_code for s in shipments.values()}
        assert {"SF", "EMS", "JD", "ZTO"} <= carriers
        # Every read went through the worker into an event naming the parcel.
        reads = db.session.scalars(select(TagRead)).all()
        assert reads
        assert {r.status for r in reads} <= {ReadStatus.RECORDED, ReadStatus.MERGED}
        assert all(r.event_pk for r in reads)
        assert db.session.scalars(select(Reader)).all()
        parcel_uris = set(db.session.scalars(select(Parcel.sscc_uri)))
        assert parcel_uris & {r.epc for r in reads}
        assert trace.verify_chains(db.session)[1] == []

        # The dashboards: RFID use in the last 30 days in the intended band, well up on a
        # year ago; the other indicators still there.
        admin = db.session.scalars(select(User).where(User.phone == demo.ADMIN[0])).one()
        node = reports.root_node(db.session, admin)
        today = periods.local_today()
        month = _indicators(node, today - timedelta(days=29), today)
        year_ago = _indicators(node, today - timedelta(days=395), today - timedelta(days=335))
        recent, before = month["rfid_shipments"], year_ago["rfid_shipments"]
        assert recent.denominator >= 20
        assert before.denominator >= 20
        assert 0.55 <= recent.share <= 0.92
        assert 0.2 <= before.share <= 0.55
        assert before.share < recent.share - 0.15
        assert recent.progress is not None  # measured against the plan's target
        assert month["active_cooperatives"].percent is not None
        assert month["trace_coverage"].denominator > 0
        # The summary counts what the rows say.
        start = periods.DateRange(today - timedelta(days=29), today).start_at
        raw = [s for s in shipments.values() if s.shipped_at >= start]
        read_epcs = {r.epc for r in reads}
        seen = [s for s in raw if s.parcels[0].sscc_uri in read_epcs]
        assert (len(seen), len(raw)) == (recent.numerator, recent.denominator)


def _steps(html: str) -> list[str]:
    section = html.split('data-testid="journey"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'data-step="([^"]+)"', section)


def test_a_shipped_demo_orders_journey_shows_to_its_buyer_and_exports_as_valid_epcis(app, client):
    with app.app_context():
        demo.load(db.session)
        db.session.commit()
        # The newest demo order whose parcel holds unit codes and was read by RFID.
        order = db.session.scalars(
            select(Order)
            .join(Parcel, Parcel.order_id == Order.id)
            .join(ParcelItem, ParcelItem.parcel_id == Parcel.id)
            .join(TagRead, TagRead.epc == Parcel.sscc_uri)
            .where(ParcelItem.code_id.is_not(None), Order.status == OrderStatus.SHIPPED)
            .order_by(Order.shipped_at.desc())
        ).first()
        assert order is not None
        order_id, buyer_phone = order.id, order.buyer.phone
        shipment = db.session.scalars(select(Shipment).where(Shipment.order_id == order_id)).one()
        shipment_id, waybill = shipment.id, shipment.waybill
        admin_phone = db.session.scalars(
            select(User.phone).where(
                User.cooperative_id == order.cooperative_id, User.role == Role.COOP_ADMIN
            )
        ).first()
        code = db.session.scalars(
            select(TraceCode)
            .join(ParcelItem, ParcelItem.code_id == TraceCode.id)
            .join(Parcel, Parcel.id == ParcelItem.parcel_id)
            .where(Parcel.order_id == order_id)
        ).first()
        link = trace.code_link(
            app.config["PUBLIC_BASE_URL"], trace_config.tag_secret(app), code, code.batch.lot_code
        )

    buyer = app.test_client()
    login(buyer, buyer_phone, demo.DEMO_PASSWORD)
    page = buyer.get(f"/orders/{order_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    steps = _steps(html)
    expected = [
        "packed",
        "step:storing",
        "shipped",
        "step:loading",
        "checkpoint:accepted",
        "checkpoint:departed",
        "checkpoint:arrived",
    ]
    # (before the packing: the batch's own steps, harvest, tests, storage)
    assert steps[steps.index("packed") :] == expected
    assert waybill in html
    assert "合作社仓库 发货口" in html

    # The unit's public scan page shows the parcel's journey too (without the waybill).
    parts = urlsplit(link)
    scan = client.get(parts.path + "?" + parts.query).get_data(as_text=True)
    assert "checkpoint:arrived" in _steps(scan)
    assert waybill not in scan

    # The journey as EPCIS 2.0, from the cooperative's export, validates.
    admin = app.test_client()
    login(admin, admin_phone, demo.DEMO_PASSWORD)
    export = admin.get(f"/logistics/shipments/{shipment_id}/epcis.jsonld")
    assert export.status_code == 200
    document = json.loads(export.get_data(as_text=True))
    validator = epcis.load_validator(app.config["EPCIS_SCHEMA_DIR"])
    assert epcis.document_errors(validator, document) == []
    events = document["epcisBody"]["eventList"]
    assert {e.get("bizStep") for e in events} >= {"packing", "shipping", "loading", "arriving"}
