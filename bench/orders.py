"""Checkout throughput on PostgreSQL with concurrent buyers, and the oversold count.

Measured in one run, on a throwaway database (yuenong_bench_orders, rebuilt by the
migrations), with one thread per buyer and a connection each:

- checkout: the real service (`place_orders` + commit): two cooperatives per cart, so two
  orders, one conditional stock UPDATE per product, the day's order-number counter, one
  PaymentIntent with its event, and the expiry task sent after the commit (to an
  in-memory broker, as a push to Redis would be).
- baseline: a bare INSERT of the same order and line rows per checkout, committed, with
  nothing checked (no stock, no counter, no payment): the least any checkout must write.
- oversell: many buyers at once for a product with little stock, 1-3 units each; the
  oversold count is units sold beyond the stock (must be 0) and the stock's lowest value.

BENCH_DATABASE_URL picks the server (default: the local PostgreSQL of the dev machines).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

SERVER = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "yuenong_bench_orders"


def _fresh_database() -> str | None:
    server = make_url(SERVER)
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    except Exception as exc:  # no server: say so, do not fail the other benchmarks
        print(f"orders: skipped, PostgreSQL not reachable ({type(exc).__name__})")
        return None
    finally:
        admin.dispose()
    return server.set(database=DATABASE).render_as_string(hide_password=False)


def _app(url: str, threads: int):
    from market.app import create_app

    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": threads + 4, "max_overflow": 4},
            "PAYMENT_SANDBOX_KEY_DIR": tempfile.mkdtemp(prefix="bench-keys-"),
            "CELERY": {
                "broker_url": "memory://",
                "task_always_eager": False,
                "task_ignore_result": True,
                "broker_connection_retry_on_startup": True,
            },
        }
    )


def _world(app, products: int, buyers: int, stock: int):
    from market.auth.models import Role, User
    from market.catalog.models import Category, Product, ProductStatus
    from market.cooperatives.models import Cooperative, CooperativeStatus
    from market.extensions import db

    with app.app_context():
        coops = [
            Cooperative(
                name=f"基准合作社{n}", division_code="440705", status=CooperativeStatus.APPROVED
            )
            for n in range(4)
        ]
        db.session.add_all(coops)
        db.session.flush()
        rows = [
            {
                "cooperative_id": coops[n % 4].id,
                "title": f"陈皮 {n}",
                "category": Category.DRIED,
                "unit": "罐",
                "price_fen": 1000 + n,
                "stock": stock,
                "status": ProductStatus.ON_SALE,
                "origin_code": "440705",
                "description": "",
                "is_gi": False,
                "gi_name": "",
                "certifications": [],
                "harvest_months": [],
            }
            for n in range(products)
        ]
        rows = [{k: v for k, v in row.items() if hasattr(Product, k)} for row in rows]
        db.session.execute(insert(Product), rows)
        db.session.execute(
            insert(User),
            [
                {"phone": f"139{n:08d}", "password_hash": "x", "name": "", "role": Role.BUYER}
                for n in range(buyers)
            ],
        )
        db.session.commit()
        product_rows = db.session.execute(
            select(Product.id, Product.cooperative_id, Product.price_fen).order_by(Product.id)
        ).all()
        buyer_ids = list(db.session.scalars(select(User.id).order_by(User.id)))
        return [tuple(r) for r in product_rows], buyer_ids


def _timed_pool(threads: int, jobs: list, work) -> tuple[float, list]:
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(work, jobs))
    return time.perf_counter() - start, results


def run(quick: bool = False) -> dict:
    threads = int(os.environ.get("BENCH_THREADS", 8 if quick else 16))
    per_thread = 15 if quick else 60
    url = _fresh_database()
    if url is None:
        return {}

    import flask_migrate

    from market.extensions import db
    from market.orders import services
    from market.orders.models import Order, OrderLine
    from market.types import utcnow

    app = _app(url, threads)
    with app.app_context():
        flask_migrate.upgrade(revision="heads")
    products, buyers = _world(
        app, products=25, buyers=threads * (per_thread + 2) + 600, stock=10**6
    )
    # The last product is kept out of the carts: the rush below is for it alone.
    hot_id, _hot_coop, hot_price = products.pop()
    by_coop: dict[int, list[tuple[int, int]]] = {}
    for pid, coop_id, price in products:
        by_coop.setdefault(coop_id, []).append((pid, price))
    coop_ids = sorted(by_coop)
    coop_of = {pid: coop_id for pid, coop_id, _price in products}
    rng = random.Random(11)
    carts = []
    for n in range(threads * (per_thread + 2)):
        first, second = rng.sample(coop_ids, 2)
        lines = [rng.choice(by_coop[first]), rng.choice(by_coop[second])]
        carts.append(
            (buyers[n], [services.LineRequest(pid, rng.randint(1, 3), p) for pid, p in lines])
        )

    address = services.Address(
        recipient="陈小姐",
        phone="13800138000",
        province_code="440000",
        city_code="440100",
        county_code="440106",
        address="天河路 100 号 2 栋 301",
    )
    latencies: list[float] = []
    lock = threading.Lock()

    def checkout(job) -> bool:
        buyer_id, lines = job
        began = time.perf_counter()
        with app.app_context():
            try:
                services.place_orders(db.session, buyer_id, lines, address)
                db.session.commit()
                ok = True
            except services.OutOfStockError:
                db.session.rollback()
                ok = False
            finally:
                db.session.remove()
        with lock:
            latencies.append(time.perf_counter() - began)
        return ok

    def bare_insert(job) -> bool:
        buyer_id, lines = job
        with app.app_context():
            now = utcnow()
            for line in lines:
                order_id = db.session.execute(
                    insert(Order)
                    .values(
                        number="B" + uuid.uuid4().hex[:18],
                        buyer_id=buyer_id,
                        cooperative_id=coop_of[line.product_id],
                        status="pending_payment",
                        total_fen=line.unit_price_fen * line.quantity,
                        refunded_fen=0,
                        recipient="陈小姐",
                        phone="13800138000",
                        division_code="440106",
                        address="天河路 100 号",
                        note="",
                        expires_at=now + timedelta(minutes=30),
                        created_at=now,
                    )
                    .returning(Order.id)
                ).scalar_one()
                db.session.execute(
                    insert(OrderLine).values(
                        order_id=order_id,
                        product_id=line.product_id,
                        title="陈皮",
                        unit="罐",
                        unit_price_fen=line.unit_price_fen,
                        quantity=line.quantity,
                    )
                )
            db.session.commit()
            db.session.remove()
        return True

    # Warm the pool and the caches on carts of their own, then measure both.
    warm, carts = carts[: threads * 2], carts[threads * 2 :]
    _timed_pool(threads, warm, bare_insert)
    _timed_pool(threads, warm, checkout)
    base_s, _ = _timed_pool(threads, carts, bare_insert)
    latencies.clear()
    real_s, outcomes = _timed_pool(threads, carts, checkout)
    ordered = sorted(latencies)
    checkouts = outcomes.count(True)

    # Oversell: a product with 50 units left and many more buyers than that at once.
    hot_stock = 50
    with app.app_context():
        db.session.execute(
            text("UPDATE market_products SET stock = :s WHERE id = :i"),
            {"s": hot_stock, "i": hot_id},
        )
        db.session.commit()
    attempts = 200 if quick else 600
    rush_rng = random.Random(7)
    rush = [
        (buyers[-(n + 1)], [services.LineRequest(hot_id, rush_rng.randint(1, 3), hot_price)])
        for n in range(attempts)
    ]
    lowest = [hot_stock]
    stop = threading.Event()

    def watch() -> None:
        with app.app_context():
            while not stop.is_set():
                left = db.session.execute(
                    text("SELECT stock FROM market_products WHERE id = :i"), {"i": hot_id}
                ).scalar_one()
                lowest[0] = min(lowest[0], left)
                db.session.rollback()
            db.session.remove()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    rush_s, rush_outcomes = _timed_pool(threads, rush, checkout)
    stop.set()
    watcher.join(timeout=10)
    with app.app_context():
        sold = db.session.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(
                OrderLine.product_id == hot_id
            )
        )
        left = db.session.scalar(
            text("SELECT stock FROM market_products WHERE id = :i"), {"i": hot_id}
        )
        db.session.remove()
        db.engine.dispose()

    result = {
        "threads": threads,
        "checkouts": checkouts,
        "checkout_per_s": round(checkouts / real_s, 1),
        "baseline_insert_per_s": round(len(carts) / base_s, 1),
        "checkout_vs_bare_insert": round((checkouts / real_s) / (len(carts) / base_s), 3),
        "checkout_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "checkout_p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 1),
        "rush_attempts": attempts,
        "rush_succeeded": rush_outcomes.count(True),
        "rush_seconds": round(rush_s, 2),
        "units_sold": int(sold),
        "stock_left": int(left),
        "lowest_stock_seen": lowest[0],
        "oversold": max(0, int(sold) - hot_stock),
    }
    print(
        f"orders: checkout {result['checkout_per_s']}/s vs bare INSERT "
        f"{result['baseline_insert_per_s']}/s (x{result['checkout_vs_bare_insert']}) with "
        f"{threads} buyers at once; p50 {result['checkout_p50_ms']} ms, p95 "
        f"{result['checkout_p95_ms']} ms"
    )
    print(
        f"orders: rush of {attempts} buyers for {hot_stock} units: {result['rush_succeeded']} "
        f"checkouts, {result['units_sold']} sold, {result['stock_left']} left, lowest stock "
        f"seen {result['lowest_stock_seen']}, oversold {result['oversold']}"
    )
    assert result["oversold"] == 0, "oversold!"
    assert result["units_sold"] + result["stock_left"] == hot_stock
    return result


if __name__ == "__main__":
    print(run(quick=False))
