"""At a phone's width: a buyer fills a cart from two cooperatives, checks out, pays in the
sandbox and sees two paid orders; the farmer then finds the line to pack."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import assert_fits_phone_width
from tests.factories import PASSWORD
from tests.orders.helpers import make_shop


def sign_in(page: Page, live_server: str, phone: str) -> None:
    page.goto(live_server + "/auth/login")
    page.get_by_label("手机号码").fill(phone)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("button", name="退出")).to_be_visible()


def test_a_buyer_orders_from_two_cooperatives_pays_and_the_farmer_packs(
    page: Page, live_server: str, app, shot
):
    shop = make_shop(app)
    sign_in(page, live_server, shop.phones["buyer"])

    page.goto(f"{live_server}/products/{shop.peel}")
    page.get_by_label("数量").fill("2")
    page.get_by_role("button", name="加入购物车").click()
    expect(page.get_by_text("已加入购物车。")).to_be_visible()
    assert_fits_phone_width(page)
    shot("product")
    page.goto(f"{live_server}/products/{shop.lychee}")
    page.get_by_role("button", name="加入购物车").click()
    expect(page.get_by_text("已加入购物车。")).to_be_visible()

    page.get_by_role("navigation", name="主导航").get_by_role(
        "link", name=re.compile("购物车")
    ).click()
    expect(page.get_by_text("新会区会城陈皮专业合作社")).to_be_visible()
    expect(page.get_by_text("增城区荔枝专业合作社")).to_be_visible()
    expect(page.locator(".total-bar .total")).to_have_text("¥315.00")
    assert_fits_phone_width(page)
    shot("cart")
    page.get_by_role("link", name="去结算").click()

    expect(page.get_by_text("共 2 个订单，每家合作社一个，分别发货。")).to_be_visible()
    expect(page.get_by_label("收货人")).to_have_value("陈小姐")
    expect(page.get_by_label("省份")).to_have_value("440000")
    page.get_by_label("地市").select_option(label="广州市")
    page.get_by_label("所在县（市、区）").select_option(label="天河区")
    page.get_by_label("详细地址").fill("天河路 100 号 2 栋 301")
    assert_fits_phone_width(page)
    shot("checkout")
    page.get_by_role("button", name="提交订单并支付 ¥315.00").click()

    # The sandbox cashier, on the app's own host.
    expect(page.get_by_text("¥315.00")).to_be_visible()
    expect(page.get_by_role("button", name="支付")).to_be_visible()
    expect(page.get_by_role("button", name="取消")).to_be_visible()
    expect(page.get_by_role("button", name="失败")).to_be_visible()
    assert_fits_phone_width(page)
    shot("cashier")
    page.get_by_role("button", name="支付").click()

    expect(page.get_by_role("heading", name="支付成功")).to_be_visible()
    expect(page.get_by_text("已付款")).to_have_count(2)
    assert_fits_phone_width(page)
    shot("paid")
    page.get_by_role("link", name="全部订单").click()
    expect(page.locator(".order-card")).to_have_count(2)
    expect(page.locator(".order-card").get_by_text("已付款")).to_have_count(2)
    shot("my-orders")
    page.locator(".order-card").filter(has_text="新会区会城陈皮专业合作社").click()
    expect(page.get_by_text("广东省广州市天河区 天河路 100 号 2 栋 301")).to_be_visible()
    expect(page.get_by_role("link", name="申请退款")).to_be_visible()
    assert_fits_phone_width(page)
    shot("order-detail")

    page.get_by_role("button", name="退出").click()
    sign_in(page, live_server, shop.phones["chen"])
    page.get_by_role("link", name="待打包订单").click()
    card = page.locator(".pack-card")
    expect(card).to_have_count(1)
    expect(card.get_by_text("新会陈皮 十年")).to_be_visible()
    expect(card.get_by_text("× 2 罐")).to_be_visible()
    expect(card.get_by_text("柑普茶")).to_have_count(0)
    expect(card.get_by_role("link", name="13800138000")).to_be_visible()
    assert_fits_phone_width(page)
    shot("farmer-to-pack")
    card.get_by_role("button", name="标记已打包").click()
    expect(page.get_by_text("已标记为打包。")).to_be_visible()
    page.get_by_role("link", name="待发货").click()
    expect(page.locator(".pack-card")).to_have_count(1)
    shot("farmer-to-ship")
