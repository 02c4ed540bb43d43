"""Concurrent requests with one Idempotency-Key: one intent, one answer (PostgreSQL)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from market.extensions import db
from market.payments import services
from market.payments.models import PaymentIntent


@pytest.fixture
def postgres(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("needs PostgreSQL (set TEST_DATABASE_URL); CI runs it there")
    return app


def test_ten_simultaneous_posts_with_one_key_create_one_intent(postgres):
    app = postgres
    with app.app_context():
        _key, raw = services.create_api_key(db.session, "shop")
        db.session.commit()
    start = threading.Barrier(10)

    def post(_n):
        client = app.test_client()
        start.wait()
        response = client.post(
            "/api/v1/payment_intents",
            data={"amount": "880", "currency": "cny"},
            headers={"Authorization": f"Bearer {raw}", "Idempotency-Key": "same-cart"},
        )
        return response.status_code, (response.get_json() or {}).get("id")

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(post, range(10)))
    ids = {intent_id for status, intent_id in answers if status == 200}
    assert len(ids) == 1
    # Each either got the stored answer or was told the first one is still running.
    assert {status for status, _ in answers} <= {200, 409}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PaymentIntent)) == 1
