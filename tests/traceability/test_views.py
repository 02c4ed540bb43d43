"""Batch, input, inspection, event, code and token pages of a cooperative."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from market.catalog.models import Product
from market.extensions import db
from tests.conftest import login, post_form
from tests.traceability.conftest import (
    ADMIN_PHONE,
    BUYER_PHONE,
    FARMER_PHONE,
    OTHER_ADMIN_PHONE,
    PLATFORM_PHONE,
    STAFF_IN_PHONE,
    STAFF_OUT_PHONE,
    days_ago,
)
from traceability import services
from traceability.models import (
    ApiToken,
    Batch,
    BatchInput,
    Inspection,
    TraceCode,
    TraceEvent,
)


def _batch_form(world, **changes) -> dict:
    data = {
        "product_id": str(world.product),
        "name": "十一月大红柑第二批",
        "harvest_date": days_ago(3).isoformat(),
        "quantity": "800",
        "unit": "公斤",
        "variety": "大红柑",
        "origin_kind": "orchard",
        "origin_code": "440705",
        "origin_village": "会城街道茶坑村",
        "origin_site": "5号果园",
        "method": "",
        "notes": "",
        "cert_basis": ["self_test"],
        "cert_contact": "",
        "lot_prefix": "",
    }
    data.update(changes)
    return data


def test_a_farmer_records_a_batch_with_its_certificate(app, world, client):
    login(client, FARMER_PHONE)
    form = client.get("/trace/batches/new").get_data(as_text=True)
    assert "承诺达标合格证" in form
    assert 'selected value="440705"' in form
    response = post_form(client, "/trace/batches/new", _batch_form(world))
    assert response.status_code == 303
    with app.app_context():
        batch = db.session.scalars(select(Batch).where(Batch.name == "十一月大红柑第二批")).one()
        assert batch.lot_code == f"XH{days_ago(3):%y%m}B"
        assert batch.created_by_id == world.farmer
        assert batch.cert_basis == ["self_test"]
        batch_id = batch.id
    assert response.headers["Location"] == f"/trace/batches/{batch_id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已登记批次" in page
    assert "800 公斤" in page
    assert "采收/生产" in page


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "lots"}, "quantity"),
        ({"harvest_date": days_ago(-3).isoformat()}, "harvest_date"),
        ({"origin_code": "110101"}, "origin_code"),
        ({"name": ""}, "name"),
        ({"lot_prefix": "QY1"}, "lot_prefix"),
        ({"cert_basis": ["magic"]}, "cert_basis"),
    ],
)
def test_a_bad_batch_form_is_shown_again_and_nothing_is_stored(app, world, client, change, field):
    login(client, ADMIN_PHONE)
    response = post_form(client, "/trace/batches/new", _batch_form(world, **change))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'class="error"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count(Batch.id))) == 1


def test_a_batch_cannot_be_recorded_for_another_cooperatives_product(app, world, client):
    login(client, ADMIN_PHONE)
    response = post_form(
        client, "/trace/batches/new", _batch_form(world, product_id=str(world.other_product))
    )
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count(Batch.id))) == 1


@pytest.mark.parametrize(
    ("phone", "status"),
    [
        (BUYER_PHONE, 403),
        (OTHER_ADMIN_PHONE, 403),
        (STAFF_OUT_PHONE, 403),
        (STAFF_IN_PHONE, 200),
        (PLATFORM_PHONE, 200),
        (FARMER_PHONE, 200),
    ],
)
def test_who_may_see_a_batch_behind_the_scenes(app, world, client, phone, status):
    login(client, phone)
    assert client.get(f"/trace/batches/{world.batch}").status_code == status


def test_staff_may_look_but_not_change(app, world, client):
    login(client, STAFF_IN_PHONE)
    page = client.get(f"/trace/batches/{world.batch}").get_data(as_text=True)
    assert "生成追溯码" not in page
    response = post_form(client, f"/trace/batches/{world.batch}/codes", {"count": "3"})
    assert response.status_code == 403
    listing = client.get("/trace/batches").get_data(as_text=True)
    assert world.lot in listing


def test_the_batch_list_shows_only_the_users_cooperative(app, world, client):
    login(client, OTHER_ADMIN_PHONE)
    assert world.lot not in client.get("/trace/batches").get_data(as_text=True)
    post_form(client, "/auth/logout", {})
    login(client, ADMIN_PHONE)
    assert world.lot in client.get("/trace/batches").get_data(as_text=True)


def test_issuing_codes_and_listing_them(app, world, client):
    login(client, ADMIN_PHONE)
    response = post_form(client, f"/trace/batches/{world.batch}/codes", {"count": "12"})
    assert response.status_code == 303
    page = client.get(f"/trace/batches/{world.batch}").get_data(as_text=True)
    assert "已生成 12 个单品码" in page
    listing = client.get(f"/trace/batches/{world.batch}/codes?issue=1").get_data(as_text=True)
    with app.app_context():
        codes = services.unit_codes(db.session, world.batch)
    assert len(codes) == 12
    assert all(c.serial in listing and c.epc_hex in listing for c in codes)
    bad = post_form(client, f"/trace/batches/{world.batch}/codes", {"count": "0"})
    assert bad.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(func.count(TraceCode.id))) == 13  # + the batch code


def test_recording_a_farm_input(app, world, client):
    login(client, FARMER_PHONE)
    path = f"/trace/batches/{world.batch}/inputs/new"
    assert client.get(path).status_code == 200
    response = post_form(
        client,
        path,
        {
            "kind": "pesticide",
            "name": "阿维菌素 1.8% 乳油",
            "amount": "每亩 40 毫升",
            "used_on": days_ago(40).isoformat(),
            "safety_days": "14",
            "notes": "",
        },
    )
    assert response.status_code == 303
    future = post_form(
        client,
        path,
        {"kind": "feed", "name": "饲料", "used_on": days_ago(-5).isoformat(), "safety_days": ""},
    )
    assert future.status_code == 400
    assert "日期不能晚于今天" in future.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalars(select(BatchInput)).one()
        assert (row.name, row.safety_days) == ("阿维菌素 1.8% 乳油", 14)


def test_recording_an_inspection_with_a_pdf_report(app, world, client):
    login(client, ADMIN_PHONE)
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    response = post_form(
        client,
        f"/trace/batches/{world.batch}/inspections/new",
        {
            "kind": "lab",
            "tested_on": days_ago(2).isoformat(),
            "items": "农药残留 62 项",
            "result": "pass",
            "agency": "江门市农产品质量安全检测中心",
            "report_no": "JM-0815",
            "report": (io.BytesIO(pdf), "report.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    with app.app_context():
        row = db.session.scalars(select(Inspection)).one()
        assert row.report_file.endswith(".pdf")
        events = db.session.scalars(
            select(TraceEvent).where(TraceEvent.biz_step == "inspecting")
        ).all()
        assert [e.disposition for e in events] == ["conformant"]
    with client.get(f"/trace/reports/{row.report_file}") as report:
        assert report.status_code == 200
        assert report.data == pdf
        assert report.headers["Content-Security-Policy"] == "sandbox"
    assert client.get("/trace/reports/../../etc/passwd").status_code == 404
    assert client.get("/trace/reports/" + "a" * 64 + ".exe").status_code == 404


def test_an_upload_that_is_neither_pdf_nor_photo_is_refused(app, world, client):
    login(client, ADMIN_PHONE)
    response = post_form(
        client,
        f"/trace/batches/{world.batch}/inspections/new",
        {
            "kind": "self_test",
            "tested_on": days_ago(1).isoformat(),
            "items": "速测",
            "result": "pass",
            "report": (io.BytesIO(b"MZ\x90\x00 not a pdf"), "report.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalars(select(Inspection)).first() is None


def test_recording_events_from_the_event_page(app, world, client):
    login(client, FARMER_PHONE)
    path = f"/trace/batches/{world.batch}/events/new"
    page = client.get(path + "?kind=storing").get_data(as_text=True)
    assert 'selected value="storing"' in page
    when = (services.utcnow() + timedelta(hours=8) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = post_form(
        client,
        path,
        {
            "kind": "storing",
            "when": when,
            "place_code": "440703",
            "note": "入冷库",
            "temperature_c": "4.5",
            "humidity_pct": "",
            "source_batch_id": "0",
            "source_quantity": "",
            "pack_units": "",
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    missing_reading = post_form(
        client,
        path,
        {"kind": "sensor", "when": when, "place_code": "", "source_batch_id": "0"},
    )
    assert missing_reading.status_code == 400
    with app.app_context():
        event = db.session.scalars(select(TraceEvent).where(TraceEvent.biz_step == "storing")).one()
        assert event.source == "ui"
        assert event.recorded_by_id == world.farmer
        assert '"yn:placeCode":"440703"' in event.document
    page = client.get(f"/trace/batches/{world.batch}").get_data(as_text=True)
    assert "入冷库" in page
    assert "4.5 °C" in page
    assert "蓬江区" in page


def test_putting_stock_on_sale(app, world, client):
    login(client, ADMIN_PHONE)
    response = post_form(client, f"/trace/batches/{world.batch}/stock", {"units": "30"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Product, world.product).stock == 30


def test_editing_a_batch_until_labels_are_printed(app, world, client):
    login(client, ADMIN_PHONE)
    path = f"/trace/batches/{world.batch}/edit"
    form = {
        "name": "改过名字的批次",
        "variety": "大红柑",
        "origin_kind": "orchard",
        "origin_code": "440705",
        "origin_village": "会城街道天马村",
        "origin_site": "",
        "method": "",
        "notes": "",
        "cert_basis": ["internal_control"],
        "cert_contact": "",
    }
    assert post_form(client, path, form).status_code == 303
    with app.app_context():
        batch = db.session.get(Batch, world.batch)
        assert batch.name == "改过名字的批次"
        assert batch.cert_origin.endswith("天马村")
    post_form(
        client,
        f"/trace/batches/{world.batch}/labels",
        {"layout": "40x30", "kind": "batch", "issue_no": "0", "copies": "1"},
    )
    refused = post_form(client, path, {**form, "name": "再改"})
    assert refused.status_code == 400
    assert "标签已打印" in refused.get_data(as_text=True)


def test_minting_and_revoking_a_cooperative_token(app, world, client):
    login(client, ADMIN_PHONE)
    response = post_form(
        client, "/trace/tokens", {"name": "冷库读写器", "scopes": ["capture", "query"]}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    start = page.index('data-testid="new-token">') + len('data-testid="new-token">')
    token = page[start : page.index("<", start)]
    assert token.startswith("yn_")
    with app.app_context():
        row = db.session.scalars(select(ApiToken)).one()
        assert row.cooperative_id == world.coop
        assert token not in (row.token_hash, row.prefix)
        token_id = row.id
    assert (
        client.get("/epcis/events", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    assert post_form(client, f"/trace/tokens/{token_id}/revoke", {}).status_code == 303
    assert (
        client.get("/epcis/events", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    empty = post_form(client, "/trace/tokens", {"name": "x"})
    assert empty.status_code == 400


def test_a_farmer_cannot_mint_tokens(app, world, client):
    login(client, FARMER_PHONE)
    assert client.get("/trace/tokens").status_code == 403


def test_another_cooperative_cannot_revoke_a_token(app, world, client):
    with app.app_context():
        token, _plain = services.create_token(
            db.session, name="x", scopes=["query"], cooperative_id=world.coop, user_id=None
        )
        db.session.commit()
        token_id = token.id
    login(client, OTHER_ADMIN_PHONE)
    assert post_form(client, f"/trace/tokens/{token_id}/revoke", {}).status_code == 403


def test_platform_admins_mint_platform_wide_tokens(app, world, client):
    login(client, PLATFORM_PHONE)
    response = post_form(client, "/trace/tokens", {"name": "省平台", "scopes": ["query"]})
    assert response.status_code == 200
    with app.app_context():
        assert db.session.scalars(select(ApiToken)).one().cooperative_id is None
