"""Catalog services: listing, GTINs, status rules, stock, photos, browsing, import."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from market.catalog import services
from market.catalog.models import Category, Product, ProductStatus
from market.catalog.services import PhotoRef, ProductInput
from market.cooperatives.models import CooperativeStatus
from market.errors import NotFoundError
from market.extensions import db
from tests.factories import (
    CooperativeFactory,
    ProductFactory,
    ProductPhotoFactory,
    buyer,
    coop_admin,
    farmer,
)
from traceability.codes import is_valid_gtin

PREFIX = "6970000"
PHOTO = PhotoRef("a" * 32, 1280, 960)


def lychee(**changes) -> ProductInput:
    values = {
        "title": "增城荔枝 糯米糍 5斤装",
        "category": "fruit",
        "unit": "箱",
        "price_fen": 12800,
        "stock": 40,
    }
    return ProductInput(**{**values, **changes})


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.rollback()


@pytest.fixture
def coop(ctx):
    return CooperativeFactory(division_code="440118")


def test_a_farmer_lists_a_product_on_sale_with_a_gtin_from_its_id(coop):
    grower = farmer(coop)
    product = services.create_product(
        db.session, grower.id, lychee(), company_prefix=PREFIX, photos=[PHOTO], publish=True
    )
    assert product.status is ProductStatus.ON_SALE
    assert product.farmer_id == grower.id
    assert product.cooperative_id == coop.id
    assert product.item_ref == product.id
    assert product.gtin.startswith("0" + PREFIX)
    assert int(product.gtin[8:13]) == product.id
    assert is_valid_gtin(product.gtin)
    assert product.origin_code == "440118"
    assert [p.key for p in product.photos] == [PHOTO.key]


def test_a_cooperative_admins_product_belongs_to_no_farmer(coop):
    admin = coop_admin(coop)
    product = services.create_product(db.session, admin.id, lychee(), company_prefix=PREFIX)
    assert product.farmer_id is None
    assert product.status is ProductStatus.DRAFT


def test_when_the_id_no_longer_fits_the_prefix_the_listing_is_refused(coop):
    grower = farmer(coop)
    # A 12-digit company prefix leaves no digit for the item reference.
    with pytest.raises(services.GtinRangeExhaustedError):
        services.create_product(db.session, grower.id, lychee(), company_prefix="697000000001")


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"title": "   "}, "title", "required"),
        ({"title": "荔" * 61}, "title", "too_long"),
        ({"category": "candy"}, "category", "invalid_category"),
        ({"unit": "吨"}, "unit", "invalid_unit"),
        ({"price_fen": 0}, "price", "invalid_price"),
        ({"price_fen": services.MAX_PRICE_FEN + 1}, "price", "price_too_high"),
        ({"stock": -1}, "stock", "invalid_stock"),
        ({"is_gi": True, "gi_name": ""}, "gi_name", "gi_name_required"),
        ({"certifications": ["halal"]}, "certifications", "invalid_certification"),
        ({"harvest_months": [0]}, "harvest_months", "invalid_month"),
        ({"origin_code": "110101"}, "origin_code", "invalid_division"),
    ],
)
def test_bad_input_names_the_field_and_saves_nothing(coop, changes, field, code):
    grower = farmer(coop)
    with pytest.raises(services.InvalidProductError) as excinfo:
        services.create_product(db.session, grower.id, lychee(**changes), company_prefix=PREFIX)
    assert services.Problem(field, code) in excinfo.value.problems
    assert db.session.scalar(select(func.count()).select_from(Product)) == 0


def test_every_problem_is_reported_at_once(coop):
    grower = farmer(coop)
    with pytest.raises(services.InvalidProductError) as excinfo:
        services.create_product(
            db.session, grower.id, lychee(title="", unit="吨", stock=-5), company_prefix=PREFIX
        )
    assert {p.field for p in excinfo.value.problems} == {"title", "unit", "stock"}


def test_putting_on_sale_needs_a_photo_and_stock(coop):
    grower = farmer(coop)
    with pytest.raises(services.InvalidProductError) as excinfo:
        services.create_product(
            db.session, grower.id, lychee(stock=0), company_prefix=PREFIX, publish=True
        )
    assert set(excinfo.value.problems) == {
        services.Problem("photo", "photo_required"),
        services.Problem("stock", "stock_required"),
    }


def test_details_are_normalised(coop):
    grower = farmer(coop)
    product = services.create_product(
        db.session,
        grower.id,
        lychee(
            title="  增城荔枝\t挂绿  ",
            certifications=["organic", "green_food", "organic"],
            harvest_months=[7, 6, 7],
            is_gi=True,
            gi_name=" 增城荔枝 ",
            origin_code="440118",
            origin_detail=" 仙村镇 ",
        ),
        company_prefix=PREFIX,
    )
    assert product.title == "增城荔枝 挂绿"
    assert product.certifications == ["green_food", "organic"]
    assert product.harvest_months == [6, 7]
    assert (product.is_gi, product.gi_name, product.origin_detail) == (True, "增城荔枝", "仙村镇")


def test_gi_name_is_dropped_when_the_product_is_not_gi(coop):
    grower = farmer(coop)
    product = services.create_product(
        db.session, grower.id, lychee(is_gi=False, gi_name="增城荔枝"), company_prefix=PREFIX
    )
    assert product.gi_name == ""


def test_buyers_and_members_of_unapproved_cooperatives_cannot_list(ctx):
    pending = CooperativeFactory(status=CooperativeStatus.PENDING)
    for user in (buyer(), farmer(pending)):
        with pytest.raises(services.NotASellerError):
            services.create_product(db.session, user.id, lychee(), company_prefix=PREFIX)


def test_setting_stock_to_zero_sells_out_and_back_puts_on_sale(coop):
    product = ProductFactory(cooperative=coop, stock=5)
    services.set_stock(db.session, product.id, 0)
    assert (product.stock, product.status) == (0, ProductStatus.SOLD_OUT)
    services.set_stock(db.session, product.id, 12)
    assert (product.stock, product.status) == (12, ProductStatus.ON_SALE)


def test_stock_is_not_overwritten_when_an_order_took_some_meanwhile(coop):
    product = ProductFactory(cooperative=coop, stock=10)
    # The seller's page showed 10; an order then takes 3 with a conditional UPDATE.
    db.session.execute(Product.__table__.update().where(Product.id == product.id).values(stock=7))
    with pytest.raises(services.StockChangedError) as excinfo:
        services.set_stock(db.session, product.id, 20, expected=10)
    assert excinfo.value.current == 7
    services.set_stock(db.session, product.id, 20, expected=7)
    assert product.stock == 20


def test_drafts_keep_their_status_whatever_the_stock(coop):
    product = ProductFactory(cooperative=coop, status=ProductStatus.DRAFT, stock=3)
    services.set_stock(db.session, product.id, 0)
    assert product.status is ProductStatus.DRAFT


def test_stock_of_a_missing_product_is_not_found(ctx):
    with pytest.raises(NotFoundError):
        services.set_stock(db.session, 999_999, 1)


def test_editing_leaves_the_stock_alone_when_the_seller_did_not_change_it(coop):
    product = ProductFactory(cooperative=coop, stock=10)
    db.session.execute(Product.__table__.update().where(Product.id == product.id).values(stock=8))
    services.update_product(db.session, product.id, lychee(title="新标题", stock=10), stock_seen=10)
    db.session.refresh(product)
    assert (product.title, product.stock) == ("新标题", 8)


def test_publish_needs_a_photo_and_archive_takes_off_sale(coop):
    product = ProductFactory(cooperative=coop, status=ProductStatus.DRAFT)
    with pytest.raises(services.InvalidProductError):
        services.publish(db.session, product.id)
    ProductPhotoFactory(product=product)
    db.session.refresh(product)
    services.publish(db.session, product.id)
    assert product.status is ProductStatus.ON_SALE
    services.archive(db.session, product.id)
    assert product.status is ProductStatus.ARCHIVED


def test_publishing_with_no_stock_is_refused(coop):
    product = ProductFactory(cooperative=coop, status=ProductStatus.ARCHIVED, stock=0)
    ProductPhotoFactory(product=product)
    db.session.refresh(product)
    with pytest.raises(services.InvalidProductError) as excinfo:
        services.publish(db.session, product.id)
    assert excinfo.value.problems == [services.Problem("stock", "stock_required")]


def test_photos_are_reordered_capped_at_six_and_never_all_removed_while_on_sale(coop):
    product = ProductFactory(cooperative=coop)
    refs = [PhotoRef(f"{i:032x}", 100, 100) for i in range(1, 8)]
    with pytest.raises(services.InvalidProductError):
        services.set_photos(db.session, product.id, refs)
    services.set_photos(db.session, product.id, refs[:3])
    services.set_photos(db.session, product.id, [refs[2], refs[0], refs[2]])
    assert [p.key for p in product.photos] == [refs[2].key, refs[0].key]
    assert [p.position for p in product.photos] == [0, 1]
    with pytest.raises(services.InvalidProductError):
        services.set_photos(db.session, product.id, [])


def test_the_public_sees_only_listed_products_of_approved_cooperatives(ctx):
    approved = CooperativeFactory()
    pending = CooperativeFactory(status=CooperativeStatus.PENDING)
    visible = ProductFactory(cooperative=approved)
    sold_out = ProductFactory(cooperative=approved, status=ProductStatus.SOLD_OUT, stock=0)
    ProductFactory(cooperative=approved, status=ProductStatus.DRAFT)
    ProductFactory(cooperative=approved, status=ProductStatus.ARCHIVED)
    hidden = ProductFactory(cooperative=pending)
    page = services.public_products(db.session)
    # On sale first, then sold out.
    assert [p.id for p in page.items] == [visible.id, sold_out.id]
    assert services.public_product(db.session, hidden.id) is None


def test_browse_filters_by_category_city_county_cooperative_and_gi(ctx):
    xinhui = CooperativeFactory(division_code="440705")
    yingde = CooperativeFactory(division_code="441881")
    peel = ProductFactory(cooperative=xinhui, is_gi=True, gi_name="新会陈皮")
    other_county = ProductFactory(cooperative=xinhui, origin_code="440703")
    tea = ProductFactory(cooperative=yingde, category=Category.TEA)

    def ids(**filters):
        return {p.id for p in services.public_products(db.session, **filters).items}

    assert ids(category=Category.TEA) == {tea.id}
    assert ids(city_code="440700") == {peel.id, other_county.id}
    assert ids(county_code="440705") == {peel.id}
    assert ids(cooperative_id=yingde.id) == {tea.id}
    assert ids(gi_only=True) == {peel.id}
    assert ids(city_code="441800", county_code="440705") == set()


def test_pages_are_counted(ctx):
    coop = CooperativeFactory()
    for _ in range(5):
        ProductFactory(cooperative=coop)
    page = services.public_products(db.session, page=2, per_page=2)
    assert (page.total, page.pages, len(page.items), page.has_prev, page.has_next) == (
        5,
        3,
        2,
        True,
        True,
    )
    assert services.public_products(db.session, per_page=1000).per_page == services.MAX_PER_PAGE


def test_a_farmer_manages_their_own_products_an_admin_the_cooperatives(coop):
    first, second = farmer(coop), farmer(coop)
    admin = coop_admin(coop)
    mine = ProductFactory(cooperative=coop, farmer=first, status=ProductStatus.DRAFT)
    theirs = ProductFactory(cooperative=coop, farmer=second)
    assert [p.id for p in services.seller_products(db.session, first.id)] == [mine.id]
    assert {p.id for p in services.seller_products(db.session, admin.id)} == {mine.id, theirs.id}
    assert services.seller_products(db.session, admin.id, ProductStatus.DRAFT) == [mine]
    assert services.seller_products(db.session, buyer().id) == []


def test_import_is_all_or_nothing_and_reports_every_bad_row(coop):
    admin = coop_admin(coop)
    rows = [
        (2, lychee(title="一号"), []),
        (3, lychee(title="", price_fen=0), [services.Problem("price", "invalid_price")]),
        (4, lychee(title="三号", unit="吨"), []),
    ]
    with pytest.raises(services.ImportRejectedError) as excinfo:
        services.import_products(db.session, admin.id, coop.id, rows, company_prefix=PREFIX)
    assert excinfo.value.problems == [
        services.RowProblem(3, "price", "invalid_price"),
        services.RowProblem(3, "title", "required"),
        services.RowProblem(4, "unit", "invalid_unit"),
    ]
    assert db.session.scalar(select(func.count()).select_from(Product)) == 0


def test_import_creates_drafts_with_gtins(coop):
    admin = coop_admin(coop)
    rows = [(2, lychee(title="一号"), []), (3, lychee(title="二号"), [])]
    products = services.import_products(db.session, admin.id, coop.id, rows, company_prefix=PREFIX)
    assert [p.status for p in products] == [ProductStatus.DRAFT] * 2
    assert all(is_valid_gtin(p.gtin) and p.item_ref == p.id for p in products)


def test_only_the_cooperatives_admin_imports(coop):
    other = CooperativeFactory()
    with pytest.raises(services.NotASellerError):
        services.import_products(db.session, farmer(coop).id, coop.id, [], company_prefix=PREFIX)
    with pytest.raises(services.NotASellerError):
        services.import_products(
            db.session, coop_admin(other).id, coop.id, [], company_prefix=PREFIX
        )


def test_the_home_page_features_one_gi_product_per_cooperative(ctx):
    first, second = CooperativeFactory(), CooperativeFactory()
    older = ProductFactory(cooperative=first, is_gi=True, gi_name="新会陈皮")
    newer = ProductFactory(cooperative=first, is_gi=True, gi_name="新会陈皮")
    other = ProductFactory(cooperative=second, is_gi=True, gi_name="英德红茶")
    ProductFactory(cooperative=second, is_gi=False)
    ProductFactory(cooperative=second, is_gi=True, status=ProductStatus.SOLD_OUT, stock=0)
    featured = services.featured_gi(db.session)
    assert [p.id for p in featured] == [other.id, newer.id]
    assert older not in featured
    assert services.featured_gi(db.session, limit=1) == [other]
