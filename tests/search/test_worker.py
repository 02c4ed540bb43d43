"""Two web nodes, each with its own whoosh index and its own Celery worker on Redis: a
product saved on one node reaches both indexes through the broadcast queue.

Node 1 is this process (a test worker thread); node 2 is a real `celery worker`
process that consumes only the broadcast queue, so it can only learn of the product
by broadcast.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from market.app import create_app
from market.extensions import db
from market.search import services, sync
from market.search_engine import WhooshIndex
from tests.conftest import TEST_REDIS_URL
from tests.factories import ProductFactory

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set"),
]

ROOT = Path(__file__).resolve().parents[2]
#: Unique per run, so parallel runs on the same Redis never hear each other.
QUEUE = f"search_broadcast_test_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def node1(app, app_config, tmp_path):
    import redis

    # Fails the test (never skips) when Redis was promised but is not there.
    redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping()
    node = create_app(
        {
            **app_config,
            "SEARCH_BACKEND": "whoosh",
            "SEARCH_INDEX_DIR": str(tmp_path / "node1"),
            "SEARCH_BROADCAST_QUEUE": QUEUE,
            "CELERY": {
                **app.config["CELERY"],
                "broker_url": TEST_REDIS_URL,
                "task_always_eager": False,
            },
        }
    )
    with node.app_context():
        services.whoosh_index().create()
    yield node
    app.extensions["celery"].set_default()
    with node.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def node2(app_config, tmp_path):
    """A separate `celery worker` process with its own index folder."""
    index = WhooshIndex(tmp_path / "node2")
    index.create()
    env = {
        **os.environ,
        "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": "test-secret-key-of-node-2",
        "SEARCH_BACKEND": "whoosh",
        "SEARCH_INDEX_DIR": str(index.path),
        "SEARCH_BROADCAST_QUEUE": QUEUE,
        "CELERY_BROKER_URL": TEST_REDIS_URL,
        "MEDIA_DIR": str(tmp_path / "media"),
        "PAYMENT_SANDBOX_KEY_DIR": app_config["PAYMENT_SANDBOX_KEY_DIR"],
    }
    command = [
        sys.executable,
        *("-m", "celery", "-A", "market.wsgi_celery", "worker", "-P", "solo", "-Q", QUEUE),
        *("-n", f"node2-{QUEUE}@%h", "-l", "INFO"),
        *("--without-heartbeat", "--without-gossip", "--without-mingle"),
    ]
    proc = subprocess.Popen(  # noqa: S603 (this interpreter, our own worker)
        command, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)
    reader.start()
    log: list[str] = []
    deadline = time.monotonic() + 60
    while not any(" ready." in line for line in log):
        assert proc.poll() is None, "".join(log)
        assert time.monotonic() < deadline, "node 2's worker did not start:\n" + "".join(log)
        try:
            log.append(lines.get(timeout=1))
        except queue.Empty:
            continue
    yield index, log, lines
    proc.terminate()
    proc.wait(timeout=30)
    reader.join(timeout=10)
    proc.stderr.close()
    index.close()


@pytest.fixture
def keep_root_log_level():
    """start_worker sets the root logger's level (to ERROR); later tests need theirs."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


@pytest.mark.usefixtures("keep_root_log_level")
def test_a_product_saved_on_one_node_reaches_every_nodes_index(node1, node2):
    index2, log, lines = node2
    index1 = services.whoosh_index(node1)
    with start_worker(node1.extensions["celery"], pool="solo", perform_ping_check=False):
        with node1.app_context():
            product_id = ProductFactory(title="英德红茶 英红九号 礼盒").id
            db.session.commit()
        # Sent when the app context ended. A broadcast reaches only the workers that
        # are listening at that moment, so an idempotent resend covers a worker that
        # subscribed a moment late.
        deadline = time.monotonic() + 60
        while not all(ix.search("hongcha").ids == [product_id] for ix in (index1, index2)):
            assert time.monotonic() < deadline, "".join(log)
            time.sleep(1)
            while not lines.empty():
                log.append(lines.get())
            with node1.app_context():
                sync.index_later([product_id])
    assert index2.search("红茶").total == 1
    assert any("market.search.tasks.index_products" in line for line in log)
