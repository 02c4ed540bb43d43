"""At a phone's width: 供销社 staff of Jiangmen open the dashboard, see only Jiangmen's
cooperatives, drill into 新会区, and download the table as XLSX, which holds the page's
numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from market.extensions import db
from market.reports import exports, periods, rollups
from tests.browser.conftest import assert_fits_phone_width
from tests.factories import PASSWORD
from tests.reports.helpers import add_order, make_world


def sign_in(page: Page, live_server: str, phone: str) -> None:
    page.goto(live_server + "/auth/login")
    page.get_by_label("手机号码").fill(phone)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("button", name="退出")).to_be_visible()


def sales(app):
    """Sales over the last weeks in Jiangmen (新会区, 台山市) and in Qingyuan (英德市)."""
    world = make_world(app)
    today = periods.local_today()

    def at(days_ago: int, hour: int = 10) -> datetime:
        day = today - timedelta(days=days_ago)
        local = datetime.combine(day, datetime.min.time(), tzinfo=periods.SHANGHAI)
        return (local + timedelta(hours=hour)).astimezone(UTC)

    with app.app_context():
        p, u = world.products, world.users
        add_order(db.session, u["buyer_a"], [(p["peel"], 2), (p["tea"], 1)], at(1))
        add_order(db.session, u["buyer_a"], [(p["peel"], 1)], at(3), address="110000")
        add_order(db.session, u["buyer_b"], [(p["tea"], 3)], at(5), refunded_fen=3600)
        add_order(db.session, u["buyer_c"], [(p["peel"], 1)], at(8), address="330100")
        add_order(db.session, u["buyer_b"], [(p["rice"], 4)], at(2))
        add_order(db.session, u["buyer_c"], [(p["black_tea"], 5)], at(1))
        rollups.rebuild(db.session)
        db.session.commit()
    return world


def table_rows(page: Page, table_id: str) -> list[list[str]]:
    return page.locator(f"#table-{table_id}").evaluate(
        """(table) => [...table.tBodies[0].rows].map(
            (row) => [...row.cells].map((cell) => cell.innerText.trim()))"""
    )


def test_city_staff_drill_into_a_county_and_export_its_table(
    page: Page, live_server: str, app, shot, tmp_path
):
    world = sales(app)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, world.phones["staff_jiangmen"])

    page.get_by_role("navigation", name="主导航").get_by_role("link", name="数据看板").click()
    expect(page.get_by_role("heading", name="销售看板：江门市")).to_be_visible()
    expect(page.locator("[data-chart][data-drawn]")).to_have_count(7)  # map included
    counties = {row[0]: row for row in table_rows(page, "children")}
    assert counties["新会区"][1] == "¥620.00"  # 256 + 36 + 128 + 128 + (108 - 36 refunded)
    assert counties["台山市"][1] == "¥200.00"
    assert "英德市" not in counties
    expect(page.get_by_text("英德红茶合作社")).to_have_count(0)
    expect(page.get_by_text("¥495.00")).to_have_count(0)  # Qingyuan's sale
    assert_fits_phone_width(page)
    shot("city")

    page.locator("#table-children").get_by_role("link", name="新会区").click()
    expect(page.get_by_role("heading", name="销售看板：新会区")).to_be_visible()
    expect(
        page.get_by_role("navigation", name="逐级查看").get_by_role("link", name="江门市")
    ).to_be_visible()
    coops = table_rows(page, "children")
    assert [row[0] for row in coops] == ["新会陈皮合作社"]
    assert coops[0][1] == "¥620.00"
    expect(page.locator("[data-chart][data-drawn]")).to_have_count(7)
    assert_fits_phone_width(page)
    shot("county")

    tile = page.locator("section", has=page.locator("#table-children"))
    with page.expect_download() as download_info:
        tile.get_by_role("link", name="Excel (XLSX)").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    sheet = load_workbook(saved).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    headers = [cell.inner_text().strip() for cell in page.locator("#table-children thead th").all()]
    assert list(rows[0]) == headers
    assert len(rows) - 1 == len(coops)
    for xlsx_row, page_row in zip(rows[1:], coops, strict=True):
        assert xlsx_row[0] == page_row[0]
        assert Decimal(str(xlsx_row[1])).quantize(Decimal("0.01")) == Decimal(
            page_row[1].lstrip("¥").replace(",", "")
        )
        assert exports.show(exports.Pct(xlsx_row[2])) == page_row[2]
        assert [f"{xlsx_row[3]:,}", f"{xlsx_row[4]:,}"] == page_row[3:5]
        assert exports.show(exports.Fen(round(Decimal(str(xlsx_row[5])) * 100))) == page_row[5]

    page.locator("#table-children").get_by_role("link", name="新会陈皮合作社").click()
    expect(page.get_by_role("heading", name="销售看板：新会陈皮合作社")).to_be_visible()
    products = {row[0]: row[1] for row in table_rows(page, "children")}
    assert products == {"新会陈皮": "¥512.00", "柑普茶": "¥108.00"}
    assert_fits_phone_width(page)
    shot("cooperative")
    assert errors == []


def test_the_monthly_report_prints_on_a_page(page: Page, live_server: str, app, shot):
    world = sales(app)
    sign_in(page, live_server, world.phones["platform"])
    month = (periods.local_today() - timedelta(days=1)).strftime("%Y-%m")
    page.goto(f"{live_server}/reports/monthly?month={month}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("销售与信息化情况")
    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="打印")).to_be_hidden()
    expect(page.locator("header.top")).to_be_hidden()
    shot("print")
