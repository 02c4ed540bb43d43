"""Summary tables the dashboards read: sales, buyers and informatization, by day and month.

Everything here is derived from raw rows (orders, lines, batches, shipments) by
``market.reports.rollups`` and can be rebuilt from them at any time, so the tables carry no
foreign keys: a deleted product must not break a year-old summary, and a rebuild writes a
million rows without checking each against its parent.

Days and months are calendar days in Asia/Shanghai. Every row carries the place of its
cooperative (``city_code`` and ``county_code``, GB/T 2260) so that a 供销社 scope is a plain
``WHERE`` on the summary itself. A cooperative registered at city level has its city code
in ``county_code`` too.

What the sales measures mean (one definition, used by rollups, dashboards and tests):

- A sale is an order that was paid (``paid_at`` set); it counts on the Shanghai day it was
  paid. Refunds are netted against that same day, so a month's figure is the net value of
  what was sold that month.
- ``gmv_fen`` is what buyers paid; ``refunds_fen`` what was given back; GMV on the
  dashboards is ``gmv_fen - refunds_fen``. An order's refund is spread over its lines in
  proportion to their value (largest remainder), so products add up to their order.
- ``orders`` and ``units`` leave out orders refunded in full (they were not, in the end,
  sales); ``paid_orders`` counts every paid order (a cooperative "active online" had one).
  In a product row, ``orders`` is the number of orders containing that product.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Index, LargeBinary, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from market.extensions import db

#: Buyer province when an order's address code is not a known division.
UNKNOWN_PROVINCE = "000000"
#: ``product_id`` of a line whose product has since been deleted.
NO_PRODUCT = 0


class _Place:
    """The cooperative and where it is."""

    cooperative_id: Mapped[int]
    city_code: Mapped[str] = mapped_column(String(6))
    county_code: Mapped[str] = mapped_column(String(6))


class _Money:
    gmv_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(default=0)
    units: Mapped[int] = mapped_column(BigInteger, default=0)


class _ProductDims:
    #: NO_PRODUCT (0) when the product has been deleted since.
    product_id: Mapped[int]
    #: market.catalog.models.Category value, as the product had it at the last rollup.
    category: Mapped[str] = mapped_column(String(16))
    #: 地理标志 product.
    is_gi: Mapped[bool] = mapped_column(default=False)


def _keys(table: str, *key: str) -> tuple[PrimaryKeyConstraint | Index, ...]:
    """The primary key (period first: dashboards read runs of days or months), and
    indexes for a scope (cooperative, county, city) over a run of periods."""
    period = key[0]
    return (
        PrimaryKeyConstraint(*key),
        Index(f"ix_{table}_cooperative_{period}", "cooperative_id", period),
        Index(f"ix_{table}_county_{period}", "county_code", period),
        Index(f"ix_{table}_city_{period}", "city_code", period),
    )


class DailySales(_Place, _ProductDims, _Money, db.Model):
    """Per day, cooperative, product and buyer province (广货网上行: where products go)."""

    __tablename__ = "reports_daily_sales"

    day: Mapped[date]
    #: GB/T 2260 province code of the shipping address (``PP0000``).
    buyer_province: Mapped[str] = mapped_column(String(6))

    __table_args__ = _keys(
        "reports_daily_sales", "day", "cooperative_id", "product_id", "buyer_province"
    )


class MonthlySales(_Place, _ProductDims, _Money, db.Model):
    """The same per month (the first day of the month), without the buyer province."""

    __tablename__ = "reports_monthly_sales"

    month: Mapped[date]

    __table_args__ = _keys("reports_monthly_sales", "month", "cooperative_id", "product_id")


class DailyOrders(_Place, _Money, db.Model):
    """Per day, cooperative and buyer province: whole orders, so order counts add up."""

    __tablename__ = "reports_daily_orders"

    day: Mapped[date]
    buyer_province: Mapped[str] = mapped_column(String(6))
    #: Every paid order, refunded in full or not.
    paid_orders: Mapped[int] = mapped_column(default=0)

    __table_args__ = _keys("reports_daily_orders", "day", "cooperative_id", "buyer_province")


class MonthlyOrders(_Place, _Money, db.Model):
    __tablename__ = "reports_monthly_orders"

    month: Mapped[date]
    buyer_province: Mapped[str] = mapped_column(String(6))
    paid_orders: Mapped[int] = mapped_column(default=0)

    __table_args__ = _keys("reports_monthly_orders", "month", "cooperative_id", "buyer_province")


class _Totals:
    """Sums for the province or a city, so a dashboard reads one row per day for a total
    instead of one per cooperative (a county's few cooperatives are read directly).

    ``dim`` says what ``key`` is: ``all`` (``key`` empty: the place's totals), ``province``
    (the buyer's province), ``category`` (a product category) and ``gi`` (``"1"`` for
    地理标志 products, ``"0"`` for the rest). For ``category`` and ``gi`` rows ``orders``
    counts the orders containing such products and ``paid_orders`` is 0. A place's sales
    by product are in :class:`ProductRunningTotals`.
    """

    #: ``province`` or ``city``; ``code`` its GB/T 2260 code, ``parent`` the code of the
    #: place above it (empty for the province).
    level: Mapped[str] = mapped_column(String(8))
    code: Mapped[str] = mapped_column(String(6))
    parent: Mapped[str] = mapped_column(String(6))
    dim: Mapped[str] = mapped_column(String(8))
    key: Mapped[str] = mapped_column(String(16))
    gmv_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(default=0)
    paid_orders: Mapped[int] = mapped_column(default=0)
    units: Mapped[int] = mapped_column(BigInteger, default=0)


class DailyTotals(_Totals, db.Model):
    __tablename__ = "reports_daily_totals"
    __table_args__ = (
        PrimaryKeyConstraint("level", "code", "dim", "day", "key"),
        Index("ix_reports_daily_totals_children", "level", "parent", "dim", "day"),
    )

    day: Mapped[date]


class MonthlyTotals(_Totals, db.Model):
    __tablename__ = "reports_monthly_totals"
    __table_args__ = (
        PrimaryKeyConstraint("level", "code", "dim", "month", "key"),
        Index("ix_reports_monthly_totals_children", "level", "parent", "dim", "month"),
    )

    month: Mapped[date]


class ProductRunningTotals(db.Model):
    """A place's sales of each product from its first sale to the end of a day.

    The province and a city sell thousands of products, and a dashboard ranks them over
    30 days or a year: adding up the daily or monthly rows of every product and then
    sorting them would read tens of thousands of rows. Running totals make a range two
    rows a product: the totals at the end of its last day less those at the end of the
    day before its first.

    The days that have rows (*checkpoints*) are the last day of every month from the
    place's first sale to its last (a month that is not over yet included), and every
    day with a sale from the first day of the month before the month of its last sale
    (the *window*: any range of the last month or two, such as the last 30 days, ends
    and starts on checkpoints). Older days are dropped as the window moves on. At each
    checkpoint there is one row per product the place has sold by then, so the totals
    at the end of any day are those of the latest checkpoint at or before it, provided
    the day is a month's last or not before the day before the window.

    The measures are those of :class:`DailySales`, summed; ``days_sold`` counts the days
    on which the product sold, so a product sold in a range exactly when it grew over it.

    The key comes first in the row's storage (a WITHOUT ROWID table on SQLite, the
    primary key with the measures included on PostgreSQL), so the rows of one place and
    checkpoint are read in one index range.
    """

    __tablename__ = "reports_product_running_totals"

    #: ``province`` or ``city``, and the place's GB/T 2260 code.
    level: Mapped[str] = mapped_column(String(8))
    code: Mapped[str] = mapped_column(String(6))
    #: The checkpoint: the totals are at the end of this (Asia/Shanghai) day.
    day: Mapped[date]
    #: NO_PRODUCT (0) for lines whose product has been deleted since.
    product_id: Mapped[int]
    gmv_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(default=0)
    units: Mapped[int] = mapped_column(BigInteger, default=0)
    days_sold: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        PrimaryKeyConstraint(
            "level",
            "code",
            "day",
            "product_id",
            postgresql_include=["gmv_fen", "refunds_fen", "orders", "units", "days_sold"],
        ),
        {"sqlite_with_rowid": False},
    )


class DailyBuyers(_Place, db.Model):
    """Who bought from whom on a day: distinct and repeat buyers cannot be summed, so
    they are counted from these rows (and kept as sets per period in BuyerSet)."""

    __tablename__ = "reports_daily_buyers"

    day: Mapped[date]
    buyer_id: Mapped[int]
    #: The Monday of the day's ISO week and the first of its month, for grouping.
    week: Mapped[date]
    month: Mapped[date]
    #: Orders that count (not refunded in full); rows with none are not kept.
    orders: Mapped[int] = mapped_column(default=0)

    __table_args__ = _keys("reports_daily_buyers", "day", "cooperative_id", "buyer_id")


class BuyerSet(db.Model):
    """The buyers of one day or month in the province or a city, as compressed bitmaps.

    Distinct buyers do not add up over days, and a province has too many of them to
    count row by row for every range a dashboard asks about. So each day's and month's
    buyers are kept as a set: bit *n* of ``once`` is set when user *n* placed an order
    that counts, bit *n* of ``twice`` when they placed two or more (zlib-compressed,
    little-endian; see ``market.reports.rollups``). The buyers of any range are then the
    union of a few sets, exactly. ``buyers`` and ``repeat_buyers`` are the sets' sizes.
    Counties and cooperatives have few buyers and are counted from the daily rows.
    """

    __tablename__ = "reports_buyer_sets"
    __table_args__ = (PrimaryKeyConstraint("level", "code", "kind", "start"),)

    #: ``province`` or ``city``; ``code`` its GB/T 2260 code.
    level: Mapped[str] = mapped_column(String(8))
    code: Mapped[str] = mapped_column(String(6))
    #: ``day`` or ``month``; ``start`` is its first day.
    kind: Mapped[str] = mapped_column(String(5))
    start: Mapped[date]
    buyers: Mapped[int] = mapped_column(default=0)
    repeat_buyers: Mapped[int] = mapped_column(default=0)
    once: Mapped[bytes] = mapped_column(LargeBinary)
    twice: Mapped[bytes] = mapped_column(LargeBinary)


class _Informatization:
    #: Units sold that day (orders that count), and how many of them carry a unit code.
    units_sold: Mapped[int] = mapped_column(BigInteger, default=0)
    units_coded: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Batches recorded that day, and how many of them have an inspection record.
    batches: Mapped[int] = mapped_column(default=0)
    batches_inspected: Mapped[int] = mapped_column(default=0)
    #: Shipments created that day, and how many of them had an RFID tag read.
    shipments: Mapped[int] = mapped_column(default=0)
    shipments_rfid: Mapped[int] = mapped_column(default=0)


class DailyInformatization(_Place, _Informatization, db.Model):
    """Traceability and RFID use per day and cooperative (the plan's informatization
    indicators)."""

    __tablename__ = "reports_daily_informatization"

    day: Mapped[date]

    __table_args__ = _keys("reports_daily_informatization", "day", "cooperative_id")


class MonthlyInformatization(_Place, _Informatization, db.Model):
    __tablename__ = "reports_monthly_informatization"

    month: Mapped[date]

    __table_args__ = _keys("reports_monthly_informatization", "month", "cooperative_id")


class ReportState(db.Model):
    """One row: when the summaries last changed and were last rebuilt.

    Every rollup first writes this row, so rollups take turns (a row lock on PostgreSQL,
    the write lock on SQLite) and each one reads what the one before it committed.
    """

    __tablename__ = "reports_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    updated_at: Mapped[datetime | None]
    rebuilt_at: Mapped[datetime | None]
