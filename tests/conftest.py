"""Test harness: the schema comes from the migrations; backends come from the environment.

- Default: a throwaway SQLite file.
- TEST_DATABASE_URL: the whole suite on that database (PostgreSQL in CI). If it is set and
  unreachable the session fails; it never silently falls back.
- TEST_REDIS_URL: turns on the tests that start a real Celery worker on Redis.

Isolation: each test that uses the app starts from empty tables (every table is emptied
after the test). We do not use the outer-transaction/savepoint pattern because the browser
tests' live server, the real Celery worker and the concurrency tests all need to see
committed rows from other connections.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from market.app import create_app
from market.config import normalize_database_url
from market.extensions import db, limiter
from market.search.services import whoosh_index

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip()
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_report_header(config: pytest.Config) -> list[str]:
    backend = TEST_DATABASE_URL.split("@")[-1] if TEST_DATABASE_URL else "SQLite (embedded)"
    return [
        f"yuenong database: {backend}",
        f"yuenong redis worker tests: {'on, ' + TEST_REDIS_URL if TEST_REDIS_URL else 'off'}",
    ]


def _reset_database(app: Flask) -> None:
    """Drop everything, then build the schema by running the migrations."""
    import flask_migrate

    with app.app_context():
        engine = db.engine
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            else:
                db.metadata.drop_all(conn)
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        flask_migrate.upgrade(revision="heads")
        db.session.remove()
        whoosh_index(app).clear()  # an empty search index, as for the empty tables


@pytest.fixture(scope="session")
def app_config(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("yuenong")
    url = (
        normalize_database_url(TEST_DATABASE_URL)
        if TEST_DATABASE_URL
        else f"sqlite:///{base / 'test.sqlite3'}"
    )
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": url,
        "MEDIA_DIR": str(base / "media"),
        "SEARCH_INDEX_DIR": str(base / "search-index"),
        "LABEL_DIR": str(base / "labels"),
        "TRACE_REPORT_DIR": str(base / "reports"),
        "PUBLIC_BASE_URL": "http://yuenong.test",
        # The payment sandbox generates its RSA keys here, never in the real instance/.
        "PAYMENT_SANDBOX_KEY_DIR": str(base / "sandbox-keys"),
    }


@pytest.fixture(scope="session")
def app(app_config: dict) -> Iterator[Flask]:
    application = create_app(app_config)
    _reset_database(application)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def empty_tables(app: Flask) -> None:
    shutil.rmtree(app.config["MEDIA_DIR"], ignore_errors=True)
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        # The search index follows the tables (SQLite reuses the ids of deleted rows).
        whoosh_index(app).clear()


@pytest.fixture(autouse=True)
def _isolation(request: pytest.FixtureRequest) -> Iterator[None]:
    uses_app = "app" in request.fixturenames
    if uses_app:
        # Other tests may create apps of their own; tasks must run on this one's Celery.
        celery_app = request.getfixturevalue("app").extensions["celery"]
        celery_app.set_default()
        celery_app.set_current()
    yield
    if uses_app:
        application = request.getfixturevalue("app")
        empty_tables(application)
        limiter.reset()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token a real browser would find on the page."""
    page = client.get(path)
    match = CSRF_META.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def post_form(client: FlaskClient, path: str, data: dict, **kwargs):
    """POST a form the way a browser does: with the page's CSRF token."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client)}, **kwargs)


def login(client: FlaskClient, phone: str, password: str = "password123") -> None:  # noqa: S107
    response = post_form(client, "/auth/login", {"phone": phone, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


@pytest.fixture
def media_dir(app: Flask) -> Path:
    return Path(app.config["MEDIA_DIR"])
