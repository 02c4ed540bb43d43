"""Catalog pages: the phone listing form, uploads, editing, stock, status, browsing,
ownership and the bulk import."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from market import search
from market.catalog.models import Category, Product, ProductPhoto, ProductStatus
from market.extensions import db
from tests.catalog.photos import (
    GPS_SECRET,
    decompression_bomb,
    has_gps,
    phone_jpeg,
    twenty_megabytes,
)
from tests.conftest import csrf_token, login, post_form
from tests.factories import (
    CooperativeFactory,
    ProductFactory,
    ProductPhotoFactory,
    coop_admin,
    farmer,
)

LYCHEE = {
    "title": "增城荔枝 糯米糍 5斤装",
    "category": "fruit",
    "price": "128.00",
    "unit": "箱",
    "stock": "40",
}


@pytest.fixture
def people(app):
    with app.app_context():
        coop = CooperativeFactory(name="增城区荔枝专业合作社", division_code="440118")
        other = CooperativeFactory(division_code="440705")
        ids = {
            "coop": coop.id,
            "other": other.id,
            "farmer": farmer(coop, phone="13600000001").id,
            "second_farmer": farmer(coop, phone="13600000002").id,
            "admin": coop_admin(coop, phone="13700000001").id,
            "other_admin": coop_admin(other, phone="13700000002").id,
        }
        db.session.commit()
    return ids


@pytest.fixture
def as_farmer(client, people):
    login(client, "13600000001")
    return client


@pytest.fixture
def as_admin(client, people):
    login(client, "13700000001")
    return client


def post_large(client, path: str, fields: dict):
    """POST a multipart body built in memory.

    The test client spools bodies over 500 KB to a temporary file that nobody closes when
    the app refuses the body unread (413); build it ourselves instead.
    """
    files = {
        key: FileStorage(value[0], filename=value[1]) if isinstance(value, tuple) else value
        for key, value in fields.items()
    }
    boundary, body = encode_multipart({**files, "csrf_token": csrf_token(client)})
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def photo_upload(data: bytes, name: str = "IMG_20240612_081533.jpg"):
    return (io.BytesIO(data), name)


def media_files(media_dir: Path) -> list[Path]:
    return [p for p in media_dir.rglob("*") if p.is_file()] if media_dir.exists() else []


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def text(response) -> str:
    return response.get_data(as_text=True)


# --- listing from a phone ----------------------------------------------------------------


def test_a_farmer_lists_a_product_with_a_phone_photo_and_its_gps_is_gone(app, as_farmer, media_dir):
    response = post_form(
        as_farmer,
        "/products/new",
        {**LYCHEE, "photo": photo_upload(phone_jpeg()), "publish": "上架销售"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    product_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        product = db.session.get(Product, product_id)
        assert product.status is ProductStatus.ON_SALE
        assert (product.price_fen, product.unit, product.stock) == (12800, "箱", 40)
        assert product.category is Category.FRUIT
        assert product.gtin
        assert product.item_ref == product.id
        (photo,) = product.photos
    files = media_files(media_dir)
    assert sorted(f.name for f in files) == sorted(
        f"{photo.key}-{size}.{ext}" for size in (320, 1280) for ext in ("jpg", "webp")
    )
    for stored in files:
        data = stored.read_bytes()
        assert GPS_SECRET.encode() not in data
        assert not has_gps(data)
        with Image.open(stored) as img:
            assert not img.getexif()

    page = text(as_farmer.get(response.headers["Location"], follow_redirects=True))
    assert "商品已上架。" in page
    assert "¥128.00" in page
    listing = text(as_farmer.get("/products"))
    assert "增城荔枝 糯米糍 5斤装" in listing
    assert f"{photo.key}-320.webp" in listing
    with app.app_context():
        found, total, _ = search.search_products(db.session, "荔枝")
    assert [p.id for p in found] == [product_id]
    assert total == 1


def test_the_form_keeps_what_was_typed_and_the_photo_when_the_price_is_wrong(
    app, as_farmer, media_dir
):
    response = post_form(
        as_farmer,
        "/products/new",
        {**LYCHEE, "price": "12.345", "photo": photo_upload(phone_jpeg()), "publish": "1"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    page = text(response)
    assert "价格以元为单位，最多两位小数。" in page
    assert 'value="增城荔枝 糯米糍 5斤装"' in page
    assert 'value="12.345"' in page
    assert '<option selected value="箱">' in page
    assert "已保留您选择的照片" in page
    key = re.search(r'name="photo_key" type="hidden" value="([0-9a-f]{32})"', page).group(1)
    assert count(app, Product) == 0

    # Fixing the price is enough: the photo need not travel over the network again.
    response = post_form(as_farmer, "/products/new", {**LYCHEE, "photo_key": key, "publish": "1"})
    assert response.status_code == 303
    with app.app_context():
        (product,) = db.session.scalars(select(Product)).all()
        assert [p.key for p in product.photos] == [key]
        assert product.status is ProductStatus.ON_SALE


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        ("notes.jpg", b"this is not a photo, just text\n" * 20, 400, "该文件不是照片。"),
        ("bomb.png", decompression_bomb(), 400, "照片尺寸过大。"),
        ("huge.jpg", twenty_megabytes(), 413, "照片太大，最大 10 MB。"),
    ],
    ids=["text-named-jpg", "decompression-bomb", "twenty-megabytes"],
)
def test_bad_uploads_get_a_message_and_store_nothing(
    app, as_farmer, media_dir, name, data, status, message
):
    response = post_large(
        as_farmer, "/products/new", {**LYCHEE, "photo": photo_upload(data, name), "publish": "1"}
    )
    assert response.status_code == status
    assert message in text(response)
    assert count(app, Product) == 0
    assert count(app, ProductPhoto) == 0
    assert media_files(media_dir) == []


def test_the_too_large_page_speaks_english_to_english_users(as_farmer):
    as_farmer.set_cookie("lang", "en")
    response = post_large(
        as_farmer,
        "/products/new",
        {**LYCHEE, "photo": photo_upload(twenty_megabytes()), "publish": "1"},
    )
    assert response.status_code == 413
    assert "The photo is too large. Photos up to 10 MB are accepted" in text(response)
    assert 'href="/products/new"' in text(response)


def test_a_draft_needs_no_photo_and_stays_private(app, as_farmer, client):
    response = post_form(as_farmer, "/products/new", {**LYCHEE, "save_draft": "1"})
    assert response.status_code == 303
    product_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert "草稿已保存" in text(as_farmer.get(response.headers["Location"]))
    assert "增城荔枝" in text(as_farmer.get("/products/mine"))
    assert "增城荔枝" not in text(as_farmer.get("/products"))
    anonymous = app.test_client()
    assert anonymous.get(f"/products/{product_id}").status_code == 404


def test_putting_on_sale_without_a_photo_asks_for_one(app, as_farmer):
    response = post_form(as_farmer, "/products/new", {**LYCHEE, "publish": "1"})
    assert response.status_code == 400
    assert "上架前请添加一张照片。" in text(response)
    assert count(app, Product) == 0


def test_missing_fields_are_marked(as_farmer):
    response = post_form(
        as_farmer, "/products/new", {"title": "", "price": "abc", "stock": "-3", "publish": "1"}
    )
    page = text(response)
    assert response.status_code == 400
    assert page.count('aria-invalid="true"') >= 3
    assert "请输入价格，例如 12.80。" in page
    assert "请输入 0 或更大的整数。" in page


def test_the_phone_form_opens_the_camera_and_shrinks_photos_in_the_browser(as_farmer):
    page = text(as_farmer.get("/products/new"))
    assert 'accept="image/*"' in page
    assert 'capture="environment"' in page
    assert 'data-resize="1600"' in page
    assert "/static/js/photo-resize.js" in page
    script = as_farmer.get("/static/js/photo-resize.js")
    assert b"toBlob" in script.data
    assert b"0.85" in script.data
    script.close()


# --- editing, stock, status --------------------------------------------------------------


def product_of(app, people, owner="farmer", **kw) -> int:
    with app.app_context():
        coop = db.session.get(CooperativeFactory._meta.model, people["coop"])
        user_id = people.get(owner)
        from market.auth.models import User

        product = ProductFactory(
            cooperative=coop, farmer=db.session.get(User, user_id) if user_id else None, **kw
        )
        ProductPhotoFactory(product=product, key="ab" * 16)
        db.session.commit()
        return product.id


def test_edit_details_adds_gi_certifications_months_origin_and_photos(app, as_farmer, people):
    product_id = product_of(app, people)
    form = text(as_farmer.get(f"/products/{product_id}/edit"))
    assert 'value="128.00"' in form
    response = post_form(
        as_farmer,
        f"/products/{product_id}/edit",
        {
            **LYCHEE,
            "stock_seen": "10",
            "stock": "10",
            "description": "当天采摘，顺丰冷链",
            "is_gi": "y",
            "gi_name": "增城荔枝",
            "certifications": ["green_food", "organic"],
            "harvest_months": ["6", "7"],
            "origin_code": "440118",
            "origin_detail": "仙村镇",
            "new_photos": [photo_upload(phone_jpeg((400, 300))), photo_upload(phone_jpeg())],
            "cover": "ab" * 16,
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303, text(response)[:3000]
    page = text(as_farmer.get(f"/products/{product_id}"))
    assert "地理标志 · 增城荔枝" in page
    assert "绿色食品" in page
    assert "有机产品" in page
    assert "6月至7月" in page
    assert "广东省广州市增城区 仙村镇" in page
    with app.app_context():
        product = db.session.get(Product, product_id)
        assert len(product.photos) == 3
        assert product.photos[0].key == "ab" * 16


def test_edit_can_remove_photos_but_not_the_last_of_a_product_on_sale(app, as_farmer, people):
    product_id = product_of(app, people)
    response = post_form(
        as_farmer,
        f"/products/{product_id}/edit",
        {**LYCHEE, "stock_seen": "10", "stock": "10", "remove_photos": ["ab" * 16]},
    )
    assert response.status_code == 400
    assert "上架前请添加一张照片。" in text(response)
    with app.app_context():
        assert len(db.session.get(Product, product_id).photos) == 1


def test_edit_with_a_bad_photo_keeps_the_product_as_it_was(app, as_farmer, people, media_dir):
    product_id = product_of(app, people)
    response = post_form(
        as_farmer,
        f"/products/{product_id}/edit",
        {
            **LYCHEE,
            "title": "改了的标题",
            "stock_seen": "10",
            "stock": "10",
            "new_photos": [photo_upload(phone_jpeg()), photo_upload(b"text", "a.jpg")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "该文件不是照片。" in text(response)
    assert media_files(media_dir) == []
    with app.app_context():
        assert db.session.get(Product, product_id).title != "改了的标题"


def test_the_quick_stock_form_refuses_to_overwrite_an_order(app, as_farmer, people):
    product_id = product_of(app, people, stock=10)
    with app.app_context():
        db.session.execute(
            Product.__table__.update().where(Product.id == product_id).values(stock=7)
        )
        db.session.commit()
    response = post_form(
        as_farmer, f"/products/{product_id}/stock", {"stock": "25", "stock_seen": "10"}
    )
    assert response.status_code == 303
    page = text(as_farmer.get(response.headers["Location"]))
    assert "编辑期间库存已变化（有新订单）：现为 7。" in page
    response = post_form(
        as_farmer,
        f"/products/{product_id}/stock",
        {"stock": "0", "stock_seen": "7", "next": "/products/mine"},
    )
    assert response.headers["Location"].endswith("/products/mine")
    with app.app_context():
        product = db.session.get(Product, product_id)
        assert (product.stock, product.status) == (0, ProductStatus.SOLD_OUT)


def test_archive_and_put_back_on_sale(app, as_farmer, people):
    product_id = product_of(app, people)
    post_form(as_farmer, f"/products/{product_id}/archive", {})
    with app.app_context():
        assert db.session.get(Product, product_id).status is ProductStatus.ARCHIVED
    assert app.test_client().get(f"/products/{product_id}").status_code == 404
    response = post_form(as_farmer, f"/products/{product_id}/publish", {})
    assert "商品已上架。" in text(as_farmer.get(response.headers["Location"]))
    with app.app_context():
        assert db.session.get(Product, product_id).status is ProductStatus.ON_SALE


def test_a_farmer_edits_only_their_own_products_the_admin_all(app, client, people):
    theirs = product_of(app, people, owner="second_farmer")
    login(client, "13600000001")
    assert client.get(f"/products/{theirs}/edit").status_code == 403
    assert post_form(client, f"/products/{theirs}/archive", {}).status_code == 403
    assert "编辑详情" not in text(client.get(f"/products/{theirs}"))
    admin = app.test_client()
    login(admin, "13700000001")
    assert admin.get(f"/products/{theirs}/edit").status_code == 200
    outsider = app.test_client()
    login(outsider, "13700000002")
    assert outsider.get(f"/products/{theirs}/edit").status_code == 403


def test_my_products_lists_drafts_and_filters_by_status(app, as_admin, people):
    product_of(app, people, title="在售的荔枝")
    product_of(app, people, owner="second_farmer", title="草稿的荔枝", status=ProductStatus.DRAFT)
    page = text(as_admin.get("/products/mine"))
    assert "在售的荔枝" in page
    assert "草稿的荔枝" in page
    assert "表格批量导入" in page
    drafts = text(as_admin.get("/products/mine?status=draft"))
    assert "草稿的荔枝" in drafts
    assert "在售的荔枝" not in drafts


# --- browsing ----------------------------------------------------------------------------


def test_the_list_filters_by_category_city_and_county_and_pages(app, client):
    with app.app_context():
        xinhui = CooperativeFactory(division_code="440705")
        yingde = CooperativeFactory(division_code="441881")
        for i in range(23):
            ProductFactory(cooperative=xinhui, title=f"陈皮{i:02d}")
        ProductFactory(cooperative=yingde, title="英德红茶", category=Category.TEA)
        db.session.commit()
    first = text(client.get("/products"))
    assert "共 24 件商品" in first
    assert "第 1 / 2 页" in first
    assert 'rel="next" href="/products?page=2"' in first
    second = text(client.get("/products?page=2"))
    assert second.count('class="product-card"') == 4
    tea = text(client.get("/products?category=tea"))
    assert "英德红茶" in tea
    assert "陈皮" not in tea
    city = text(client.get("/products?city=441800"))
    assert "英德红茶" in city
    assert "陈皮" not in city
    assert "英德市" in city  # the county choices of the chosen city
    county = text(client.get("/products?county=440705&category=nonsense&page=x"))
    assert "共 23 件商品" in county


def test_the_list_searches_with_q(app, client):
    with app.app_context():
        coop = CooperativeFactory()
        ProductFactory(cooperative=coop, title="增城荔枝 挂绿")
        ProductFactory(cooperative=coop, title="梅州金柚")
        db.session.commit()
    page = text(client.get("/products?q=荔枝"))
    assert "共 1 件商品" in page
    assert "<mark>荔枝</mark>" in page


def test_the_product_page_shows_price_stock_origin_and_cooperative(app, client, people):
    product_id = product_of(
        app,
        people,
        title="增城荔枝 挂绿 5斤",
        unit="箱",
        price_fen=39800,
        stock=20,
        is_gi=True,
        gi_name="增城荔枝",
        certifications=["green_food"],
        harvest_months=[11, 12, 1],
        origin_detail="仙村镇",
    )
    page = text(client.get(f"/products/{product_id}"))
    assert "¥398.00</strong> / 箱" in page
    assert "库存 20 箱" in page
    assert "地理标志 · 增城荔枝" in page
    assert "绿色食品" in page
    assert "11月至1月" in page
    assert "增城区荔枝专业合作社" in page
    assert 'fetchpriority="high"' in page
    assert "ab" * 16 + "-1280.webp" in page


def test_the_home_page_features_gi_products_with_lazy_thumbnails(app, client, people):
    product_of(app, people, title="新会陈皮 十年陈", is_gi=True, gi_name="新会陈皮")
    product_of(app, people, title="普通白菜")
    page = text(client.get("/"))
    assert "地理标志特产" in page
    assert "新会陈皮 十年陈" in page
    assert "普通白菜" not in page
    assert 'loading="lazy"' in page
    assert "-320.webp" in page
    assert "-1280" not in page
    assert 'href="/products?category=fruit"' in page


def test_the_cooperative_page_lists_its_products(app, client, people):
    product_of(app, people, title="仙进奉荔枝")
    product_of(app, people, title="藏起来的草稿", status=ProductStatus.DRAFT)
    page = text(client.get(f"/cooperatives/{people['coop']}"))
    assert "仙进奉荔枝" in page
    assert "藏起来的草稿" not in page


# --- bulk import -------------------------------------------------------------------------

HEADER = "商品名称,分类,单位,单价（元）,库存,地理标志名称,上市月份"


def csv_upload(*lines: str):
    return (io.BytesIO("\r\n".join(lines).encode("utf-8-sig")), "商品.csv")


def test_an_admin_imports_a_csv_as_drafts(app, as_admin, people):
    response = post_form(
        as_admin,
        f"/cooperatives/{people['coop']}/products/import",
        {
            "file": csv_upload(
                HEADER,
                "增城荔枝 挂绿 5斤,水果,箱,398,20,增城荔枝,6-7",
                "增城迟菜心 2斤,蔬菜,份,26.00,100,增城迟菜心,11-2",
            )
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    assert "已导入 2 个商品（草稿）" in text(as_admin.get(response.headers["Location"]))
    with app.app_context():
        products = db.session.scalars(select(Product).order_by(Product.id)).all()
        assert [(p.title, p.status, p.price_fen, p.harvest_months) for p in products] == [
            ("增城荔枝 挂绿 5斤", ProductStatus.DRAFT, 39800, [6, 7]),
            ("增城迟菜心 2斤", ProductStatus.DRAFT, 2600, [1, 2, 11, 12]),
        ]
        assert all(p.gtin for p in products)


def test_a_bad_import_lists_every_bad_row_and_imports_nothing(app, as_admin, people):
    response = post_form(
        as_admin,
        f"/cooperatives/{people['coop']}/products/import",
        {
            "file": csv_upload(
                HEADER,
                "好的一行,水果,箱,10,1,,",
                ",水果,箱,10,1,,",
                "价格不对,水果,箱,9.999,1,,",
                "单位不对,水果,吨,10,1,,13",
            )
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    page = text(response)
    assert "未导入任何商品" in page
    assert "第 3 行，商品名称：请填写此项。" in page
    assert "第 4 行，单价（元）：价格以元为单位，最多两位小数。" in page
    assert "第 5 行，单位：请从列表中选择单位。" in page
    assert "第 5 行，上市月份：月份为 1 到 12，例如 5-7 或 5,6,7。" in page
    assert "第 2 行" not in page
    assert count(app, Product) == 0


def test_a_file_with_unknown_columns_is_refused_with_the_reason(app, as_admin, people):
    response = post_form(
        as_admin,
        f"/cooperatives/{people['coop']}/products/import",
        {"file": csv_upload(HEADER + ",备注", "a,水果,箱,1,1,,,x")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "无法识别的列“备注”" in text(response)
    assert count(app, Product) == 0


def test_the_templates_download_in_the_users_language(as_admin, people):
    with as_admin.get(f"/cooperatives/{people['coop']}/products/import/template.csv") as csv:
        assert csv.headers["Content-Disposition"].startswith("attachment")
        assert csv.data.decode("utf-8-sig").startswith("商品名称,分类,单位")
    with as_admin.get(f"/cooperatives/{people['coop']}/products/import/template.xlsx") as xlsx:
        workbook = load_workbook(io.BytesIO(xlsx.data))
    assert workbook.sheetnames == ["商品", "填写说明"]
    assert workbook["填写说明"]["A2"].value == "商品名称"


def test_the_downloaded_xlsx_template_imports_once_filled_in(app, as_admin, people):
    with as_admin.get(f"/cooperatives/{people['coop']}/products/import/template.xlsx") as xlsx:
        workbook = load_workbook(io.BytesIO(xlsx.data))
    workbook["商品"].append(["徐闻菠萝 香水菠萝 10斤", "水果", "箱", 59.8, 300])
    buffer = io.BytesIO()
    workbook.save(buffer)
    buffer.seek(0)
    response = post_form(
        as_admin,
        f"/cooperatives/{people['coop']}/products/import",
        {"file": (buffer, "filled.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    with app.app_context():
        (product,) = db.session.scalars(select(Product)).all()
        assert (product.title, product.price_fen, product.stock) == (
            "徐闻菠萝 香水菠萝 10斤",
            5980,
            300,
        )


def test_a_too_large_import_says_so(app, as_admin, people):
    response = post_large(
        as_admin,
        f"/cooperatives/{people['coop']}/products/import",
        {"file": (io.BytesIO(b"x" * (13 * 1024 * 1024)), "big.csv")},
    )
    assert response.status_code == 413
    assert "文件太大，最大 10 MB。" in text(response)


def test_more_than_six_photos_are_refused_before_anything_is_stored(
    app, as_farmer, people, media_dir
):
    product_id = product_of(app, people)
    with app.app_context():
        product = db.session.get(Product, product_id)
        for i in range(4):
            ProductPhotoFactory(product=product, key=f"{i:032x}", position=i + 1)
        db.session.commit()
    response = post_form(
        as_farmer,
        f"/products/{product_id}/edit",
        {
            **LYCHEE,
            "stock_seen": "10",
            "stock": "10",
            "new_photos": [photo_upload(phone_jpeg()), photo_upload(phone_jpeg((300, 200)))],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "每个商品最多 6 张照片。" in text(response)
    assert media_files(media_dir) == []
