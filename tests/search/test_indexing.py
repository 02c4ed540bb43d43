"""Keeping the index current: after the catalog's own views, after cooperative changes,
by the CLI rebuild; and answering anyway when the index is broken."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text, update

from market.catalog.models import Product, ProductStatus
from market.extensions import db
from market.search import services, tasks
from market.search_engine import SearchDoc, WhooshIndex
from tests.catalog.photos import phone_jpeg
from tests.conftest import login, post_form
from tests.factories import (
    CooperativeFactory,
    ProductFactory,
    ProductPhotoFactory,
    coop_admin,
    platform_admin,
)
from tests.search.conftest import ON_POSTGRES, found, search, use_backend


@pytest.fixture
def seller(app, client, index_backend):
    """A cooperative admin, signed in, with one lychee product on sale (with a photo)."""
    with app.app_context():
        coop = CooperativeFactory(name="增城区水果专业合作社", division_code="440118")
        coop_admin(coop, phone="13700137001")
        product = ProductFactory(cooperative=coop, title="增城荔枝 糯米糍 5斤装", stock=40)
        ProductPhotoFactory(product=product, key="ab" * 16)
        db.session.commit()
        ids = {"coop": coop.id, "product": product.id}
    login(client, "13700137001")
    return ids


def edit_form(**changes) -> dict:
    return {
        "title": "增城荔枝 糯米糍 5斤装",
        "category": "fruit",
        "price": "128.00",
        "unit": "箱",
        "stock": "40",
        "stock_seen": "40",
        "description": "",
        "origin_code": "440118",
        "origin_detail": "",
        "cover": "ab" * 16,
        **changes,
    }


def test_an_edit_through_the_catalog_page_updates_the_index(app, client, seller, index_backend):
    product_id = seller["product"]
    assert found(app, "荔枝") == {product_id}
    response = post_form(
        client, f"/products/{product_id}/edit", edit_form(title="新会陈皮 十年陈 250克")
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert found(app, "荔枝") == set()
    assert found(app, "lizhi") == set()
    assert found(app, "陈皮") == {product_id}
    assert found(app, "chenpi") == {product_id}
    # The description is searched too, below titles.
    post_form(client, f"/products/{product_id}/edit", edit_form(description="顺丰冷链 对虾"))
    assert found(app, "对虾") == {product_id}


def test_archiving_removes_the_product_and_putting_it_on_sale_brings_it_back(
    app, client, seller, index_backend
):
    product_id = seller["product"]
    response = post_form(client, f"/products/{product_id}/archive", {})
    assert response.status_code == 303
    assert found(app, "荔枝") == set()
    assert found(app, "lz") == set()
    response = post_form(client, f"/products/{product_id}/publish", {})
    assert response.status_code == 303
    assert found(app, "lz") == {product_id}


def test_a_listing_from_the_phone_form_is_searchable_at_once(app, client, seller, index_backend):
    response = post_form(
        client,
        "/products/new",
        {
            "title": "湛江鲜活对虾 2斤",
            "category": "aquatic",
            "price": "88",
            "unit": "箱",
            "stock": "10",
            "photo": (io.BytesIO(phone_jpeg((400, 300))), "IMG_0001.jpg"),
            "publish": "1",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    new_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert found(app, "duixia") == {new_id}
    page = client.get("/products?q=对虾").get_data(as_text=True)
    assert "<mark>对虾</mark>" in page
    api = client.get("/api/v1/products?q=dx").get_json()
    assert [item["id"] for item in api["data"]] == [new_id]
    assert api["data"][0]["highlight"] == "湛江鲜活<mark>对虾</mark> 2斤"


def test_cooperative_rename_approval_and_rejection_reach_the_index(app, client, index_backend):
    with app.app_context():
        coop = CooperativeFactory(name="增城荔枝合作社", division_code="440118")
        pending = CooperativeFactory(name="从化蜂蜜合作社", division_code="440117")
        from market.cooperatives.models import CooperativeStatus

        pending.status = CooperativeStatus.PENDING
        product = ProductFactory(cooperative=coop, title="桂味 5斤")
        waiting = ProductFactory(cooperative=pending, title="荔枝蜜 500克")
        platform_admin(phone="13900139001")
        db.session.commit()
        coop_id, pending_id, product_id, waiting_id = coop.id, pending.id, product.id, waiting.id
    assert found(app, "荔枝") == {product_id}  # by the cooperative's name
    with app.app_context():
        from market.cooperatives.models import Cooperative

        db.session.get(Cooperative, coop_id).name = "增城桂味合作社"
        db.session.commit()
    assert found(app, "荔枝") == set()
    assert found(app, "guiwei") == {product_id}

    login(client, "13900139001")
    response = post_form(client, f"/admin/cooperatives/{pending_id}/approve", {})
    assert response.status_code == 303
    assert found(app, "蜂蜜") == {waiting_id}
    assert found(app, "fengmi") == {waiting_id}


def test_a_product_deleted_from_the_database_leaves_the_index(app, index_backend):
    with app.app_context():
        product = ProductFactory(title="英德红茶 英红九号")
        db.session.commit()
        product_id = product.id
    assert found(app, "红茶") == {product_id}
    with app.app_context():
        db.session.delete(db.session.get(Product, product_id))
        db.session.commit()
    assert found(app, "红茶") == set()
    with app.app_context():
        assert services.backend().count(db.session) == 0


def test_the_indexing_task_is_idempotent(app, index_backend):
    with app.app_context():
        a = ProductFactory(title="梅州金柚 2个")
        b = ProductFactory(title="梅州金柚 礼盒", status=ProductStatus.ARCHIVED)
        db.session.commit()
        ids = [a.id, b.id, 999_999]
    for _ in range(2):
        assert tasks.index_products.delay(ids).get() == 1
        assert tasks.index_product.delay(ids[0]).get() == 1
    assert found(app, "金柚") == {ids[0]}
    with app.app_context():
        assert services.backend().count(db.session) == 1


def test_a_stale_entry_is_never_shown_and_gets_corrected(app, index_backend):
    with app.app_context():
        product = ProductFactory(title="徐闻菠萝 10斤")
        db.session.commit()
        product_id = product.id
    with app.app_context():
        # A change the session never saw (bulk UPDATE): the index still lists it.
        db.session.execute(
            update(Product).where(Product.id == product_id).values(status=ProductStatus.DRAFT)
        )
        db.session.commit()
        assert services.backend().count(db.session) == 1
    ids, _total, _h = search(app, "菠萝")
    assert ids == []  # never shown, though the index still had it
    with app.app_context():
        assert services.backend().count(db.session) == 0  # and now corrected


def test_rebuild_from_the_command_line(app, index_backend):
    with app.app_context():
        coop = CooperativeFactory()
        for n in range(30):
            ProductFactory(cooperative=coop, title=f"新会陈皮 {n}号")
        ProductFactory(cooperative=coop, title="陈皮 草稿", status=ProductStatus.DRAFT)
        db.session.commit()
    with app.app_context():
        services.clear(db.session)
        db.session.commit()
    assert found(app, "陈皮") == set()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["search", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "30 products searchable" in result.output
    assert len(found(app, "chenpi")) == 30
    status = runner.invoke(args=["search", "status"])
    assert status.exit_code == 0, status.output
    assert f"backend: {index_backend}" in status.output
    assert "index: 30 products; public products in the database: 30" in status.output


def test_status_says_when_the_index_is_out_of_step(app, index_backend):
    with app.app_context():
        ProductFactory(title="清远鸡 1只")
        db.session.commit()
    with app.app_context():
        services.clear(db.session)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["search", "status"])
    assert "index: 0 products; public products in the database: 1" in result.output
    assert "run `flask search rebuild`" in result.output


# -------------------------------------------------------------------------- fallback


@pytest.fixture
def whoosh(app, monkeypatch):
    use_backend(app, monkeypatch, "whoosh")
    with app.app_context():
        coop = CooperativeFactory(name="湛江海鲜专业合作社")
        ids = [ProductFactory(cooperative=coop, title=t).id for t in ("湛江对虾 2斤", "生蚝 1打")]
        db.session.commit()
    assert found(app, "对虾") == {ids[0]}
    return ids


def test_a_missing_index_still_answers_by_like_and_logs_why(app, whoosh, caplog):
    shutil.rmtree(app.config["SEARCH_INDEX_DIR"])
    caplog.set_level(logging.WARNING, logger="market.search")
    assert found(app, "对虾") == {whoosh[0]}
    assert found(app, "湛江") == set(whoosh)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # not once per search
    assert "whoosh failed, answering with SQL LIKE" in warnings[0].getMessage()
    assert app.config["SEARCH_INDEX_DIR"] in warnings[0].getMessage()
    # Updates can't be written meanwhile; they say so and wait for the rebuild.
    with app.app_context():
        ProductFactory(title="湛江对虾 5斤")
        db.session.commit()
    assert "Run `flask search rebuild`" in caplog.text
    result = app.test_cli_runner().invoke(args=["search", "rebuild"])
    assert "3 products searchable" in result.output
    assert len(found(app, "duixia")) == 2  # pinyin again: the index is back


# whoosh 2.7 leaves the table-of-contents file open when it can't parse it.
@pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")
def test_a_corrupt_index_still_answers_by_like(app, whoosh, caplog):
    path = Path(app.config["SEARCH_INDEX_DIR"])
    for toc in path.glob("*.toc"):
        toc.write_bytes(b"\x00garbage")
    for segment in path.glob("*.seg"):
        segment.write_bytes(b"\x00garbage")
    # The process's cached index object is dropped too, as after a restart.
    app.extensions["search_whoosh"].clear()
    with caplog.at_level(logging.WARNING, logger="market.search"):
        assert found(app, "对虾") == {whoosh[0]}
        page = app.test_client().get("/products?q=对虾")
    assert page.status_code == 200
    assert "<mark>对虾</mark>" in page.get_data(as_text=True)
    assert "Could not open the search index" in caplog.text


@pytest.mark.skipif(not ON_POSTGRES, reason="needs TEST_DATABASE_URL=postgresql...")
def test_a_failing_postgres_query_still_answers_by_like(app, monkeypatch, caplog):
    use_backend(app, monkeypatch, "postgres")
    with app.app_context():
        product_id = ProductFactory(title="英德红茶 英红九号").id
        db.session.commit()
    assert found(app, "hongcha") == {product_id}
    with app.app_context():
        db.session.execute(text("ALTER TABLE market_search_documents RENAME TO search_away"))
        db.session.commit()
    try:
        # The failed query is rolled back to a savepoint: LIKE runs in the same
        # transaction, and the session stays usable.
        with caplog.at_level(logging.WARNING, logger="market.search"), app.app_context():
            products, total, _h = services.search_products(db.session, "红茶")
            assert [p.id for p in products] == [product_id]
            assert total == 1
            assert db.session.get(Product, product_id).title == "英德红茶 英红九号"
        assert "postgres failed, answering with SQL LIKE" in caplog.text
    finally:
        with app.app_context():
            db.session.execute(text("ALTER TABLE search_away RENAME TO market_search_documents"))
            db.session.commit()


def test_the_like_backend_needs_no_index_and_sends_no_tasks(app, monkeypatch):
    use_backend(app, monkeypatch, "like")
    sent = []
    monkeypatch.setattr(tasks.index_products, "apply_async", lambda *a, **k: sent.append(a))
    with app.app_context():
        product_id = ProductFactory(title="梅州金柚 2个").id
        db.session.commit()
    assert found(app, "金柚") == {product_id}
    assert sent == []


# ------------------------------------------------------------------------ configuration


def test_auto_is_postgres_on_postgresql_and_whoosh_elsewhere(app):
    with app.app_context():
        assert services.backend_name() == ("postgres" if ON_POSTGRES else "whoosh")


@pytest.mark.parametrize("name", ["elastic"] if ON_POSTGRES else ["elastic", "postgres"])
def test_a_backend_the_database_cannot_have_is_refused_at_startup(app_config, name):
    from market.app import create_app

    with pytest.raises(services.SearchConfigError, match="SEARCH_BACKEND"):
        create_app({**app_config, "SEARCH_BACKEND": name})


def test_the_whoosh_index_also_filters_by_cooperative(tmp_path):
    with WhooshIndex(tmp_path / "ix") as ix:
        ix.create()
        ix.upsert(
            [
                SearchDoc(id=1, title="荔枝", cooperative_id=7),
                SearchDoc(id=2, title="荔枝", cooperative_id=8),
            ]
        )
        assert ix.search("荔枝", cooperative_id=7).ids == [1]
        assert ix.search("荔枝", cooperative_id=9).total == 0
        assert ix.doc_count() == 2


def test_a_parallel_rebuild_finds_the_same_as_a_serial_one(tmp_path):
    # In a fresh interpreter: whoosh's multiprocessing writer forks, which a test
    # process with threads (the browser tests' live server) should not do.
    script = f"""
import json
from pathlib import Path
from market.search_engine import SearchDoc, WhooshIndex
docs = [SearchDoc(id=i, title=t + f" {{i}}号", cooperative="广东农产品合作社")
        for i, t in enumerate(["增城荔枝", "新会陈皮", "湛江对虾"] * 300, start=1)]
docs.append(SearchDoc(id=4, title="重复的编号"))
found = {{}}
for procs in (1, 2):
    ix = WhooshIndex(Path({str(tmp_path)!r}) / f"p{{procs}}")
    assert ix.rebuild(docs, procs=procs) == 900
    found[procs] = {{q: sorted(ix.search(q, per_page=1000).ids) for q in ("荔枝", "cp", "对虾")}}
    found[procs]["segments"] = len(list(ix.path.glob("*.seg")))
    ix.close()
print(json.dumps(found))
"""
    proc = subprocess.run(  # noqa: S603 (this interpreter, our code)
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    serial, parallel = found["1"], found["2"]
    assert serial.pop("segments") == 1
    assert parallel.pop("segments") == 2
    assert serial == parallel
    assert len(serial["荔枝"]) == 300
    assert 4 in serial["荔枝"]  # the first of the repeated ids won
