"""Stock per batch: orders take the oldest batch first, give units back to the same
batches, and the product, order and batch pages show where the units come from."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import delete, select, update

from market.auth.models import User
from market.catalog import services as catalog
from market.catalog.models import Product
from market.extensions import db
from market.orders import services as orders
from market.orders.models import Order, OrderLine, OrderStatus
from market.payments import services as payments
from market.types import utcnow
from tests.conftest import login, post_form
from tests.orders.helpers import ADDRESS
from tests.payments.helpers import open_cashier, press
from tests.traceability.conftest import ADMIN_PHONE, BUYER_PHONE, days_ago, make_batch
from traceability import services, stock
from traceability.models import (
    Batch,
    CodeKind,
    InspectionKind,
    InspectionResult,
    OrderLineBatch,
    TraceCode,
)

PRICE = 12800


@pytest.fixture
def lots(app, world):
    """The world's batch (harvested 10 days ago) with 3 units on sale, and a newer batch
    (harvested yesterday) with 5: the product has 8."""
    with app.app_context():
        services.put_on_sale(db.session, world.batch, 3)
        newer = make_batch(app, world.coop, world.product, name="2026年大红柑第二批")
        newer.harvest_date = days_ago(1)
        db.session.flush()
        services.put_on_sale(db.session, newer.id, 5)
        buyer = db.session.scalars(select(User.id).where(User.phone == BUYER_PHONE)).one()
        db.session.commit()
        return {"old": world.batch, "new": newer.id, "buyer": buyer, "product": world.product}


def _checkout(app, buyer_id: int, product_id: int, quantity: int) -> int:
    with app.app_context():
        [placed] = orders.place_orders(
            db.session, buyer_id, [orders.LineRequest(product_id, quantity, PRICE)], ADDRESS
        )
        order_id = placed.id
        db.session.commit()
        return order_id


def _left(app, *batch_ids: int) -> list[int]:
    with app.app_context():
        return [db.session.get(Batch, batch_id).stock_left for batch_id in batch_ids]


def _product_stock(app, product_id: int) -> int:
    with app.app_context():
        return db.session.get(Product, product_id).stock


def _allocations(app, order_id: int) -> list[tuple[int, int, bool]]:
    """(batch id, units, given back) of the order's lines, oldest batch first."""
    with app.app_context():
        rows = db.session.execute(
            select(OrderLineBatch.batch_id, OrderLineBatch.quantity, OrderLineBatch.returned_at)
            .join(OrderLine, OrderLine.id == OrderLineBatch.order_line_id)
            .join(Batch, Batch.id == OrderLineBatch.batch_id)
            .where(OrderLine.order_id == order_id)
            .order_by(Batch.harvest_date, Batch.id)
        ).all()
        return [(batch_id, units, returned is not None) for batch_id, units, returned in rows]


def _pay(app, client, order_id: int) -> None:
    with app.app_context():
        intent = orders.prepare_payment(db.session, order_id)
        intent = payments.confirm_intent(
            db.session, intent.id, return_url="http://yuenong.test/paid", device="mobile"
        )
        url = payments.redirect_url(intent)
        db.session.commit()
    press(client, open_cashier(client, url), "pay")
    with app.app_context():
        assert db.session.get(Order, order_id).status is OrderStatus.PAID


def _refund_in_full(app, order_id: int, buyer_id: int, admin_id: int) -> None:
    with app.app_context():
        total = db.session.get(Order, order_id).total_fen
        orders.request_refund(db.session, order_id, buyer_id, total, "不要了")
        refund = orders.decide_refund(db.session, order_id, admin_id, approve=True)
        refund_id = refund.id
        db.session.commit()
        payments.attempt_refund(db.session, refund_id)
        db.session.commit()
        assert db.session.get(Order, order_id).status is OrderStatus.REFUNDED


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


# --- checkout ------------------------------------------------------------------------


def test_an_order_takes_the_oldest_batch_first_then_the_next(app, lots):
    order_id = _checkout(app, lots["buyer"], lots["product"], 4)
    assert _allocations(app, order_id) == [(lots["old"], 3, False), (lots["new"], 1, False)]
    assert _left(app, lots["old"], lots["new"]) == [0, 4]
    assert _product_stock(app, lots["product"]) == 4
    with app.app_context():
        assert services.current_batch(db.session, lots["product"]).id == lots["new"]


