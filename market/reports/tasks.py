"""Reports' Celery tasks: keep the summaries current, and rebuild them every night.

Each task takes ids, recomputes from raw rows and commits its own work, so running one
twice, or after a duplicate payment event, changes nothing. A rollup waits for any other
to finish (see :func:`market.reports.rollups.lock`); on SQLite a long wait ends in
"database is locked", which is retried with backoff.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task
from sqlalchemy.exc import OperationalError

from market.extensions import db
from market.reports import rollups

log = logging.getLogger(__name__)

_RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError, ConnectionError),
    "retry_backoff": True,
    "max_retries": 8,
}


@shared_task(**_RETRY)
def update_rollups_for_payment(intent_id: str) -> int:
    """A payment succeeded or one of its refunds landed: recompute its orders' slices."""
    try:
        slices = rollups.refresh_payment(db.session, intent_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return slices


@shared_task(**_RETRY)
def update_rollups_for_order(order_id: int) -> int:
    """The same for one order (for code that changes an order's money directly)."""
    try:
        slices = rollups.refresh_orders(db.session, [order_id])
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return slices


@shared_task(**_RETRY)
def rebuild_rollups() -> dict:
    """Beat, nightly: every summary recomputed from the raw rows in one transaction."""
    try:
        stats = rollups.rebuild(db.session)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    log.info("report summaries rebuilt: %s", stats)
    return asdict(stats)


@shared_task(**_RETRY)
def refresh_informatization() -> None:
    """Beat: traceability and RFID counts of recent days (codes are packed and tags read
    after the payment, so these move without any money moving)."""
    try:
        rollups.refresh_recent_informatization(db.session)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
