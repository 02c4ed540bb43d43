"""Build the summary tables from raw rows: one slice when money moves, all of them nightly.

A *slice* is one cooperative's sales of one Shanghai day. When a payment succeeds or a
refund lands, every slice it touches is recomputed from the raw orders of that day and
cooperative and written over the old rows (delete, then insert) inside the caller's
transaction; the cooperative's month, the buyer counts of the day's periods and the
informatization row follow from the new daily rows. Recomputing instead of adding means
a duplicate event, or a task that runs twice, cannot count anything twice.

Every rollup starts by writing the one ``reports_state`` row, so rollups take turns: a
concurrent one waits (PostgreSQL row lock, SQLite write lock) and then reads what the
first committed. The nightly :func:`rebuild` recomputes everything from scratch the same
way, in one transaction, so dashboards never see half a rebuild.

The definitions of the measures are in :mod:`market.reports.models`.
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache

from sqlalchemy import (
    Boolean,
    Date,
    Integer,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from market import places
from market.reports import periods
from market.reports.models import (
    NO_PRODUCT,
    UNKNOWN_PROVINCE,
    BuyerSet,
    DailyBuyers,
    DailyInformatization,
    DailyOrders,
    DailySales,
    DailyTotals,
    MonthlyInformatization,
    MonthlyOrders,
    MonthlySales,
    MonthlyTotals,
    ProductRunningTotals,
    ReportState,
)
from market.types import utcnow

log = logging.getLogger(__name__)

PROVINCE = places.GUANGDONG
#: Node levels of the report tree, top down.
LEVELS = ("province", "city", "county", "cooperative")
#: Days the periodic informatization refresh looks back.
INFORMATIZATION_REFRESH_DAYS = 35


# --- places ------------------------------------------------------------------------------


@cache
def place_of(division_code: str) -> tuple[str, str]:
    """The (city, county) codes of a cooperative's division code.

    A city-level code is its own county; an unknown code keeps its first four digits as
    the city, so nothing is lost, only left unnamed.
    """
    code = (division_code or "").strip()
    city = places.city_of(code)
    return (city.code if city else (code[:4] + "00" if len(code) == 6 else code), code)


@cache
def province_of_address(division_code: str | None) -> str:
    """The GB/T 2260 province code of an order's shipping address."""
    code = (division_code or "").strip()
    province = places.province_of(code)
    if province is None and len(code) == 6:
        # A county outside Guangdong is not in the division data; its province is.
        province = places.get(code[:2] + "0000")
    return province.code if province is not None else UNKNOWN_PROVINCE