def test_a_small_order_comes_from_one_batch_only(app, lots):
    order_id = _checkout(app, lots["buyer"], lots["product"], 2)
    assert _allocations(app, order_id) == [(lots["old"], 2, False)]
    assert _left(app, lots["old"], lots["new"]) == [1, 5]


def test_units_beyond_the_batches_are_not_from_a_recorded_batch(app, lots):
    with app.app_context():
        catalog.set_stock(db.session, lots["product"], 10)  # 2 units typed in by hand
        db.session.commit()
    assert _left(app, lots["old"], lots["new"]) == [3, 5]
    first = _checkout(app, lots["buyer"], lots["product"], 9)
    assert _allocations(app, first) == [(lots["old"], 3, False), (lots["new"], 5, False)]
    second = _checkout(app, lots["buyer"], lots["product"], 1)
    assert _allocations(app, second) == []
    assert _product_stock(app, lots["product"]) == 0
    assert _left(app, lots["old"], lots["new"]) == [0, 0]
    with app.app_context():
        assert services.current_batch(db.session, lots["product"]) is None


# --- putting stock back --------------------------------------------------------------


def test_cancelling_an_unpaid_order_gives_the_units_back_to_the_same_batches(app, lots):
    order_id = _checkout(app, lots["buyer"], lots["product"], 4)
    with app.app_context():
        orders.cancel_order(db.session, order_id, actor_id=lots["buyer"])
        db.session.commit()
    assert _left(app, lots["old"], lots["new"]) == [3, 5]
    assert _product_stock(app, lots["product"]) == 8
    assert _allocations(app, order_id) == [(lots["old"], 3, True), (lots["new"], 1, True)]
    with app.app_context():
        counts = stock.stock_counts(db.session, db.session.get(Batch, lots["old"]))
        assert (counts.added, counts.left, counts.sold, counts.removed) == (3, 3, 0, 0)


def test_an_expired_order_gives_the_units_back_to_the_same_batches(app, lots):
    order_id = _checkout(app, lots["buyer"], lots["product"], 5)
    with app.app_context():
        db.session.execute(update(Order).where(Order.id == order_id).values(expires_at=utcnow()))
        db.session.commit()
        assert [o.id for o in orders.expire_unpaid(db.session, order_id)] == [order_id]
        db.session.commit()
    assert _left(app, lots["old"], lots["new"]) == [3, 5]
    # Put back once: a second run of the expiry changes nothing.
    with app.app_context():
        assert orders.expire_unpaid(db.session, order_id) == []
        db.session.commit()
    assert _left(app, lots["old"], lots["new"]) == [3, 5]


def test_a_full_refund_before_shipping_gives_the_units_back_to_their_batches(
    app, client, world, lots
):
    order_id = _checkout(app, lots["buyer"], lots["product"], 4)
    # Someone else buys meanwhile: the units given back are the refunded order's own.
    other = _checkout(app, lots["buyer"], lots["product"], 2)
    assert _allocations(app, other) == [(lots["new"], 2, False)]
    _pay(app, client, order_id)
    _refund_in_full(app, order_id, lots["buyer"], world.admin)
    assert _left(app, lots["old"], lots["new"]) == [3, 3]  # 5 - 1 - 2 + 1
    assert _product_stock(app, lots["product"]) == 6
    assert _allocations(app, order_id) == [(lots["old"], 3, True), (lots["new"], 1, True)]


def test_a_refund_after_shipping_leaves_the_units_sold(app, client, world, lots):
    order_id = _checkout(app, lots["buyer"], lots["product"], 4)
    _pay(app, client, order_id)
    with app.app_context():
        admin = db.session.get(User, world.admin)
        orders.pack(db.session, order_id, admin)
        orders.ship(db.session, order_id, world.admin)
        db.session.commit()
    _refund_in_full(app, order_id, lots["buyer"], world.admin)
    assert _left(app, lots["old"], lots["new"]) == [0, 4]
    assert _allocations(app, order_id) == [(lots["old"], 3, False), (lots["new"], 1, False)]
    with app.app_context():
        counts = stock.stock_counts(db.session, db.session.get(Batch, lots["old"]))
        assert (counts.added, counts.left, counts.sold) == (3, 0, 3)


# --- stock set by hand ---------------------------------------------------------------


