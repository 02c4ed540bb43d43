"""Dashboard figures, read from the summary tables only, for what a user may see.

Every figure is asked for through :func:`resolve_node`, which starts from the user: the
platform sees the province, 供销社 staff their city or county, a cooperative admin their
own cooperative. A drill-down (``area`` = a city or county code, ``coop`` = a cooperative
id) may only narrow that; anything else raises
:class:`~market.errors.PermissionDeniedError`. Every query then filters the summary rows
by the node (``WHERE city_code = …``), so a figure can never include another place.

Ranges are local days in Asia/Shanghai (:class:`~market.reports.periods.DateRange`). A
range is read from the monthly tables for the months it covers whole (a month "to date"
counts as whole: nothing can have been paid after today), and from the daily tables for
the days around them; the two are added up. The measures are defined in
:mod:`market.reports.models`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

from sqlalchemy import (
    Date,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from market import places, policy
from market.auth.models import Role, User
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.errors import NotFoundError, PermissionDeniedError
from market.reports import periods, targets
from market.reports.models import (
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
from market.reports.periods import DateRange, Kind, Period
from market.reports.rollups import (
    PROVINCE,
    SET_LEVELS,
    combine_sets,
    count_buyers,
    decode_bits,
    place_of,
    product_window,
)

#: Days a cooperative's last paid order may be ago for it to count as active online.
ACTIVE_DAYS = 30
TOP_PRODUCTS = 10

ORDER_MEASURES = ("gmv_fen", "refunds_fen", "orders", "units", "paid_orders")
SALES_MEASURES = ("gmv_fen", "refunds_fen", "orders", "units")
INFO_MEASURES = (
    "units_sold",
    "units_coded",
    "batches",
    "batches_inspected",
    "shipments",
    "shipments_rfid",
)


class UnknownAreaError(NotFoundError):
    code = "unknown_area"


class NoReportScopeError(PermissionDeniedError):
    code = "no_report_scope"


# --- where a user may look -------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A place in the report tree: the province, a city, a county or a cooperative."""

    level: str
    code: str
    name: str
    #: GB/T 2260 code of the place (a cooperative's own division).
    division_code: str
    cooperative_id: int | None = None

    @property
    def child_level(self) -> str | None:
        return {
            "province": "city",
            "city": "county",
            "county": "cooperative",
            "cooperative": "product",
        }[self.level]

    def query_args(self) -> dict[str, str]:
        """The drill-down arguments of links to this node."""
        if self.level == "cooperative":
            return {"coop": str(self.cooperative_id)}
        if self.level == "province":
            return {}
        return {"area": self.code}


def _division_node(code: str) -> Node:
    division = places.get(code)
    if division is None or not places.is_guangdong(code):
        raise UnknownAreaError(f"not a Guangdong division: {code!r}", field="area")
    if division.level == "province":
        return Node("province", PROVINCE, division.name, PROVINCE)
    return Node(division.level, code, division.name, code)


def _coop_node(coop: Cooperative) -> Node:
    return Node("cooperative", str(coop.id), coop.name, coop.division_code, coop.id)


def root_node(session: Session, user: User | None) -> Node:
    """The widest node ``user`` may see, or :class:`NoReportScopeError`."""
    if user is None or not policy.can(user, "reports.access"):
        raise NoReportScopeError("no dashboards for this user")
    if user.role is Role.PLATFORM_ADMIN:
        return _division_node(PROVINCE)
    if user.role is Role.SUPPLY_STAFF:
        return _division_node(user.division_code or "")
    coop = session.get(Cooperative, user.cooperative_id) if user.cooperative_id else None
    if coop is None:
        raise NoReportScopeError("no cooperative")
    return _coop_node(coop)


def resolve_node(
    session: Session, user: User | None, *, area: str | None = None, coop: int | None = None
) -> Node:
    """The node a dashboard shows: the user's own, or a drill-down inside it."""
    root = root_node(session, user)
    if coop is not None:
        found = session.get(Cooperative, coop)
        if found is None:
            raise NotFoundError("no such cooperative", field="coop")
        node = _coop_node(found)
    elif area:
        node = _division_node(area)
    else:
        return root
    if not policy.can(user, "report.view", node):
        raise PermissionDeniedError("outside the user's report scope")
    return node


