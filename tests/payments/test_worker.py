"""With a real Celery worker on Redis: the sandbox's late notify goes out later (the
countdown is honoured, unlike eager mode) and settles the payment."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from market.app import create_app
from market.extensions import db
from market.payments.models import IntentStatus
from tests.conftest import TEST_REDIS_URL
from tests.payments.helpers import intent, open_cashier, open_intent, press

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set"),
]


@pytest.fixture
def worker_app(app, app_config, rsa_keys):
    import redis

    redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping()
    real = create_app(
        {
            **app_config,
            "PAYMENT_SANDBOX_APP_PRIVATE_KEY": rsa_keys.app,
            "PAYMENT_SANDBOX_GATEWAY_PRIVATE_KEY": rsa_keys.gateway,
            "CELERY": {
                **app.config["CELERY"],
                "broker_url": TEST_REDIS_URL,
                "result_backend": TEST_REDIS_URL,
                "task_always_eager": False,
                "task_ignore_result": False,
            },
        }
    )
    real.config["PAYMENT_SANDBOX"]["late_seconds"] = 1
    real.extensions["celery"].set_default()
    yield real
    app.extensions["celery"].set_default()
    with real.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_late_notify_lands_after_the_return_through_a_real_worker(worker_app):
    celery_app = worker_app.extensions["celery"]
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        client = worker_app.test_client()
        intent_id, url = open_intent(worker_app)
        press(client, open_cashier(client, url), "pay", notify="late")
        # The buyer is back; the notify is still on its way.
        assert intent(worker_app, intent_id).status is IntentStatus.REQUIRES_ACTION
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if intent(worker_app, intent_id).status is IntentStatus.SUCCEEDED:
                break
            time.sleep(0.2)
    assert intent(worker_app, intent_id).status is IntentStatus.SUCCEEDED
