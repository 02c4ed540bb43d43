"""Concurrent buyers never oversell: real threads, each with its own connection, on
PostgreSQL (SQLite serializes all writers, so it would prove nothing; CI runs these on PG)."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, insert, select

from market.auth.models import Role, User
from market.catalog.models import Product
from market.extensions import db
from market.orders import services
from market.orders.models import Order, OrderLine, OrderStatus
from tests.factories import _PASSWORD_HASH, CooperativeFactory, ProductFactory
from tests.orders.helpers import ADDRESS

WORKERS = 20


@pytest.fixture
def postgres(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("needs PostgreSQL (set TEST_DATABASE_URL); CI runs it there")
    return app


def _buyers(count: int) -> list[int]:
    rows = [
        {"phone": f"139{n:08d}", "password_hash": _PASSWORD_HASH, "name": "", "role": Role.BUYER}
        for n in range(count)
    ]
    db.session.execute(insert(User), rows)
    return list(db.session.scalars(select(User.id).order_by(User.id)))


def _checkout(app, buyer_id: int, lines: list[services.LineRequest]) -> bool:
    """One buyer's checkout in its own thread, session and connection; commits."""
    with app.app_context():
        try:
            services.place_orders(db.session, buyer_id, lines, ADDRESS)
            db.session.commit()
            return True
        except services.OutOfStockError:
            db.session.rollback()
            return False
        finally:
            db.session.remove()


class StockWatcher:
    """Reads the stock over and over from its own connection while the buyers run."""

    def __init__(self, app, product_ids):
        self.app, self.product_ids = app, product_ids
        self.lowest = {pid: None for pid in product_ids}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with self.app.app_context():
            while not self.stop.is_set():
                for pid, left in db.session.execute(
                    select(Product.id, Product.stock).where(Product.id.in_(self.product_ids))
                ):
                    low = self.lowest[pid]
                    self.lowest[pid] = left if low is None else min(low, left)
                db.session.rollback()
            db.session.remove()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join(timeout=10)


def test_two_hundred_buyers_for_the_last_ten_units_exactly_ten_succeed(postgres):
    app = postgres
    with app.app_context():
        product = ProductFactory(cooperative=CooperativeFactory(), price_fen=12800, stock=10)
        product_id = product.id
        buyer_ids = _buyers(200)
        db.session.commit()
    line = [services.LineRequest(product_id, 1, 12800)]
    with StockWatcher(app, [product_id]) as watcher, ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda b: _checkout(app, b, line), buyer_ids))
    assert outcomes.count(True) == 10
    assert outcomes.count(False) == 190
    assert watcher.lowest[product_id] is not None
    assert watcher.lowest[product_id] >= 0
    with app.app_context():
        assert db.session.get(Product, product_id).stock == 0
        assert db.session.scalar(select(func.count()).select_from(Order)) == 10
        assert db.session.scalar(select(func.sum(OrderLine.quantity))) == 10
        numbers = db.session.scalars(select(Order.number)).all()
        assert len(set(numbers)) == 10
        assert db.session.scalar(select(func.count(func.distinct(Order.buyer_id)))) == 10


