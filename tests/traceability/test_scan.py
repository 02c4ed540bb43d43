"""The resolver and the public scan page."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from market.extensions import db
from market.types import utcnow
from tests.conftest import login
from tests.traceability.conftest import ADMIN_PHONE, BUYER_PHONE
from traceability import codes, config, services
from traceability.models import Batch, CodeKind, ScanRecord, TraceCode


def _issue(app, batch_id: int, count: int = 1) -> list[TraceCode]:
    with app.app_context():
        services.issue_codes(db.session, batch_id, count, company_prefix="6970000", max_count=1000)
        db.session.commit()
        rows = services.unit_codes(db.session, batch_id)
        db.session.expunge_all()
        return rows


def _link(app, code: TraceCode, lot: str) -> str:
    with app.app_context():
        url = services.code_link(app.config["PUBLIC_BASE_URL"], config.tag_secret(app), code, lot)
    return url


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def test_a_unit_code_opens_its_scan_page(app, world, client):
    code = _issue(app, world.batch)[0]
    url = _link(app, code, world.lot)
    assert url.startswith(f"http://yuenong.test/01/{world.gtin}/10/{world.lot}/21/{code.serial}?s=")
    response = client.get(_path(url))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for text in (
        "新会陈皮（三年陈）",
        "新会区会城陈皮专业合作社",
        world.lot,
        "承诺达标合格证",
        "广东省江门市新会区会城街道茶坑村",
        "地理标志",
        "这是此码第一次被查询。",
        code.serial,
        'data-testid="timeline"',
    ):
        assert text in page, text
    assert "标签可能" not in page
    assert response.headers["Cache-Control"] == "private, no-store"


def test_scans_are_counted_and_shown(app, world, client):
    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))
    client.get(path)
    page = client.get(path).get_data(as_text=True)
    assert "已被查询 2 次" in page
    with app.app_context():
        row = db.session.get(TraceCode, code.id)
        assert (row.scan_count, row.visitor_count) == (2, 1)
        record = db.session.scalars(select(ScanRecord)).one()
        assert record.tag_status == "ok"
        assert "127.0.0.1" not in record.visitor_key


def test_the_batch_code_opens_the_batch_record(app, world, client):
    with app.app_context():
        code = services.batch_code(db.session, world.batch)
        url = services.code_link(
            app.config["PUBLIC_BASE_URL"], config.tag_secret(app), code, world.lot
        )
    assert "/21/" not in url
    response = client.get(_path(url))
    assert response.status_code == 200
    assert "批次码" in response.get_data(as_text=True)


def test_a_missing_or_wrong_tag_shows_a_warning(app, world, client):
    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))
    bare = path.split("?")[0]
    page = client.get(bare).get_data(as_text=True)
    assert 'data-testid="tag-warning"' in page
    assert "没有防伪校验码" in page
    wrong = client.get(bare + "?s=aaaaaaaa")
    assert wrong.status_code == 200
    assert "防伪校验码与此码不符" in wrong.get_data(as_text=True)
    with app.app_context():
        statuses = {r.tag_status for r in db.session.scalars(select(ScanRecord))}
    assert statuses == {"missing"}  # one visitor-day: the first scan's tag status is kept


@pytest.mark.parametrize(
    "path",
    [
        "/01/{gtin}/10/{lot}/21/99999999999?s=abcdefgh",  # never issued
        "/01/{gtin}/10/ZZ9999A/21/{serial}",  # wrong lot for that serial
        "/01/{bad_gtin}/10/{lot}/21/{serial}",  # check digit
        "/01/{gtin}/21/{serial}/10/{lot}",  # qualifiers out of order
        "/01/{gtin}/10/{lot}/21/{serial}/",  # trailing slash
        "/01/{gtin}/10/{lot}/10/{lot}",  # duplicate AI
        "/01/{gtin}/10/%E9%99%88%E7%9A%AE",  # Chinese lot
        "/01/{gtin}/10/{lot}?17=261399",  # month 13
        "/01/{gtin}/10/{lot}?21=5",  # qualifier in the query string
        "/01/{gtin}",  # no batch
        "/01/{gtin}/22/ABC/10/{lot}",  # a CPV we never issue
        "/01/123/10/{lot}",  # short GTIN
        "/01/{gtin}/10/" + "A" * 21,  # lot too long
        "/01/{gtin}/99/x",  # unknown AI
        "/01/{gtin}/10/{lot}/21/%FF",  # not UTF-8
        "/01/{gtin}/10/{lot}/21/a%2Fb",  # escaped slash in a serial
        "/01/",
        "/01/x/y/z",
    ],
)
def test_malformed_and_never_issued_codes_are_not_recognised(app, world, client, path):
    code = _issue(app, world.batch)[0]
    bad_gtin = world.gtin[:-1] + str((int(world.gtin[-1]) + 1) % 10)
    target = path.format(gtin=world.gtin, lot=world.lot, serial=code.serial, bad_gtin=bad_gtin)
    response = client.get(target)
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "无法识别此码——可能不是正品" in page
    assert 'data-testid="not-recognised"' in page
    with app.app_context():
        assert db.session.get(TraceCode, code.id).scan_count == 0


def test_an_rfid_epc_opens_the_same_record(app, world, client):
    code = _issue(app, world.batch)[0]
    for epc in (
        code.epc_hex,
        code.epc_hex.lower(),
        codes.sgtin_pure_uri("6970000", world.gtin, code.serial),
        codes.sgtin96_tag_uri("6970000", world.gtin, code.serial),
    ):
        response = client.get(f"/epc/{epc}")
        assert response.status_code == 200, epc
        page = response.get_data(as_text=True)
        assert code.serial in page
        assert "读取自 RFID 标签" in page
    for bad in ("3074257BF7194E4000001A85", "zz", "urn:epc:id:sscc:0614141.1234567890"):
        assert client.get(f"/epc/{bad}").status_code == 404


def test_a_code_scanned_in_many_places_is_flagged_as_copied(app, world, client):
    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))
    for address, city in (("10.0.0.1", "440100"), ("10.0.0.2", "440300"), ("10.0.0.3", "北京市")):
        page = client.get(
            path, environ_base={"REMOTE_ADDR": address}, headers={"X-Geo-City": city}
        ).get_data(as_text=True)
    assert 'data-testid="copy-warning"' in page
    assert "广州市、深圳市、北京市" in page


def test_a_code_scanned_by_many_visitors_is_flagged(app, world, client):
    app.config["TRACE_SCAN_ALERT_VISITORS"] = 3
    try:
        code = _issue(app, world.batch)[0]
        path = _path(_link(app, code, world.lot))
        pages = [
            client.get(path, environ_base={"REMOTE_ADDR": f"10.0.1.{i}"}).get_data(as_text=True)
            for i in range(3)
        ]
    finally:
        app.config["TRACE_SCAN_ALERT_VISITORS"] = 10
    assert 'data-testid="copy-warning"' not in pages[1]
    assert 'data-testid="copy-warning"' in pages[2]


def test_the_batch_code_is_never_flagged_for_many_scans(app, world, client):
    with app.app_context():
        code = services.batch_code(db.session, world.batch)
        url = services.code_link(
            app.config["PUBLIC_BASE_URL"], config.tag_secret(app), code, world.lot
        )
    for i in range(4):
        page = client.get(
            _path(url),
            environ_base={"REMOTE_ADDR": f"10.0.2.{i}"},
            headers={"X-Geo-City": str(440100 + i * 100)},
        ).get_data(as_text=True)
    assert 'data-testid="copy-warning"' not in page


def test_the_cooperatives_own_scans_are_not_counted(app, world, client):
    code = _issue(app, world.batch)[0]
    login(client, ADMIN_PHONE)
    page = client.get(_path(_link(app, code, world.lot))).get_data(as_text=True)
    assert "您自己的查询不计入次数" in page
    with app.app_context():
        assert db.session.get(TraceCode, code.id).scan_count == 0


def test_a_buyers_scan_counts(app, world, client):
    code = _issue(app, world.batch)[0]
    login(client, BUYER_PHONE)
    client.get(_path(_link(app, code, world.lot)))
    with app.app_context():
        assert db.session.get(TraceCode, code.id).scan_count == 1


def test_new_events_show_at_once_despite_the_page_cache(app, world, client):
    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))
    assert "顺丰冷链" not in client.get(path).get_data(as_text=True)
    with app.app_context():
        services.record_ui_event(
            db.session,
            world.batch,
            "shipping",
            when=utcnow() - timedelta(minutes=1),
            user_id=None,
            company_prefix="6970000",
            note="顺丰冷链",
            temperature_c=3.5,
        )
        db.session.commit()
    page = client.get(path).get_data(as_text=True)
    assert "顺丰冷链" in page
    assert "已发货" in page
    assert "3.5 °C" in page


def test_a_recalled_batch_says_so_on_the_scan_page(app, world, client):
    code = _issue(app, world.batch)[0]
    with app.app_context():
        services.record_ui_event(
            db.session, world.batch, "recall", when=utcnow(), user_id=None, company_prefix="6970000"
        )
        db.session.commit()
    page = client.get(_path(_link(app, code, world.lot))).get_data(as_text=True)
    assert 'data-testid="recall-warning"' in page


def test_the_scan_page_lists_inputs_and_inspections(app, world, client):
    code = _issue(app, world.batch)[0]
    with app.app_context():
        batch = db.session.get(Batch, world.batch)
        services.add_input(
            db.session,
            batch.id,
            kind=services.InputKind.FERTILISER,
            name="腐熟花生麸",
            used_on=batch.harvest_date - timedelta(days=60),
            amount="每株 2 公斤",
        )
        services.add_inspection(
            db.session,
            batch.id,
            kind=services.InspectionKind.LAB,
            tested_on=batch.harvest_date,
            items="农药残留 62 项",
            result=services.InspectionResult.PASS,
            agency="江门市农产品质量安全检测中心",
            report_no="JM2026-0815",
            company_prefix="6970000",
        )
        db.session.commit()
    page = client.get(_path(_link(app, code, world.lot))).get_data(as_text=True)
    for text in (
        "腐熟花生麸",
        "每株 2 公斤",
        "肥料",
        "农药残留 62 项",
        "合格",
        "委托检测",
        "已检测",
    ):
        assert text in page, text


def test_the_resolver_is_rate_limited_generously(app, world, client):
    app.config["PUBLIC_RATE_LIMIT"] = "3 per minute"
    try:
        statuses = [client.get("/01/x").status_code for _ in range(4)]
    finally:
        app.config["PUBLIC_RATE_LIMIT"] = "120 per minute"
    assert statuses == [404, 404, 404, 429]


def test_the_unit_code_kind_is_a_unit(app, world):
    code = _issue(app, world.batch)[0]
    assert code.kind is CodeKind.UNIT


def test_a_change_to_a_source_batch_shows_on_the_processed_batchs_page(app, world, client):
    from tests.traceability.conftest import make_batch

    with app.app_context():
        peel = make_batch(app, world.coop, world.product, name="陈皮", quantity=50)
        services.record_ui_event(
            db.session,
            peel.id,
            "processing",
            when=utcnow() - timedelta(hours=1),
            user_id=None,
            company_prefix="6970000",
            source_batch_id=world.batch,
        )
        db.session.commit()
        peel_id, peel_lot = peel.id, peel.lot_code
    code = _issue(app, peel_id)[0]
    path = _path(_link(app, code, peel_lot))
    assert "石灰硫磺合剂" not in client.get(path).get_data(as_text=True)
    with app.app_context():
        services.add_input(
            db.session,
            world.batch,
            kind=services.InputKind.PESTICIDE,
            name="石灰硫磺合剂",
            used_on=services.today_shanghai() - timedelta(days=30),
        )
        db.session.commit()
    page = client.get(path).get_data(as_text=True)
    assert "石灰硫磺合剂" in page
    assert f"来自批次 {world.lot}" in page


def test_the_cached_page_is_filled_in_for_each_code_and_visitor(app, world, client):
    first, second = _issue(app, world.batch, 2)
    for code in (first, second, first):
        path = _path(_link(app, code, world.lot))
        response = client.get(path)
        assert "Set-Cookie" not in response.headers
        page = response.get_data(as_text=True)
        assert code.serial in page
        other = second if code is first else first
        assert other.serial not in page
        assert f"/lang/en?next={path.replace('?s=', '?s%3D')}" in page
        assert "yn-csrf-hole" not in page
        assert "yn-path-hole" not in page
        assert "<!--yn:verify-->" not in page
        # Nothing on the page posts, so a scanner gets no session cookie.
        assert '<meta name="csrf-token" content="">' in page


@pytest.mark.parametrize(
    "path",
    ["/01/06970000000017/10/XH2611A/21/5?s=ab%2Fc", "/01/x?s=a b&c=d#e", "/01/%E9%99%88?s=é"],
)
def test_the_page_path_is_encoded_as_url_for_encodes_it(app, path):
    from flask import url_for

    from traceability.views import _encoded_next

    with app.test_request_context("/"):
        expected = url_for("core.set_language", code="en", next=path).partition("next=")[2]
        assert _encoded_next(path) == expected


def test_a_visitor_with_a_session_gets_the_page_rendered_in_full(app, world, client):
    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))
    client.get(path)  # the cached shell exists now
    with client.session_transaction() as session:
        session["something_of_theirs"] = "kept"
    page = client.get(path).get_data(as_text=True)
    token = page.split('<meta name="csrf-token" content="')[1].split('"')[0]
    assert len(token) > 20
    assert code.serial in page
    assert "已被查询 2 次" in page