def test_lowering_the_stock_by_hand_takes_unbatched_units_first_then_the_newest_batch(app, lots):
    with app.app_context():
        catalog.set_stock(db.session, lots["product"], 10)  # 8 from batches, 2 by hand
        db.session.commit()
    assert _left(app, lots["old"], lots["new"]) == [3, 5]
    with app.app_context():
        catalog.set_stock(db.session, lots["product"], 7)  # the 2 by hand, then 1 newest
        db.session.commit()
    assert _left(app, lots["old"], lots["new"]) == [3, 4]
    with app.app_context():
        catalog.set_stock(db.session, lots["product"], 2)
        db.session.commit()
    assert _left(app, lots["old"], lots["new"]) == [2, 0]
    with app.app_context():
        catalog.set_stock(db.session, lots["product"], 9)  # more by hand: no batch changes
        db.session.commit()
        counts = stock.stock_counts(db.session, db.session.get(Batch, lots["new"]))
        assert (counts.added, counts.left, counts.sold, counts.removed) == (5, 0, 0, 5)
    assert _left(app, lots["old"], lots["new"]) == [2, 0]


def test_the_stock_form_keeps_batches_within_the_product_stock(app, client, lots):
    login(client, ADMIN_PHONE)
    page = client.get(f"/products/{lots['product']}").get_data(as_text=True)
    assert 'name="stock_seen"' in page
    response = post_form(
        client, f"/products/{lots['product']}/stock", {"stock": "4", "stock_seen": "8"}
    )
    assert response.status_code == 303
    assert _product_stock(app, lots["product"]) == 4
    assert _left(app, lots["old"], lots["new"]) == [3, 1]


# --- pages ---------------------------------------------------------------------------


def _lot_card(page: str) -> str:
    start = page.index('data-testid="current-lot"')
    return page[start : page.index("</section>", start)]


def test_the_product_page_shows_and_links_the_batch_it_sells_from(app, client, world, lots):
    client.set_cookie("lang", "en")  # the new words are not translated until merged
    page = client.get(f"/products/{lots['product']}").get_data(as_text=True)
    card = _lot_card(page)
    assert "Now selling from batch" in card
    assert world.lot in card
    assert "2026年大红柑第一批" in card
    assert days_ago(10).isoformat() in card
    assert "Not inspected yet" in card
    link = re.search(r'<a class="button" href="([^"]+)"', card).group(1)
    assert link.startswith(f"http://yuenong.test/01/{world.gtin}/10/{world.lot}?s=")
    scan = client.get(_path(link.replace("&amp;", "&")))
    assert scan.status_code == 200
    scanned = scan.get_data(as_text=True)
    assert "Batch code" in scanned
    assert world.lot in scanned
    # An inspection shows; once the first batch is sold the page moves to the next one.
    with app.app_context():
        services.add_inspection(
            db.session,
            world.batch,
            kind=InspectionKind.SELF_TEST,
            tested_on=days_ago(2),
            items="农药残留速测",
            result=InspectionResult.PASS,
            company_prefix=app.config["GS1_COMPANY_PREFIX"],
        )
        db.session.commit()
    card = _lot_card(client.get(f"/products/{lots['product']}").get_data(as_text=True))
    assert '<span class="tag ok">Pass</span>' in card
    _checkout(app, lots["buyer"], lots["product"], 3)
    card = _lot_card(client.get(f"/products/{lots['product']}").get_data(as_text=True))
    assert "2026年大红柑第二批" in card
    assert world.lot not in card


def test_a_batch_without_a_batch_code_is_shown_but_not_linked(app, client, lots):
    with app.app_context():
        db.session.execute(
            delete(TraceCode).where(
                TraceCode.batch_id == lots["old"], TraceCode.kind == CodeKind.BATCH
            )
        )
        db.session.commit()
    card = _lot_card(client.get(f"/products/{lots['product']}").get_data(as_text=True))
    assert "2026年大红柑第一批" in card
    assert "href=" not in card
    with app.app_context():  # showing the page did not issue one
        assert (
            db.session.scalar(select(TraceCode.id).where(TraceCode.batch_id == lots["old"])) is None
        )


def test_a_product_with_no_batch_stock_shows_no_batch(app, client, world):
    with app.app_context():
        catalog.set_stock(db.session, world.product, 5)
        db.session.commit()
    page = client.get(f"/products/{world.product}").get_data(as_text=True)
    assert "库存 5 盒" in page
    assert 'data-testid="current-lot"' not in page


