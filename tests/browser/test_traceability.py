"""The scan page of a printed, decoded trace code at a phone viewport; a forged code; the
label job page polling until the PDF is ready."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import zxingcpp
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from market import media
from market.catalog.models import ProductPhoto
from market.extensions import db
from market.types import utcnow
from tests.browser.conftest import assert_fits_phone_width
from tests.factories import PASSWORD, CooperativeFactory, coop_admin
from tests.traceability.conftest import make_batch, make_product
from traceability import config, labels, services, tasks
from traceability.models import CodeKind, LabelLayout

PDFTOPPM = shutil.which("pdftoppm")


def _photo(app) -> str:
    image = Image.new("RGB", (1280, 720), (214, 120, 38))
    draw = ImageDraw.Draw(image)
    for i in range(0, 1280, 80):
        draw.ellipse((i, 300, i + 70, 370), fill=(160, 70, 20))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    buffer.seek(0)
    return media.process_photo(buffer, Path(app.config["MEDIA_DIR"])).key


@pytest.fixture
def traced(app):
    """A batch of 新会陈皮 made from a batch of fresh 大红柑, with inputs, a lab test,
    storage and shipping events, and two unit codes."""
    with app.app_context():
        coop = CooperativeFactory(
            name="新会区会城陈皮专业合作社", division_code="440705", village="会城街道茶坑村"
        )
        admin = coop_admin(coop, phone="13700137301", name="陈志强")
        product = make_product(app, coop)
        db.session.add(ProductPhoto(product_id=product.id, key=_photo(app), position=0))
        fruit = make_batch(
            app,
            coop.id,
            product.id,
            name="大红柑鲜果",
            harvest_date=services.today_shanghai() - timedelta(days=40),
            quantity=2000,
        )
        services.add_input(
            db.session,
            fruit.id,
            kind=services.InputKind.FERTILISER,
            name="腐熟花生麸",
            used_on=fruit.harvest_date - timedelta(days=90),
            amount="每株 2 公斤",
        )
        peel = make_batch(
            app,
            coop.id,
            product.id,
            name="三年陈皮 第一批",
            harvest_date=services.today_shanghai() - timedelta(days=5),
            quantity=120,
            origin_kind=services.OriginKind.WORKSHOP,
            method="自然晒制",
        )
        prefix = app.config["GS1_COMPANY_PREFIX"]
        now = utcnow()
        services.record_ui_event(
            db.session,
            peel.id,
            "processing",
            when=now - timedelta(days=4),
            user_id=admin.id,
            company_prefix=prefix,
            source_batch_id=fruit.id,
            source_quantity=1500,
            note="开皮、晾晒",
        )
        services.add_inspection(
            db.session,
            peel.id,
            kind=services.InspectionKind.LAB,
            tested_on=services.today_shanghai() - timedelta(days=3),
            items="农药残留 62 项",
            result=services.InspectionResult.PASS,
            agency="江门市农产品质量安全检测中心",
            company_prefix=prefix,
        )
        services.record_ui_event(
            db.session,
            peel.id,
            "storing",
            when=now - timedelta(days=2),
            user_id=admin.id,
            company_prefix=prefix,
            temperature_c=18.0,
            humidity_pct=55.0,
        )
        services.record_ui_event(
            db.session,
            peel.id,
            "shipping",
            when=now - timedelta(hours=5),
            user_id=admin.id,
            company_prefix=prefix,
            place_code="440100",
            note="顺丰发往广州",
        )
        services.issue_codes(db.session, peel.id, 2, company_prefix=prefix, max_count=10)
        db.session.commit()
        return {"batch": peel.id, "gtin": product.gtin, "lot": peel.lot_code, "admin": admin.phone}


def _printed_urls(app, batch_id: int, tmp_path: Path) -> list[str]:
    """Render the 40 × 30 mm label PDF, rasterise it and decode every QR on it."""
    with app.app_context():
        batch = services.get_batch(db.session, batch_id)
        secret = config.tag_secret(app)
        items = [
            (services.code_link(app.config["PUBLIC_BASE_URL"], secret, c, batch.lot_code), c.serial)
            for c in services.unit_codes(db.session, batch_id)
        ]
        pdf = tmp_path / "labels.pdf"
        labels.render_labels(
            pdf,
            LabelLayout.ROLL_40X30,
            tasks.certificate_of(batch),
            items,
            font_path=app.config["LABEL_FONT_PATH"],
        )
    subprocess.run([PDFTOPPM, "-r", "300", "-png", str(pdf), str(tmp_path / "p")], check=True)  # noqa: S603
    urls = []
    for image in sorted(tmp_path.glob("p-*.png")):
        urls.extend(r.text for r in zxingcpp.read_barcodes(Image.open(image)))
    return urls


@pytest.mark.skipif(PDFTOPPM is None, reason="pdftoppm missing")
def test_a_decoded_label_opens_its_scan_page_on_a_phone(
    page: Page, live_server: str, app, traced, tmp_path, shot
):
    urls = _printed_urls(app, traced["batch"], tmp_path)
    assert len(urls) == 2
    target = urlsplit(urls[0])
    page.goto(live_server + target.path + "?" + target.query)
    expect(page.get_by_role("heading", name="新会陈皮（三年陈）")).to_be_visible()
    expect(page.get_by_text("验证通过：此码由粤农优品签发")).to_be_visible()
    expect(page.get_by_text("这是此码第一次被查询。")).to_be_visible()
    timeline = page.get_by_test_id("timeline")
    timeline.scroll_into_view_if_needed()
    expect(timeline).to_be_visible()
    expect(timeline.get_by_text("已加工")).to_be_visible()
    expect(timeline.get_by_text("顺丰发往广州")).to_be_visible()
    expect(timeline.get_by_text("来自批次").first).to_be_visible()  # the fresh fruit's harvest
    expect(page.get_by_role("heading", name="承诺达标合格证")).to_be_visible()
    expect(page.get_by_text("腐熟花生麸")).to_be_visible()
    assert_fits_phone_width(page)
    shot("scan-page")

    page.goto(live_server + target.path + "?" + target.query)
    expect(page.get_by_test_id("scan-count")).to_contain_text("已被查询 2 次")


def test_a_forged_code_gets_the_not_recognised_page(page: Page, live_server: str, traced, shot):
    forged = f"/01/{traced['gtin']}/10/{traced['lot']}/21/12345678901?s=abcdefgh"
    response = page.goto(live_server + forged)
    assert response.status == 404
    expect(page.get_by_role("heading", name="无法识别此码——可能不是正品")).to_be_visible()
    expect(page.get_by_text("12315")).to_be_visible()
    assert_fits_phone_width(page)
    shot("forged")


def test_the_label_page_polls_until_the_pdf_is_ready(
    page: Page, live_server: str, app, traced, shot
):
    with app.app_context():
        job = services.create_label_job(
            db.session,
            traced["batch"],
            layout=LabelLayout.A4_3X8,
            kind=CodeKind.UNIT,
            max_labels=100,
        )
        db.session.commit()
        job_id = job.id
    page.goto(live_server + "/auth/login")
    page.get_by_label("手机号码").fill(traced["admin"])
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.goto(live_server + f"/trace/labels/{job_id}")
    expect(page.get_by_text("正在生成")).to_be_visible()
    download = page.get_by_role("link", name="下载 PDF")
    expect(download).to_be_hidden()
    shot("label-job-pending")
    with app.app_context():
        tasks.render_label_job(job_id)
    expect(download).to_be_visible(timeout=10_000)
    expect(page.get_by_text("已完成。")).to_be_visible()
    assert_fits_phone_width(page)
    shot("label-job-done")


def test_a_cooperative_records_a_batch_and_prints_labels_on_a_phone(
    page: Page, live_server: str, app, shot
):
    with app.app_context():
        coop = CooperativeFactory(
            name="英德市英红九号茶叶专业合作社", division_code="441881", village="横石塘镇"
        )
        coop_admin(coop, phone="13700137401", name="黄丽萍")
        make_product(
            app, coop, title="英德红茶 英红九号 礼盒", unit="盒", is_gi=True, gi_name="英德红茶"
        )
        db.session.commit()
    page.goto(live_server + "/auth/login")
    page.get_by_label("手机号码").fill("13700137401")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("link", name="追溯码").click()
    page.get_by_role("link", name="登记批次").click()
    page.get_by_label("批次名称").fill("2026年秋茶 第一批")
    page.get_by_label("数量").fill("80")
    page.get_by_label("单位").select_option("公斤")
    page.get_by_label("产地类型").select_option("tea_garden")
    page.get_by_label("地块、池塘或渔船（选填）").fill("5号茶园")
    page.get_by_label("自检").check()
    assert_fits_phone_width(page)
    shot("new-batch")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_text("已登记批次")).to_be_visible()
    lot = page.locator("h1 code").inner_text()
    assert lot.startswith("YD")  # 英德
    expect(page.get_by_role("heading", name="承诺达标合格证")).to_be_visible()

    page.get_by_label("单品码数量").fill("5")
    page.get_by_role("button", name="生成追溯码").click()
    expect(page.get_by_text("已生成 5 个单品码")).to_be_visible()

    page.get_by_role("link", name="记录事件").click()
    page.get_by_label("发生了什么").select_option("storing")
    page.get_by_label("温度 °C（选填）").fill("18")
    page.get_by_label("备注（选填）").fill("入恒温茶仓")
    page.get_by_role("button", name="记录", exact=True).click()
    expect(page.get_by_test_id("timeline").get_by_text("入恒温茶仓")).to_be_visible()
    assert_fits_phone_width(page)
    shot("batch-detail")

    page.get_by_label("标签规格").select_option("40x30")
    page.get_by_role("button", name="生成 PDF").click()
    expect(page.get_by_role("link", name="下载 PDF")).to_be_visible()
    assert_fits_phone_width(page)
    shot("labels-ready")
    page.goto(live_server + "/trace/batches")
    expect(page.get_by_text("2026年秋茶 第一批")).to_be_visible()
    assert_fits_phone_width(page)


def test_the_product_page_shows_the_batch_on_sale_and_opens_its_record_on_a_phone(
    page: Page, live_server: str, app, traced, shot
):
    page.set_viewport_size({"width": 360, "height": 800})
    with app.app_context():
        batch = services.put_on_sale(db.session, traced["batch"], 30)
        product_id = batch.product_id
        db.session.commit()
    page.goto(f"{live_server}/products/{product_id}")
    card = page.get_by_test_id("current-lot")
    card.scroll_into_view_if_needed()
    expect(card).to_be_visible()
    expect(card).to_contain_text(traced["lot"])
    expect(card).to_contain_text("三年陈皮 第一批")
    expect(card.locator(".tag.ok")).to_be_visible()  # the lab test passed
    assert_fits_phone_width(page)
    shot("product-lot")
    link = urlsplit(card.get_by_role("link").get_attribute("href"))
    assert link.path == f"/01/{traced['gtin']}/10/{traced['lot']}"
    page.goto(live_server + link.path + "?" + link.query)
    expect(page.get_by_text("验证通过：此码由粤农优品签发")).to_be_visible()
    expect(page.get_by_text("三年陈皮 第一批").first).to_be_visible()