def lineage(node: Node, root: Node) -> list[Node]:
    """The nodes from ``root`` down to ``node`` (breadcrumbs)."""
    chain: list[Node] = [node]
    if node.level == "cooperative":
        city, county = place_of(node.division_code)
        chain += [_division_node(c) for c in dict.fromkeys((county, city)) if places.get(c)]
    elif node.level == "county":
        city = places.city_of(node.code)
        if city is not None:
            chain.append(_division_node(city.code))
    if node.level != "province":
        chain.append(_division_node(PROVINCE))
    chain.reverse()
    levels = [n.level for n in chain]
    start = levels.index(root.level) if root.level in levels else 0
    return chain[start:]


def _where(table, node: Node):
    if node.level == "province":
        return true()
    if node.level == "city":
        return table.city_code == node.code
    if node.level == "county":
        return table.county_code == node.code
    return table.cooperative_id == node.cooperative_id


# --- reading ranges from daily and monthly tables ----------------------------------------------


@dataclass(frozen=True)
class Spans:
    """A range as whole months (monthly tables) and runs of days (daily tables)."""

    months: tuple[date, ...]
    days: tuple[tuple[date, date], ...]


def spans(dr: DateRange, today: date, *, months: bool = True) -> Spans:
    """Split ``dr`` into the months it covers whole (or to date) and the days around them."""
    whole: list[date] = []
    runs: list[tuple[date, date]] = []
    for month in dr.periods("month"):
        first, last = month.start, month.last_day
        covered = months and dr.start <= first and dr.end >= min(last, today)
        if covered:
            whole.append(first)
            continue
        start, end = max(dr.start, first), min(dr.end, last)
        if runs and runs[-1][1] + timedelta(days=1) == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return Spans(tuple(whole), tuple(runs))


@dataclass(frozen=True)
class _Pair:
    daily: type
    monthly: type


ORDERS = _Pair(DailyOrders, MonthlyOrders)
SALES = _Pair(DailySales, MonthlySales)
INFO = _Pair(DailyInformatization, MonthlyInformatization)
TOTALS = _Pair(DailyTotals, MonthlyTotals)
#: Places with totals of their own; a county's few cooperatives are summed directly.
TOTAL_LEVELS = ("province", "city")

Sums = dict[str, int]


def _sum(
    session: Session,
    pair: _Pair,
    node: Node | Callable,
    dr: DateRange,
    measures: Sequence[str],
    group: Sequence[str] = (),
    *,
    by: Kind | None = None,
    today: date | None = None,
) -> dict[tuple, Sums]:
    """Sum ``measures`` over ``dr`` for ``node``, grouped by ``group`` columns (and by
    period of kind ``by``, whose start date comes first in each key). ``node`` may also
    be a function giving the WHERE clause for a table."""
    today = today or periods.local_today()
    parts = spans(dr, today, months=by in (None, "month"))
    result: dict[tuple, Sums] = defaultdict(lambda: dict.fromkeys(measures, 0))

    def run(table, period_column, condition) -> None:
        columns = [getattr(table, g) for g in group]
        keys = ([period_column] if by else []) + columns
        query = (
            select(*keys, *(func.sum(getattr(table, m)) for m in measures))
            .where(condition, node(table) if callable(node) else _where(table, node))
            .group_by(*keys)
        )
        for row in session.execute(query):
            values = row[len(keys) :]
            key = tuple(row[: len(keys)])
            if by:
                key = (periods.period_containing(by, key[0]).start, *key[1:])
            sums = result[key]
            for name, value in zip(measures, values, strict=True):
                sums[name] += int(value or 0)

    if parts.days:
        daily = pair.daily
        run(
            daily,
            daily.day,
            or_(*(and_(daily.day >= a, daily.day <= b) for a, b in parts.days)),
        )
    if parts.months:
        monthly = pair.monthly
        run(
            monthly,
            monthly.month,
            and_(monthly.month >= parts.months[0], monthly.month <= parts.months[-1]),
        )
    return dict(result)


def _order_sums(
    session: Session,
    node: Node,
    dr: DateRange,
    *,
    by_province: bool = False,
    by: Kind | None = None,
    today: date | None = None,
) -> dict[tuple, Sums]:
    """The node's order figures: a place's from its totals (one row a day), a
    cooperative's from its own rows; keyed by period and/or buyer province."""
    if node.level not in TOTAL_LEVELS:
        group = ("buyer_province",) if by_province else ()
        return _sum(session, ORDERS, node, dr, ORDER_MEASURES, group, by=by, today=today)
    dim = "province" if by_province else "all"
    rows = _sum(
        session,
        TOTALS,
        lambda t: and_(t.level == node.level, t.code == node.code, t.dim == dim),
        dr,
        ORDER_MEASURES,
        ("key",) if by_province else (),
        by=by,
        today=today,
    )
    return rows


