"""Counting scans without a database write on every scan (write-behind).

Every scan of a code must be counted, but a write per request makes the public scan
page slow under load: on PostgreSQL every scan of a popular code queues on one row
lock, on SQLite every scan takes the database's single write lock. Instead each process
keeps the scans it served in memory and a background thread writes them in one short
transaction every ``TRACE_SCAN_WRITE_BEHIND`` seconds (and when the process exits).

What a visitor sees is the count in the database plus the scans this process has not
written yet, so it includes their own scan. A process killed with SIGKILL loses at most
the last interval's counts; nothing else is at stake. With the setting at 0 (the
default under tests) every scan is written at once by ``services.record_scan``.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import Flask
from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from market.types import UTCDateTime
from traceability.models import ScanRecord, TraceCode
from traceability.services import ScanStats, ScanTarget

log = logging.getLogger(__name__)

#: (code, visitor) pairs remembered as already counted, per process.
SEEN_LIMIT = 100_000
_SEEN = select(ScanRecord.id).where(
    ScanRecord.code_id == bindparam("code_id"), ScanRecord.visitor_key == bindparam("visitor")
)


@dataclass
class _Visitor:
    day: date
    city: str | None
    tag_status: str
    at: datetime


@dataclass
class _Pending:
    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    visitors: dict[str, _Visitor] = field(default_factory=dict)

    def merge(self, other: _Pending) -> None:
        self.count += other.count
        if other.first_at and (self.first_at is None or other.first_at < self.first_at):
            self.first_at = other.first_at
        if other.last_at and (self.last_at is None or other.last_at > self.last_at):
            self.last_at = other.last_at
        for key, visitor in other.visitors.items():
            self.visitors.setdefault(key, visitor)


class ScanLog:
    """The scans one process has served and not yet written."""

    def __init__(self, app: Flask, interval: float) -> None:
        self.app = app
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._seen: OrderedDict[tuple[int, str], None] = OrderedDict()
        self._pid = os.getpid()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        atexit.register(self.flush)

    # --- recording ------------------------------------------------------------------

    def record(
        self,
        conn: Connection,
        code: ScanTarget,
        *,
        visitor: str,
        day: date,
        city: str | None,
        tag_status: str,
        now: datetime,
    ) -> ScanStats:
        """Count one scan of ``code`` (as loaded for this request); returns the figures
        to show, this scan included."""
        self._after_fork()
        pair = (code.code_id, visitor)
        with self._lock:
            known = pair in self._seen
        if known:
            new_visitor = False
        elif code.seen is not None:
            new_visitor = not code.seen  # looked up with the code itself
        else:
            new_visitor = (
                conn.execute(_SEEN, {"code_id": code.code_id, "visitor": visitor}).first() is None
            )
        with self._lock:
            self._remember(pair)
            pending = self._pending.setdefault(code.code_id, _Pending())
            pending.count += 1
            pending.first_at = pending.first_at or now
            pending.last_at = now
            if new_visitor and visitor not in pending.visitors:
                pending.visitors[visitor] = _Visitor(day, city, tag_status, now)
            count, first_at = pending.count, pending.first_at
            visitors = len(pending.visitors)
            cities = {v.city for v in pending.visitors.values() if v.city}
        self._start()
        if new_visitor and city:
            stored = conn.scalars(
                select(ScanRecord.city)
                .where(ScanRecord.code_id == code.code_id, ScanRecord.city.is_not(None))
                .distinct()
            )
            city_count = len(set(stored) | cities)
        else:
            city_count = max(code.city_count, len(cities))
        return ScanStats(
            scan_count=code.scan_count + count,
            visitor_count=code.visitor_count + visitors,
            city_count=city_count,
            first_scanned_at=code.first_scanned_at or first_at,
            last_scanned_at=now,
        )

    def _remember(self, pair: tuple[int, str]) -> None:
        self._seen[pair] = None
        self._seen.move_to_end(pair)
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)

    # --- writing --------------------------------------------------------------------

    def flush(self) -> int:
        """Write every pending scan in one transaction; returns how many were written.

        On a database error the scans are kept and written with the next flush.
        """
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        from market.extensions import db

        try:
            with self.app.app_context():
                write(db.session, batch)
                db.session.commit()
        except SQLAlchemyError:
            log.exception("could not write %d codes' scans; will retry", len(batch))
            with self._lock:
                for code_id, pending in batch.items():
                    self._pending.setdefault(code_id, _Pending()).merge(pending)
            return 0
        return sum(p.count for p in batch.values())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self._pending:
                self.flush()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._loop, name="trace-scan-log", daemon=True
                    )
                    self._thread.start()

    def _after_fork(self) -> None:
        # A forked worker inherits the parent's memory but not its thread.
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._pending, self._seen = {}, OrderedDict()
            self._thread, self._stop = None, threading.Event()

    def stop(self) -> None:
        self._stop.set()
        self.flush()


_codes = TraceCode.__table__
_scans = ScanRecord.__table__
_NOW = bindparam("b_first", type_=UTCDateTime())
_LAST = bindparam("b_last", type_=UTCDateTime())
# Statements built once and run with many parameter sets (executemany).
_ADD_TOTALS = (
    update(_codes)
    .where(_codes.c.id == bindparam("b_code"))
    .values(
        scan_count=_codes.c.scan_count + bindparam("b_count"),
        first_scanned_at=func.coalesce(_codes.c.first_scanned_at, _NOW),
        last_scanned_at=case(
            (
                _codes.c.last_scanned_at.is_(None) | (_codes.c.last_scanned_at < _LAST),
                _LAST,
            ),
            else_=_codes.c.last_scanned_at,
        ),
    )
)
_RECOUNT = (
    update(_codes)
    .where(_codes.c.id == bindparam("b_code"))
    .values(
        visitor_count=select(func.count(_scans.c.id))
        .where(_scans.c.code_id == bindparam("b_code"))
        .scalar_subquery(),
        city_count=select(func.count(func.distinct(_scans.c.city)))
        .where(_scans.c.code_id == bindparam("b_code"), _scans.c.city.is_not(None))
        .scalar_subquery(),
    )
)


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert ScanRecords; a visitor another process already wrote is skipped."""
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        session.execute(
            insert(_scans).on_conflict_do_nothing(index_elements=["code_id", "visitor_key"]),
            rows,
        )
        return
    for row in rows:
        try:
            with session.begin_nested():
                session.execute(_scans.insert(), row)
        except IntegrityError:
            continue


