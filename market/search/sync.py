"""Keeping the index in step with the database: changes are noticed at flush, queued
at commit, and sent to Celery when the app context ends.

Any committed change that affects search -- a product created, edited, put on sale,
archived or deleted; a cooperative renamed, approved or rejected -- is noticed by
SQLAlchemy session events (the pattern of microblog's ``SearchableMixin``), whoever
made it: a view, a service called from a task, the CLI, the demo loader, a test
factory. Views may also call :func:`index_later` explicitly (the catalog does, after
its commits); ids are deduplicated per app context.

The tasks are sent when the app context ends (after the response, or at the end of a
task or CLI command), never inside the commit: in eager mode a task runs at once and
uses the database itself. :func:`send_pending` also runs before a search, so a search
in the same context finds what was just committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask, current_app, g, has_app_context
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from market.catalog.models import Product
from market.cooperatives.models import Cooperative

log = logging.getLogger(__name__)

#: Product attributes that change its search document or whether it is public.
PRODUCT_FIELDS = (
    "title",
    "gi_name",
    "is_gi",
    "description",
    "category",
    "status",
    "origin_code",
    "cooperative_id",
)
#: Cooperative attributes that change its products' documents or their visibility.
COOPERATIVE_FIELDS = ("name", "status", "division_code")
#: Product ids per indexing task.
TASK_BATCH = 500

_FLUSHED = "search_flushed"


def _changed(obj: object, fields: tuple[str, ...]) -> bool:
    attrs = inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in fields)


def _after_flush(session: Session, _flush_context: object) -> None:
    products, coops = session.info.setdefault(_FLUSHED, (set(), set()))
    for obj in session.new:
        if isinstance(obj, Product):
            products.add(obj.id)
    for obj in session.dirty:
        if isinstance(obj, Product) and _changed(obj, PRODUCT_FIELDS):
            products.add(obj.id)
        elif isinstance(obj, Cooperative) and _changed(obj, COOPERATIVE_FIELDS):
            coops.add(obj.id)
    for obj in session.deleted:
        if isinstance(obj, Product):
            products.add(obj.id)


def _after_commit(session: Session) -> None:
    products, coops = session.info.pop(_FLUSHED, (set(), set()))
    if (products or coops) and has_app_context():
        _queue(products, coops)


def _after_rollback(session: Session) -> None:
    session.info.pop(_FLUSHED, None)


def listen(session_target: object) -> None:
    """Watch the sessions of ``session_target`` (a scoped_session or sessionmaker)."""
    for name, fn in (
        ("after_flush", _after_flush),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ):
        if not event.contains(session_target, name, fn):
            event.listen(session_target, name, fn)


def _queue(products: Iterable[int], coops: Iterable[int] = ()) -> None:
    pending_products: set[int] = g.setdefault("search_products", set())
    pending_coops: set[int] = g.setdefault("search_cooperatives", set())
    pending_products.update(products)
    pending_coops.update(coops)


def index_later(product_ids: Iterable[int] = (), cooperative_ids: Iterable[int] = ()) -> None:
    """Have these products' documents, and those of all the cooperatives' products,
    brought up to date once the app context ends."""
    products = {int(i) for i in product_ids}
    coops = {int(i) for i in cooperative_ids}
    if products or coops:
        _queue(products, coops)


def send_pending() -> None:
    """Send the indexing tasks queued in this app context (if any)."""
    if not has_app_context():
        return
    products = g.pop("search_products", None) or set()
    coops = g.pop("search_cooperatives", None) or set()
    if products or coops:
        _send(products, coops)


def _send(products: set[int], coops: set[int]) -> None:
    from market.search import services, tasks

    try:
        if services.backend_name() == "like":
            return  # nothing to keep
        options = route_options(current_app)
        # This app's own Celery (its broker and queues), whichever is current.
        registry = current_app.extensions["celery"].tasks
        index_products = registry[tasks.index_products.name]
        index_cooperative = registry[tasks.index_cooperative.name]
        ordered = sorted(products)
        for start in range(0, len(ordered), TASK_BATCH):
            index_products.apply_async((ordered[start : start + TASK_BATCH],), **options)
        for coop_id in sorted(coops):
            index_cooperative.apply_async((coop_id,), **options)
    except Exception:
        # The index misses these changes until the next rebuild (searches still drop
        # products that are no longer public); the request itself has succeeded.
        log.exception(
            "Could not update the search index for products %s, cooperatives %s",
            sorted(products),
            sorted(coops),
        )


def route_options(app: Flask) -> dict[str, object]:
    """Where index updates go: every node's broadcast queue for a per-node whoosh
    index when SEARCH_BROADCAST_QUEUE is set, else the default queue.

    The fanout exchange is declared by the sender too: Celery declares no Broadcast
    queue when publishing, and kombu's Redis transport then takes an exchange it has
    not seen for a direct one, pushing the message into lists no worker reads.
    """
    from kombu import Exchange

    from market.search import services

    queue = app.config.get("SEARCH_BROADCAST_QUEUE")
    if queue and services.backend_name(app) == "whoosh":
        return {"queue": queue, "declare": [Exchange(queue, type="fanout")]}
    return {}


def init_app(app: Flask, session_target: object) -> None:
    listen(session_target)

    @app.teardown_appcontext
    def _send_at_teardown(_exc: BaseException | None) -> None:
        send_pending()
