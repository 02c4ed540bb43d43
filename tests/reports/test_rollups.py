"""The summary tables equal a raw aggregation of the orders, however the events arrive."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from market.catalog.models import Product
from market.cooperatives.models import Cooperative
from market.extensions import db
from market.orders.models import Order, OrderLine
from market.reports import rollups, services
from market.reports.models import (
    BuyerSet,
    DailyBuyers,
    DailyOrders,
    DailySales,
    DailyTotals,
    MonthlyOrders,
    MonthlySales,
    MonthlyTotals,
    ProductRunningTotals,
)
from market.reports.periods import SHANGHAI, DateRange, period_containing
from tests.reports.helpers import add_order, make_world


@pytest.fixture
def world(app):
    return make_world(app)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the raw aggregation the summaries must equal -----------------------------------------------


def reference_allocation(amount: int, weights: list[int]) -> list[int]:
    """Largest remainder, computed with exact fractions (independently of rollups)."""
    total = sum(weights)
    if total == 0:
        weights, total = [1] * len(weights), len(weights)
    exact = [Fraction(amount * w, total) for w in weights]
    shares = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: amount - sum(shares)]:
        shares[i] += 1
    return shares


def raw_aggregation(session) -> dict[str, dict]:
    """Every daily summary row, computed straight from orders and lines."""
    divisions = dict(session.execute(select(Cooperative.id, Cooperative.division_code)).all())
    products = {p.id: p for p in session.scalars(select(Product))}
    orders_rows: dict = defaultdict(lambda: defaultdict(int))
    sales_rows: dict = defaultdict(lambda: defaultdict(int))
    buyer_rows: dict = defaultdict(int)
    for order in session.scalars(select(Order).where(Order.paid_at.is_not(None))):
        day = order.paid_at.astimezone(SHANGHAI).date()
        province = rollups.province_of_address(order.division_code)
        counts = order.refunded_fen < order.total_fen
        units = sum(line.quantity for line in order.lines)
        row = orders_rows[(day, order.cooperative_id, province)]
        row["gmv_fen"] += order.total_fen
        row["refunds_fen"] += order.refunded_fen
        row["paid_orders"] += 1
        row["orders"] += counts
        row["units"] += units if counts else 0
        if counts:
            buyer_rows[(day, order.cooperative_id, order.buyer_id)] += 1
        refunds = reference_allocation(
            order.refunded_fen, [line.unit_price_fen * line.quantity for line in order.lines]
        )
        for line, refund in zip(order.lines, refunds, strict=True):
            product = products.get(line.product_id)
            sale = sales_rows[(day, order.cooperative_id, line.product_id or 0, province)]
            sale["gmv_fen"] += line.unit_price_fen * line.quantity
            sale["refunds_fen"] += refund
            sale["orders"] += counts
            sale["units"] += line.quantity if counts else 0
            sale["category"] = product.category.value if product else "other"
            sale["is_gi"] = bool(product and product.is_gi)
    place = {coop: rollups.place_of(code) for coop, code in divisions.items()}
    return {
        "orders": {
            k: {**v, "city_code": place[k[1]][0], "county_code": place[k[1]][1]}
            for k, v in orders_rows.items()
        },
        "sales": {
            k: {**v, "city_code": place[k[1]][0], "county_code": place[k[1]][1]}
            for k, v in sales_rows.items()
        },
        "buyers": dict(buyer_rows),
    }


def summaries(session) -> dict[str, dict]:
    orders = {
        (r.day, r.cooperative_id, r.buyer_province): {
            "gmv_fen": r.gmv_fen,
            "refunds_fen": r.refunds_fen,
            "paid_orders": r.paid_orders,
            "orders": r.orders,
            "units": r.units,
            "city_code": r.city_code,
            "county_code": r.county_code,
        }
        for r in session.scalars(select(DailyOrders))
    }
    sales = {
        (r.day, r.cooperative_id, r.product_id, r.buyer_province): {
            "gmv_fen": r.gmv_fen,
            "refunds_fen": r.refunds_fen,
            "orders": r.orders,
            "units": r.units,
            "category": r.category,
            "is_gi": r.is_gi,
            "city_code": r.city_code,
            "county_code": r.county_code,
        }
        for r in session.scalars(select(DailySales))
    }
    buyers = {
        (r.day, r.cooperative_id, r.buyer_id): r.orders
        for r in session.scalars(select(DailyBuyers))
    }
    return {"orders": orders, "sales": sales, "buyers": buyers}


def monthly_from(daily: dict, with_province: bool) -> dict:
    months: dict = defaultdict(lambda: defaultdict(int))
    for key, row in daily.items():
        day, coop = key[0], key[1]
        rest = key[2:] if with_province else key[2:-1]
        target = months[(day.replace(day=1), coop, *rest)]
        for name in ("gmv_fen", "refunds_fen", "orders", "units", "paid_orders"):
            if name in row:
                target[name] += row[name]
    return {k: dict(v) for k, v in months.items()}


def assert_summaries_equal_raw(session) -> None:
    expected = raw_aggregation(session)
    found = summaries(session)
    assert found["orders"] == {k: dict(v) for k, v in expected["orders"].items()}
    assert found["sales"] == {k: dict(v) for k, v in expected["sales"].items()}
    assert found["buyers"] == expected["buyers"]
    monthly_orders = {
        (r.month, r.cooperative_id, r.buyer_province): {
            "gmv_fen": r.gmv_fen,
            "refunds_fen": r.refunds_fen,
            "orders": r.orders,
            "units": r.units,
            "paid_orders": r.paid_orders,
        }
        for r in session.scalars(select(MonthlyOrders))
    }
    assert monthly_orders == monthly_from(expected["orders"], with_province=True)
    monthly_sales = {
        (r.month, r.cooperative_id, r.product_id): {
            "gmv_fen": r.gmv_fen,
            "refunds_fen": r.refunds_fen,
            "orders": r.orders,
            "units": r.units,
        }
        for r in session.scalars(select(MonthlySales))
    }
    assert monthly_sales == monthly_from(expected["sales"], with_province=False)
    assert_totals(session, expected)
    assert_running_totals(session, expected)
    assert_buyer_sets(session, expected["buyers"])


MEASURES = ("gmv_fen", "refunds_fen", "orders", "paid_orders", "units")


def expected_totals(expected: dict) -> dict:
    """Every place's totals (province, city, county) from the cooperatives' raw rows."""
    totals: dict = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    parents: dict = {}

    def add(row, day, dim, key):
        city = row["city_code"]
        for level, code, parent in (("province", "440000", ""), ("city", city, "440000")):
            parents[(level, code)] = parent
            target = totals[(level, code, dim, day, key)]
            for name in MEASURES:
                target[name] += row.get(name, 0)

    for (day, _coop, province), row in expected["orders"].items():
        add(row, day, "all", "")
        add(row, day, "province", province)
    for (day, _coop, _product, _province), row in expected["sales"].items():
        add(row, day, "category", row["category"])
        add(row, day, "gi", "1" if row["is_gi"] else "0")
    return {k: (parents[k[:2]], *(v[m] for m in MEASURES)) for k, v in totals.items()}


def assert_totals(session, expected: dict) -> None:
    want = expected_totals(expected)
    found = {
        (r.level, r.code, r.dim, r.day, r.key): (r.parent, *(getattr(r, m) for m in MEASURES))
        for r in session.scalars(select(DailyTotals))
    }
    assert found == want
    months: dict = defaultdict(lambda: [None, 0, 0, 0, 0, 0])
    for (level, code, dim, day, key), (parent, *values) in want.items():
        target = months[(level, code, dim, day.replace(day=1), key)]
        target[0] = parent
        for i, value in enumerate(values, start=1):
            target[i] += value
    found_months = {
        (r.level, r.code, r.dim, r.month, r.key): [
            r.parent,
            *(getattr(r, m) for m in MEASURES),
        ]
        for r in session.scalars(select(MonthlyTotals))
    }
    assert found_months == dict(months)


SALES = ("gmv_fen", "refunds_fen", "orders", "units")


def places_of(row) -> tuple[tuple[str, str], ...]:
    return (("province", "440000"), ("city", row["city_code"]))


def month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def expected_running_totals(expected: dict) -> dict:
    """Each place's sales of each product up to the end of every checkpoint (the last
    day of every month from its first sale to its last, and every day with a sale from
    the first of the month before its last sale's month), from the raw rows."""
    sale_days: dict = defaultdict(set)
    for (day, _coop, _province), row in expected["orders"].items():
        for place in places_of(row):
            sale_days[place].add(day)
    sold: dict = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0]))
    for (day, _coop, product, _province), row in expected["sales"].items():
        for place in places_of(row):
            sums = sold[place][(day, product)]
            for i, name in enumerate(SALES):
                sums[i] += row[name]
    running = {}
    for (level, code), days in sale_days.items():
        last = max(days)
        window = (last.replace(day=1) - timedelta(days=1)).replace(day=1)
        checkpoints = {day for day in days if day >= window}
        end = month_end(min(days))
        while end <= month_end(last):
            checkpoints.add(end)
            end = month_end(end + timedelta(days=1))
        for checkpoint in checkpoints:
            for product in {p for _d, p in sold[(level, code)]}:
                upto = [(d, sums) for (d, p), sums in sold[(level, code)].items() if p == product]
                upto = [(d, sums) for d, sums in upto if d <= checkpoint]
                if upto:
                    running[(level, code, checkpoint, product)] = (
                        *(sum(sums[i] for _d, sums in upto) for i in range(4)),
                        len(upto),
                    )
    return running


