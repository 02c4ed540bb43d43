"""Payments' Celery tasks: webhooks, follow-up queries, reconciliation, sandbox notifies.

Each takes ids (or plain values), re-reads its rows, checks their state first and commits
its own work, so running one twice does no harm.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from market.extensions import db
from market.payments import services, webhooks
from market.payments.interfaces import ProviderError

log = logging.getLogger(__name__)

#: Alipay's own notify retry schedule (4m, 10m, 10m, 1h, 2h, 6h, 15h).
NOTIFY_RETRY_SECONDS = (240, 600, 600, 3600, 7200, 21600, 54000)


@shared_task(bind=True, acks_late=True, max_retries=len(webhooks.BACKOFF_SECONDS))
def deliver_webhook(self, delivery_id: int) -> bool:
    """One attempt at one webhook delivery; retried with backoff on failure."""
    outcome = webhooks.attempt(db.session, delivery_id)
    db.session.commit()
    if outcome.retry_in is not None and not self.request.is_eager:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.delivered


@shared_task(acks_late=True)
def retry_webhooks() -> int:
    """Beat: re-send deliveries whose retry is overdue (lost message, or eager mode)."""
    ids = webhooks.overdue_ids(db.session)
    db.session.rollback()
    for delivery_id in ids:
        deliver_webhook.delay(delivery_id)
    return len(ids)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def refresh_intent(intent_id: str) -> str | None:
    """Ask the provider about one intent (after the buyer's return) and settle it."""
    try:
        intent = services.refresh_intent(db.session, intent_id)
    except ProviderError as exc:
        db.session.rollback()
        log.info("refresh of %s postponed: %s", intent_id, exc)
        return None
    status = intent.status.value
    db.session.commit()
    return status


@shared_task(acks_late=True)
def reconcile() -> dict[str, Any]:
    """Beat: settle intents stuck in requires_action / processing with trade.query, close
    expired ones, retry pending refunds with their own out_request_no, prune old
    idempotency keys. Each intent in its own transaction."""
    summary = {"checked": 0, "settled": 0, "unknown": 0, "refunds_retried": 0}
    for intent_id in services.stuck_intent_ids(db.session):
        summary["checked"] += 1
        try:
            intent = services.refresh_intent(db.session, intent_id)
        except ProviderError as exc:
            db.session.rollback()
            summary["unknown"] += 1
            log.info("reconcile %s: outcome still unknown (%s)", intent_id, exc)
            continue
        if intent.status.is_final:
            summary["settled"] += 1
        db.session.commit()
    for refund_id in services.pending_refund_ids(db.session):
        try:
            services.attempt_refund(db.session, refund_id)
        except ProviderError as exc:
            db.session.rollback()
            log.info("refund %s retry failed: %s", refund_id, exc)
            continue
        summary["refunds_retried"] += 1
        db.session.commit()
    services.prune_idempotency_keys(db.session)
    db.session.commit()
    return summary


@shared_task(bind=True, acks_late=True, max_retries=len(NOTIFY_RETRY_SECONDS))
def deliver_sandbox_notify(self, url: str, params: dict[str, str], copies: int = 1) -> bool:
    """The sandbox gateway posts its async notify, as Alipay does (retrying on `fail`)."""
    from market.payments import sandbox

    answered = ""
    for _ in range(max(1, copies)):
        try:
            answered = sandbox.post_notify(url, params)
        except OSError as exc:
            answered = f"error: {exc}"
    if answered == "success":
        return True
    log.info("sandbox notify to %s answered %r", url, answered[:40])
    if not self.request.is_eager and self.request.retries < len(NOTIFY_RETRY_SECONDS):
        raise self.retry(countdown=NOTIFY_RETRY_SECONDS[self.request.retries])
    return False
