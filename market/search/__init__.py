"""Product search in Chinese and pinyin, for the catalog pages and the API.

``search_products(session, q, ...)`` answers with one page of public products (on sale
or sold out, approved cooperative), best first, their total and highlighted titles.
The terms (character bigrams and jieba words, full pinyin and initials) and the
ranking (title over GI name over cooperative over description) come from
:mod:`market.search_engine`; the backend is chosen by ``SEARCH_BACKEND``:

- ``auto`` (default): ``postgres`` on PostgreSQL, ``whoosh`` otherwise;
- ``whoosh``: an index on local disk in ``SEARCH_INDEX_DIR``, one per node;
- ``postgres``: a weighted tsvector per product in ``market_search_documents`` with a
  GIN index -- one index shared by every web node;
- ``like``: no index, plain SQL LIKE (no pinyin).

If the index is missing or broken, searches are answered by SQL LIKE (slower, no
pinyin) and the failure is logged at WARNING; `flask search rebuild` repairs it.

Keeping it current: every commit that changes a product's searchable fields or
visibility, or a cooperative's name or status, queues a Celery task
(``market.search.tasks.index_products`` / ``index_cooperative``) that re-reads the
products and writes their documents (see :mod:`market.search.sync`). Views may also
call :func:`index_product_later` after their commit.

Several web nodes with whoosh: each node has its own index folder and runs a Celery
worker that consumes a broadcast queue. Set ``SEARCH_BROADCAST_QUEUE=search_broadcast``
on every node; index updates are then published to that fanout exchange and every
node's worker (``celery -A market.wsgi_celery worker -Q celery,search_broadcast``)
applies them to its own index. A node that was down misses broadcasts: run
`flask search rebuild` when a node starts. With PostgreSQL (the default there) there
is one shared index and nothing to broadcast.
"""

from __future__ import annotations

from flask import Flask

from market.search.services import search_products
from market.search.sync import index_later

__all__ = ["index_cooperative_later", "index_product_later", "init_app", "search_products"]


def index_product_later(product_id: int) -> None:
    """Update the product's search document once this request (app context) ends."""
    index_later([product_id])


def index_cooperative_later(cooperative_id: int) -> None:
    """Update the documents of all of a cooperative's products once the context ends."""
    index_later(cooperative_ids=[cooperative_id])


def init_app(app: Flask) -> None:
    """Check the configuration, watch the session, register the CLI and the tasks."""
    from market.extensions import db
    from market.search import services, sync, tasks  # noqa: F401 (registers the tasks)
    from market.search.cli import search_cli

    services.backend_name(app)  # refuses a backend the database can't have
    sync.init_app(app, db.session)
    app.cli.add_command(search_cli)
    queue = app.config.get("SEARCH_BROADCAST_QUEUE")
    if queue:
        _declare_broadcast(app, queue)


def _declare_broadcast(app: Flask, queue: str) -> None:
    """Declare the fanout queue beside the default one, so workers consume both."""
    from kombu import Queue
    from kombu.common import Broadcast

    conf = app.extensions["celery"].conf
    queues = list(conf.task_queues or [Queue(conf.task_default_queue)])
    if not any(getattr(q, "alias", None) == queue or q.name == queue for q in queues):
        queues.append(Broadcast(queue))
    conf.task_queues = queues
