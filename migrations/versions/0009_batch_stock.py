"""batch stock: units each batch still has on sale, and the batches order lines came from

Adds traceability_batches.stock_left (CHECK 0 <= stock_left <= stock_added) and the
table traceability_order_line_batches.

Backfill: no order was linked to a batch before, so what each batch still has on sale is
estimated from what is known: a product's batches together get min(sum of their
stock_added, the product's stock), handed out newest harvest first, each batch at most
its own stock_added. Orders take the oldest batch first from now on, so the units
already sold are taken to have come from the oldest batches; stock beyond what the
batches added stays "not from a recorded batch" (it was typed in on the product).

On SQLite the column and its CHECK are added with a plain ALTER TABLE ADD COLUMN: a batch
(copy-and-rename) migration would drop traceability_batches, and with foreign keys on
that cascades into, or is refused by, the tables that point at it.

Revision ID: 0009_batch_stock
Revises: 0007_logistics
Create Date: 2026-11-28 10:00:00.000000

"""
from collections import defaultdict

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_batch_stock'
down_revision = '0007_logistics'
branch_labels = None
depends_on = None

CHECK_NAME = 'ck_traceability_batches_stock_left_in_range'
CHECK_SQL = 'stock_left >= 0 AND stock_left <= stock_added'


def _backfill(bind) -> None:
    stock = dict(bind.execute(sa.text('SELECT id, stock FROM market_products')).all())
    batches = defaultdict(list)
    for batch_id, product_id, added in bind.execute(
        sa.text(
            'SELECT id, product_id, stock_added FROM traceability_batches '
            'WHERE stock_added > 0 ORDER BY harvest_date DESC, id DESC'
        )
    ):
        batches[product_id].append((batch_id, added))
    update = sa.text('UPDATE traceability_batches SET stock_left = :left WHERE id = :id')
    for product_id, rows in batches.items():
        rest = min(sum(added for _id, added in rows), stock.get(product_id) or 0)
        for batch_id, added in rows:
            left = min(added, rest)
            if left > 0:
                bind.execute(update, {'left': left, 'id': batch_id})
            rest -= left


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        op.execute(
            'ALTER TABLE traceability_batches ADD COLUMN stock_left INTEGER DEFAULT 0 NOT NULL '
            f'CONSTRAINT {CHECK_NAME} CHECK ({CHECK_SQL})'
        )
    else:
        op.add_column(
            'traceability_batches',
            sa.Column('stock_left', sa.Integer(), server_default='0', nullable=False),
        )
        op.create_check_constraint(op.f(CHECK_NAME), 'traceability_batches', CHECK_SQL)
    _backfill(bind)

    op.create_table('traceability_order_line_batches',
    sa.Column('order_line_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_traceability_order_line_batches_quantity_positive')),
    sa.ForeignKeyConstraint(['batch_id'], ['traceability_batches.id'], name=op.f('fk_traceability_order_line_batches_batch_id_traceability_batches'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['order_line_id'], ['orders_order_lines.id'], name=op.f('fk_traceability_order_line_batches_order_line_id_orders_order_lines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('order_line_id', 'batch_id', name=op.f('pk_traceability_order_line_batches'))
    )
    with op.batch_alter_table('traceability_order_line_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_traceability_order_line_batches_batch_id'), ['batch_id'], unique=False)


def downgrade():
    with op.batch_alter_table('traceability_order_line_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_traceability_order_line_batches_batch_id'))

    op.drop_table('traceability_order_line_batches')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE traceability_batches DROP COLUMN stock_left')
    else:
        op.drop_constraint(op.f(CHECK_NAME), 'traceability_batches', type_='check')
        op.drop_column('traceability_batches', 'stock_left')
