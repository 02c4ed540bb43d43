"""Outgoing webhooks to integrators, signed the way Stripe signs them.

Each event is delivered to every active endpoint of its account that wants its type, as
JSON with `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The
Celery task `deliver_webhook` makes one attempt per run; a failure (no answer, or not
2xx) is retried with backoff (1 min, 5 min, 30 min, 1 h, 3 h, 6 h, 12 h, 24 h), then
given up. The beat task `retry_webhooks` re-sends deliveries whose retry is overdue
(a lost message, or eager mode where Celery cannot wait).

Integrators verify with `market.payments.signatures.verify_stripe_signature(body,
header, secret)` (300 s tolerance), or any Stripe library's webhook helper.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from market.payments import signatures
from market.payments.models import DeliveryStatus, Event, WebhookDelivery, WebhookEndpoint
from market.types import utcnow

log = logging.getLogger(__name__)

BACKOFF_SECONDS = (60, 300, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
TIMEOUT_SECONDS = 10


def payload(event: Event) -> bytes:
    from market.payments.services import event_json

    return json.dumps(event_json(event), ensure_ascii=False, separators=(",", ":")).encode()


def queue_deliveries(session: Session, event: Event) -> list[int]:
    """One delivery row per interested endpoint; each is sent after the commit."""
    from market.payments import services, tasks

    with session.no_autoflush:  # nothing to write yet for most events: no endpoints
        endpoints = session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.account == event.account, WebhookEndpoint.active.is_(True)
            )
        ).all()
    deliveries = [
        WebhookDelivery(
            event_id=event.id,
            endpoint_id=endpoint.id,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
        )
        for endpoint in endpoints
        if endpoint.wants(event.type)
    ]
    if not deliveries:
        return []
    session.add_all(deliveries)
    session.flush()
    ids = [delivery.id for delivery in deliveries]
    for delivery_id in ids:
        services.after_commit(
            session, lambda delivery_id=delivery_id: tasks.deliver_webhook.delay(delivery_id)
        )
    return ids


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    #: Seconds until the next try, or None (delivered, or given up).
    retry_in: int | None


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST and return the HTTP status; raises OSError when nothing answered."""
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - integrator URL, registered by an admin
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def attempt(session: Session, delivery_id: int, *, sender=post) -> Attempt:
    """Try one delivery now and record the outcome. Safe to run twice."""
    delivery = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if delivery is None or delivery.status is not DeliveryStatus.PENDING:
        return Attempt(delivered=delivery is not None, retry_in=None)
    endpoint = delivery.endpoint
    if not endpoint.active:
        delivery.status = DeliveryStatus.FAILED
        delivery.last_error = "endpoint disabled"
        return Attempt(delivered=False, retry_in=None)
    body = payload(delivery.event)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "YueNong-Webhooks/1.0",
        "Stripe-Signature": signatures.stripe_signature(body, endpoint.secret),
    }
    delivery.attempts += 1
    try:
        status = sender(endpoint.url, body, headers)
        error = None if 200 <= status < 300 else f"HTTP {status}"
    except (OSError, ValueError) as exc:
        status, error = None, f"{type(exc).__name__}: {exc}"[:300]
    delivery.last_status_code = status
    delivery.last_error = error
    if error is None:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = utcnow()
        delivery.next_attempt_at = None
        return Attempt(delivered=True, retry_in=None)
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        log.warning("webhook %s to %s given up: %s", delivery.event_id, endpoint.url, error)
        return Attempt(delivered=False, retry_in=None)
    wait = BACKOFF_SECONDS[delivery.attempts - 1]
    delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
    log.info(
        "webhook %s to %s failed (%s); retry in %ss", delivery.event_id, endpoint.url, error, wait
    )
    return Attempt(delivered=False, retry_in=wait)


def overdue_ids(session: Session, *, grace_seconds: int = 120, limit: int = 500) -> list[int]:
    """Pending deliveries whose retry time passed a while ago (their message was lost)."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    return list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= cutoff,
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    )
