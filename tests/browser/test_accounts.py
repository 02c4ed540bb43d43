"""First flows at a phone viewport: register, sign in, add a farmer, switch language."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from market.extensions import db
from tests.browser.conftest import assert_fits_phone_width
from tests.factories import PASSWORD, CooperativeFactory, coop_admin


def test_a_buyer_registers_and_signs_in(page: Page, live_server: str, shot):
    page.goto(live_server + "/auth/register")
    page.get_by_label("手机号码").fill("13800138001")
    page.get_by_label("姓名（选填）").fill("陈小姐")
    page.get_by_label("密码", exact=True).fill("lychee-season")
    page.get_by_label("确认密码").fill("lychee-season")
    shot("register")
    page.get_by_role("button", name="注册").click()
    expect(page.get_by_text("欢迎来到粤农优品！")).to_be_visible()
    expect(page.get_by_role("link", name="陈小姐")).to_be_visible()
    assert_fits_phone_width(page)
    shot("registered")

    page.get_by_role("button", name="退出").click()
    page.get_by_role("link", name="登录").click()
    page.get_by_label("手机号码").fill("13800138001")
    page.get_by_label("密码").fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_text("手机号码或密码错误。")).to_be_visible()
    expect(page.get_by_label("密码")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("密码").fill("lychee-season")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("link", name="陈小姐")).to_be_visible()


def test_a_cooperative_admin_adds_a_farmer(page: Page, live_server: str, app, shot):
    with app.app_context():
        coop = CooperativeFactory(name="增城区荔枝专业合作社", division_code="440118")
        coop_admin(coop, phone="13700137201", name="钟社长")
        db.session.commit()
    page.goto(live_server + "/auth/login")
    page.get_by_label("手机号码").fill("13700137201")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("link", name="我的合作社").click()
    page.get_by_label("社员手机号码").fill("13600136201")
    page.get_by_label("社员姓名").fill("何丽娟")
    page.get_by_role("button", name="添加社员").click()
    expect(page.get_by_text("已将 何丽娟 添加为社员。")).to_be_visible()
    password = page.get_by_test_id("initial-password").inner_text()
    assert re.fullmatch(r"[a-z2-9]{10}", password)
    expect(page.get_by_text("13600136201")).to_be_visible()
    assert_fits_phone_width(page)
    shot("members")


def test_the_language_switch_works(page: Page, live_server: str, shot):
    page.goto(live_server + "/")
    expect(page.get_by_role("heading", name="广东特产，合作社直供")).to_be_visible()
    assert_fits_phone_width(page)
    shot("home-zh")
    page.get_by_role("link", name="English").click()
    expect(
        page.get_by_role("heading", name="Guangdong specialties, straight from the cooperative")
    ).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    shot("home-en")
    page.get_by_role("link", name="简体中文").click()
    expect(page.get_by_role("heading", name="广东特产，合作社直供")).to_be_visible()
