"""Search fixtures: the backend under test, and a small shop to search in.

The same behaviour tests run against every backend the test database supports: the
whoosh index (on any database), PostgreSQL full text (on PostgreSQL) and the SQL LIKE
fallback (no pinyin).
"""

from __future__ import annotations

import pytest
from flask import Flask

from market.catalog.models import Category, ProductStatus
from market.cooperatives.models import CooperativeStatus
from market.extensions import db
from market.search import services
from tests.conftest import TEST_DATABASE_URL
from tests.factories import CooperativeFactory, ProductFactory

ON_POSTGRES = TEST_DATABASE_URL.startswith("postgres")
INDEX_BACKENDS = ["whoosh", "postgres"] if ON_POSTGRES else ["whoosh"]
ALL_BACKENDS = [*INDEX_BACKENDS, "like"]


def use_backend(app: Flask, monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    """Make ``name`` the configured backend, starting from an empty index."""
    monkeypatch.setitem(app.config, "SEARCH_BACKEND", name)
    services.reset_warnings()
    with app.app_context():
        services.clear(db.session, name)
        db.session.commit()
    return name


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest, app: Flask, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_backend(app, monkeypatch, request.param)


@pytest.fixture(params=INDEX_BACKENDS)
def index_backend(
    request: pytest.FixtureRequest, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> str:
    return use_backend(app, monkeypatch, request.param)


def search(app: Flask, q: str, **kw) -> tuple[list[int], int, dict[int, str]]:
    """Product ids, total and highlights, as the catalog pages get them."""
    with app.app_context():
        products, total, highlights = services.search_products(db.session, q, **kw)
        return [p.id for p in products], total, highlights


def found(app: Flask, q: str, **kw) -> set[int]:
    ids, total, _ = search(app, q, per_page=100, **kw)
    assert total == len(ids)
    return set(ids)


@pytest.fixture
def shop(app: Flask, backend: str) -> dict[str, int]:
    """Products of three cooperatives in three cities, and some the public must not see.

    Created by factories and committed: the session hooks index them when the app
    context ends, exactly as for a product saved by a view.
    """
    with app.app_context():
        zengcheng = CooperativeFactory(name="增城挂绿专业合作社", division_code="440118")
        xinhui = CooperativeFactory(name="新会柑橘专业合作社", division_code="440705")
        zhanjiang = CooperativeFactory(name="湛江海鲜专业合作社", division_code="440800")
        pending = CooperativeFactory(
            name="待审核合作社", division_code="440118", status=CooperativeStatus.PENDING
        )
        products = {
            "lychee": ProductFactory(
                cooperative=zengcheng,
                title="增城挂绿荔枝 5斤装",
                category=Category.FRUIT,
                origin_code="440118",
            ),
            "honey": ProductFactory(
                cooperative=zengcheng,
                title="从化荔枝蜜 500克",
                category=Category.OTHER,
                origin_code="440117",
            ),
            "peel": ProductFactory(
                cooperative=xinhui,
                title="新会十年陈皮 250克",
                category=Category.DRIED,
                is_gi=True,
                gi_name="新会陈皮",
                origin_code="440705",
            ),
            "prawn": ProductFactory(
                cooperative=zhanjiang,
                title="湛江鲜活对虾 2斤",
                category=Category.AQUATIC,
                description="当天捕捞，顺丰冷链",
                origin_code="440800",
            ),
            "sold_out": ProductFactory(
                cooperative=zengcheng,
                title="增城荔枝干 已售罄",
                category=Category.DRIED,
                status=ProductStatus.SOLD_OUT,
                stock=0,
                origin_code="440118",
            ),
            "draft": ProductFactory(
                cooperative=zengcheng,
                title="荔枝 草稿",
                category=Category.FRUIT,
                status=ProductStatus.DRAFT,
            ),
            "archived": ProductFactory(
                cooperative=xinhui,
                title="陈皮 已下架",
                category=Category.DRIED,
                status=ProductStatus.ARCHIVED,
            ),
            "unapproved": ProductFactory(
                cooperative=pending, title="荔枝 待审核", category=Category.FRUIT
            ),
        }
        db.session.commit()
        ids = {name: product.id for name, product in products.items()}
        ids.update(zengcheng=zengcheng.id, xinhui=xinhui.id, pending=pending.id)
        return ids
