"""Celery tasks that keep the search index current. Idempotent: they re-read the
products and write what the database says now, however often they run."""

from __future__ import annotations

import logging

from celery import shared_task
from sqlalchemy.exc import OperationalError

from market.extensions import db
from market.search import services
from market.search_engine import SearchIndexError, SearchIndexLockedError

log = logging.getLogger(__name__)

# A rebuild holds the whoosh write lock for minutes: keep retrying for about 8 minutes.
RETRY = {
    "acks_late": True,
    "autoretry_for": (SearchIndexLockedError, OperationalError, ConnectionError),
    "retry_backoff": True,
    "retry_backoff_max": 120,
    "max_retries": 10,
}


@shared_task(**RETRY)
def index_products(product_ids: list[int]) -> int:
    """(Re)index or remove these products in the active backend; returns how many are
    searchable now. A missing or corrupt whoosh index is left for `flask search rebuild`
    (searches meanwhile answer by SQL LIKE)."""
    return _index(product_ids)


def _index(product_ids: list[int]) -> int:
    try:
        change = services.index_products(db.session, product_ids)
    except SearchIndexLockedError:
        db.session.rollback()
        raise
    except SearchIndexError as exc:
        db.session.rollback()
        log.warning(
            "Search index not updated for products %s: %s. Run `flask search rebuild`.",
            product_ids,
            exc,
        )
        return 0
    db.session.commit()
    return change.indexed


@shared_task(**RETRY)
def index_product(product_id: int) -> int:
    """:func:`index_products` for one product."""
    return _index([product_id])


@shared_task(**RETRY)
def index_cooperative(cooperative_id: int) -> int:
    """Reindex every product of a cooperative (after a rename, approval or rejection)."""
    ids = services.cooperative_product_ids(db.session, cooperative_id)
    indexed = 0
    for start in range(0, len(ids), 500):
        indexed += _index(ids[start : start + 500])
    return indexed


@shared_task(acks_late=True)
def rebuild_index() -> int:
    """Rebuild the active backend from the database (what `flask search rebuild` does)."""
    count = services.rebuild(db.session)
    db.session.commit()
    return count