def _child_sums(session: Session, node: Node, dr: DateRange) -> dict[tuple, Sums]:
    """The order figures of the province's cities, keyed by their codes."""
    return _sum(
        session,
        TOTALS,
        lambda t: and_(t.level == node.child_level, t.parent == node.code, t.dim == "all"),
        dr,
        ORDER_MEASURES,
        ("code",),
    )


def _total(rows: dict[tuple, Sums], measures: Sequence[str]) -> Sums:
    total = dict.fromkeys(measures, 0)
    for sums in rows.values():
        for name in measures:
            total[name] += sums[name]
    return total


# --- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """Sales of one range: GMV net of refunds, and the counts behind it."""

    gmv_fen: int = 0
    refunds_fen: int = 0
    orders: int = 0
    paid_orders: int = 0
    units: int = 0

    @property
    def net_fen(self) -> int:
        return self.gmv_fen - self.refunds_fen

    @property
    def aov_fen(self) -> int | None:
        """Average order value: net GMV per order that counts (rounded to the fen)."""
        if not self.orders:
            return None
        return int((Decimal(self.net_fen) / self.orders).to_integral_value())

    @classmethod
    def of(cls, sums: Sums) -> Figures:
        return cls(**{k: sums.get(k, 0) for k in ORDER_MEASURES if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Growth:
    """Relative change against the previous range (环比) and the same range a year ago
    (同比); ``None`` where there is nothing to compare with."""

    mom: float | None
    yoy: float | None


def _growth(current: float | int | None, previous, last_year) -> Growth:
    return Growth(periods.growth(current, previous), periods.growth(current, last_year))


@dataclass(frozen=True)
class Summary:
    range: DateRange
    current: Figures
    previous: Figures
    last_year: Figures

    @property
    def growth(self) -> dict[str, Growth]:
        c, p, y = self.current, self.previous, self.last_year
        return {
            "net_fen": _growth(c.net_fen, p.net_fen, y.net_fen),
            "orders": _growth(c.orders, p.orders, y.orders),
            "units": _growth(c.units, p.units, y.units),
            "aov_fen": _growth(c.aov_fen, p.aov_fen, y.aov_fen),
        }


def previous_range(dr: DateRange, kind: Kind) -> DateRange:
    """The range a range is compared with month on month (环比).

    Whole weeks or months compare with as many whole periods just before (October with
    September, not with the 31 days before October); periods to date with the same
    number of days from the start of the earlier periods (1-20 October with 1-20
    September); any other range with as many days just before it.
    """
    first = periods.period_containing(kind, dr.start)
    if kind == "day" or first.start != dr.start:
        return dr.previous()
    wanted = dr.periods(kind)
    start = first
    for _ in wanted:
        start = periods.previous_period(start)
    whole_end = periods.previous_period(first).last_day
    if dr.end >= wanted[-1].last_day:
        return DateRange(start.start, whole_end)
    return DateRange(start.start, min(whole_end, start.start + (dr.end - dr.start)))


def last_year_range(dr: DateRange, kind: Kind) -> DateRange:
    """The same range a year earlier (同比): the same months, or the same ISO weeks."""
    first = periods.period_containing(kind, dr.start)
    if kind == "week" and first.start == dr.start:
        last = periods.period_containing(kind, dr.end)
        start = periods.same_period_last_year(first).start
        end = periods.same_period_last_year(last).last_day
        return DateRange(start, max(start, end))
    return dr.last_year()


def summary(session: Session, node: Node, dr: DateRange, kind: Kind = "day") -> Summary:
    """GMV, orders, units and average order value, with 环比 and 同比."""

    def figures(r: DateRange) -> Figures:
        return Figures.of(_total(_order_sums(session, node, r), ORDER_MEASURES))

    return Summary(
        range=dr,
        current=figures(dr),
        previous=figures(previous_range(dr, kind)),
        last_year=figures(last_year_range(dr, kind)),
    )


@dataclass(frozen=True)
class Buyers:
    buyers: int
    repeat_buyers: int

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat_buyers / self.buyers if self.buyers else None


def _set_places(node: Node) -> bool:
    """The province and the cities keep buyer sets; counties and cooperatives do not."""
    return node.level in SET_LEVELS


def _sets(session: Session, node: Node, kind: str, start: date, end: date, *, decode: bool):
    """The node's buyer sets of ``kind`` starting in [start, end], by start date."""
    columns = [BuyerSet.start, BuyerSet.buyers, BuyerSet.repeat_buyers]
    if decode:
        columns += [BuyerSet.once, BuyerSet.twice]
    return session.execute(
        select(*columns).where(
            BuyerSet.level == node.level,
            BuyerSet.code == node.code,
            BuyerSet.kind == kind,
            BuyerSet.start >= start,
            BuyerSet.start <= end,
        )
    ).all()


def buyers(session: Session, node: Node, dr: DateRange) -> Buyers:
    """Distinct buyers of the range, and how many bought twice or more (exactly).

    For the province and a city, the union of the buyer sets of the months the range
    covers and of the days around them; for a county or a cooperative, from its rows.
    """
    if not _set_places(node):
        count, repeat = count_buyers(
            session, node.level, node.code, dr.start, dr.end + timedelta(days=1)
        )
        return Buyers(count, repeat)
    parts = spans(dr, periods.local_today())
    found = []
    if parts.months:
        found += _sets(session, node, "month", parts.months[0], parts.months[-1], decode=True)
    for first, last in parts.days:
        found += _sets(session, node, "day", first, last, decode=True)
    once, twice = combine_sets((decode_bits(a), decode_bits(b)) for *_counts, a, b in found)
    return Buyers(once.bit_count(), twice.bit_count())


def _period_buyers(
    session: Session, node: Node, kind: Kind, wanted: Sequence[Period], dr: DateRange
) -> dict[date, Buyers]:
    """Distinct and repeat buyers of each period (clipped to ``dr``)."""
    if not wanted:
        return {}
    first, last = wanted[0].start, wanted[-1].last_day
    if _set_places(node) and kind in ("day", "month"):
        return {
            start: Buyers(b, r)
            for start, b, r in _sets(session, node, kind, first, last, decode=False)
        }
    if _set_places(node):  # weeks: the union of their days
        per: dict[date, list[tuple[int, int]]] = defaultdict(list)
        for start, _b, _r, a, b in _sets(session, node, "day", first, last, decode=True):
            week = periods.period_containing("week", start).start
            per[week].append((decode_bits(a), decode_bits(b)))
        result = {}
        for week, sets in per.items():
            once, twice = combine_sets(sets)
            result[week] = Buyers(once.bit_count(), twice.bit_count())
        return result
    rows = session.execute(
        select(DailyBuyers.day, DailyBuyers.buyer_id, DailyBuyers.orders).where(
            DailyBuyers.day >= max(first, dr.start),
            DailyBuyers.day <= min(last, dr.end),
            _where(DailyBuyers, node),
        )
    )
    counts: dict[date, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for day, buyer, n in rows:
        counts[periods.period_containing(kind, day).start][buyer] += n
    return {
        start: Buyers(len(per_buyer), sum(1 for n in per_buyer.values() if n >= 2))
        for start, per_buyer in counts.items()
    }


@dataclass(frozen=True)
class TrendRow:
    period: Period
    figures: Figures
    buyers: Buyers
    #: Net GMV against the period before, and the same period a year earlier.
    growth: Growth
    #: The range ends inside the period: figures are to date.
    to_date: bool


def trend(session: Session, node: Node, dr: DateRange, kind: Kind) -> list[TrendRow]:
    """One row per day, ISO week or month of ``dr``, with 环比 and 同比 for each."""
    wanted = dr.periods(kind)
    today = periods.local_today()
    first, last = wanted[0], wanted[-1]
    before = periods.previous_period(first)
    span = DateRange(before.start, max(before.start, min(last.last_day, dr.end)))
    year_first = periods.same_period_last_year(first)
    year_last = periods.same_period_last_year(last)
    year_span = DateRange(year_first.start, max(year_first.start, year_last.last_day))
    rows = _order_sums(session, node, span, by=kind, today=today)
    rows.update(_order_sums(session, node, year_span, by=kind, today=today))
    counted = _period_buyers(session, node, kind, wanted, dr)

    def figures(period: Period) -> Figures:
        return Figures.of(rows.get((period.start,), {}))

    result = []
    for period in wanted:
        current = figures(period)
        previous = figures(periods.previous_period(period))
        last_year = figures(periods.same_period_last_year(period))
        result.append(
            TrendRow(
                period=period,
                figures=current,
                buyers=counted.get(period.start, Buyers(0, 0)),
                growth=_growth(current.net_fen, previous.net_fen, last_year.net_fen),
                to_date=dr.end < period.last_day,
            )
        )
    return result


@dataclass(frozen=True)
class Part:
    """One row of a breakdown: a place, cooperative, product, category or province."""

    key: str
    name: str
    figures: Figures
    #: Drill-down arguments when the row is a node one can open.
    link: dict[str, str] | None = None
    share: float | None = None


def _with_shares(parts: list[Part]) -> list[Part]:
    total = sum(p.figures.net_fen for p in parts)
    return [
        Part(p.key, p.name, p.figures, p.link, (p.figures.net_fen / total) if total else None)
        for p in parts
    ]


def children(session: Session, node: Node, dr: DateRange) -> list[Part]:
    """The node's figures one level down: cities, counties, cooperatives or products.

    Every city of Guangdong is listed for the province (the map needs all 21), and every
    county of a city; cooperatives and products only when they sold something.
    """
    if node.level == "cooperative":
        return products(session, node, dr, limit=None)
    if node.level == "county":
        rows = _sum(session, ORDERS, node, dr, ORDER_MEASURES, ("cooperative_id",))
    elif node.level == "city":
        rows = _sum(session, ORDERS, node, dr, ORDER_MEASURES, ("county_code",))
    else:
        rows = _child_sums(session, node, dr)
    parts: list[Part] = []
    if node.level == "county":
        names = dict(
            session.execute(
                select(Cooperative.id, Cooperative.name).where(
                    Cooperative.id.in_([key[0] for key in rows] or [0])
                )
            ).all()
        )
        for (coop_id,), sums in rows.items():
            parts.append(
                Part(
                    str(coop_id),
                    names.get(coop_id, str(coop_id)),
                    Figures.of(sums),
                    {"coop": str(coop_id)},
                )
            )
        parts.sort(key=lambda p: (-p.figures.net_fen, p.name))
        return _with_shares(parts)
    listed = places.guangdong_cities() if node.level == "province" else places.children(node.code)
    seen = set()
    for division in listed:
        sums = rows.get((division.code,), {})
        seen.add(division.code)
        parts.append(Part(division.code, division.name, Figures.of(sums), {"area": division.code}))
    for (code,), sums in rows.items():
        if code not in seen:  # a cooperative registered at city level, or an unknown code
            parts.append(Part(code, places.name_of(code), Figures.of(sums), None))
    parts.sort(key=lambda p: (-p.figures.net_fen, -p.figures.orders, p.key))
    return _with_shares(parts)


@cache
def _product_diff() -> Select:
    """A place's sales by product between two days: a SELECT of ``product_id`` and the
    sales measures, one row per product that sold in between, computed as the running
    totals at the end of the day ``upto`` less those at the end of the day ``before``
    (two rows a product, however long the range).

    Built once (it is the dashboards' most complex query); its parameters are ``level``
    and ``code`` of the place, ``upto`` and ``before``. Both days must be ones whose
    totals are those of the latest checkpoint at or before them (see
    :class:`~market.reports.models.ProductRunningTotals` and :func:`_at_checkpoint`).
    """
    running = ProductRunningTotals.__table__
    upto, before = running.alias("upto"), running.alias("before")
    level, code = bindparam("level", type_=String), bindparam("code", type_=String)

    def checkpoint(day):
        return (
            select(func.max(running.c.day))
            .where(running.c.level == level, running.c.code == code, running.c.day <= day)
            .scalar_subquery()
        )

    return (
        select(
            upto.c.product_id,
            *((upto.c[m] - func.coalesce(before.c[m], 0)).label(m) for m in SALES_MEASURES),
        )
        .select_from(
            upto.outerjoin(
                before,
                and_(
                    before.c.level == level,
                    before.c.code == code,
                    before.c.day == checkpoint(bindparam("before", type_=Date)),
                    before.c.product_id == upto.c.product_id,
                ),
            )
        )
        .where(
            upto.c.level == level,
            upto.c.code == code,
            upto.c.day == checkpoint(bindparam("upto", type_=Date)),
            upto.c.days_sold > func.coalesce(before.c.days_sold, 0),
        )
    )


def _product_days(level: str, run: int) -> Select:
    """A place's daily rows (one a day, cooperative, product and buyer province) of a run
    of days: parameters ``first_day<run>`` and ``last_day<run>``, and a city's ``code``."""
    conditions = [
        DailySales.day >= bindparam(f"first_day{run}", type_=Date),
        DailySales.day <= bindparam(f"last_day{run}", type_=Date),
    ]
    if level != "province":
        conditions.append(DailySales.city_code == bindparam("code", type_=String))
    return select(DailySales.product_id, *(getattr(DailySales, m) for m in SALES_MEASURES)).where(
        *conditions
    )


@cache
def _product_query(level: str, diff: bool, runs: int, *, top: bool) -> Select:
    """A place's sales by product from the running totals (:func:`_product_diff`) and
    ``runs`` runs of days from the daily rows, one row a product; with ``top``, ranked
    by net GMV and cut at the parameter ``limit``. Built once for each shape."""
    if diff and not runs:
        rows = _product_diff().subquery()
        measures = [rows.c[m] for m in SALES_MEASURES]
        query = select(rows.c.product_id, *measures)
    else:
        sources = [_product_diff()] if diff else []
        sources += [_product_days(level, run) for run in range(runs)]
        rows = (union_all(*sources) if len(sources) > 1 else sources[0]).subquery()
        measures = [func.sum(rows.c[m]) for m in SALES_MEASURES]
        query = select(rows.c.product_id, *measures).group_by(rows.c.product_id)
    if top:
        query = query.order_by((measures[0] - measures[1]).desc(), rows.c.product_id).limit(
            bindparam("limit", type_=Integer)
        )
    return query


def _at_checkpoint(day: date, window: date) -> bool:
    """Whether the running totals at the end of ``day`` are those of the latest
    checkpoint at or before it: a month's last day, or a day from the one before the
    place's window on (every day with a sale there is a checkpoint)."""
    month_end = periods.period_containing("month", day).last_day
    return day >= window - timedelta(days=1) or day == month_end


def _products_of_place(
    session: Session, node: Node, dr: DateRange, limit: int | None = None
) -> list[tuple[tuple, Sums]]:
    """A place's sales by product over ``dr`` (the best ``limit`` of them by net GMV).

    A range of the window (the last month or two, such as the last 30 days) or of whole
    months is two rows a product from the running totals. Another range is read as its
    whole months from the running totals and the days around them from the daily rows.
    """
    running = ProductRunningTotals
    last = session.scalar(
        select(func.max(running.day)).where(running.level == node.level, running.code == node.code)
    )
    if last is None:
        return []
    window = product_window(last)
    params: dict = {"level": node.level, "code": node.code, "limit": limit}
    before = dr.start - timedelta(days=1)
    runs: tuple[tuple[date, date], ...] = ()
    if _at_checkpoint(dr.end, window) and _at_checkpoint(before, window):
        params.update(upto=dr.end, before=before)
        diff = True
    else:
        parts = spans(dr, periods.local_today())
        diff, runs = bool(parts.months), parts.days
        if diff:
            params.update(
                upto=periods.period_containing("month", parts.months[-1]).last_day,
                before=parts.months[0] - timedelta(days=1),
            )
        for run, (first_day, last_day) in enumerate(runs):
            params.update({f"first_day{run}": first_day, f"last_day{run}": last_day})
    query = _product_query(node.level, diff, len(runs), top=limit is not None)
    return [
        ((pid,), dict(zip(SALES_MEASURES, (int(v or 0) for v in values), strict=True)))
        for pid, *values in session.execute(query, params)
    ]


def _product_sums(session: Session, node: Node, dr: DateRange) -> dict[tuple, Sums]:
    """Sales per product: a place's from its running totals (and the daily rows of days
    before its window), a county's or cooperative's from the daily and monthly rows."""
    if node.level not in TOTAL_LEVELS:
        return _sum(session, SALES, node, dr, SALES_MEASURES, ("product_id",))
    return dict(_products_of_place(session, node, dr))


def _top_products(
    session: Session, node: Node, dr: DateRange, limit: int
) -> list[tuple[tuple, Sums]]:
    """The best-selling products of a place (net GMV), ranked in one query: over the
    window or whole months straight from the running totals (one row a product, nothing
    to add up), over other ranges added up with the daily rows of the days around."""
    return _products_of_place(session, node, dr, limit)


def products(
    session: Session, node: Node, dr: DateRange, *, limit: int | None = TOP_PRODUCTS
) -> list[Part]:
    """Products by net GMV, best first."""
    from market.catalog.models import Product

    if limit is not None and node.level in TOTAL_LEVELS:
        # A place sells thousands of products: rank them in the database.
        ordered = _top_products(session, node, dr, limit)
        sums = _total(_order_sums(session, node, dr), ORDER_MEASURES)
        total = sums["gmv_fen"] - sums["refunds_fen"]
    else:
        rows = _product_sums(session, node, dr)
        ordered = sorted(
            rows.items(), key=lambda kv: (-(kv[1]["gmv_fen"] - kv[1]["refunds_fen"]), kv[0])
        )
        if limit is not None:
            ordered = ordered[:limit]
        total = sum(s["gmv_fen"] - s["refunds_fen"] for s in rows.values())
    ids = [key[0] for key, _sums in ordered]
    names = dict(
        session.execute(select(Product.id, Product.title).where(Product.id.in_(ids or [0]))).all()
    )
    return [
        Part(
            str(pid),
            names.get(pid, ""),
            Figures.of(sums),
            None,
            ((sums["gmv_fen"] - sums["refunds_fen"]) / total) if total else None,
        )
        for (pid,), sums in ordered
    ]


def categories(session: Session, node: Node, dr: DateRange) -> tuple[list[Part], list[Part]]:
    """Sales by product category, and 地理标志 (GI) products against the rest.

    A category's ``orders`` are the orders with at least one of its products, so they
    may add up to more than the node's orders.
    """
    by_category: dict[str, Sums] = defaultdict(lambda: dict.fromkeys(SALES_MEASURES, 0))
    by_gi: dict[bool, Sums] = defaultdict(lambda: dict.fromkeys(SALES_MEASURES, 0))
    if node.level not in TOTAL_LEVELS:
        rows = _sum(session, SALES, node, dr, SALES_MEASURES, ("category", "is_gi"))
        for (category, is_gi), sums in rows.items():
            for name in SALES_MEASURES:
                by_category[category][name] += sums[name]
                by_gi[bool(is_gi)][name] += sums[name]
    else:
        for dim, into in (("category", by_category), ("gi", by_gi)):
            rows = _sum(
                session,
                TOTALS,
                lambda t, dim=dim: and_(t.level == node.level, t.code == node.code, t.dim == dim),
                dr,
                SALES_MEASURES,
                ("key",),
            )
            for (key,), sums in rows.items():
                into[key == "1" if dim == "gi" else key] = sums
    cats = sorted(
        (Part(key, key, Figures.of(sums)) for key, sums in by_category.items()),
        key=lambda p: (-p.figures.net_fen, p.key),
    )
    gi = [
        Part(key, key, Figures.of(by_gi.get(flag, {})))
        for key, flag in (("gi", True), ("other", False))
    ]
    return _with_shares(cats), _with_shares(gi)


@dataclass(frozen=True)
class Destinations:
    """广货网上行: where the node's products were sent, by the buyer's province."""

    provinces: list[Part]
    inside: Figures
    outside: Figures

    @property
    def outside_share(self) -> float | None:
        total = self.inside.net_fen + self.outside.net_fen
        return self.outside.net_fen / total if total else None


def destinations(session: Session, node: Node, dr: DateRange) -> Destinations:
    rows = _order_sums(session, node, dr, by_province=True)
    parts = []
    inside = dict.fromkeys(ORDER_MEASURES, 0)
    outside = dict.fromkeys(ORDER_MEASURES, 0)
    for (code,), sums in rows.items():
        name = places.name_of(code) if code != UNKNOWN_PROVINCE else ""
        parts.append(Part(code, name, Figures.of(sums)))
        into = inside if code == PROVINCE else outside
        for key in ORDER_MEASURES:
            into[key] += sums[key]
    parts.sort(key=lambda p: (-p.figures.net_fen, p.key))
    return Destinations(_with_shares(parts), Figures.of(inside), Figures.of(outside))


# --- informatization against the plan ----------------------------------------------------------


@dataclass(frozen=True)
class Indicator:
    """One informatization indicator: a share, and the plan's target where it has one."""

    key: str
    numerator: int
    denominator: int
    target_id: str | None = None
    year: int | None = None

    @property
    def share(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def percent(self) -> Decimal | None:
        if not self.denominator:
            return None
        return (Decimal(self.numerator) * 100 / Decimal(self.denominator)).quantize(Decimal("0.1"))

    @property
    def target(self) -> targets.Target | None:
        return targets.target(self.target_id) if self.target_id else None

    @property
    def progress(self) -> targets.Progress | None:
        if self.target_id is None or self.year is None or self.percent is None:
            return None
        return targets.progress(self.target_id, self.percent, self.year)

    @property
    def goal(self) -> targets.Milestone | None:
        if self.target_id is None or self.year is None:
            return None
        return targets.milestone_for_year(self.target_id, self.year)


def informatization(session: Session, node: Node, dr: DateRange) -> list[Indicator]:
    """Traceability, inspection and RFID coverage in the range, and cooperatives active
    online in the 30 days to its end, against the plan's targets for that year."""
    sums = _total(_sum(session, INFO, node, dr, INFO_MEASURES), INFO_MEASURES)
    year = dr.end.year
    active, registered = active_cooperatives(session, node, dr.end)
    return [
        Indicator("trace_coverage", sums["units_coded"], sums["units_sold"]),
        Indicator("inspection_coverage", sums["batches_inspected"], sums["batches"]),
        Indicator(
            "rfid_shipments",
            sums["shipments_rfid"],
            sums["shipments"],
            "rfid_logistics_adoption",
            year,
        ),
        Indicator(
            "active_cooperatives", active, registered, "enterprise_network_application_rate", year
        ),
    ]


def _cooperatives_of(node: Node):
    """The WHERE clause for the cooperatives registered in the node (by their division)."""
    if node.level == "cooperative":
        return Cooperative.id == node.cooperative_id
    if node.level == "city":
        return Cooperative.division_code.startswith(node.code[:4])
    if node.level == "county":
        return Cooperative.division_code == node.code
    return true()


def active_cooperatives(session: Session, node: Node, day: date) -> tuple[int, int]:
    """(cooperatives with a paid order in the 30 days to ``day``, cooperatives registered
    by then) in the node: the stand-in for the plan's network application rate."""
    window = DateRange(day - timedelta(days=ACTIVE_DAYS - 1), day)
    # One probe a cooperative of the node into its daily order rows (indexed by cooperative
    # and day) instead of adding up every row of the window; the node's filter stays on
    # the rows too. (A cooperative counts where it is registered now: a move shows in its
    # older rows after the nightly rebuild.)
    paid = (
        select(DailyOrders.cooperative_id)
        .where(
            DailyOrders.cooperative_id == Cooperative.id,
            DailyOrders.day >= window.start,
            DailyOrders.day <= window.end,
            DailyOrders.paid_orders > 0,
            _where(DailyOrders, node),
        )
        .exists()
    )
    registered = and_(
        Cooperative.status == CooperativeStatus.APPROVED,
        or_(Cooperative.approved_at.is_(None), Cooperative.approved_at < window.end_at),
    )
    rows = session.execute(select(paid, registered).where(_cooperatives_of(node))).all()
    # A cooperative that sold may since have been suspended: it still counted then.
    return sum(1 for a, _r in rows if a), sum(1 for a, r in rows if a or r)


# --- the whole dashboard -----------------------------------------------------------------------


@dataclass
class Dashboard:
    root: Node
    node: Node
    crumbs: list[Node]
    range: DateRange
    kind: Kind
    summary: Summary
    buyers: Buyers
    trend: list[TrendRow]
    children: list[Part]
    categories: list[Part]
    gi: list[Part]
    products: list[Part]
    destinations: Destinations
    indicators: list[Indicator]
    state: ReportState | None = None
    extra: dict = field(default_factory=dict)


def prepare_reading(session: Session) -> None:
    """Dashboards run a dozen small queries over summaries: on PostgreSQL, parallel
    workers cost more to start (~10 ms each time) than such a query takes, so they are
    switched off for the rest of this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


def snap_range(dr: DateRange, kind: Kind) -> DateRange:
    """Widen a range to whole periods of ``kind`` (a week from its Monday, a month from
    the 1st), so every row of a trend is a whole period, or a period to date."""
    if kind == "day":
        return dr
    start = periods.period_containing(kind, dr.start).start
    end = periods.period_containing(kind, dr.end).last_day
    today = periods.local_today()
    if dr.end <= today < end:
        end = today
    return DateRange(start, max(start, min(end, periods.MAX_DATE)))


def dashboard(
    session: Session,
    user: User | None,
    dr: DateRange,
    kind: Kind = "day",
    *,
    area: str | None = None,
    coop: int | None = None,
) -> Dashboard:
    """Every tile of a dashboard for ``user`` (scoped by :func:`resolve_node`)."""
    root = root_node(session, user)
    node = resolve_node(session, user, area=area, coop=coop)
    dr = snap_range(dr, kind)
    prepare_reading(session)
    cats, gi = categories(session, node, dr)
    return Dashboard(
        root=root,
        node=node,
        crumbs=lineage(node, root),
        range=dr,
        kind=kind,
        summary=summary(session, node, dr, kind),
        buyers=buyers(session, node, dr),
        trend=trend(session, node, dr, kind),
        children=children(session, node, dr),
        categories=cats,
        gi=gi,
        products=products(session, node, dr),
        destinations=destinations(session, node, dr),
        indicators=informatization(session, node, dr),
        state=session.get(ReportState, 1),
    )