def assert_running_totals(session, expected: dict) -> None:
    found = {
        (r.level, r.code, r.day, r.product_id): (*(getattr(r, m) for m in SALES), r.days_sold)
        for r in session.scalars(select(ProductRunningTotals))
    }
    assert found == expected_running_totals(expected)


#: Ranges over the property test's instants: whole months, the window of daily
#: checkpoints (the last month or two), and other days read from the daily rows.
STARTS = [date(2025, 12, 1), date(2025, 12, 31), date(2026, 1, 2), date(2026, 2, 2)]
ENDS = [date(2026, 1, 1), date(2026, 1, 4), date(2026, 2, 1), date(2026, 2, 28), date(2026, 3, 2)]


def assert_product_ranges(session, expected: dict) -> None:
    """A place's sales by product over any range, and its top products, as the
    dashboards read them (running totals and daily rows), equal the raw rows'."""
    cities = {row["city_code"] for row in expected["sales"].values()}
    for level, code in [("province", "440000"), *(("city", c) for c in sorted(cities))]:
        node = services.Node(level, code, "", code)
        for start, end in ((s, e) for s in STARTS for e in ENDS if s <= e):
            raw: dict = defaultdict(lambda: dict.fromkeys(SALES, 0))
            for (day, _coop, product, _province), row in expected["sales"].items():
                if start <= day <= end and (level, code) in places_of(row):
                    for name in SALES:
                        raw[(product,)][name] += row[name]
            dr = DateRange(start, end)
            assert services._product_sums(session, node, dr) == dict(raw), (node, dr)
            ranked = sorted(
                raw.items(), key=lambda kv: (-(kv[1]["gmv_fen"] - kv[1]["refunds_fen"]), kv[0])
            )
            assert services._top_products(session, node, dr, 2) == ranked[:2], (node, dr)


