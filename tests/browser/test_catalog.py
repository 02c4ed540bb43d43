"""A farmer lists a product from a 360 x 800 phone: camera photo with GPS in, none out."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import select

from market import search
from market.catalog.models import Product, ProductStatus
from market.extensions import db
from tests.browser.conftest import assert_fits_phone_width
from tests.catalog.photos import GPS_SECRET, has_gps, phone_jpeg
from tests.factories import PASSWORD, CooperativeFactory, farmer


def test_a_farmer_lists_a_product_from_a_phone(page: Page, live_server: str, app, shot, tmp_path):
    page.set_viewport_size({"width": 360, "height": 800})
    with app.app_context():
        coop = CooperativeFactory(name="增城区荔枝专业合作社", division_code="440118")
        farmer(coop, phone="13600136301", name="何丽娟")
        db.session.commit()
    # A camera-sized photo (about 3 MB) with the farm's GPS position in its EXIF.
    original = phone_jpeg((2400, 1800), noisy=True)
    assert has_gps(original)
    photo = tmp_path / "IMG_20240612_081533.jpg"
    photo.write_bytes(original)

    page.goto(live_server + "/auth/login")
    page.get_by_label("手机号码").fill("13600136301")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("link", name="我的商品").click()
    page.get_by_role("link", name="发布商品").first.click()
    page.wait_for_load_state()

    page.get_by_label("照片").set_input_files(str(photo))
    expect(page.locator("[data-photo-preview]")).to_be_visible()
    page.get_by_label("商品名称").fill("增城荔枝 糯米糍 5斤装")
    page.get_by_label("分类").select_option(label="水果")
    page.get_by_label("单价（元）").fill("128")
    page.get_by_label("单位").select_option("箱")
    page.get_by_label("库存").fill("40")
    assert_fits_phone_width(page)
    shot("form")
    with page.expect_request(lambda r: r.method == "POST" and "/products/new" in r.url) as sent:
        page.get_by_role("button", name="上架销售").click()
    # The browser shrank the photo before sending it over the (slow) network.
    assert int(sent.value.header_value("content-length")) < len(original) / 2

    expect(page.get_by_text("商品已上架。")).to_be_visible()
    expect(page.get_by_role("heading", name="增城荔枝 糯米糍 5斤装")).to_be_visible()
    expect(page.get_by_text("¥128.00")).to_be_visible()
    assert_fits_phone_width(page)
    shot("product")

    page.get_by_role("link", name="商品", exact=True).click()
    card = page.locator(".product-card", has_text="增城荔枝 糯米糍 5斤装")
    expect(card).to_be_visible()
    expect(card.locator("img")).to_have_attribute("loading", "lazy")
    assert_fits_phone_width(page)
    shot("list")

    page.get_by_role("searchbox").fill("荔枝")
    page.get_by_role("button", name="搜索").click()
    expect(page.get_by_text("共 1 件商品")).to_be_visible()
    expect(page.locator(".product-card mark", has_text="荔枝")).to_be_visible()
    shot("search")

    with app.app_context():
        (product,) = db.session.scalars(select(Product)).all()
        assert product.status is ProductStatus.ON_SALE
        assert (product.price_fen, product.stock, product.unit) == (12800, 40, "箱")
        found, total, _ = search.search_products(db.session, "荔枝")
        assert [p.id for p in found] == [product.id]
        assert total == 1
        key = product.photos[0].key
    stored = sorted(Path(app.config["MEDIA_DIR"]).glob(f"{key}-*"))
    assert [p.name.split("-", 1)[1] for p in stored] == [
        "1280.jpg",
        "1280.webp",
        "320.jpg",
        "320.webp",
    ]
    for path in stored:
        data = path.read_bytes()
        assert GPS_SECRET.encode() not in data
        with Image.open(path) as img:
            assert not img.getexif()
            assert max(img.size) <= 1280


def test_the_home_page_shows_gi_specialties_on_a_phone(page: Page, live_server: str, app, shot):
    from market import demo

    page.set_viewport_size({"width": 360, "height": 800})
    with app.app_context():
        demo.load(db.session)
        db.session.commit()
    page.goto(live_server + "/")
    expect(page.get_by_role("heading", name="地理标志特产")).to_be_visible()
    expect(page.locator(".product-card", has_text="新会陈皮 十年陈 250克")).to_be_visible()
    assert_fits_phone_width(page)
    shot("home")
    page.get_by_role("link", name="茶叶", exact=True).click()
    expect(page.locator(".product-card", has_text="英德红茶 英红九号")).to_be_visible()
    page.get_by_label("地市").select_option(label="清远市")
    expect(page.get_by_label("区县")).to_be_visible()
    expect(page.get_by_text("共 2 件商品")).to_be_visible()
    assert_fits_phone_width(page)
    shot("tea-in-qingyuan")


def test_an_admin_imports_a_spreadsheet_then_adds_a_photo_and_sells(
    page: Page, live_server: str, app, shot, tmp_path
):
    page.set_viewport_size({"width": 360, "height": 800})
    with app.app_context():
        coop = CooperativeFactory(name="徐闻县菠萝种植专业合作社", division_code="440825")
        from tests.factories import coop_admin

        coop_admin(coop, phone="13700137501", name="王德明")
        db.session.commit()
    sheet = tmp_path / "菠萝.csv"
    sheet.write_text(
        "商品名称,分类,单位,单价（元）,库存,地理标志名称,上市月份\r\n"
        "徐闻菠萝 香水菠萝 10斤,水果,箱,59.80,300,徐闻菠萝,2-5\r\n"
        "徐闻菠萝 金钻凤梨 5斤,水果,箱,39.9O,100,,3-5\r\n",
        encoding="utf-8-sig",
    )
    page.goto(live_server + "/auth/login")
    page.get_by_label("手机号码").fill("13700137501")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("link", name="我的商品").click()
    page.get_by_role("link", name="表格批量导入").click()
    page.get_by_label("表格文件（CSV 或 XLSX）").set_input_files(str(sheet))
    page.get_by_role("button", name="导入").click()
    expect(page.get_by_text("第 3 行，单价（元）：请输入价格，例如 12.80。")).to_be_visible()
    shot("import-errors")
    assert_fits_phone_width(page)

    sheet.write_text(sheet.read_text(encoding="utf-8-sig").replace("39.9O", "39.90"), "utf-8-sig")
    page.get_by_label("表格文件（CSV 或 XLSX）").set_input_files(str(sheet))
    page.get_by_role("button", name="导入").click()
    expect(page.get_by_text("已导入 2 个商品（草稿）")).to_be_visible()
    shot("imported")

    photo = tmp_path / "pineapple.jpg"
    photo.write_bytes(phone_jpeg((1200, 900)))
    row = page.locator(".seller-list > li", has_text="香水菠萝")
    row.get_by_role("link", name="编辑详情").click()
    page.get_by_label("添加照片").set_input_files(str(photo))
    page.get_by_label("商品描述").fill("火山红土种植，免削皮手撕即食。")
    page.get_by_label("有机产品").check()
    assert_fits_phone_width(page)
    shot("edit")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_text("已保存。")).to_be_visible()
    page.get_by_role("button", name="上架销售").click()
    expect(page.get_by_text("商品已上架。")).to_be_visible()
    expect(page.get_by_text("地理标志 · 徐闻菠萝")).to_be_visible()
    expect(page.get_by_text("2月至5月")).to_be_visible()
    shot("on-sale")