# --- refunds spread over lines -------------------------------------------------------------


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount`` fen over ``weights`` in proportion, in whole fen that add up.

    Largest remainder: each share is rounded down, and the fen left over go one each to
    the shares with the largest remainders (the earlier one first on a tie).
    """
    total = sum(weights)
    if amount < 0 or any(w < 0 for w in weights):
        raise ValueError("amount and weights must not be negative")
    if not weights:
        if amount:
            raise ValueError("cannot spread an amount over nothing")
        return []
    if total == 0:
        # Nothing to weigh by (all lines free): spread evenly.
        weights, total = [1] * len(weights), len(weights)
    shares = [amount * w // total for w in weights]
    remainders = [amount * w % total for w in weights]
    left = amount - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return shares


# --- raw orders ----------------------------------------------------------------------------


@dataclass
class RawLine:
    product_id: int
    category: str
    is_gi: bool
    quantity: int
    value_fen: int


@dataclass
class RawOrder:
    id: int
    cooperative_id: int
    buyer_id: int
    day: date
    province: str
    total_fen: int
    refunded_fen: int
    lines: list[RawLine] = field(default_factory=list)

    @property
    def counts(self) -> bool:
        """A sale that stands: not refunded in full."""
        return self.refunded_fen < self.total_fen


def local_day(column, dialect: str):
    """SQL for the Asia/Shanghai calendar day of an aware UTC timestamp column (UTC+8 all
    year: China has kept no summer time since 1991)."""
    if dialect == "postgresql":
        return cast(func.timezone(periods.SHANGHAI.key, column), Date)
    return func.date(column, "+8 hours", type_=Date)


def _orders_query(dialect: str, *conditions):
    from market.catalog.models import Product
    from market.orders.models import Order, OrderLine

    return (
        select(
            Order.id,
            Order.cooperative_id,
            Order.buyer_id,
            local_day(Order.paid_at, dialect),
            Order.total_fen,
            Order.refunded_fen,
            Order.division_code,
            OrderLine.product_id,
            OrderLine.quantity,
            OrderLine.unit_price_fen,
            type_coerce(Product.category, String),
            Product.is_gi,
        )
        .select_from(Order)
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(Order.paid_at.is_not(None), *conditions)
        .order_by(Order.id, OrderLine.id)
    )


def load_orders(session: Session, *conditions) -> list[RawOrder]:
    """Paid orders matching ``conditions`` (on market.orders.models.Order), with lines."""
    found: list[RawOrder] = []
    current: RawOrder | None = None
    query = _orders_query(session.get_bind().dialect.name, *conditions)
    for row in session.execute(query):
        (oid, coop, buyer, day, total, refunded, address, pid, qty, price, cat, gi) = row
        if current is None or current.id != oid:
            current = RawOrder(
                id=oid,
                cooperative_id=coop,
                buyer_id=buyer,
                day=day,
                province=province_of_address(address),
                total_fen=total,
                refunded_fen=refunded or 0,
            )
            found.append(current)
        if qty is not None:
            current.lines.append(
                RawLine(
                    product_id=pid if pid is not None else NO_PRODUCT,
                    category=cat if cat is not None else "other",
                    is_gi=bool(gi),
                    quantity=qty,
                    value_fen=qty * price,
                )
            )
    return found


# --- tallies -------------------------------------------------------------------------------


@dataclass
class Tally:
    """Daily summary rows being built, keyed by each table's primary key."""

    sales: dict[tuple, dict] = field(default_factory=dict)
    orders: dict[tuple, dict] = field(default_factory=dict)
    buyers: dict[tuple, dict] = field(default_factory=dict)

    def add(self, order: RawOrder, division_code: str) -> None:
        city, county = place_of(division_code)
        place = {"cooperative_id": order.cooperative_id, "city_code": city, "county_code": county}
        counted = 1 if order.counts else 0
        units = sum(line.quantity for line in order.lines)

        row = self.orders.get(key := (order.day, order.cooperative_id, order.province))
        if row is None:
            row = self.orders[key] = {
                "day": order.day,
                "buyer_province": order.province,
                **place,
                "gmv_fen": 0,
                "refunds_fen": 0,
                "orders": 0,
                "units": 0,
                "paid_orders": 0,
            }
        row["gmv_fen"] += order.total_fen
        row["refunds_fen"] += order.refunded_fen
        row["paid_orders"] += 1
        row["orders"] += counted
        row["units"] += units * counted

        if counted:
            key = (order.day, order.cooperative_id, order.buyer_id)
            buyer = self.buyers.get(key)
            if buyer is None:
                buyer = self.buyers[key] = {
                    "day": order.day,
                    "buyer_id": order.buyer_id,
                    "week": periods.period_containing("week", order.day).start,
                    "month": order.day.replace(day=1),
                    **place,
                    "orders": 0,
                }
            buyer["orders"] += 1

        refunds = allocate(order.refunded_fen, [line.value_fen for line in order.lines])
        seen: set[int] = set()
        for line, refund in zip(order.lines, refunds, strict=True):
            key = (order.day, order.cooperative_id, line.product_id, order.province)
            sale = self.sales.get(key)
            if sale is None:
                sale = self.sales[key] = {
                    "day": order.day,
                    "product_id": line.product_id,
                    "buyer_province": order.province,
                    **place,
                    "category": line.category,
                    "is_gi": line.is_gi,
                    "gmv_fen": 0,
                    "refunds_fen": 0,
                    "orders": 0,
                    "units": 0,
                }
            sale["gmv_fen"] += line.value_fen
            sale["refunds_fen"] += refund
            sale["units"] += line.quantity * counted
            if line.product_id not in seen:  # an order naming a product twice counts once
                sale["orders"] += counted
                seen.add(line.product_id)


# --- taking turns --------------------------------------------------------------------------


def lock(session: Session, *, rebuilt: bool = False) -> None:
    """Write the state row first thing: concurrent rollups wait here for each other."""
    now = utcnow()
    values = {"id": 1, "updated_at": now}
    if rebuilt:
        values["rebuilt_at"] = now
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as upsert
    else:  # pragma: no cover - the product runs on PostgreSQL and SQLite only
        raise RuntimeError(f"no upsert for {dialect}")
    stmt = upsert(ReportState).values(**values)
    update = {k: v for k, v in values.items() if k != "id"}
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=update))


def state(session: Session) -> ReportState | None:
    return session.get(ReportState, 1)


# --- incremental ---------------------------------------------------------------------------


def slices_of_payment(session: Session, intent_id: str) -> set[tuple[date, int]]:
    """The (day, cooperative) slices of the paid orders of one payment."""
    from market.orders.models import Order

    rows = session.execute(
        select(Order.paid_at, Order.cooperative_id).where(
            Order.payment_intent_id == intent_id, Order.paid_at.is_not(None)
        )
    )
    return {(periods.local_date(paid_at), coop) for paid_at, coop in rows}


def slices_of_orders(session: Session, order_ids: Iterable[int]) -> set[tuple[date, int]]:
    from market.orders.models import Order

    ids = list(order_ids)
    if not ids:
        return set()
    rows = session.execute(
        select(Order.paid_at, Order.cooperative_id).where(
            Order.id.in_(ids), Order.paid_at.is_not(None)
        )
    )
    return {(periods.local_date(paid_at), coop) for paid_at, coop in rows}


def refresh_payment(session: Session, intent_id: str) -> int:
    """Recompute every slice of a payment's orders (after it succeeded or was refunded)."""
    lock(session)
    slices = slices_of_payment(session, intent_id)
    refresh_slices(session, slices, locked=True)
    return len(slices)


def refresh_orders(session: Session, order_ids: Iterable[int]) -> int:
    """Recompute the slices of these orders."""
    lock(session)
    slices = slices_of_orders(session, order_ids)
    refresh_slices(session, slices, locked=True)
    return len(slices)