def assert_buyer_sets(session, buyer_rows: dict) -> None:
    """The province's and each city's buyers of every day and month, as sets."""
    divisions = dict(session.execute(select(Cooperative.id, Cooperative.division_code)).all())
    per: dict = defaultdict(lambda: defaultdict(int))
    for (day, coop, buyer_id), count in buyer_rows.items():
        city, _county = rollups.place_of(divisions[coop])
        for kind in ("day", "month"):
            start = period_containing(kind, day).start
            for level, code in (("province", "440000"), ("city", city)):
                per[(level, code, kind, start)][buyer_id] += count
    expected = {
        key: (
            {b for b, n in by_buyer.items() if n >= 1},
            {b for b, n in by_buyer.items() if n >= 2},
        )
        for key, by_buyer in per.items()
    }

    def members(bits: int) -> set[int]:
        return {i for i in range(bits.bit_length()) if bits >> i & 1}

    found = {}
    for r in session.scalars(select(BuyerSet)):
        once, twice = members(rollups.decode_bits(r.once)), members(rollups.decode_bits(r.twice))
        assert (r.buyers, r.repeat_buyers) == (len(once), len(twice))
        found[(r.level, r.code, r.kind, r.start)] = (once, twice)
    assert found == expected


def reset_sales(session) -> None:
    for table in (
        DailySales,
        MonthlySales,
        DailyOrders,
        MonthlyOrders,
        DailyTotals,
        MonthlyTotals,
        ProductRunningTotals,
        DailyBuyers,
        BuyerSet,
    ):
        session.execute(delete(table))
    session.execute(delete(OrderLine))
    session.execute(delete(Order))
    session.commit()