def test_the_order_pages_show_the_lots_a_line_came_from(app, client, world, lots):
    with app.app_context():
        catalog.set_stock(db.session, lots["product"], 10)  # 2 not from a batch
        db.session.commit()
    order_id = _checkout(app, lots["buyer"], lots["product"], 10)
    client.set_cookie("lang", "en")
    login(client, BUYER_PHONE)
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    start = page.index('data-testid="line-lots"')
    lots_html = page[start : page.index("</span>\n</span>", start)]
    for text in (world.lot, "2026年大红柑第一批", "× 3", "2026年大红柑第二批", "× 5"):
        assert text in lots_html, text
    assert "2 盒 not from a recorded batch" in lots_html
    links = re.findall(r'<a class="tag" href="([^"]+)"', lots_html)
    assert len(links) == 2
    assert client.get(_path(links[0].replace("&amp;", "&"))).status_code == 200
    seller = app.test_client()
    login(seller, ADMIN_PHONE)
    seller_page = seller.get(f"/orders/{order_id}").get_data(as_text=True)
    assert 'data-testid="line-lots"' in seller_page
    assert world.lot in seller_page


def test_the_packing_list_shows_the_lots_and_a_cancelled_order_shows_none(app, client, world, lots):
    order_id = _checkout(app, lots["buyer"], lots["product"], 2)
    _pay(app, client, order_id)
    login(client, ADMIN_PHONE)
    packing = client.get("/orders/to-pack").get_data(as_text=True)
    assert 'data-testid="line-lots"' in packing
    assert world.lot in packing
    cancelled = _checkout(app, lots["buyer"], lots["product"], 1)
    with app.app_context():
        orders.cancel_order(db.session, cancelled, actor_id=lots["buyer"])
        db.session.commit()
    page = client.get(f"/orders/{cancelled}").get_data(as_text=True)
    assert 'data-testid="line-lots"' not in page


def test_the_batch_page_shows_stock_added_left_and_sold(app, client, lots):
    _checkout(app, lots["buyer"], lots["product"], 4)
    login(client, ADMIN_PHONE)
    page = client.get(f"/trace/batches/{lots['old']}").get_data(as_text=True)
    assert re.search(r'data-testid="stock-added">3 ', page)
    assert re.search(r'data-testid="stock-left">0 ', page)
    assert re.search(r'data-testid="stock-sold">3 ', page)
    assert 'data-testid="stock-removed"' not in page
    newer = client.get(f"/trace/batches/{lots['new']}").get_data(as_text=True)
    assert re.search(r'data-testid="stock-added">5 ', newer)
    assert re.search(r'data-testid="stock-left">4 ', newer)
    assert re.search(r'data-testid="stock-sold">1 ', newer)


# --- the migration's backfill --------------------------------------------------------


def _migration():
    path = Path(__file__).parents[2] / "migrations/versions/0009_batch_stock.py"
    spec = importlib.util.spec_from_file_location("migration_0009", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_leaves_the_newest_batches_on_sale(app, world, lots):
    """Before the migration only stock_added was known: the product's stock goes to its
    batches newest first, each at most what it added; any more is not from a batch."""
    with app.app_context():
        third = make_batch(app, world.coop, world.product, name="第三批")
        third.harvest_date = days_ago(20)
        db.session.flush()
        services.put_on_sale(db.session, third.id, 4)  # oldest 4, world's 3, newer 5
        third_id = third.id
        db.session.commit()
    backfill = _migration()._backfill
    for product_stock, expected in (
        (15, {third_id: 4, lots["old"]: 3, lots["new"]: 5}),
        (8, {third_id: 0, lots["old"]: 3, lots["new"]: 5}),
        (6, {third_id: 0, lots["old"]: 1, lots["new"]: 5}),
        (0, {third_id: 0, lots["old"]: 0, lots["new"]: 0}),
    ):
        with app.app_context():
            db.session.execute(
                update(Product).where(Product.id == world.product).values(stock=product_stock)
            )
            db.session.execute(update(Batch).values(stock_left=0))
            backfill(db.session.connection())
            left = dict(db.session.execute(select(Batch.id, Batch.stock_left)).all())
            db.session.rollback()
        assert left == expected, product_stock
