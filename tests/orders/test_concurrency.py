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
from market.orders.models import Order, OrderLine
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