# --- refunds spread over lines -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (3600, [7200, 12800], [1296, 2304]),
        (1, [5, 5], [1, 0]),
        (7, [0, 10], [0, 7]),
        (0, [3, 4], [0, 0]),
        (5, [0, 0], [3, 2]),
    ],
)
def test_a_refund_is_spread_over_lines_in_whole_fen_that_add_up(amount, weights, expected):
    assert rollups.allocate(amount, weights) == expected
    assert sum(rollups.allocate(amount, weights)) == amount


@given(st.integers(0, 10**7), st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
def test_allocation_matches_exact_fractions(amount, weights):
    assert rollups.allocate(amount, weights) == reference_allocation(amount, weights)


# --- slices --------------------------------------------------------------------------------------


def test_an_order_paid_after_16_00_utc_counts_on_the_next_shanghai_day(app, world):
    with app.app_context():
        late = add_order(
            db.session,
            world.users["buyer_a"],
            [(world.products["peel"], 1)],
            utc(2026, 3, 31, 16, 5),
        )
        early = add_order(
            db.session,
            world.users["buyer_a"],
            [(world.products["peel"], 1)],
            utc(2026, 3, 31, 15, 55),
        )
        rollups.refresh_orders(db.session, [late.id, early.id])
        db.session.commit()
        days = {r.day: r.gmv_fen for r in db.session.scalars(select(DailyOrders))}
        assert days == {date(2026, 4, 1): 12800, date(2026, 3, 31): 12800}
        months = {r.month for r in db.session.scalars(select(MonthlyOrders))}
        assert months == {date(2026, 3, 1), date(2026, 4, 1)}


def test_a_duplicate_payment_event_does_not_count_twice(app, world):
    with app.app_context():
        order = add_order(
            db.session, world.users["buyer_a"], [(world.products["tea"], 2)], utc(2026, 5, 2, 3)
        )
        for _ in range(3):
            rollups.refresh_orders(db.session, [order.id])
            db.session.commit()
        [row] = db.session.scalars(select(DailyOrders)).all()
        assert (row.gmv_fen, row.orders, row.units, row.paid_orders) == (7200, 1, 2, 1)
        assert_summaries_equal_raw(db.session)


def test_a_refund_is_netted_on_the_day_of_sale_and_a_full_refund_is_no_sale(app, world):
    with app.app_context():
        kept = add_order(
            db.session,
            world.users["buyer_a"],
            [(world.products["peel"], 1), (world.products["tea"], 2)],
            utc(2026, 5, 2, 3),
        )
        gone = add_order(
            db.session, world.users["buyer_b"], [(world.products["tea"], 1)], utc(2026, 5, 2, 4)
        )
        rollups.refresh_orders(db.session, [kept.id, gone.id])
        db.session.commit()
        # A month later the refunds land.
        db.session.execute(update(Order).where(Order.id == kept.id).values(refunded_fen=3600))
        db.session.execute(update(Order).where(Order.id == gone.id).values(refunded_fen=3600))
        rollups.refresh_orders(db.session, [kept.id, gone.id])
        db.session.commit()
        [row] = db.session.scalars(select(DailyOrders)).all()
        assert row.day == date(2026, 5, 2)
        assert (row.gmv_fen, row.refunds_fen) == (23600, 7200)
        assert (row.paid_orders, row.orders, row.units) == (2, 1, 3)
        sales = {r.product_id: r for r in db.session.scalars(select(DailySales))}
        peel, tea = world.products["peel"][0], world.products["tea"][0]
        # 3600 over lines of 12800 and 7200, plus the other order's whole 3600 of tea.
        assert sales[peel].refunds_fen == 2304
        assert sales[tea].refunds_fen == 1296 + 3600
        assert sales[tea].orders == 1  # the refunded order no longer counts
        buyers = {r.buyer_id for r in db.session.scalars(select(DailyBuyers))}
        assert buyers == {world.users["buyer_a"]}
        assert_summaries_equal_raw(db.session)


def test_a_deleted_product_keeps_its_sales_under_no_product(app, world):
    with app.app_context():
        order = add_order(
            db.session, world.users["buyer_a"], [(world.products["tea"], 1)], utc(2026, 5, 2, 3)
        )
        db.session.execute(
            update(OrderLine).where(OrderLine.order_id == order.id).values(product_id=None)
        )
        rollups.refresh_orders(db.session, [order.id])
        db.session.commit()
        [row] = db.session.scalars(select(DailySales)).all()
        assert (row.product_id, row.category, row.gmv_fen) == (0, "other", 3600)


def test_product_running_totals_carry_over_quiet_months_and_keep_a_window_of_days(app, world):
    peel, tea = world.products["peel"], world.products["tea"]
    jiangmen = services.Node("city", "440700", "", "440700")

    def rows():
        return {
            (r.day, r.product_id): (r.gmv_fen, r.days_sold)
            for r in db.session.scalars(
                select(ProductRunningTotals).where(ProductRunningTotals.code == "440700")
            )
        }

    def top(start, end):
        found = services._top_products(db.session, jiangmen, DateRange(start, end), 10)
        return [key[0] for key, _sums in found]

    with app.app_context():
        december = add_order(db.session, world.users["buyer_a"], [(peel, 1)], utc(2025, 12, 3))
        rollups.refresh_orders(db.session, [december.id])
        db.session.commit()
        assert rows() == {
            (date(2025, 12, 3), peel[0]): (12800, 1),  # a day of the window
            (date(2025, 12, 31), peel[0]): (12800, 1),  # the month's end
        }
        # Nothing in January or February; March's payment lands.
        march = add_order(db.session, world.users["buyer_b"], [(tea, 2)], utc(2026, 3, 3))
        rollups.refresh_orders(db.session, [march.id])
        db.session.commit()
        # The window is now February and March: 3 December is left only in its month's end.
        assert rows() == {
            (date(2025, 12, 31), peel[0]): (12800, 1),
            (date(2026, 1, 31), peel[0]): (12800, 1),
            (date(2026, 2, 28), peel[0]): (12800, 1),
            (date(2026, 3, 3), peel[0]): (12800, 1),
            (date(2026, 3, 3), tea[0]): (7200, 1),
            (date(2026, 3, 31), peel[0]): (12800, 1),
            (date(2026, 3, 31), tea[0]): (7200, 1),
        }
        assert top(date(2026, 1, 1), date(2026, 2, 28)) == []  # whole months
        assert top(date(2026, 2, 10), date(2026, 3, 3)) == [tea[0]]  # the window
        assert top(date(2025, 12, 2), date(2025, 12, 20)) == [peel[0]]  # daily rows
        assert top(date(2025, 12, 4), date(2026, 3, 2)) == []  # months and daily rows
        assert services._product_sums(
            db.session, jiangmen, DateRange(date(2025, 12, 1), date(2026, 3, 31))
        ) == {
            (peel[0],): {"gmv_fen": 12800, "refunds_fen": 0, "orders": 1, "units": 1},
            (tea[0],): {"gmv_fen": 7200, "refunds_fen": 0, "orders": 1, "units": 2},
        }
        assert_summaries_equal_raw(db.session)
        before = rows()
        rollups.rebuild(db.session)
        db.session.commit()
        assert rows() == before


def test_a_day_that_no_longer_has_sales_leaves_the_product_running_totals(app, world):
    """Say a payment is reversed: its day is recomputed, and the place's running totals
    end with the sale before it (its month's end is written again)."""
    peel = world.products["peel"]
    with app.app_context():
        early = add_order(db.session, world.users["buyer_a"], [(peel, 1)], utc(2026, 5, 2, 3))
        late = add_order(db.session, world.users["buyer_b"], [(peel, 2)], utc(2026, 5, 20, 3))
        rollups.refresh_orders(db.session, [early.id, late.id])
        db.session.commit()
        db.session.execute(update(Order).where(Order.id == late.id).values(paid_at=None))
        rollups.refresh_slice(db.session, date(2026, 5, 20), world.coops["xinhui"])
        db.session.commit()
        days = set(db.session.scalars(select(ProductRunningTotals.day)))
        assert days == {date(2026, 5, 2), date(2026, 5, 31)}
        assert_summaries_equal_raw(db.session)


def test_buyer_province_comes_from_the_shipping_address(app, world):
    with app.app_context():
        ids = [
            add_order(
                db.session,
                world.users["buyer_a"],
                [(world.products["peel"], 1)],
                utc(2026, 5, 2, 3),
                address=code,
            ).id
            for code in ("440705", "110000", "330100", "330106", "999999")
        ]
        rollups.refresh_orders(db.session, ids)
        db.session.commit()
        provinces = {r.buyer_province for r in db.session.scalars(select(DailyOrders))}
        assert provinces == {"440000", "110000", "330000", "000000"}


def test_unpaid_orders_are_not_sales(app, world):
    with app.app_context():
        add_order(db.session, world.users["buyer_a"], [(world.products["peel"], 1)], None)
        rollups.rebuild(db.session)
        db.session.commit()
        assert db.session.scalars(select(DailyOrders)).all() == []


def test_rebuild_gives_the_rows_the_increments_gave(app, world):
    with app.app_context():
        a = add_order(
            db.session, world.users["buyer_a"], [(world.products["peel"], 1)], utc(2026, 1, 31, 17)
        )
        b = add_order(
            db.session,
            world.users["buyer_a"],
            [(world.products["rice"], 3)],
            utc(2026, 2, 3, 2),
            refunded_fen=5000,
        )
        rollups.refresh_orders(db.session, [a.id, b.id])
        db.session.commit()
        before = summaries(db.session)
        stats = rollups.rebuild(db.session)
        db.session.commit()
        assert summaries(db.session) == before
        assert stats.orders == 2
        assert rollups.state(db.session).rebuilt_at is not None


# --- the property -------------------------------------------------------------------------------

INSTANTS = [
    utc(2025, 12, 31, 15, 59, 59),
    utc(2025, 12, 31, 16, 0, 0),  # 1 January 2026 in Shanghai
    utc(2026, 1, 1, 3, 0),
    utc(2026, 1, 4, 16, 30),  # Monday 5 January: a new ISO week
    utc(2026, 1, 31, 15, 0),
    utc(2026, 1, 31, 16, 0),  # 1 February in Shanghai
    utc(2026, 2, 1, 9, 0),
    utc(2026, 3, 2, 4, 0),  # March: a month or two after the others, with gaps between
]
ADDRESSES = ["440106", "440705", "110000", "330100", "810000"]

order_spec = st.fixed_dictionaries(
    {
        "coop": st.sampled_from(["xinhui", "taishan", "yingde", "zengcheng"]),
        "buyer": st.sampled_from(["buyer_a", "buyer_b", "buyer_c"]),
        "at": st.sampled_from(INSTANTS),
        "minutes": st.integers(0, 120),
        "address": st.sampled_from(ADDRESSES),
        "quantities": st.lists(st.integers(1, 5), min_size=1, max_size=2),
        # None: no refund; otherwise the share of the total refunded, in per mille.
        "refund": st.one_of(st.none(), st.just(1000), st.integers(1, 999)),
        "paid": st.booleans(),
    }
)


@settings(
    max_examples=30,
    deadline=None,
    # The world (cooperatives, products) is made once; each example empties the sales.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(specs=st.lists(order_spec, min_size=1, max_size=12), data=st.data())
def test_summaries_equal_a_raw_aggregation_whatever_the_events(app, world, specs, data):
    by_coop = defaultdict(list)
    for product in world.products.values():
        by_coop[product[1]].append(product)
    with app.app_context():
        reset_sales(db.session)
        orders = []
        for spec in specs:
            products = by_coop[world.coops[spec["coop"]]]
            lines = list(zip(products, spec["quantities"], strict=False))
            paid_at = spec["at"] + timedelta(minutes=spec["minutes"]) if spec["paid"] else None
            order = add_order(
                db.session, world.users[spec["buyer"]], lines, paid_at, address=spec["address"]
            )
            orders.append((order.id, order.total_fen, spec["refund"]))
        db.session.commit()
        # Payments land, in any order, some twice.
        events = data.draw(st.lists(st.sampled_from([o[0] for o in orders]), min_size=0))
        events += [o[0] for o in orders]  # every payment arrives at least once
        for order_id in data.draw(st.permutations(events)):
            rollups.refresh_orders(db.session, [order_id])
            db.session.commit()
        # Then refunds land (on paid orders), again in any order, maybe duplicated.
        refunded = []
        for order_id, total, refund in orders:
            if refund is None:
                continue
            amount = max(1, total * refund // 1000)
            db.session.execute(
                update(Order)
                .where(Order.id == order_id, Order.paid_at.is_not(None))
                .values(refunded_fen=amount)
            )
            refunded += [order_id] * data.draw(st.integers(1, 2))
        db.session.commit()
        for order_id in data.draw(st.permutations(refunded)):
            rollups.refresh_orders(db.session, [order_id])
            db.session.commit()
        assert_summaries_equal_raw(db.session)
        assert_product_ranges(db.session, raw_aggregation(db.session))
        incremental = summaries(db.session)
        rollups.rebuild(db.session)
        db.session.commit()
        assert summaries(db.session) == incremental
        assert_summaries_equal_raw(db.session)


# --- buyer sets ---------------------------------------------------------------------------------


def test_a_buyer_set_round_trips_through_its_compressed_bytes():
    ids = {1, 7, 8, 4095, 200_000}
    bits = rollups.bits_of(ids)
    assert {i for i in range(bits.bit_length()) if bits >> i & 1} == ids
    assert rollups.decode_bits(rollups.encode_bits(bits)) == bits
    assert rollups.bits_of([]) == 0
    assert rollups.decode_bits(rollups.encode_bits(0)) == 0


def test_someone_who_bought_in_two_periods_bought_twice_in_the_whole():
    a, b, c = (rollups.bits_of([n]) for n in (1, 2, 3))
    # Day 1: a once, b twice; day 2: a once, c once.
    once, twice = rollups.combine_sets([(a | b, b), (a | c, 0)])
    assert once == a | b | c
    assert twice == a | b
