"""Orders' Celery tasks: expire unpaid checkouts, tell people about their orders."""

from __future__ import annotations

import logging

from celery import shared_task
from flask_babel import force_locale, gettext
from sqlalchemy import select

from market.auth.models import Role, User
from market.extensions import db
from market.notifications import services as notifications
from market.orders import services
from market.orders.models import Order
from market.payments.interfaces import ProviderError

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def expire_unpaid_order(order_id: int) -> int:
    """Scheduled (after the checkout's commit) for when the payment time runs out:
    cancel the checkout and put the stock back. Idempotent; if it is not due yet (eager
    mode runs it at once) it does nothing and the beat sweep catches it later."""
    try:
        expired = services.expire_unpaid(db.session, order_id)
    except ProviderError as exc:
        db.session.rollback()
        log.info("expiry of order %s postponed: %s", order_id, exc)
        return 0
    db.session.commit()
    return len(expired)


@shared_task(acks_late=True)
def expire_overdue_orders() -> int:
    """Beat: the same for every overdue unpaid order (lost messages, eager mode)."""
    done = 0
    for order_id in services.overdue_order_ids(db.session):
        done += expire_unpaid_order.run(order_id)
    return done


def _people_who_ship(order: Order) -> list[User]:
    farmer_ids = {line.farmer_id for line in order.lines if line.farmer_id}
    return list(
        db.session.scalars(
            select(User).where(
                User.cooperative_id == order.cooperative_id,
                User.active.is_(True),
                (User.role == Role.COOP_ADMIN) | (User.id.in_(farmer_ids)),
            )
        )
    )


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def notify_order(order_id: int, kind: str) -> int:
    """In-app messages: a paid order to pack, a shipment, a refund. Deduplicated."""
    order = db.session.get(Order, order_id)
    if order is None or kind not in ("paid", "shipped", "refund_requested", "refunded"):
        return 0
    recipients = _people_who_ship(order) if kind in ("paid", "refund_requested") else [order.buyer]
    link = f"/orders/{order.id}"
    for user in recipients:
        with force_locale(user.locale or "zh_Hans_CN"):
            titles = {
                "paid": gettext("New order %(number)s to pack", number=order.number),
                "shipped": gettext("Your order %(number)s has shipped", number=order.number),
                "refund_requested": gettext(
                    "Refund requested for order %(number)s", number=order.number
                ),
                "refunded": gettext("Refund for order %(number)s sent", number=order.number),
            }
        notifications.notify(
            db.session,
            user.id,
            f"order.{kind}",
            titles[kind],
            link=link,
            dedupe_key=f"order:{order.id}:{kind}:{order.refunded_fen}:{user.id}",
        )
    db.session.commit()
    return len(recipients)
