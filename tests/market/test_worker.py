"""A real Celery worker on Redis runs a real task that writes to the test database."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import select

from market.app import create_app
from market.cooperatives.models import CooperativeStatus
from market.extensions import db
from market.notifications.models import Notification
from market.notifications.tasks import notify_cooperative_reviewed
from tests.conftest import TEST_REDIS_URL
from tests.factories import CooperativeFactory, buyer

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set"),
]


@pytest.fixture
def worker_app(app, app_config):
    """A second app on the same database whose Celery talks to Redis (not eager)."""
    import redis

    # Fails the test (never skips) when Redis was promised but is not there.
    redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping()
    real = create_app(
        {
            **app_config,
            "CELERY": {
                **app.config["CELERY"],
                "broker_url": TEST_REDIS_URL,
                "result_backend": TEST_REDIS_URL,
                "task_always_eager": False,
                "task_ignore_result": False,
            },
        }
    )
    celery_app = real.extensions["celery"]
    celery_app.set_default()
    yield real
    app.extensions["celery"].set_default()
    with real.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_real_worker_runs_a_task_that_writes_to_the_database(worker_app):
    celery_app = worker_app.extensions["celery"]
    with worker_app.app_context():
        coop = CooperativeFactory(status=CooperativeStatus.APPROVED)
        applicant = buyer(phone="13500135999", cooperative=coop)
        db.session.commit()
        coop_id, user_id = coop.id, applicant.id

    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        result = notify_cooperative_reviewed.apply_async((coop_id, [user_id]))
        assert result.get(timeout=30) == 1
        # Running it again is harmless: the notification is deduplicated.
        again = notify_cooperative_reviewed.apply_async((coop_id, [user_id]))
        assert again.get(timeout=30) == 1

    with worker_app.app_context():
        notes = db.session.scalars(select(Notification)).all()
        assert [(n.user_id, n.kind) for n in notes] == [(user_id, "cooperative.approved")]