def refresh_slices(
    session: Session, slices: Iterable[tuple[date, int]], *, locked: bool = False
) -> None:
    """Recompute these (day, cooperative) slices and everything that follows from them."""
    if not locked:
        lock(session)
    for day, cooperative_id in sorted(set(slices)):
        refresh_slice(session, day, cooperative_id, locked=True)


def refresh_slice(
    session: Session, day: date, cooperative_id: int, *, locked: bool = False
) -> None:
    """Recompute one cooperative's day from the raw orders, and its month, buyer counts
    and informatization row. Running it twice gives the same rows."""
    from market.cooperatives.models import Cooperative
    from market.orders.models import Order

    if not locked:
        lock(session)
    division_code = session.scalar(
        select(Cooperative.division_code).where(Cooperative.id == cooperative_id)
    )
    if division_code is None:
        log.warning("report slice for unknown cooperative %s", cooperative_id)
        return
    bounds = periods.Period("day", day)
    tally = Tally()
    for order in load_orders(
        session,
        Order.cooperative_id == cooperative_id,
        Order.paid_at >= bounds.start_at,
        Order.paid_at < bounds.end_at,
    ):
        tally.add(order, division_code)
    for table in (DailySales, DailyOrders, DailyBuyers):
        session.execute(
            delete(table).where(table.day == day, table.cooperative_id == cooperative_id)
        )
    _insert(session, tally)
    month = periods.period_containing("month", day)
    _refresh_monthly(session, month, cooperative_id)
    for level, code in nodes_of(cooperative_id, division_code)[:2]:  # province, city
        _refresh_totals(session, level, code, day)
        _refresh_buyer_sets(session, level, code, day)
    refresh_informatization(session, day, day, cooperative_id=cooperative_id, locked=True)


def _insert(session: Session, tally: Tally) -> None:
    for table, rows in (
        (DailySales, tally.sales),
        (DailyOrders, tally.orders),
        (DailyBuyers, tally.buyers),
    ):
        # In key order, so the primary key index grows at its end.
        bulk_insert(session, table, [rows[key] for key in sorted(rows)])


def bulk_insert(session: Session, model: type, rows: Sequence[dict]) -> None:
    """INSERT many rows with the driver's executemany, in the session's transaction.

    A rebuild writes millions of summary rows; SQLAlchemy's per-row parameter handling
    would cost more than the database does. Values are dates, ints, strings and bools,
    which both drivers take as they are, except that SQLite stores dates as ISO text
    and bools as 0 / 1 the way SQLAlchemy does.
    """
    if not rows:
        return
    table = model.__table__
    columns = list(rows[0])
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - names from metadata
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    if sqlite:
        values = [tuple(_sqlite_value(row[c]) for c in columns) for row in rows]
    else:
        values = [tuple(row[c] for c in columns) for row in rows]
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(statement, values)
    finally:
        cursor.close()


