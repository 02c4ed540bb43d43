"""What a buyer gets from a search, on every backend."""

from __future__ import annotations

import pytest

from market.catalog.models import Category
from market.extensions import db
from tests.factories import CooperativeFactory, ProductFactory
from tests.search.conftest import INDEX_BACKENDS, found, search


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("荔枝", {"lychee", "honey", "sold_out"}),
        ("陈皮", {"peel"}),
        ("对虾", {"prawn"}),
        ("挂绿荔枝", {"lychee"}),
        ("虾", {"prawn"}),
    ],
)
def test_two_character_words_are_found(app, shop, q, expected):
    assert found(app, q) == {shop[name] for name in expected}


def test_drafts_archived_and_unapproved_products_are_never_returned(app, shop):
    hidden = {shop["draft"], shop["archived"], shop["unapproved"]}
    for q in ("荔枝", "陈皮", "草稿", "已下架", "待审核"):
        assert not found(app, q) & hidden
    # Sold out is still public, as on the browse pages.
    assert shop["sold_out"] in found(app, "荔枝干")


def test_no_match_and_empty_query(app, shop):
    assert search(app, "榴莲") == ([], 0, {})
    assert search(app, "  ，。 ") == ([], 0, {})


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("lizhi", {"lychee", "honey", "sold_out"}),
        ("lz", {"lychee", "honey", "sold_out"}),
        ("LiZhi", {"lychee", "honey", "sold_out"}),
        ("lizh", {"lychee", "honey", "sold_out"}),
        ("chenpi", {"peel"}),
        ("cp", {"peel"}),
        ("duixia", {"prawn"}),
        ("lizhi 500", {"honey"}),
    ],
)
@pytest.mark.parametrize("backend", INDEX_BACKENDS, indirect=True)
def test_pinyin_in_full_and_initials(app, shop, q, expected):
    assert found(app, q) == {shop[name] for name in expected}


@pytest.mark.parametrize("backend", ["like"], indirect=True)
def test_the_like_fallback_knows_no_pinyin(app, shop):
    assert found(app, "荔枝") == {shop["lychee"], shop["honey"], shop["sold_out"]}
    assert found(app, "lizhi") == set()


def test_the_cooperative_name_is_searched_too(app, shop):
    # 增城挂绿专业合作社 sells the lychees and the honey; only one title says 挂绿.
    ids, total, _ = search(app, "挂绿")
    assert set(ids) == {shop["lychee"], shop["honey"], shop["sold_out"]}
    assert ids[0] == shop["lychee"]  # the title match first
    assert total == 3


def test_title_ranks_above_gi_name_cooperative_and_description(app, backend):
    with app.app_context():
        coop = CooperativeFactory(name="高州龙眼专业合作社", division_code="440981")
        plain = CooperativeFactory(name="茂名水果专业合作社", division_code="440900")
        ids = {
            "description": ProductFactory(
                cooperative=plain, title="新会柑普茶", description="可搭配龙眼干冲泡"
            ).id,
            "cooperative": ProductFactory(cooperative=coop, title="高州桂圆 2斤").id,
            "gi_name": ProductFactory(
                cooperative=plain, title="桂圆肉 500克", is_gi=True, gi_name="高州龙眼"
            ).id,
            "title": ProductFactory(cooperative=plain, title="石硖龙眼 5斤").id,
        }
        db.session.commit()
    ranked, total, _ = search(app, "龙眼")
    assert total == 4
    assert ranked[0] == ids["title"]
    if backend != "like":  # LIKE only puts title matches first
        assert ranked == [ids["title"], ids["gi_name"], ids["cooperative"], ids["description"]]
        pinyin, _, _ = search(app, "longyan")
        assert pinyin[0] == ids["title"]


def test_category_city_county_and_cooperative_filters(app, shop):
    every = {shop["lychee"], shop["honey"], shop["sold_out"]}
    assert found(app, "荔枝", category="fruit") == {shop["lychee"]}
    assert found(app, "荔枝", category=Category.DRIED) == {shop["sold_out"]}
    assert found(app, "荔枝", category="tea") == set()
    assert found(app, "荔枝", city_code="440100") == every
    assert found(app, "荔枝", county_code="440118") == {shop["lychee"], shop["sold_out"]}
    assert found(app, "荔枝", city_code="440100", county_code="440117") == {shop["honey"]}
    assert found(app, "荔枝", city_code="440700") == set()
    assert found(app, "陈皮", city_code="440700", category="dried") == {shop["peel"]}
    assert found(app, "荔枝", cooperative_id=shop["zengcheng"]) == every
    assert found(app, "荔枝", cooperative_id=shop["xinhui"]) == set()


def test_highlights_mark_the_matches_and_escape_the_title(app, backend):
    with app.app_context():
        product = ProductFactory(title="增城荔枝 <b>特级</b> & 礼盒")
        db.session.commit()
        product_id = product.id
    _ids, _total, highlights = search(app, "荔枝")
    assert highlights == {product_id: "增城<mark>荔枝</mark> &lt;b&gt;特级&lt;/b&gt; &amp; 礼盒"}
    if backend != "like":
        _ids, _total, by_pinyin = search(app, "lizhi")
        assert by_pinyin[product_id] == highlights[product_id]


def test_pages_and_totals(app, backend):
    with app.app_context():
        coop = CooperativeFactory()
        for n in range(45):
            ProductFactory(cooperative=coop, title=f"增城荔枝 {n}号")
        db.session.commit()
    pages = [search(app, "荔枝", page=page, per_page=20) for page in (1, 2, 3, 4)]
    assert [len(ids) for ids, _total, _h in pages] == [20, 20, 5, 0]
    assert {total for _ids, total, _h in pages} == {45}
    seen = [i for ids, _total, _h in pages for i in ids]
    assert len(set(seen)) == 45
    # Far past the deepest page an index serves: no rows, the total still right.
    assert search(app, "荔枝", page=10_000, per_page=20)[:2] == ([], 45)


def test_products_come_with_photos_and_cooperative_loaded(app, shop):
    with app.app_context():
        from market.search import search_products

        products, _total, _h = search_products(db.session, "陈皮")
        (peel,) = products
        assert peel.cooperative.name == "新会柑橘专业合作社"
        assert peel.photos == []
