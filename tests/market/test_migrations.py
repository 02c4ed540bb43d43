from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from market.extensions import db


def test_migrations_match_the_models(app):
    """What `flask db check` does: the migrated schema has nothing pending."""
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": True}
        )
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_schema_comes_from_the_migrations(app):
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert "alembic_version" in tables
    assert {t.name for t in db.metadata.sorted_tables} <= tables
