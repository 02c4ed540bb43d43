"""At a phone's width: the farmer packs by scanning codes, the admin ships (a waybill of
the wrong shape is marked in Chinese), and once the parcel has passed three RFID gates,
warmed up for a while and been delivered, the buyer's order page and the unit's scan page
show its journey."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect
from sqlalchemy import select

from logistics import journey, providers, services
from logistics.models import Parcel, Shipment
from market.auth.models import User
from market.extensions import db
from market.orders import services as orders
from market.types import utcnow
from tests.browser.conftest import assert_fits_phone_width
from tests.browser.test_orders import sign_in
from tests.logistics.helpers import bearer, gates, impinj, make_world, prefix
from tests.orders.helpers import ADDRESS
from traceability import config as trace_config
from traceability import services as trace
from traceability.models import TraceCode


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="退出").click()


def _travelled(app, world) -> tuple[int, str]:
    """A second order of the buyer, packed and shipped this morning, read at three gates,
    too warm for a while, and delivered. Returns (order id, the unit's scan path)."""
    start = utcnow() - timedelta(hours=6)
    with app.app_context():
        [order] = orders.place_orders(
            db.session, world.buyer, [orders.LineRequest(world.product, 1, 8800)], ADDRESS
        )
        orders.transition(db.session, order, "pay")
        order_id, line_id = order.id, order.lines[0].id
        services.pack_order(
            db.session,
            order_id,
            db.session.get(User, world.farmer),
            [services.LineAssignment(line_id, codes=[world.epcs[2]])],
            company_prefix=prefix(app),
            now=start - timedelta(minutes=20),
        )
        services.create_shipment(
            db.session,
            order_id,
            carrier_code="JD",
            waybill="JDVA20481563207",
            actor_id=world.admin,
            company_prefix=prefix(app),
            now=start,
        )
        parcel = db.session.scalars(select(Parcel).where(Parcel.order_id == order_id)).one()
        parcel_hex = parcel.epc_hex
        shipment = db.session.scalars(select(Shipment).where(Shipment.order_id == order_id)).one()
        waybill = shipment.waybill
        code = db.session.scalars(select(TraceCode).where(TraceCode.epc_hex == world.epcs[2])).one()
        link = trace.code_link(
            app.config["PUBLIC_BASE_URL"], trace_config.tag_secret(app), code, world.lot
        )
        db.session.commit()
    client = app.test_client()
    for number, (_point, reader, token) in enumerate(gates(app, world)):
        tags = [parcel_hex, world.epcs[2]] + (["E2801160600002054E3D1A2B"] if number else [])
        response = client.post(
            f"/logistics/readers/{reader}/reads",
            data=impinj(tags, start + timedelta(hours=1 + number)),
            headers={**bearer(token), "Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 202
        if number == 0:
            logger = (reader, token)
    readings = [
        {
            "epc": parcel_hex,
            "time": (start + timedelta(minutes=30 * i + 10)).isoformat(),
            "celsius": c,
        }
        for i, c in enumerate([2.8, 3.1, 3.4, 7.9, 8.6, 3.5, 3.0, 2.9])
    ]
    client.post(
        f"/logistics/readers/{logger[0]}/temperatures",
        json={"sensor": "LOGGER-07", "readings": readings},
        headers=bearer(logger[1]),
    )
    with app.app_context():
        carrier = providers.tracking_provider(app)
        steps = carrier.generate("JD", waybill, start, outcome="delivered")
        # The carrier's own steps, squeezed between the gates into the last hours.
        factor = 5.5 * 3600 / (steps[-1].at - steps[0].at).total_seconds()
        squeezed = [
            replace(u, at=start + timedelta(minutes=15) + (u.at - start) * factor) for u in steps
        ]
        body, headers = carrier.push_request("JD", squeezed)
    assert client.post("/logistics/carriers/JD/push", data=body, headers=headers).status_code == 200
    parts = urlsplit(link)
    return order_id, parts.path + "?" + parts.query


def test_packing_shipping_and_the_journey_at_a_phone_width(page: Page, live_server: str, app, shot):
    journey.CACHE.clear()
    world = make_world(app, units=4, quantity=2)

    # The farmer packs by scanning (typing) two RFID codes.
    sign_in(page, live_server, world.phones["farmer"])
    page.goto(f"{live_server}/logistics")
    expect(page.get_by_role("heading", name="物流")).to_be_visible()
    assert_fits_phone_width(page)
    shot("overview")
    page.get_by_role("link", name="打包", exact=True).first.click()
    expect(page.get_by_role("heading", name="订单打包")).to_be_visible()
    page.get_by_label("单品码（扫码或输入，每行一个）").fill(world.epcs[0])
    page.get_by_role("button", name="装入包裹").click()
    expect(page.get_by_text("扫码件数加批次数量必须等于订购数量。").first).to_be_visible()
    assert_fits_phone_width(page)
    shot("pack-error")
    page.get_by_label("单品码（扫码或输入，每行一个）").fill("\n".join(world.epcs[:2]))
    page.get_by_role("button", name="装入包裹").click()
    expect(page.get_by_text("已装入包裹 (00) 1 6970000")).to_be_visible()
    _sign_out(page)

    # The admin ships it; a waybill of another carrier's shape is marked first.
    sign_in(page, live_server, world.phones["admin"])
    page.goto(f"{live_server}/orders/{world.order}")
    page.get_by_role("link", name="发货：填写运单号").click()
    page.get_by_label("承运商").select_option(label="顺丰速运")
    page.get_by_label("运单号").fill("YT7523618490215")
    page.get_by_role("button", name="交给承运商").click()
    expect(page.get_by_text("这不是顺丰速运的运单号（格式如 SF1311029837165）。")).to_be_visible()
    expect(page.get_by_label("运单号")).to_have_attribute("aria-invalid", "true")
    assert_fits_phone_width(page)
    shot("waybill-error")
    page.get_by_label("运单号").fill("SF1311029837165")
    page.get_by_role("button", name="交给承运商").click()
    expect(page.get_by_text("已发货，已通知买家。")).to_be_visible()
    expect(page.get_by_text("SF1311029837165", exact=True)).to_be_visible()
    assert_fits_phone_width(page)
    shot("shipment")

    order_id, scan_path = _travelled(app, world)
    page.goto(f"{live_server}/logistics/quarantine")
    expect(page.get_by_text("E2801160600002054E3D1A2B")).to_be_visible()
    assert_fits_phone_width(page)
    shot("quarantine")
    page.goto(f"{live_server}/logistics/readers")
    assert_fits_phone_width(page)
    shot("readers")
    _sign_out(page)

    # The buyer's order page shows the parcel's journey, delivery last.
    sign_in(page, live_server, world.phones["buyer"])
    page.goto(f"{live_server}/orders/{order_id}")
    steps = page.get_by_test_id("journey").locator("li")
    expect(steps.first).to_contain_text("采收")
    expect(steps.last).to_contain_text("已送达")
    expect(page.get_by_test_id("journey")).to_contain_text("江门冷链中转仓 入口")
    expect(page.get_by_test_id("journey")).to_contain_text("温度超出范围")
    expect(page.get_by_test_id("journey")).to_contain_text("JDVA20481563207")
    assert_fits_phone_width(page)
    shot("order-journey")
    _sign_out(page)

    # Anyone scanning the unit's QR code sees the journey on the scan page.
    journey.CACHE.clear()
    page.goto(live_server + scan_path)
    section = page.get_by_test_id("journey")
    expect(section).to_be_visible()
    expect(section.locator("li").last).to_contain_text("已送达")
    expect(section).to_contain_text("广州城配中心 入口")
    expect(section).not_to_contain_text("JDVA20481563207")
    # The batch-only timeline of the record is not shown twice beside the journey.
    expect(page.locator("#timeline")).to_be_hidden()
    assert_fits_phone_width(page)
    shot("scan-journey")
