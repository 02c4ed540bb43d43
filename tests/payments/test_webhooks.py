"""Signed outgoing webhooks to integrators, with retries and backoff."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update

from market.extensions import db
from market.payments import services, signatures, tasks, webhooks
from market.payments.models import DeliveryStatus, WebhookDelivery
from market.types import utcnow
from tests.payments.helpers import open_intent


class Receiver:
    """An integrator's endpoint on 127.0.0.1 that records what it gets."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def _endpoint(app, url, events=None):
    with app.app_context():
        endpoint = services.create_webhook_endpoint(db.session, url, events=events)
        db.session.commit()
        return endpoint.secret


def test_each_event_is_delivered_signed_like_stripe(app, receiver):
    secret = _endpoint(app, receiver.url)
    intent_id, _url = open_intent(app)
    types = [json.loads(body)["type"] for _h, body in receiver.received]
    assert types == ["payment_intent.created", "payment_intent.requires_action"]
    headers, body = receiver.received[0]
    assert signatures.verify_stripe_signature(body, headers["Stripe-Signature"], secret)
    assert not signatures.verify_stripe_signature(body, headers["Stripe-Signature"], "whsec_x")
    assert not signatures.verify_stripe_signature(
        body.replace(b"1230", b"1"), headers["Stripe-Signature"], secret
    )
    event = json.loads(body)
    assert event["object"] == "event"
    assert event["data"]["object"]["id"] == intent_id
    assert headers["Content-Type"].startswith("application/json")


def test_an_endpoint_gets_only_the_events_it_asked_for(app, receiver):
    _endpoint(app, receiver.url, events=["payment_intent.succeeded"])
    open_intent(app)
    assert receiver.received == []


def test_a_failing_endpoint_is_retried_with_backoff_then_delivered(app, receiver):
    _endpoint(app, receiver.url, events=["payment_intent.created"])
    receiver.status = 500
    open_intent(app)
    with app.app_context():
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert delivery.status is DeliveryStatus.PENDING
        assert delivery.attempts == 1
        assert delivery.last_status_code == 500
        wait = (delivery.next_attempt_at - utcnow()).total_seconds()
        assert webhooks.BACKOFF_SECONDS[0] - 5 < wait <= webhooks.BACKOFF_SECONDS[0]
    # Not due yet: the sweeper leaves it alone.
    assert tasks.retry_webhooks() == 0
    receiver.status = 204
    with app.app_context():
        db.session.execute(
            update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(minutes=10))
        )
        db.session.commit()
    assert tasks.retry_webhooks() == 1
    with app.app_context():
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert delivery.status is DeliveryStatus.SUCCEEDED
        assert delivery.attempts == 2
    assert len(receiver.received) == 2
    # Delivered deliveries are never sent again.
    with app.app_context():
        assert webhooks.attempt(db.session, delivery.id).retry_in is None
    assert len(receiver.received) == 2


def test_delivery_gives_up_after_the_last_retry(app):
    _endpoint(app, "http://127.0.0.1:9/nothing-listens-here", events=["payment_intent.created"])
    open_intent(app)
    with app.app_context():
        delivery_id = db.session.scalars(select(WebhookDelivery.id)).one()
        for _ in range(webhooks.MAX_ATTEMPTS + 2):
            webhooks.attempt(db.session, delivery_id)
            db.session.commit()
        delivery = db.session.get(WebhookDelivery, delivery_id)
        assert delivery.status is DeliveryStatus.FAILED
        assert delivery.attempts == webhooks.MAX_ATTEMPTS
        assert "Error" in delivery.last_error


def test_a_signature_older_than_five_minutes_is_refused():
    body = b'{"id":"evt_1"}'
    old = signatures.stripe_signature(body, "whsec_s", timestamp=1_700_000_000)
    assert signatures.verify_stripe_signature(body, old, "whsec_s", now=1_700_000_299)
    assert not signatures.verify_stripe_signature(body, old, "whsec_s", now=1_700_000_301)
    assert not signatures.verify_stripe_signature(body, "t=abc,v1=00", "whsec_s")
    assert not signatures.verify_stripe_signature(body, "", "whsec_s")