def write(session: Session, batch: dict[int, _Pending]) -> None:
    """Apply pending scans in a few statements: new ScanRecords, every code's totals,
    then the visitor and city counts recounted from the records (so a retried write
    cannot double them)."""
    rows = [
        {
            "code_id": code_id,
            "visitor_key": key,
            "day": visitor.day,
            "city": visitor.city,
            "tag_status": visitor.tag_status,
            "first_at": visitor.at,
        }
        for code_id, pending in batch.items()
        for key, visitor in pending.visitors.items()
    ]
    if rows:
        _insert_ignoring_duplicates(session, rows)
    session.execute(
        _ADD_TOTALS,
        [
            {
                "b_code": code_id,
                "b_count": pending.count,
                "b_first": pending.first_at,
                "b_last": pending.last_at,
            }
            for code_id, pending in batch.items()
        ],
    )
    recount = [{"b_code": code_id} for code_id, pending in batch.items() if pending.visitors]
    if recount:
        session.execute(_RECOUNT, recount)


def for_app(app: Flask) -> ScanLog | None:
    """The app's scan log, or None when scans are written at once."""
    return app.extensions.get("trace_scanlog")


def init_app(app: Flask) -> None:
    interval = float(app.config["TRACE_SCAN_WRITE_BEHIND"] or 0)
    if interval > 0:
        app.extensions["trace_scanlog"] = ScanLog(app, interval)