def test_carts_naming_two_products_in_any_order_never_deadlock_or_oversell(postgres):
    app = postgres
    with app.app_context():
        coop = CooperativeFactory()
        first = ProductFactory(cooperative=coop, price_fen=1000, stock=30)
        second = ProductFactory(cooperative=CooperativeFactory(), price_fen=2000, stock=45)
        ids = (first.id, second.id)
        buyer_ids = _buyers(120)
        db.session.commit()
    rng = random.Random(4)
    wanted = {}
    for buyer_id in buyer_ids:
        lines = [
            services.LineRequest(ids[0], rng.randint(1, 3), 1000),
            services.LineRequest(ids[1], rng.randint(1, 3), 2000),
        ]
        rng.shuffle(lines)
        wanted[buyer_id] = lines
    with StockWatcher(app, list(ids)) as watcher, ThreadPoolExecutor(WORKERS) as pool:
        outcomes = dict(
            zip(buyer_ids, pool.map(lambda b: _checkout(app, b, wanted[b]), buyer_ids), strict=True)
        )
    assert all(low is not None and low >= 0 for low in watcher.lowest.values())
    with app.app_context():
        left = {pid: db.session.get(Product, pid).stock for pid in ids}
        sold = dict(
            db.session.execute(
                select(OrderLine.product_id, func.sum(OrderLine.quantity)).group_by(
                    OrderLine.product_id
                )
            ).all()
        )
        winners = [b for b, ok in outcomes.items() if ok]
        expected = {pid: 0 for pid in ids}
        for buyer_id in winners:
            for line in wanted[buyer_id]:
                expected[line.product_id] += line.quantity
        # Each successful checkout got both products (two orders: two cooperatives).
        assert db.session.scalar(select(func.count()).select_from(Order)) == 2 * len(winners)
    assert sold == expected
    assert left == {ids[0]: 30 - expected[ids[0]], ids[1]: 45 - expected[ids[1]]}
    assert min(left.values()) >= 0
    assert winners  # someone got through


# --- stock per batch (traceability) -------------------------------------------------


def _batched_product(app, coop, batches: list[tuple[int, int]], unbatched: int = 0) -> tuple:
    """A product whose stock comes from batches [(days since harvest, units)], oldest
    first, plus `unbatched` units typed in by hand. Returns (product id, batch ids)."""
    from datetime import timedelta

    from market.catalog import services as catalog
    from traceability import codes
    from traceability import services as trace
    from traceability.models import OriginKind

    product = ProductFactory(cooperative=coop, price_fen=1000, stock=0)
    db.session.flush()
    product.gtin = codes.make_gtin(app.config["GS1_COMPANY_PREFIX"], product.id)
    ids = []
    for days, units in batches:
        batch = trace.create_batch(
            db.session,
            coop.id,
            trace.BatchData(
                product_id=product.id,
                name=f"第{len(ids) + 1}批",
                harvest_date=trace.today_shanghai() - timedelta(days=days),
                quantity=100,
                unit="公斤",
                origin_code=coop.division_code,
                origin_kind=OriginKind.ORCHARD,
            ),
            user_id=None,
            company_prefix=app.config["GS1_COMPANY_PREFIX"],
        )
        trace.put_on_sale(db.session, batch.id, units)
        ids.append(batch.id)
    if unbatched:
        catalog.set_stock(db.session, product.id, sum(u for _d, u in batches) + unbatched)
    return product.id, ids


def _from_batches(product_id: int) -> dict[int, list[tuple[int, int]]]:
    """{order line id: [(batch id, units)]} of the product's live (not given back) lines."""
    from traceability.models import OrderLineBatch

    found: dict[int, list[tuple[int, int]]] = {}
    rows = db.session.execute(
        select(OrderLine.id, OrderLineBatch.batch_id, OrderLineBatch.quantity)
        .join(OrderLineBatch, OrderLineBatch.order_line_id == OrderLine.id)
        .where(OrderLine.product_id == product_id, OrderLineBatch.returned_at.is_(None))
    ).all()
    for line_id, batch_id, units in rows:
        found.setdefault(line_id, []).append((batch_id, units))
    return found


def _batches_hold_what_they_should(product_id: int, batch_ids: list[int]) -> None:
    """Each batch's stock_left is what it added less what live order lines took from it,
    never negative; together the batches claim no more than the product's stock."""
    from traceability.models import Batch, OrderLineBatch

    product = db.session.get(Product, product_id)
    total_left = 0
    for batch_id in batch_ids:
        batch = db.session.get(Batch, batch_id)
        taken = db.session.scalar(
            select(func.coalesce(func.sum(OrderLineBatch.quantity), 0)).where(
                OrderLineBatch.batch_id == batch_id, OrderLineBatch.returned_at.is_(None)
            )
        )
        assert batch.stock_left >= 0
        assert batch.stock_left == batch.stock_added - taken, batch.lot_code
        total_left += batch.stock_left
    assert total_left <= product.stock


