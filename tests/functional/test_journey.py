"""One whole journey: harvest -> payment in the Alipay sandbox -> packing -> shipping ->
three RFID gates posting to the reader endpoint (with the repeats readers send, a batch
posted twice and a stray tag) -> a logger's cold-chain excursion -> the carrier's signed
push of the delivery. The unit's scan page and the buyer's order page then show each step
once, in time order; the quarantine holds the stray tag; the journey exported as EPCIS 2.0
validates against GS1's schema.

Packing and shipping go through the services here, back-dated to the morning, so the
readings that follow lie in the past as real ones do (the pages that pack and ship are
tested in tests/logistics/test_views.py)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft7Validator, FormatChecker
from sqlalchemy import select

from logistics import journey, providers, services
from logistics.models import Excursion, Parcel, QuarantinedEpc, Shipment
from market.auth.models import User
from market.extensions import db
from market.notifications.models import Notification
from market.orders.models import OrderStatus
from market.types import utcnow
from tests.conftest import login, post_form
from tests.logistics.helpers import bearer, impinj, make_world, order_status, prefix
from tests.payments.helpers import open_cashier, press
from traceability import config as trace_config
from traceability import epcis
from traceability import services as trace
from traceability.models import TraceCode, TraceEvent

STRAY = "E2801160600002054E3D1A2B"
GATES = (
    ("合作社冷库 出库门", "departing", "440811"),
    ("江门冷链中转仓 入口", "arriving", "440703"),
    ("广州城配中心 入口", "arriving", "440111"),
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    journey.CACHE.clear()
    yield
    journey.CACHE.clear()


def _steps(html: str) -> list[tuple[str, str]]:
    """(data-step, datetime) of each entry of the page's journey, in page order."""
    section = html.split('data-testid="journey"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'data-step="([^"]+)">\s*<time datetime="([^"]+)"', section)


def test_a_whole_journey_from_harvest_to_delivery(app, client):
    world = make_world(app, units=3, quantity=2)
    # The buyer pays in the Alipay sandbox (make_world paid it directly: undo that here
    # by placing a fresh order of the same product, paid through the real flow).
    from market.orders import services as orders
    from tests.orders.helpers import ADDRESS

    with app.app_context():
        [order] = orders.place_orders(
            db.session, world.buyer, [orders.LineRequest(world.product, 2, 8800)], ADDRESS
        )
        order_id, line_id = order.id, order.lines[0].id
        db.session.commit()
    buyer = app.test_client()
    login(buyer, world.phones["buyer"])
    pay = post_form(buyer, f"/orders/{order_id}/pay", {})
    assert pay.status_code == 303
    press(buyer, open_cashier(buyer, pay.headers["Location"]))
    assert order_status(app, order_id) is OrderStatus.PAID

    # This morning the farmer packed two units (scanning their RFID tags) and the admin
    # handed the parcel to SF Express.
    start = utcnow() - timedelta(hours=6)
    with app.app_context():
        services.pack_order(
            db.session,
            order_id,
            db.session.get(User, world.farmer),
            [services.LineAssignment(line_id, codes=world.epcs[:2])],
            company_prefix=prefix(app),
            now=start - timedelta(minutes=30),
        )
        services.create_shipment(
            db.session,
            order_id,
            carrier_code="SF",
            waybill="SF1311029837165",
            actor_id=world.admin,
            company_prefix=prefix(app),
            now=start,
        )
        db.session.commit()
    assert order_status(app, order_id) is OrderStatus.SHIPPED
    admin = app.test_client()
    login(admin, world.phones["admin"])

    # Three gates, each with a reader registered on the readers page (token shown once).
    tokens = []
    for name, step, division in GATES:
        assert (
            post_form(
                admin,
                "/logistics/read-points",
                {"name": name, "kind": "gate", "division_code": division, "biz_step": step},
            ).status_code
            == 303
        )
        with app.app_context():
            from logistics.models import ReadPoint

            point_id = db.session.scalars(select(ReadPoint.id).where(ReadPoint.name == name)).one()
        page = post_form(
            admin,
            "/logistics/readers",
            {"name": f"{name} R700", "read_point_id": str(point_id), "dedupe_window_s": "30"},
        ).get_data(as_text=True)
        token = re.search(r'data-testid="reader-token">([^<]+)<', page).group(1)
        with app.app_context():
            from logistics.models import Reader

            reader_id = db.session.scalars(
                select(Reader.id).where(Reader.read_point_id == point_id)
            ).one()
        tokens.append((reader_id, token))

    with app.app_context():
        parcel = db.session.scalars(select(Parcel).where(Parcel.order_id == order_id)).one()
        parcel_hex, parcel_uri = parcel.epc_hex, parcel.sscc_uri
        shipment_id = db.session.scalars(
            select(Shipment.id).where(Shipment.order_id == order_id)
        ).one()

    # Each gate reads the parcel tag and one unit tag, three times each, on two antennas;
    # the second gate also sees a stray tag; the second gate posts its batch twice.
    for number, (reader_id, token) in enumerate(tokens):
        at = start + timedelta(hours=1 + number)
        tags = [parcel_hex, world.epcs[0]] + ([STRAY] if number == 1 else [])
        body = impinj(tags, at) + b"\n" + impinj(tags, at + timedelta(seconds=2), antenna=2)
        for _attempt in range(2 if number == 1 else 1):
            response = client.post(
                f"/logistics/readers/{reader_id}/reads",
                data=body,
                headers={**bearer(token), "Content-Type": "application/x-ndjson"},
            )
            assert response.status_code == 202, response.get_data(as_text=True)

    # A logger in the parcel reports through the first reader: too warm for a while.
    logger_reader, logger_token = tokens[0]
    readings = [
        {
            "epc": parcel_hex,
            "time": (start + timedelta(minutes=20 * i + 5)).isoformat(),
            "celsius": c,
        }
        for i, c in enumerate([2.5, 3.0, 3.2, 7.5, 8.8, 8.1, 3.4, 3.0, 2.8, 3.1, 3.3, 3.0, 2.9])
    ]
    response = client.post(
        f"/logistics/readers/{logger_reader}/temperatures",
        json={"sensor": "urn:epc:id:giai:6970000.LOGGER01", "readings": readings},
        headers=bearer(logger_token),
    )
    assert response.status_code == 202

    # SF's tracking service pushes the delivery, signed.
    with app.app_context():
        carrier = providers.tracking_provider(app)
        [delivered] = [
            u
            for u in carrier.generate("SF", "SF1311029837165", start, outcome="delivered")
            if u.status.value == "delivered"
        ]
        delivered = replace(delivered, at=utcnow() - timedelta(minutes=10))
        body, headers = carrier.push_request("SF", [delivered])
    assert client.post("/logistics/carriers/SF/push", data=body, headers=headers).status_code == 200
    assert client.post("/logistics/carriers/SF/push", data=body, headers=headers).status_code == 200
    assert order_status(app, order_id) is OrderStatus.DELIVERED

    # The unit's scan page shows its journey: each step once, in time order.
    with app.app_context():
        code = db.session.scalars(select(TraceCode).where(TraceCode.epc_hex == world.epcs[0])).one()
        link = trace.code_link(
            app.config["PUBLIC_BASE_URL"], trace_config.tag_secret(app), code, world.lot
        )
    parts = urlsplit(link)
    page = client.get(parts.path + "?" + parts.query)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    steps = _steps(html)
    titles = [title for title, _at in steps]
    assert titles[:3] == ["step:commissioning", "packed", "shipped"]
    assert titles.count("step:departing") == 1
    assert titles.count("step:arriving") == 2
    assert titles.count("excursion") == 1
    assert titles.count("checkpoint:delivered") == 1
    assert titles[-1] == "checkpoint:delivered"
    assert len(steps) == len(set(steps))
    times = [at for _title, at in steps]
    assert times == sorted(times)
    for name, _step, _division in GATES:
        assert html.count(name) == 1
    assert "温度超出范围" in html
    assert STRAY not in html
    assert "SF1311029837165" not in html  # the waybill stays off the public page

    # The buyer's order page shows the same journey (with the waybill).
    order_page = buyer.get(f"/orders/{order_id}").get_data(as_text=True)
    order_steps = [t for t, _ in _steps(order_page)]
    assert order_steps.count("step:arriving") == 2
    assert order_steps[-1] == "checkpoint:delivered"
    assert "SF1311029837165" in order_page

    # The quarantine holds the stray tag (seen twice: once per distinct antenna).
    quarantine = admin.get("/logistics/quarantine").get_data(as_text=True)
    assert STRAY in quarantine
    with app.app_context():
        entry = db.session.scalars(select(QuarantinedEpc)).one()
        assert entry.epc == STRAY
        assert entry.read_count == 2
        assert db.session.scalars(select(Excursion)).one().peak_c == 8.8
        # The cooperative was told about the excursion; the buyer about the delivery.
        assert db.session.scalars(
            select(Notification).where(
                Notification.user_id == world.admin, Notification.kind == "logistics.excursion"
            )
        ).one()
        assert db.session.scalars(
            select(Notification).where(
                Notification.user_id == world.buyer, Notification.kind == "logistics.delivered"
            )
        ).one()
        # Every event is in an intact hash chain.
        _checked, problems = trace.verify_chains(db.session)
        assert problems == []
        rfid_events = db.session.scalars(
            select(TraceEvent).where(
                TraceEvent.source == "rfid", TraceEvent.biz_step != "sensor_reporting"
            )
        ).all()
        assert len(rfid_events) == 3

    # The journey exported as EPCIS 2.0 validates against the schema copy.
    export = admin.get(f"/logistics/shipments/{shipment_id}/epcis.jsonld")
    document = json.loads(export.get_data(as_text=True))
    schema_dir = Path(app.config["EPCIS_SCHEMA_DIR"])
    schema = json.loads((schema_dir / epcis.SCHEMA_FILE).read_text(encoding="utf-8"))
    validator = Draft7Validator(schema, format_checker=FormatChecker())
    assert list(validator.iter_errors(document)) == []
    exported = [e["eventID"] for e in document["epcisBody"]["eventList"]]
    assert len(exported) == len(set(exported)) >= 9
    assert any(parcel_uri in (e.get("epcList") or []) for e in document["epcisBody"]["eventList"])
