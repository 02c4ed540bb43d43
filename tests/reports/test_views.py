"""Dashboard pages, their exports and the printable monthly report."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from market.extensions import db
from market.reports import periods, rollups
from tests.conftest import login
from tests.reports.helpers import add_order, make_world


@pytest.fixture
def world(app):
    """Sales yesterday in Jiangmen (新会, 台山) and Qingyuan (英德)."""
    w = make_world(app)
    yesterday = periods.local_today() - timedelta(days=1)
    at = datetime.combine(yesterday, datetime.min.time(), tzinfo=periods.SHANGHAI).astimezone(
        UTC
    ) + timedelta(hours=3)
    with app.app_context():
        p = w.products
        add_order(db.session, w.users["buyer_a"], [(p["peel"], 2)], at)  # 25600
        add_order(db.session, w.users["buyer_b"], [(p["rice"], 1)], at, address="110000")  # 5000
        add_order(db.session, w.users["buyer_c"], [(p["black_tea"], 1)], at)  # 9900
        rollups.rebuild(db.session)
        db.session.commit()
    return w


def signed_in(app, world, key):
    client = app.test_client()
    login(client, world.phones[key])
    return client


def test_city_staff_see_their_cooperatives_and_not_the_others(app, world):
    client = signed_in(app, world, "staff_jiangmen")
    page = client.get("/reports")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "江门市" in html
    assert "¥306.00" in html  # 256 + 50
    assert "英德" not in html
    assert "¥99.00" not in html
    county = client.get("/reports?area=440705").get_data(as_text=True)
    assert "新会陈皮合作社" in county
    assert "台山大米合作社" not in county


@pytest.mark.parametrize(
    ("key", "query", "status"),
    [
        ("staff_jiangmen", "?area=441800", 403),
        ("staff_jiangmen", "?area=440000", 403),
        ("staff_xinhui", "?area=440700", 403),
        ("admin_xinhui", "?area=440705", 403),
        ("platform", "?area=449999", 404),
        ("platform", "?area=abc", 404),
        ("platform", "?coop=x1", 404),
        ("platform", "?coop=999999", 404),
        ("buyer_a", "", 403),
        ("farmer_xinhui", "", 403),
    ],
)
def test_places_outside_ones_scope_are_refused(app, world, key, query, status):
    client = signed_in(app, world, key)
    assert client.get("/reports" + query).status_code == status
    assert client.get("/reports/export/children.csv" + query).status_code == status


def test_a_visitor_is_sent_to_sign_in(client, world):
    response = client.get("/reports")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?from=2026-13-01", "from"),
        ("?from=2026-10-31&to=2026-10-01", "to"),
        ("?by=quarter", "by"),
    ],
)
def test_a_bad_range_is_a_400_with_the_field_marked(app, world, query, field):
    client = signed_in(app, world, "platform")
    response = client.get("/reports" + query)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html
    if field != "by":
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html)
    assert client.get("/reports/export/children.csv" + query).status_code == 400


def test_echarts_is_loaded_deferred_on_dashboards_only(app, world):
    client = signed_in(app, world, "platform")
    html = client.get("/reports").get_data(as_text=True)
    assert re.search(r'<script defer src="/static/vendor/echarts/echarts\.min\.js', html)
    assert re.search(r'<script defer src="/static/js/reports\.js', html)
    for path in ("/", "/reports/monthly", "/products"):
        assert "echarts" not in client.get(path).get_data(as_text=True)


def test_the_charts_are_drawn_from_json_with_the_tables_numbers(app, world):
    client = signed_in(app, world, "platform")
    html = client.get("/reports").get_data(as_text=True)
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1))
    assert {d["name"]: d["value"] for d in data["map"] if d["value"]} == {
        "440700": 306.0,
        "441800": 99.0,
    }
    assert data["mapUrl"] == "/static/vendor/maps/guangdong.json"
    assert sum(data["trend"]["gmv"]) == pytest.approx(405.0)
    assert html.count('aria-hidden="true"') >= 6  # the charts; the tables are the source


def _csv(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_any_table_downloads_as_csv_with_a_bom(app, world):
    client = signed_in(app, world, "staff_jiangmen")
    response = client.get("/reports/export/children.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment;" in response.headers["Content-Disposition"]
    assert ".csv" in response.headers["Content-Disposition"]
    rows = _csv(response)
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["新会区"][1] == "256.00"
    assert by_name["台山市"][1] == "50.00"
    assert by_name["新会区"][2] == "83.7%"
    destinations = _csv(client.get("/reports/export/destinations.csv"))
    assert {row[0] for row in destinations[1:]} == {"广东省", "北京市"}


def test_any_table_downloads_as_xlsx_with_numbers_as_numbers(app, world):
    client = signed_in(app, world, "platform")
    for table in (
        "summary",
        "trend",
        "children",
        "categories",
        "gi",
        "products",
        "destinations",
        "reach",
        "indicators",
    ):
        response = client.get(f"/reports/export/{table}.xlsx")
        assert response.status_code == 200, table
        book = load_workbook(io.BytesIO(response.get_data()))
        assert len(book.worksheets) == 2
    children = load_workbook(io.BytesIO(client.get("/reports/export/children.xlsx").get_data()))
    rows = list(children.worksheets[0].iter_rows(values_only=True))
    by_code = {row[0]: row for row in rows[1:]}
    assert Decimal(str(by_code["江门市"][1])) == Decimal("306.00")
    assert by_code["江门市"][3] == 2
    assert children.worksheets[0]["B2"].number_format == "#,##0.00"
    assert len(rows) == 22  # header and 21 cities


def test_unknown_tables_and_formats_are_not_found(app, world):
    client = signed_in(app, world, "platform")
    assert client.get("/reports/export/nothing.csv").status_code == 404
    assert client.get("/reports/export/children.pdf").status_code == 404


def test_a_cooperative_admins_export_is_of_their_cooperative(app, world):
    client = signed_in(app, world, "admin_xinhui")
    rows = _csv(client.get("/reports/export/children.csv"))
    assert [row[0] for row in rows[1:]] == ["新会陈皮"]
    assert client.get("/reports/export/products.csv").status_code == 404  # no such tile there


def test_the_monthly_report_is_printable(app, world):
    client = signed_in(app, world, "staff_jiangmen")
    month = periods.local_today().replace(day=1) - timedelta(days=1)
    response = client.get(f"/reports/monthly?month={month:%Y-%m}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "江门市" in html
    assert "window.print()" in html
    last = (periods.local_today() - timedelta(days=1)).strftime("%Y-%m")
    this_month = client.get(f"/reports/monthly?month={last}").get_data(as_text=True)
    assert "¥306.00" in this_month
    assert client.get("/reports/monthly?month=2026-13").status_code == 400
    assert client.get("/reports/monthly?month=2026-13&area=441800").status_code == 400
    assert client.get("/reports/monthly?area=441800").status_code == 403


def test_the_print_stylesheet_hides_navigation_and_forms():
    css = (Path(__file__).parents[2] / "static/css/app.css").read_text(encoding="utf-8")
    block = css[css.index("@media print{") :]
    for hidden in (".top", ".no-print", ".downloads", ".report-filter"):
        assert hidden in block


def test_the_dashboard_link_shows_for_those_with_dashboards(app, world):
    assert "/reports" in signed_in(app, world, "staff_xinhui").get("/").get_data(as_text=True)
    assert 'href="/reports"' not in signed_in(app, world, "buyer_a").get("/").get_data(as_text=True)


def test_a_month_range_snaps_to_whole_months(app, world):
    client = signed_in(app, world, "platform")
    html = client.get("/reports?from=2026-01-15&to=2026-02-10&by=month").get_data(as_text=True)
    assert 'value="2026-01-01"' in html
    assert 'value="2026-02-28"' in html


def test_a_range_by_day_is_at_most_a_year(app, world):
    client = signed_in(app, world, "platform")
    response = client.get("/reports?from=2024-01-01&to=2026-01-01&by=day")
    assert response.status_code == 400
    assert "366" in response.get_data(as_text=True)
    assert client.get("/reports?from=2024-01-01&to=2026-01-01&by=month").status_code == 200
