"""The scan page's fast path (traceability/fastscan.py) answers as Flask's views do."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from flask import request_started
from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError

from market.extensions import db
from tests.conftest import login
from tests.traceability.conftest import ADMIN_PHONE
from tests.traceability.test_scan import _issue, _link, _path
from traceability import config, services
from traceability.models import ScanRecord, TraceCode


@contextmanager
def _dispatches(app):
    """Collects the paths Flask dispatched to a view (the fast path never does)."""
    seen: list[str] = []

    def started(_sender, **_extra):
        from flask import request

        seen.append(request.path)

    request_started.connect(started, app)
    try:
        yield seen
    finally:
        request_started.disconnect(started, app)


def _forget_scans(app) -> None:
    with app.app_context():
        db.session.execute(delete(ScanRecord))
        db.session.execute(
            update(TraceCode).values(
                scan_count=0,
                visitor_count=0,
                city_count=0,
                first_scanned_at=None,
                last_scanned_at=None,
            )
        )
        db.session.commit()


def _paths(app, world) -> dict[str, str]:
    unit = _issue(app, world.batch)[0]
    with app.app_context():
        batch = services.batch_code(db.session, world.batch)
        db.session.commit()
        batch_url = services.code_link(
            app.config["PUBLIC_BASE_URL"], config.tag_secret(app), batch, world.lot
        )
    return {
        "unit": _path(_link(app, unit, world.lot)),
        "unit without tag": f"/01/{world.gtin}/10/{world.lot}/21/{unit.serial}",
        "batch": _path(batch_url),
        "epc": f"/epc/{unit.epc_hex}",
    }


@pytest.mark.parametrize("lang", [None, "en", "zh_Hans_CN"])
def test_the_fast_path_answers_exactly_as_the_resolver_view(app, world, client, lang):
    paths = _paths(app, world)
    if lang:
        client.set_cookie("lang", lang)
    answers = {}
    for fast in (True, False):
        app.config["TRACE_SCAN_FAST_PATH"] = fast
        try:
            with _dispatches(app) as dispatched:
                for name, path in paths.items():
                    _forget_scans(app)
                    response = client.get(path)
                    answers[fast, name] = (
                        response.status_code,
                        sorted(response.headers.items()),
                        response.get_data(as_text=True),
                    )
        finally:
            app.config["TRACE_SCAN_FAST_PATH"] = True
        # Flask dispatched every request only when the fast path was off.
        assert dispatched == ([] if fast else [path.split("?")[0] for path in paths.values()])
    for name in paths:
        status, headers, body = answers[True, name]
        assert status == 200, name
        assert ("Cache-Control", "private, no-store") in headers
        assert ("X-Frame-Options", "DENY") in headers
        assert (status, headers, body) == answers[False, name], name
    english = "Trace record" in answers[True, "unit"][2]
    assert english is (lang == "en")


def test_fast_path_scans_are_counted(app, world, client):
    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))
    with _dispatches(app) as dispatched:
        client.get(path)
        page = client.get(path, headers={"X-Forwarded-For": "203.0.113.9"}).get_data(as_text=True)
    assert dispatched == []
    assert "已被查询 2 次" in page
    with app.app_context():
        row = db.session.get(TraceCode, code.id)
        # ProxyFix sits outside the fast path: the forwarded address is a second visitor.
        assert (row.scan_count, row.visitor_count) == (2, 2)


def test_a_signed_in_visitor_is_answered_by_flask(app, world, client):
    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))
    login(client, ADMIN_PHONE)
    with _dispatches(app) as dispatched:
        page = client.get(path)
    assert dispatched == [path.split("?")[0]]
    assert page.status_code == 200
    with app.app_context():
        assert db.session.get(TraceCode, code.id).scan_count == 0  # own scans are not counted


def test_a_well_formed_code_never_issued_is_not_recognised_on_the_fast_path(app, world, client):
    path = f"/01/{world.gtin}/10/{world.lot}/21/99999"
    with _dispatches(app) as dispatched:
        response = client.get(path)
    assert dispatched == []
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "从未有产品使用过这个码。" in page
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_malformed_code_goes_to_flask_with_nothing_counted(app, world, client):
    with _dispatches(app) as dispatched:
        response = client.get("/01/123/10/x")
    assert dispatched == ["/01/123/10/x"]
    assert response.status_code == 404


def test_the_fast_path_counts_against_the_resolvers_rate_limit(app, world, client):
    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))
    app.config["PUBLIC_RATE_LIMIT"] = "2 per minute"
    try:
        responses = [client.get(path) for _ in range(3)]
        # The same limit as the view: a fourth request through Flask is refused too.
        login(client, ADMIN_PHONE)
        through_flask = client.get(path).status_code
    finally:
        app.config["PUBLIC_RATE_LIMIT"] = "120 per minute"
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert int(responses[2].headers["Retry-After"]) >= 1
    assert "请稍候再试。" in responses[2].get_data(as_text=True)
    assert through_flask == 429
    with app.app_context():
        assert db.session.get(TraceCode, code.id).scan_count == 2


def test_a_database_failure_on_the_fast_path_gets_the_error_page(app, world, client, monkeypatch):
    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))

    def broken(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("the database went away"))

    monkeypatch.setattr(services, "unit_scan_target", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_UNEXPECTED", False)
    response = client.get(path)
    assert response.status_code == 500
    assert "出错了" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(ScanRecord)).all() == []


def test_other_methods_and_cookies_go_to_flask(app, world, client):
    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))
    client.set_cookie("session", "not-a-valid-session")
    with _dispatches(app) as dispatched:
        assert client.get(path).status_code == 200
        assert client.head(path).status_code == 200
    assert len(dispatched) == 2


def test_a_scan_survives_the_database_dropping_its_pooled_connection(app, world, client):
    """On a database server the resolver reads through its own pool without pre-ping;
    a connection the server has closed is replaced on the first read."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite has no server to drop connections")
    from sqlalchemy import text

    from traceability.views import scan_engine

    code = _issue(app, world.batch)[0]
    path = _path(_link(app, code, world.lot))
    assert client.get(path).status_code == 200
    with app.app_context():
        engine = scan_engine(app)
        assert engine is not db.engine
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        db.session.commit()
    response = client.get(path)
    assert response.status_code == 200
    assert "已被查询 2 次" in response.get_data(as_text=True)
