"""A buyer on a phone searches in pinyin and narrows to a city."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from market.catalog.models import Category
from market.extensions import db
from tests.browser.conftest import assert_fits_phone_width
from tests.factories import CooperativeFactory, ProductFactory


def test_a_buyer_finds_lychees_by_pinyin_and_narrows_to_a_city(
    page: Page, live_server: str, app, shot
):
    page.set_viewport_size({"width": 360, "height": 800})
    with app.app_context():
        zengcheng = CooperativeFactory(name="增城区仙村镇荔枝专业合作社", division_code="440118")
        maoming = CooperativeFactory(name="高州市水果专业合作社", division_code="440981")
        ProductFactory(
            cooperative=zengcheng, title="增城挂绿荔枝 特级 5斤装", category=Category.FRUIT
        )
        ProductFactory(cooperative=maoming, title="高州白糖罂荔枝 3斤", category=Category.FRUIT)
        ProductFactory(cooperative=maoming, title="高州储良龙眼 5斤", category=Category.FRUIT)
        db.session.commit()

    page.goto(live_server + "/products")
    page.get_by_role("searchbox").fill("lizhi")
    page.get_by_role("button", name="搜索").click()
    expect(page.get_by_text("共 2 件商品")).to_be_visible()
    marks = page.locator(".product-card mark")
    expect(marks).to_have_count(2)
    expect(marks.first).to_have_text("荔枝")
    assert_fits_phone_width(page)
    shot("pinyin")

    page.get_by_label("地市").select_option(label="茂名市")
    expect(page.get_by_text("共 1 件商品")).to_be_visible()
    expect(page.locator(".product-card", has_text="高州白糖罂荔枝 3斤")).to_be_visible()
    expect(page.get_by_role("searchbox")).to_have_value("lizhi")
    shot("pinyin-in-maoming")
