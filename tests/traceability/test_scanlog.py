"""Write-behind scan counting: what a busy deployment runs (tests default to writing at once)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from market.extensions import db
from traceability import config, scanlog, services
from traceability.models import ScanRecord, TraceCode


@pytest.fixture
def log(app):
    """A scan log on the test app whose thread never flushes by itself."""
    instance = scanlog.ScanLog(app, interval=3600)
    app.extensions["trace_scanlog"] = instance
    yield instance
    instance._stop.set()
    app.extensions.pop("trace_scanlog", None)


def _code_path(app, batch_id: int, lot: str) -> tuple[int, str]:
    with app.app_context():
        services.issue_codes(db.session, batch_id, 1, company_prefix="6970000", max_count=5)
        db.session.commit()
        code = services.unit_codes(db.session, batch_id)[0]
        url = urlsplit(
            services.code_link(app.config["PUBLIC_BASE_URL"], config.tag_secret(app), code, lot)
        )
    return code.id, url.path + "?" + url.query


def _row(app, code_id):
    with app.app_context():
        row = db.session.get(TraceCode, code_id)
        return row.scan_count, row.visitor_count, row.city_count


def test_scans_show_at_once_and_reach_the_database_at_the_next_flush(app, world, client, log):
    code_id, path = _code_path(app, world.batch, world.lot)
    first = client.get(path, environ_base={"REMOTE_ADDR": "10.9.0.1"})
    assert "这是此码第一次被查询。" in first.get_data(as_text=True)
    page = client.get(path, environ_base={"REMOTE_ADDR": "10.9.0.2"}).get_data(as_text=True)
    assert "已被查询 2 次" in page
    assert _row(app, code_id) == (0, 0, 0)  # not written yet
    assert log.flush() == 2
    assert _row(app, code_id) == (2, 2, 0)
    assert log.flush() == 0


def test_a_visitor_counted_by_another_process_is_not_counted_twice(app, world, client, log):
    code_id, path = _code_path(app, world.batch, world.lot)
    other = scanlog.ScanLog(app, interval=3600)  # a second gunicorn worker
    with app.app_context():
        target = services.unit_scan_target(
            db.session.connection(), world.gtin, path.split("/")[6].split("?")[0]
        )
        day = services.today_shanghai()
        for instance in (log, other):
            instance.record(
                db.session.connection(),
                target,
                visitor="same-visitor",
                day=day,
                city="江门市",
                tag_status="ok",
                now=services.utcnow(),
            )
        db.session.rollback()
    assert log.flush() == 1
    assert other.flush() == 1
    other._stop.set()
    assert _row(app, code_id) == (2, 1, 1)
    with app.app_context():
        assert db.session.scalar(select(func.count(ScanRecord.id))) == 1


def test_cities_and_the_copy_warning_work_with_write_behind(app, world, client, log):
    code_id, path = _code_path(app, world.batch, world.lot)
    for address, city in (("10.8.0.1", "440100"), ("10.8.0.2", "440300"), ("10.8.0.3", "440700")):
        page = client.get(
            path, environ_base={"REMOTE_ADDR": address}, headers={"X-Geo-City": city}
        ).get_data(as_text=True)
    assert 'data-testid="copy-warning"' in page
    log.flush()
    assert _row(app, code_id) == (3, 3, 3)


def test_a_failed_write_keeps_the_scans_for_the_next_flush(app, world, client, log, monkeypatch):
    code_id, path = _code_path(app, world.batch, world.lot)
    client.get(path)

    def broken(session, batch):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("UPDATE", {}, Exception("database is locked"))

    monkeypatch.setattr(scanlog, "write", broken)
    assert log.flush() == 0
    monkeypatch.undo()
    assert log.flush() == 1
    assert _row(app, code_id)[0] == 1


def test_stopping_writes_what_is_pending(app, world, client, log):
    code_id, path = _code_path(app, world.batch, world.lot)
    client.get(path)
    log.stop()
    assert _row(app, code_id)[0] == 1


def test_the_background_thread_flushes_by_itself(app, world, client):
    import time

    quick = scanlog.ScanLog(app, interval=0.05)
    app.extensions["trace_scanlog"] = quick
    try:
        code_id, path = _code_path(app, world.batch, world.lot)
        client.get(path)
        deadline = time.monotonic() + 5
        while _row(app, code_id)[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _row(app, code_id)[0] == 1
    finally:
        quick.stop()
        app.extensions.pop("trace_scanlog", None)