def _sqlite_value(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- months --------------------------------------------------------------------------------

#: (daily, monthly, key columns after the period, summed columns, "latest" columns)
_MONTHLY = (
    (
        DailySales,
        MonthlySales,
        ("cooperative_id", "product_id"),
        ("gmv_fen", "refunds_fen", "orders", "units"),
        ("city_code", "county_code", "category"),
    ),
    (
        DailyOrders,
        MonthlyOrders,
        ("cooperative_id", "buyer_province"),
        ("gmv_fen", "refunds_fen", "orders", "units", "paid_orders"),
        ("city_code", "county_code"),
    ),
    (
        DailyInformatization,
        MonthlyInformatization,
        ("cooperative_id",),
        (
            "units_sold",
            "units_coded",
            "batches",
            "batches_inspected",
            "shipments",
            "shipments_rfid",
        ),
        ("city_code", "county_code"),
    ),
)


def _refresh_monthly(
    session: Session,
    month: periods.Period,
    cooperative_id: int | None = None,
    *,
    tables: Sequence[type] | None = None,
) -> None:
    """Rewrite a month's rows (of one cooperative, or all) as the sum of its days."""
    for daily, monthly, keys, sums, latest in _MONTHLY:
        if tables is not None and daily not in tables:
            continue
        coop_daily = daily.cooperative_id == cooperative_id if cooperative_id else true()
        coop_monthly = monthly.cooperative_id == cooperative_id if cooperative_id else true()
        session.execute(delete(monthly).where(monthly.month == month.start, coop_monthly))
        columns = [getattr(daily, k) for k in keys]
        chosen = [
            literal(month.start, type_=monthly.__table__.c.month.type).label("month"),
            *columns,
            *(func.sum(getattr(daily, s)).label(s) for s in sums),
            *(func.max(getattr(daily, c)).label(c) for c in latest),
        ]
        names = ["month", *keys, *sums, *latest]
        if daily is DailySales:
            chosen.append(cast(func.max(cast(daily.is_gi, Integer)), Boolean).label("is_gi"))
            names.append("is_gi")
        query = (
            select(*chosen)
            .where(daily.day >= month.start, daily.day < month.end, coop_daily)
            .group_by(*columns)
        )
        session.execute(insert(monthly).from_select(names, query))


# --- totals per place ---------------------------------------------------------------------

#: What a DailyTotals row's ``key`` is, per ``dim``: (source table, key column name).
_TOTAL_DIMS = (
    ("all", DailyOrders, None),
    ("province", DailyOrders, "buyer_province"),
    ("category", DailySales, "category"),
    ("gi", DailySales, "is_gi"),
)
_TOTAL_COLUMNS = [
    "day",
    "level",
    "code",
    "parent",
    "dim",
    "key",
    "gmv_fen",
    "refunds_fen",
    "orders",
    "paid_orders",
    "units",
]


def _totals_selects(level: str, *, code: str | None = None, day: date | None = None):
    """INSERT-ready SELECTs of the province's or the cities' daily totals, from the
    cooperatives' rows."""
    for dim, table, key_name in _TOTAL_DIMS:
        if level == "province":
            code_column, parent_column = literal(PROVINCE, type_=String), literal("", String)
            grouped = [table.day]
        else:
            code_column, parent_column = table.city_code, literal(PROVINCE, type_=String)
            grouped = [table.day, table.city_code]
        if key_name is None:
            key = literal("", String)
        elif key_name == "is_gi":
            key = case((table.is_gi, "1"), else_="0")
            grouped.append(table.is_gi)
        else:
            key = getattr(table, key_name)
            grouped.append(key)
        paid = func.sum(table.paid_orders) if table is DailyOrders else literal(0, Integer)
        conditions = []
        if code is not None and level != "province":
            conditions.append(code_column == code)
        if day is not None:
            conditions.append(table.day == day)
        yield (
            select(
                table.day,
                literal(level, String),
                code_column,
                parent_column,
                literal(dim, String),
                key,
                func.sum(table.gmv_fen),
                func.sum(table.refunds_fen),
                func.sum(table.orders),
                paid,
                func.sum(table.units),
            )
            .where(*conditions)
            .group_by(*grouped)
        )


def _refresh_totals(session: Session, level: str, code: str, day: date) -> None:
    """Rewrite one place's totals of one day, and of its month, from the cooperatives' rows."""
    session.execute(
        delete(DailyTotals).where(
            DailyTotals.level == level, DailyTotals.code == code, DailyTotals.day == day
        )
    )
    for query in _totals_selects(level, code=code, day=day):
        session.execute(insert(DailyTotals).from_select(_TOTAL_COLUMNS, query))
    _refresh_monthly_totals(session, periods.period_containing("month", day), level, code)
    _refresh_running_totals(session, level, code, day)


def _refresh_monthly_totals(
    session: Session, month: periods.Period, level: str | None = None, code: str | None = None
) -> None:
    place = and_(MonthlyTotals.level == level, MonthlyTotals.code == code) if level else true()
    session.execute(delete(MonthlyTotals).where(MonthlyTotals.month == month.start, place))
    daily_place = and_(DailyTotals.level == level, DailyTotals.code == code) if level else true()
    keys = [
        DailyTotals.level,
        DailyTotals.code,
        DailyTotals.parent,
        DailyTotals.dim,
        DailyTotals.key,
    ]
    query = (
        select(
            literal(month.start, type_=MonthlyTotals.__table__.c.month.type),
            *keys,
            func.sum(DailyTotals.gmv_fen),
            func.sum(DailyTotals.refunds_fen),
            func.sum(DailyTotals.orders),
            func.sum(DailyTotals.paid_orders),
            func.sum(DailyTotals.units),
        )
        .where(DailyTotals.day >= month.start, DailyTotals.day < month.end, daily_place)
        .group_by(*keys)
    )
    columns = ["month", *_TOTAL_COLUMNS[1:]]
    session.execute(insert(MonthlyTotals).from_select(columns, query))


def _rebuild_totals(session: Session, months: Sequence[periods.Period]) -> None:
    session.execute(delete(DailyTotals))
    session.execute(delete(MonthlyTotals))
    for level in ("province", "city"):
        for query in _totals_selects(level):
            session.execute(insert(DailyTotals).from_select(_TOTAL_COLUMNS, query))
    for month in months:
        _refresh_monthly_totals(session, month)
    session.execute(delete(ProductRunningTotals))
    if months:
        cities = session.scalars(
            select(DailyTotals.code).where(DailyTotals.level == "city").distinct()
        ).all()
        for level, code in [("province", PROVINCE), *(("city", city) for city in sorted(cities))]:
            _refresh_running_totals(session, level, code, months[0].start)


# --- products per place: running totals ---------------------------------------------------

_RUNNING_SUMS = ("gmv_fen", "refunds_fen", "orders", "units")


def product_window(last: date) -> date:
    """The first day of a place's window of daily checkpoints (see
    :class:`~market.reports.models.ProductRunningTotals`), given the day of its last sale
    or its last checkpoint: the first of the month before that day's month."""
    return periods.previous_period(periods.period_containing("month", last)).start


def _sale_days(session: Session, level: str, code: str) -> Sequence[date]:
    """The days with a paid order in the place (its daily totals), in order."""
    return session.scalars(
        select(DailyTotals.day)
        .where(DailyTotals.level == level, DailyTotals.code == code, DailyTotals.dim == "all")
        .order_by(DailyTotals.day)
    ).all()


def _sales_by_product(level: str, code: str, after: date | None, through: date):
    """A place's sales by product on the days after ``after`` up to ``through``, with the
    number of days each product sold on."""
    conditions = [DailySales.day <= through]
    if after is not None:
        conditions.append(DailySales.day > after)
    if level != "province":
        conditions.append(DailySales.city_code == code)
    return (
        select(
            DailySales.product_id,
            *(func.sum(getattr(DailySales, name)).label(name) for name in _RUNNING_SUMS),
            func.count(DailySales.day.distinct()).label("days_sold"),
        )
        .where(*conditions)
        .group_by(DailySales.product_id)
    )


def _refresh_running_totals(session: Session, level: str, code: str, since: date) -> None:
    """Rewrite a place's product running totals from the day ``since`` on: each
    checkpoint is the one before plus the sales in between.

    Checkpoints before ``since`` are kept and carried on from, except that a place that
    sold nothing for a while first gets the month ends it missed, one with no rows yet
    is written from its first sale, and days that have left the window are dropped
    (see :class:`~market.reports.models.ProductRunningTotals`).
    """
    running = ProductRunningTotals
    place = and_(running.level == level, running.code == code)
    written = session.scalar(select(func.max(running.day)).where(place))
    sale_days = _sale_days(session, level, code)
    if written is None:
        start = min(since, sale_days[0]) if sale_days else since
    else:
        start = min(since, written + timedelta(days=1))
    session.execute(delete(running).where(place, running.day >= start))
    if not sale_days:
        return
    window = product_window(sale_days[-1])
    if written is not None and product_window(written) < window:
        # The window moved on: its old days keep only their months' last days.
        gone = periods.DateRange(product_window(written), window - timedelta(days=1))
        session.execute(
            delete(running).where(
                place,
                running.day >= gone.start,
                running.day < window,
                running.day.not_in([month.last_day for month in gone.periods("month")]),
            )
        )
    ends = [
        month.last_day
        for month in periods.period_range("month", min(start, sale_days[-1]), sale_days[-1])
        if month.last_day >= start
    ]
    checkpoints = sorted({*ends, *(day for day in sale_days if day >= max(start, window))})
    previous = session.scalar(select(func.max(running.day)).where(place, running.day < start))
    columns = ["level", "code", "day", "product_id", *_RUNNING_SUMS, "days_sold"]
    for checkpoint in checkpoints:
        carried = select(
            running.product_id,
            *(getattr(running, name) for name in _RUNNING_SUMS),
            running.days_sold,
        ).where(place, running.day == previous)
        both = union_all(carried, _sales_by_product(level, code, previous, checkpoint)).subquery()
        query = select(
            literal(level, String),
            literal(code, String),
            literal(checkpoint, type_=running.__table__.c.day.type),
            both.c.product_id,
            *(func.sum(both.c[name]) for name in (*_RUNNING_SUMS, "days_sold")),
        ).group_by(both.c.product_id)
        session.execute(insert(running).from_select(columns, query))
        previous = checkpoint


# --- buyers per period ---------------------------------------------------------------------


def _node_filter(table, level: str, code: str):
    if level == "province":
        return true()
    if level == "city":
        return table.city_code == code
    if level == "county":
        return table.county_code == code
    return table.cooperative_id == int(code)


def nodes_of(cooperative_id: int, division_code: str) -> list[tuple[str, str]]:
    """The report-tree nodes a cooperative's figures count in, top down."""
    city, county = place_of(division_code)
    nodes = [("province", PROVINCE), ("city", city)]
    if county != city:
        nodes.append(("county", county))
    nodes.append(("cooperative", str(cooperative_id)))
    return nodes


def count_buyers(
    session: Session, level: str, code: str, start: date, end: date
) -> tuple[int, int]:
    """Distinct buyers and repeat buyers (2+ orders) of a node over days [start, end)."""
    per_buyer = (
        select(DailyBuyers.buyer_id, func.sum(DailyBuyers.orders).label("n"))
        .where(
            DailyBuyers.day >= start,
            DailyBuyers.day < end,
            _node_filter(DailyBuyers, level, code),
        )
        .group_by(DailyBuyers.buyer_id)
        .subquery()
    )
    buyers, repeat = session.execute(
        select(func.count(), func.coalesce(func.sum(case((per_buyer.c.n >= 2, 1), else_=0)), 0))
    ).one()
    return int(buyers), int(repeat)


# --- buyer sets ---------------------------------------------------------------------------

#: Levels that keep buyer sets (counties and cooperatives are counted from the rows).
SET_LEVELS = ("province", "city")


def bits_of(buyer_ids: Iterable[int]) -> int:
    """A bitmap (a Python int) with bit *n* set for each buyer id *n*."""
    ids = list(buyer_ids)
    if not ids:
        return 0
    buffer = bytearray((max(ids) >> 3) + 1)
    for buyer_id in ids:
        buffer[buyer_id >> 3] |= 1 << (buyer_id & 7)
    return int.from_bytes(buffer, "little")


def encode_bits(bits: int) -> bytes:
    return zlib.compress(bits.to_bytes((bits.bit_length() + 7) // 8, "little"), 6)


def decode_bits(blob: bytes | None) -> int:
    return int.from_bytes(zlib.decompress(blob), "little") if blob else 0


def combine_sets(parts: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """Union of (once, twice) sets of disjoint periods: someone who bought in two of them,
    or twice in one, bought twice in the whole."""
    seen = twice = 0
    for once, two in parts:
        twice |= (seen & once) | two
        seen |= once
    return seen, twice


def _set_row(level: str, code: str, kind: str, start: date, once: int, twice: int) -> dict:
    return {
        "level": level,
        "code": code,
        "kind": kind,
        "start": start,
        "buyers": once.bit_count(),
        "repeat_buyers": twice.bit_count(),
        "once": encode_bits(once),
        "twice": encode_bits(twice),
    }


def _refresh_buyer_sets(session: Session, level: str, code: str, day: date) -> None:
    """Rewrite a place's buyer set of one day from the daily rows, and of its month from
    the month's day sets."""
    counts = session.execute(
        select(DailyBuyers.buyer_id, func.sum(DailyBuyers.orders))
        .where(DailyBuyers.day == day, _node_filter(DailyBuyers, level, code))
        .group_by(DailyBuyers.buyer_id)
    ).all()
    once = bits_of(buyer for buyer, n in counts if n >= 1)
    twice = bits_of(buyer for buyer, n in counts if n >= 2)
    month = periods.period_containing("month", day)
    place = and_(BuyerSet.level == level, BuyerSet.code == code)
    session.execute(
        delete(BuyerSet).where(
            place,
            or_(
                and_(BuyerSet.kind == "day", BuyerSet.start == day),
                and_(BuyerSet.kind == "month", BuyerSet.start == month.start),
            ),
        )
    )
    rows = []
    if once:
        rows.append(_set_row(level, code, "day", day, once, twice))
    days = {
        start: (decode_bits(a), decode_bits(b))
        for start, a, b in session.execute(
            select(BuyerSet.start, BuyerSet.once, BuyerSet.twice).where(
                place,
                BuyerSet.kind == "day",
                BuyerSet.start >= month.start,
                BuyerSet.start < month.end,
            )
        )
    }
    days[day] = (once, twice)
    month_once, month_twice = combine_sets(days.values())
    if month_once:
        rows.append(_set_row(level, code, "month", month.start, month_once, month_twice))
    if rows:
        session.connection().execute(BuyerSet.__table__.insert(), rows)


def _rebuild_buyer_sets(session: Session) -> None:
    """Every day's and month's buyer sets, from the daily rows in one ordered pass."""
    session.execute(delete(BuyerSet))
    rows: list[dict] = []
    months: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    current_month: date | None = None

    def flush_day(day: date, counts: dict[tuple[str, str], dict[int, int]]) -> None:
        for (level, code), per_buyer in counts.items():
            once = bits_of(per_buyer)
            twice = bits_of(b for b, n in per_buyer.items() if n >= 2)
            rows.append(_set_row(level, code, "day", day, once, twice))
            months[(level, code)].append((once, twice))

    def flush_month(month: date) -> None:
        for (level, code), parts in months.items():
            once, twice = combine_sets(parts)
            rows.append(_set_row(level, code, "month", month, once, twice))
        months.clear()
        bulk_insert(session, BuyerSet, rows)
        rows.clear()

    query = select(
        DailyBuyers.day, DailyBuyers.city_code, DailyBuyers.buyer_id, DailyBuyers.orders
    ).order_by(DailyBuyers.day)
    day: date | None = None
    counts: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row_day, city, buyer, n in session.execute(query.execution_options(yield_per=20000)):
        if row_day != day:
            if day is not None:
                flush_day(day, counts)
                counts = defaultdict(lambda: defaultdict(int))
            if current_month is not None and row_day.replace(day=1) != current_month:
                flush_month(current_month)
            day, current_month = row_day, row_day.replace(day=1)
        counts[("province", PROVINCE)][buyer] += n
        counts[("city", city)][buyer] += n
    if day is not None:
        flush_day(day, counts)
        flush_month(current_month)


# --- informatization -----------------------------------------------------------------------


def refresh_informatization(
    session: Session,
    start: date,
    end: date,
    *,
    cooperative_id: int | None = None,
    locked: bool = False,
) -> None:
    """Recompute the traceability and RFID counts of local days ``start`` … ``end``.

    Units sold come from the (already current) daily sales rows; units with a unit
    code, batches and shipments from the traceability and logistics tables, imported
    here because market never depends on them at import time.
    """
    from market.cooperatives.models import Cooperative

    if not locked:
        lock(session)
    coop_filter = (
        DailyInformatization.cooperative_id == cooperative_id if cooperative_id else true()
    )
    session.execute(
        delete(DailyInformatization).where(
            DailyInformatization.day >= start, DailyInformatization.day <= end, coop_filter
        )
    )
    rows: dict[tuple[date, int], dict] = defaultdict(dict)
    sales_filter = DailySales.cooperative_id == cooperative_id if cooperative_id else true()
    for day, coop, units in session.execute(
        select(DailySales.day, DailySales.cooperative_id, func.sum(DailySales.units))
        .where(DailySales.day >= start, DailySales.day <= end, sales_filter)
        .group_by(DailySales.day, DailySales.cooperative_id)
    ):
        if units:
            rows[(day, coop)]["units_sold"] = int(units)
    span = periods.DateRange(start, end)
    for counter in (_coded_units, _batch_counts, _shipment_counts):
        for key, values in counter(session, span, cooperative_id).items():
            rows[key].update(values)
    if rows:
        coops = dict(
            session.execute(
                select(Cooperative.id, Cooperative.division_code).where(
                    Cooperative.id.in_({coop for _day, coop in rows})
                )
            ).all()
        )
        inserts = []
        for (day, coop), values in sorted(rows.items()):
            if coop not in coops:
                continue
            city, county = place_of(coops[coop])
            inserts.append(
                {
                    "day": day,
                    "cooperative_id": coop,
                    "city_code": city,
                    "county_code": county,
                    "units_sold": 0,
                    "units_coded": 0,
                    "batches": 0,
                    "batches_inspected": 0,
                    "shipments": 0,
                    "shipments_rfid": 0,
                    **values,
                }
            )
        bulk_insert(session, DailyInformatization, inserts)
    for month in span.periods("month"):
        _refresh_monthly(session, month, cooperative_id, tables=[DailyInformatization])


def _coded_units(
    session: Session, span: periods.DateRange, cooperative_id: int | None
) -> dict[tuple[date, int], dict]:
    """Units sold in the span that carry a unit code (一物一码): unit codes packed into a
    parcel for the line, at most the line's quantity, of orders that count."""
    from logistics.models import Parcel, ParcelItem
    from market.orders.models import Order, OrderLine

    query = (
        select(
            Order.paid_at,
            Order.cooperative_id,
            OrderLine.quantity,
            func.count(ParcelItem.id),
        )
        .select_from(ParcelItem)
        .join(Parcel, Parcel.id == ParcelItem.parcel_id)
        .join(OrderLine, OrderLine.id == ParcelItem.order_line_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            ParcelItem.code_id.is_not(None),
            Order.paid_at >= span.start_at,
            Order.paid_at < span.end_at,
            Order.refunded_fen < Order.total_fen,
            Order.cooperative_id == cooperative_id if cooperative_id else true(),
        )
        .group_by(OrderLine.id, Order.paid_at, Order.cooperative_id, OrderLine.quantity)
    )
    found: dict[tuple[date, int], dict] = {}
    for paid_at, coop, quantity, coded in session.execute(query):
        row = found.setdefault((periods.local_date(paid_at), coop), {"units_coded": 0})
        row["units_coded"] += min(int(coded), quantity)
    return found


def _batch_counts(
    session: Session, span: periods.DateRange, cooperative_id: int | None
) -> dict[tuple[date, int], dict]:
    """Batches recorded in the span, and how many have an inspection record."""
    from traceability.models import Batch, Inspection

    inspected = (
        select(Inspection.id).where(Inspection.batch_id == Batch.id).exists().correlate(Batch)
    )
    query = select(Batch.created_at, Batch.cooperative_id, inspected).where(
        Batch.created_at >= span.start_at,
        Batch.created_at < span.end_at,
        Batch.cooperative_id == cooperative_id if cooperative_id else true(),
    )
    found: dict[tuple[date, int], dict] = {}
    for created_at, coop, has_inspection in session.execute(query):
        row = found.setdefault(
            (periods.local_date(created_at), coop), {"batches": 0, "batches_inspected": 0}
        )
        row["batches"] += 1
        row["batches_inspected"] += 1 if has_inspection else 0
    return found


def _shipment_counts(
    session: Session, span: periods.DateRange, cooperative_id: int | None
) -> dict[tuple[date, int], dict]:
    """Shipments sent in the span, and how many of them an RFID reader saw: a tag read
    (not quarantined) of one of its parcels' SSCC or of a unit code packed in them."""
    from logistics.epc import canonical_epc
    from logistics.models import Parcel, ParcelItem, ReadStatus, Shipment, TagRead
    from traceability.models import TraceCode

    shipments = session.execute(
        select(Shipment.id, Shipment.cooperative_id, Shipment.shipped_at).where(
            Shipment.shipped_at >= span.start_at,
            Shipment.shipped_at < span.end_at,
            Shipment.cooperative_id == cooperative_id if cooperative_id else true(),
        )
    ).all()
    if not shipments:
        return {}
    ids = [row.id for row in shipments]
    epcs: dict[str, set[int]] = defaultdict(set)
    for chunk in _chunks(ids):
        for shipment_id, sscc_uri in session.execute(
            select(Parcel.shipment_id, Parcel.sscc_uri).where(Parcel.shipment_id.in_(chunk))
        ):
            epcs[sscc_uri].add(shipment_id)
        for shipment_id, epc_hex in session.execute(
            select(Parcel.shipment_id, TraceCode.epc_hex)
            .join(ParcelItem, ParcelItem.parcel_id == Parcel.id)
            .join(TraceCode, TraceCode.id == ParcelItem.code_id)
            .where(Parcel.shipment_id.in_(chunk), TraceCode.epc_hex.is_not(None))
        ):
            epcs[canonical_epc(epc_hex)].add(shipment_id)
    seen: set[int] = set()
    for chunk in _chunks(list(epcs)):
        for (epc,) in session.execute(
            select(TagRead.epc)
            .where(TagRead.epc.in_(chunk), TagRead.status != ReadStatus.QUARANTINED)
            .distinct()
        ):
            seen |= epcs[epc]
    found: dict[tuple[date, int], dict] = {}
    for shipment_id, coop, shipped_at in shipments:
        row = found.setdefault(
            (periods.local_date(shipped_at), coop), {"shipments": 0, "shipments_rfid": 0}
        )
        row["shipments"] += 1
        row["shipments_rfid"] += 1 if shipment_id in seen else 0
    return found


def _first_shipment_at(session: Session) -> datetime | None:
    from logistics.models import Shipment

    return session.scalar(select(func.min(Shipment.shipped_at)))


def _chunks(items: Sequence, size: int = 500) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- everything ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RebuildStats:
    orders: int
    daily_sales_rows: int
    daily_order_rows: int
    buyer_rows: int
    months: int


def _roomy_cache(session: Session) -> None:
    """On SQLite, a 64 MB page cache for this connection while the rebuild writes: the
    summaries' indexes then stay in memory instead of spilling mid-transaction (the
    default is 2 MB). PostgreSQL sizes its own shared buffers."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA cache_size = -65536"))


def _month_bounds(session: Session) -> tuple[date, date] | None:
    from market.orders.models import Order

    first, last = session.execute(
        select(func.min(Order.paid_at), func.max(Order.paid_at)).where(Order.paid_at.is_not(None))
    ).one()
    if first is None:
        return None
    return periods.local_date(first).replace(day=1), periods.local_date(last).replace(day=1)


def rebuild(session: Session) -> RebuildStats:
    """Recompute every summary from the raw rows (the nightly task; demo load)."""
    from market.cooperatives.models import Cooperative
    from market.orders.models import Order

    lock(session, rebuilt=True)
    _roomy_cache(session)
    for table in (
        DailySales,
        MonthlySales,
        DailyOrders,
        MonthlyOrders,
        DailyBuyers,
        BuyerSet,
        DailyInformatization,
        MonthlyInformatization,
        DailyTotals,
        MonthlyTotals,
        ProductRunningTotals,
    ):
        session.execute(delete(table))
    divisions = dict(session.execute(select(Cooperative.id, Cooperative.division_code)).all())
    counts = {"orders": 0, "sales": 0, "orders_rows": 0, "buyers": 0, "months": 0}
    bounds = _month_bounds(session)
    months: list[periods.Period] = []
    if bounds is not None:
        month = periods.Period("month", bounds[0])
        while month.start <= bounds[1]:
            months.append(month)
            tally = Tally()
            for order in load_orders(
                session, Order.paid_at >= month.start_at, Order.paid_at < month.end_at
            ):
                tally.add(order, divisions.get(order.cooperative_id, ""))
                counts["orders"] += 1
            _insert(session, tally)
            counts["sales"] += len(tally.sales)
            counts["orders_rows"] += len(tally.orders)
            counts["buyers"] += len(tally.buyers)
            counts["months"] += 1
            _refresh_monthly(session, month, tables=[DailySales, DailyOrders])
            month = periods.Period("month", month.end)
        _rebuild_totals(session, months)
        _rebuild_buyer_sets(session)
    _rebuild_informatization(session)
    return RebuildStats(
        orders=counts["orders"],
        daily_sales_rows=counts["sales"],
        daily_order_rows=counts["orders_rows"],
        buyer_rows=counts["buyers"],
        months=counts["months"],
    )


def _rebuild_informatization(session: Session) -> None:
    """Informatization rows for every day from the first sale, batch or shipment."""
    from traceability.models import Batch

    starts = []
    if (bounds := _month_bounds(session)) is not None:
        starts.append(bounds[0])
    if (first_batch := session.scalar(select(func.min(Batch.created_at)))) is not None:
        starts.append(periods.local_date(first_batch))
    if (first_shipment := _first_shipment_at(session)) is not None:
        starts.append(periods.local_date(first_shipment))
    if starts:
        end = max(periods.local_today(), min(starts))
        refresh_informatization(session, min(starts), end, locked=True)


def refresh_recent_informatization(
    session: Session, days: int = INFORMATIZATION_REFRESH_DAYS
) -> None:
    """The last ``days`` days of traceability and RFID counts (the periodic task)."""
    end = periods.local_today()
    refresh_informatization(session, end - timedelta(days=days - 1), end)


__all__ = [
    "LEVELS",
    "RawLine",
    "RawOrder",
    "RebuildStats",
    "Tally",
    "allocate",
    "bits_of",
    "combine_sets",
    "count_buyers",
    "decode_bits",
    "load_orders",
    "lock",
    "nodes_of",
    "place_of",
    "province_of_address",
    "rebuild",
    "refresh_informatization",
    "refresh_orders",
    "refresh_payment",
    "refresh_recent_informatization",
    "refresh_slice",
    "refresh_slices",
]
