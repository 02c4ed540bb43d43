"""reports top products: running totals of each place's sales by product

Adds reports_product_running_totals (key first: WITHOUT ROWID on SQLite, the primary key
INCLUDE-ing the measures on PostgreSQL), which replaces the ``dim = 'product'`` rows of
reports_monthly_totals.

Backfill, from reports_daily_sales and the days of reports_daily_totals, the rows the
nightly rebuild writes (see market.reports.models.ProductRunningTotals): for the
province and each city, running totals by product at the last day of every month from
its first sale to its last, and at every day with a sale from the first day of the month
before its last sale's; then the old monthly product rows are deleted. Downgrade writes
them back from the month ends.

Revision ID: 0010_reports_top
Revises: 0009_batch_stock
Create Date: 2026-11-28 12:00:00.000000

"""
from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010_reports_top'
down_revision = '0009_batch_stock'
branch_labels = None
depends_on = None

MEASURES = ('gmv_fen', 'refunds_fen', 'orders', 'units')
PROVINCE = '440000'

totals = sa.table(
    'reports_monthly_totals',
    sa.column('month', sa.Date()),
    sa.column('level', sa.String()),
    sa.column('code', sa.String()),
    sa.column('parent', sa.String()),
    sa.column('dim', sa.String()),
    sa.column('key', sa.String()),
    *(sa.column(m, sa.BigInteger()) for m in MEASURES),
    sa.column('paid_orders', sa.Integer()),
)
daily_totals = sa.table(
    'reports_daily_totals',
    sa.column('day', sa.Date()),
    sa.column('level', sa.String()),
    sa.column('code', sa.String()),
    sa.column('dim', sa.String()),
)
daily_sales = sa.table(
    'reports_daily_sales',
    sa.column('day', sa.Date()),
    sa.column('city_code', sa.String()),
    sa.column('product_id', sa.Integer()),
    *(sa.column(m, sa.BigInteger()) for m in MEASURES),
)
running = sa.table(
    'reports_product_running_totals',
    sa.column('level', sa.String()),
    sa.column('code', sa.String()),
    sa.column('day', sa.Date()),
    sa.column('product_id', sa.Integer()),
    *(sa.column(m, sa.BigInteger()) for m in MEASURES),
    sa.column('days_sold', sa.Integer()),
)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _previous_month(month: date) -> date:
    return (month - timedelta(days=1)).replace(day=1)


def _checkpoints(sale_days: list[date]) -> list[date]:
    """Month ends from the first sale's month to the last's, and the sale days from the
    first of the month before the last sale's month."""
    window = _previous_month(_month_start(sale_days[-1]))
    ends, month = [], _month_start(sale_days[0])
    while month <= sale_days[-1]:
        ends.append(_next_month(month) - timedelta(days=1))
        month = _next_month(month)
    return sorted({*ends, *(day for day in sale_days if day >= window)})


def upgrade():
    op.create_table(
        'reports_product_running_totals',
        sa.Column('level', sa.String(length=8), nullable=False),
        sa.Column('code', sa.String(length=6), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('gmv_fen', sa.BigInteger(), nullable=False),
        sa.Column('refunds_fen', sa.BigInteger(), nullable=False),
        sa.Column('orders', sa.Integer(), nullable=False),
        sa.Column('units', sa.BigInteger(), nullable=False),
        sa.Column('days_sold', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            'level',
            'code',
            'day',
            'product_id',
            name=op.f('pk_reports_product_running_totals'),
            postgresql_include=['gmv_fen', 'refunds_fen', 'orders', 'units', 'days_sold'],
        ),
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    days: dict[tuple[str, str], list[date]] = {}
    for level, code, day in bind.execute(
        sa.select(daily_totals.c.level, daily_totals.c.code, daily_totals.c.day)
        .where(daily_totals.c.dim == 'all')
        .order_by(daily_totals.c.level, daily_totals.c.code, daily_totals.c.day)
    ):
        days.setdefault((level, code), []).append(day)
    pending = {place: _checkpoints(sale_days) for place, sale_days in days.items()}
    sums: dict[tuple[str, str], dict[int, list]] = {place: {} for place in pending}
    rows: list[dict] = []

    def emit_before(day: date | None) -> None:
        # Write every place's checkpoints that end before ``day`` (all, if None).
        for place, checkpoints in pending.items():
            while checkpoints and (day is None or checkpoints[0] < day):
                checkpoint = checkpoints.pop(0)
                rows.extend(
                    dict(level=place[0], code=place[1], day=checkpoint, product_id=product,
                         **dict(zip((*MEASURES, 'days_sold'), values[:5])))
                    for product, values in sorted(sums[place].items())
                )
        if len(rows) >= 10000 or day is None:
            op.bulk_insert(running, rows)
            rows.clear()

    current = None
    for day, city, product, *values in bind.execute(
        sa.select(
            daily_sales.c.day,
            daily_sales.c.city_code,
            daily_sales.c.product_id,
            *(daily_sales.c[m] for m in MEASURES),
        ).order_by(daily_sales.c.day)
    ):
        if day != current:
            emit_before(day)
            current = day
        for place in (('province', PROVINCE), ('city', city)):
            # measures, days sold, the last day counted
            found = sums.setdefault(place, {}).setdefault(product, [0, 0, 0, 0, 0, None])
            for i, value in enumerate(values):
                found[i] += value
            if found[5] != day:
                found[4] += 1
                found[5] = day
    emit_before(None)
    op.execute(totals.delete().where(totals.c.dim == 'product'))


def downgrade():
    bind = op.get_bind()
    rows = []
    before: dict = {}
    for level, code, day, product_id, *values, days_sold in bind.execute(
        sa.select(running).order_by(
            running.c.level, running.c.code, running.c.product_id, running.c.day
        )
    ):
        if day != _next_month(_month_start(day)) - timedelta(days=1):
            continue  # the month ends hold the months' totals
        previous = before.get((level, code, product_id), (0, 0, 0, 0, 0))
        if days_sold > previous[4]:
            rows.append(dict(
                month=_month_start(day), level=level, code=code,
                parent='' if level == 'province' else PROVINCE, dim='product',
                key=str(product_id), paid_orders=0,
                **{m: v - p for m, v, p in zip(MEASURES, values, previous)},
            ))
        before[(level, code, product_id)] = (*values, days_sold)
    if rows:
        op.bulk_insert(totals, rows)
    op.drop_table('reports_product_running_totals')