def test_two_checkouts_racing_for_the_last_units_of_a_batch_never_over_allocate(postgres):
    """Each round: a batch with 3 units left and 3 more units not from a batch; two
    buyers want 3 each at the same moment. Both get their units, exactly one of them
    from the batch."""
    app = postgres
    rounds = 12
    with app.app_context():
        coop = CooperativeFactory()
        products = [_batched_product(app, coop, [(5, 3)], unbatched=3) for _ in range(rounds)]
        buyer_ids = _buyers(2)
        db.session.commit()
    for product_id, [batch_id] in products:
        barrier = threading.Barrier(2)
        line = [services.LineRequest(product_id, 3, 1000)]

        def race(buyer_id, line=line, barrier=barrier):
            barrier.wait(timeout=10)
            return _checkout(app, buyer_id, line)

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(race, buyer_ids)) == [True, True]
        with app.app_context():
            assert db.session.get(Product, product_id).stock == 0
            allocated = _from_batches(product_id)
            assert list(allocated.values()) == [[(batch_id, 3)]]
            _batches_hold_what_they_should(product_id, [batch_id])


def test_many_buyers_take_the_batches_oldest_first_and_then_the_unbatched_units(postgres):
    app = postgres
    with app.app_context():
        product_id, (old, new) = _batched_product(
            app, CooperativeFactory(), [(9, 3), (2, 2)], unbatched=5
        )
        buyer_ids = _buyers(120)
        db.session.commit()
    line = [services.LineRequest(product_id, 1, 1000)]
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda b: _checkout(app, b, line), buyer_ids))
    assert outcomes.count(True) == 10
    with app.app_context():
        allocated = _from_batches(product_id)
        per_batch = {old: 0, new: 0}
        for parts in allocated.values():
            for batch_id, units in parts:
                per_batch[batch_id] += units
        assert per_batch == {old: 3, new: 2}
        assert len(allocated) == 5  # the other five units were not from a batch
        _batches_hold_what_they_should(product_id, [old, new])
        assert db.session.get(Product, product_id).stock == 0


def test_cancellations_racing_checkouts_give_units_back_to_the_right_batches(postgres):
    """Unpaid orders are cancelled while other buyers check out: every unit given back
    lands in the batch it came from, and no one deadlocks."""
    from traceability.models import Batch

    app = postgres
    with app.app_context():
        product_id, batch_ids = _batched_product(app, CooperativeFactory(), [(9, 6), (2, 4)])
        buyer_ids = _buyers(50)
        db.session.commit()
    line = [services.LineRequest(product_id, 1, 1000)]
    early = []
    for buyer_id in buyer_ids[:8]:
        with app.app_context():
            [placed] = services.place_orders(db.session, buyer_id, line, ADDRESS)
            early.append((placed.id, buyer_id))
            db.session.commit()

    def cancel(order_and_buyer) -> bool:
        order_id, buyer_id = order_and_buyer
        with app.app_context():
            try:
                services.cancel_order(db.session, order_id, actor_id=buyer_id)
                db.session.commit()
                return True
            finally:
                db.session.remove()

    jobs = [("cancel", item) for item in early] + [("buy", b) for b in buyer_ids[8:]]
    random.Random(7).shuffle(jobs)

    def run(job):
        kind, arg = job
        return cancel(arg) if kind == "cancel" else _checkout(app, arg, line)

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(run, jobs))
    assert all(ok for (kind, _arg), ok in zip(jobs, results, strict=True) if kind == "cancel")
    with app.app_context():
        live = db.session.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0))
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.product_id == product_id, Order.status != OrderStatus.CANCELLED)
        )
        left = db.session.get(Product, product_id).stock
        assert live + left == 10
        assert live >= 2  # the two units never ordered early went to someone
        _batches_hold_what_they_should(product_id, batch_ids)
        # Every unit was from a batch, so the batches hold exactly what is left.
        assert sum(db.session.get(Batch, b).stock_left for b in batch_ids) == left
