"""The logistics pages: packing, shipping, checkpoints and temperatures by hand, read
points, readers and the quarantine (the texts checked are the Chinese ones people see)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from logistics import journey, providers, services
from logistics.models import Checkpoint, Excursion, QuarantinedEpc, Reader, ReadPoint, Shipment
from market.extensions import db
from market.notifications.models import Notification
from market.orders.models import OrderStatus
from market.types import utcnow
from tests.conftest import login, post_form
from tests.logistics.helpers import bearer, impinj, make_world, order_status, pack, prefix, ship
from traceability import epcis

SHANGHAI_FORMAT = "%Y-%m-%dT%H:%M"


@pytest.fixture(autouse=True)
def _fresh_cache():
    journey.CACHE.clear()


@pytest.fixture
def world(app):
    return make_world(app)


def _local(moment) -> str:
    return moment.astimezone(services.SHANGHAI).strftime(SHANGHAI_FORMAT)


def test_the_packing_page_packs_scanned_codes_into_a_parcel(app, client, world):
    login(client, world.phones["farmer"])
    page = client.get(f"/logistics/orders/{world.order}/pack")
    assert page.status_code == 200
    assert "扫码或输入，每行一个" in page.get_data(as_text=True)
    response = post_form(
        client,
        f"/logistics/orders/{world.order}/pack",
        {f"codes_{world.line}": "\n".join(world.epcs[:2]), f"batch_{world.line}": "0"},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert order_status(app, world.order) is OrderStatus.PACKED
    follow = client.get(response.headers["Location"])
    assert "已装入包裹 (00) 1 6970000" in follow.get_data(as_text=True)


def test_a_packing_that_does_not_add_up_is_marked_and_changes_nothing(app, client, world):
    login(client, world.phones["admin"])
    response = post_form(
        client,
        f"/logistics/orders/{world.order}/pack",
        {f"codes_{world.line}": world.epcs[0], f"batch_{world.line}": "0"},
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "扫码件数加批次数量必须等于订购数量" in text
    assert f'id="codes_{world.line}-error"' in text
    assert order_status(app, world.order) is OrderStatus.PAID


def test_a_waybill_of_another_shape_is_marked_in_chinese(app, client, world):
    pack(app, world)
    login(client, world.phones["admin"])
    response = post_form(
        client,
        f"/logistics/orders/{world.order}/shipment",
        {"carrier": "SF", "waybill": "YT7523618490215", "cold_profile": ""},
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "这不是顺丰速运的运单号（格式如 SF1311029837165）" in text
    assert re.search(
        r'id="waybill"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="waybill"', text
    )
    assert order_status(app, world.order) is OrderStatus.PACKED
    with app.app_context():
        assert db.session.scalar(select(func.count(Shipment.id))) == 0


def test_a_waybill_with_a_wrong_check_digit_is_marked(app, client, world):
    pack(app, world)
    login(client, world.phones["admin"])
    response = post_form(
        client,
        f"/logistics/orders/{world.order}/shipment",
        {"carrier": "EMS", "waybill": "RR473124828GB"},
    )
    assert response.status_code == 400
    assert "运单号的校验位不对" in response.get_data(as_text=True)


def test_shipping_through_the_page_moves_the_order_and_tells_the_buyer(app, client, world):
    pack(app, world)
    login(client, world.phones["admin"])
    response = post_form(
        client,
        f"/logistics/orders/{world.order}/shipment",
        {"carrier": "SF", "waybill": "sf1311 0298 37165", "cold_profile": "live"},
    )
    assert response.status_code == 303
    assert order_status(app, world.order) is OrderStatus.SHIPPED
    page = client.get(response.headers["Location"])
    text = page.get_data(as_text=True)
    assert "SF1311029837165" in text
    assert "4 ~ 10 °C" in text  # live prawns: the aquatic:live limits
    with app.app_context():
        shipment = db.session.scalars(select(Shipment)).one()
        assert shipment.cold_profile == "live"
        assert shipment.subscribed_at is not None  # the sandbox carrier was asked to push
        kinds = db.session.scalars(
            select(Notification.kind).where(Notification.user_id == world.buyer)
        ).all()
        assert "order.shipped" in kinds


def test_checkpoints_and_temperatures_by_hand_tell_the_cooperative(app, client, world):
    pack(app, world, at=utcnow() - timedelta(hours=3))
    shipment_id = ship(app, world, at=utcnow() - timedelta(hours=2))
    login(client, world.phones["farmer"])
    for minutes, celsius in ((90, 3.0), (80, 9.5), (70, 9.0), (60, 3.5)):
        response = post_form(
            client,
            f"/logistics/shipments/{shipment_id}/temperatures",
            {"celsius": str(celsius), "at": _local(utcnow() - timedelta(minutes=minutes))},
        )
        assert response.status_code == 303
    response = post_form(
        client,
        f"/logistics/shipments/{shipment_id}/checkpoints",
        {
            "kind": "damaged",
            "at": _local(utcnow() - timedelta(minutes=30)),
            "division_code": "440703",
            "location": "江门中转场",
            "note": "外箱压坏",
        },
    )
    assert response.status_code == 303
    page = client.get(f"/logistics/shipments/{shipment_id}").get_data(as_text=True)
    assert "冷链告警" in page
    assert "破损" in page
    with app.app_context():
        excursion = db.session.scalars(select(Excursion)).one()
        assert excursion.peak_c == 9.5
        assert excursion.notified_at is not None
        admin_kinds = db.session.scalars(
            select(Notification.kind).where(Notification.user_id == world.admin)
        ).all()
        assert sorted(admin_kinds) == ["logistics.damaged", "logistics.excursion"]
        sent = providers.sms_sender(app).sent
        assert [(phone, template) for phone, template, _ in sent][-1:] == [
            ("13700004444", "COLD_CHAIN_ALERT")
        ]


def test_a_checkpoint_in_the_future_is_marked_and_not_recorded(app, client, world):
    pack(app, world)
    shipment_id = ship(app, world)
    login(client, world.phones["admin"])
    response = post_form(
        client,
        f"/logistics/shipments/{shipment_id}/checkpoints",
        {"kind": "arrived", "at": _local(utcnow() + timedelta(days=1))},
    )
    assert response.status_code == 400
    assert "时间不能晚于现在" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Checkpoint.id))) == 0


def test_the_buyer_sees_the_journey_on_the_order_page_and_can_export_it(app, client, world):
    pack(app, world)
    ship(app, world)
    login(client, world.phones["buyer"])
    text = client.get(f"/orders/{world.order}").get_data(as_text=True)
    assert 'data-testid="journey"' in text
    assert "装入包裹" in text
    assert "SF1311029837165" in text
    with app.app_context():
        shipment_id = db.session.scalars(select(Shipment.id)).one()
    export = client.get(f"/logistics/shipments/{shipment_id}/epcis.jsonld")
    assert export.status_code == 200
    assert export.mimetype == "application/ld+json"
    validator = epcis.load_validator(app.config["EPCIS_SCHEMA_DIR"])
    assert epcis.document_errors(validator, export.get_json(force=True)) == []


def test_read_points_and_a_reader_are_registered_and_the_token_shown_once(app, client, world):
    login(client, world.phones["admin"])
    bad = post_form(
        client, "/logistics/read-points", {"name": "", "kind": "gate", "division_code": "440811"}
    )
    assert bad.status_code == 400
    response = post_form(
        client,
        "/logistics/read-points",
        {
            "name": "1号冷库 出库门",
            "kind": "gate",
            "division_code": "440811",
            "biz_step": "departing",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        point = db.session.scalars(select(ReadPoint)).one()
        point_id, sgln = point.id, point.sgln
    assert sgln in client.get("/logistics/read-points").get_data(as_text=True)
    page = post_form(
        client,
        "/logistics/readers",
        {
            "name": "出库门 R700",
            "model": "Impinj R700",
            "read_point_id": str(point_id),
            "antenna_1": "0",
            "antenna_2": str(point_id),
            "dedupe_window_s": "20",
        },
    )
    assert page.status_code == 200
    token = re.search(r'data-testid="reader-token">([^<]+)<', page.get_data(as_text=True)).group(1)
    with app.app_context():
        reader = db.session.scalars(select(Reader)).one()
        assert reader.antenna_map == {"2": str(point_id)}
        assert reader.dedupe_window_s == 20
        reader_id = reader.id
    assert token not in client.get("/logistics/readers").get_data(as_text=True)
    reads = client.post(
        f"/logistics/readers/{reader_id}/reads",
        data=impinj(["E2801160600002054E3D1A2B"], utcnow() - timedelta(minutes=1)),
        headers={**bearer(token), "Content-Type": "application/x-ndjson"},
    )
    assert reads.status_code == 202


def test_the_quarantine_lists_unknown_tags_and_records_them_once_known(app, client, world):
    parcel_id = pack(app, world, at=utcnow() - timedelta(hours=2))
    with app.app_context():
        point = services.create_read_point(
            db.session,
            cooperative_id=world.coop,
            name="门",
            kind="gate",
            division_code="440811",
            company_prefix=prefix(app),
        )
        reader, token = services.register_reader(
            db.session, cooperative_id=world.coop, name="R700", read_point_id=point.id
        )
        reader_id = reader.id
        from logistics.models import Parcel

        parcel = db.session.get(Parcel, parcel_id)
        parcel_hex, parcel_uri = parcel.epc_hex, parcel.sscc_uri
        # The tag is read before its parcel is known here (as after a crash of this table).
        parcel.sscc_uri = "urn:epc:id:sscc:6970000.9999999999"
        db.session.commit()
    client.post(
        f"/logistics/readers/{reader_id}/reads",
        data=impinj([parcel_hex, "E2801160600002054E3D1A2B"], utcnow() - timedelta(minutes=5)),
        headers={**bearer(token), "Content-Type": "application/x-ndjson"},
    )
    login(client, world.phones["admin"])
    page = client.get("/logistics/quarantine").get_data(as_text=True)
    assert parcel_uri in page
    assert "E2801160600002054E3D1A2B" in page
    with app.app_context():
        from logistics.models import Parcel

        db.session.get(Parcel, parcel_id).sscc_uri = parcel_uri
        entries = {e.epc: e.id for e in db.session.scalars(select(QuarantinedEpc))}
        db.session.commit()
    retried = post_form(client, f"/logistics/quarantine/{entries[parcel_uri]}/retry", {})
    assert retried.status_code == 303
    assert "已记录 1 次读取" in client.get(retried.headers["Location"]).get_data(as_text=True)
    still = post_form(
        client, f"/logistics/quarantine/{entries['E2801160600002054E3D1A2B']}/retry", {}
    )
    assert "还没有任何追溯码或包裹使用这个 EPC" in client.get(still.headers["Location"]).get_data(
        as_text=True
    )
    post_form(client, f"/logistics/quarantine/{entries['E2801160600002054E3D1A2B']}/dismiss", {})
    page = client.get("/logistics/quarantine").get_data(as_text=True)
    assert "没有未知标签" in page


def test_the_overview_lists_orders_to_pack_and_ship(app, client, world):
    login(client, world.phones["admin"])
    text = client.get("/logistics").get_data(as_text=True)
    assert world.order_number in text
    assert f"/logistics/orders/{world.order}/pack" in text


def test_another_cooperative_cannot_see_or_touch_the_shipment(app, client, world):
    pack(app, world)
    shipment_id = ship(app, world)
    login(client, world.phones["other_admin"])
    assert client.get(f"/logistics/shipments/{shipment_id}").status_code == 403
    response = post_form(
        client,
        f"/logistics/shipments/{shipment_id}/checkpoints",
        {"kind": "lost", "at": _local(utcnow())},
    )
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(Shipment, shipment_id).checkpoints == []


def test_the_reads_endpoint_survives_a_stored_body_json_shape(app, client, world):
    # A JSON object that is neither a read nor a wrapper is one bad item, never a 500.
    with app.app_context():
        point = services.create_read_point(
            db.session,
            cooperative_id=world.coop,
            name="门",
            kind="gate",
            division_code="440811",
            company_prefix=prefix(app),
        )
        reader, token = services.register_reader(
            db.session, cooperative_id=world.coop, name="R700", read_point_id=point.id
        )
        reader_id = reader.id
        db.session.commit()
    response = client.post(
        f"/logistics/readers/{reader_id}/reads",
        data=json.dumps({"reads": "nope"}),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_shape"
