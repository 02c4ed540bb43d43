"""catalog: product origin (division code and town/village)

Revision ID: 0003_catalog_more
Revises: 0002_catalog
Create Date: 2026-11-27 17:18:41.347272

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_catalog_more'
down_revision = '0002_catalog'
branch_labels = None
depends_on = None


def upgrade():
    # Added nullable, filled from each product's cooperative, then made NOT NULL, so a
    # database that already has products upgrades cleanly.
    with op.batch_alter_table('market_products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin_code', sa.String(length=6), nullable=True))
        batch_op.add_column(
            sa.Column('origin_detail', sa.String(length=60), nullable=False, server_default='')
        )
    op.execute(
        "UPDATE market_products SET origin_code = (SELECT c.division_code FROM "
        "market_cooperatives c WHERE c.id = market_products.cooperative_id)"
    )
    with op.batch_alter_table('market_products', schema=None) as batch_op:
        batch_op.alter_column('origin_code', existing_type=sa.String(length=6), nullable=False)
        batch_op.alter_column(
            'origin_detail', existing_type=sa.String(length=60), server_default=None
        )
        batch_op.create_index(batch_op.f('ix_market_products_origin_code'), ['origin_code'], unique=False)


def downgrade():
    with op.batch_alter_table('market_products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_products_origin_code'))
        batch_op.drop_column('origin_detail')
        batch_op.drop_column('origin_code')
