"""Celery tasks of the logistics package (take ids, check state first, commit their work)."""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app
from flask_babel import force_locale, gettext

from logistics import config, providers, sandbox, services
from logistics.carriers import CARRIERS
from logistics.interfaces import TrackingError
from logistics.models import Checkpoint, CheckpointKind, Excursion, Shipment
from market.extensions import db
from market.notifications import services as notifications
from market.types import utcnow

log = logging.getLogger(__name__)


def _prefix() -> str:
    return current_app.config["GS1_COMPANY_PREFIX"]


@shared_task(acks_late=True, ignore_result=True)
def process_reads(reader_id: int) -> int:
    """Turn a reader's pending tag reads into EPCIS events, a chunk per transaction.

    Idempotent: only reads still pending are taken (locked with SKIP LOCKED on
    PostgreSQL), so a second run, or a second worker, finds nothing to do twice.
    """
    recorded = 0
    while True:
        result = services.process_pending_reads(db.session, reader_id, company_prefix=_prefix())
        db.session.commit()
        recorded += result.recorded + result.merged + result.quarantined
        if result.recorded + result.merged + result.quarantined < services.PROCESS_CHUNK:
            return recorded


@shared_task(acks_late=True, ignore_result=True)
def process_all_pending_reads() -> int:
    """Beat: record reads whose task was lost (a broker outage, a worker killed)."""
    return sum(
        process_reads.run(reader_id) for reader_id in services.pending_reader_ids(db.session)
    )


@shared_task(acks_late=True, ignore_result=True)
def check_cold_chain(shipment_ids: list[int]) -> list[int]:
    """Look for excursions in these shipments' readings; notify about new ones."""
    settings = current_app.config
    found: list[int] = []
    for shipment_id in shipment_ids:
        if db.session.get(Shipment, shipment_id) is None:
            continue
        found += services.check_excursions(
            db.session,
            shipment_id,
            table=config.thresholds(),
            min_minutes=settings["LOGISTICS_EXCURSION_MINUTES"],
        )
        db.session.commit()
    for excursion_id in found:
        notify_excursion.delay(excursion_id)
    return found


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def notify_excursion(excursion_id: int) -> int:
    """Tell the cooperative (in-app, and a text message to its contact phone) about a
    cold-chain excursion. Idempotent: in-app messages are deduplicated, the text message
    goes out once (``notified_at``)."""
    excursion = db.session.get(Excursion, excursion_id)
    if excursion is None:
        return 0
    shipment = excursion.shipment
    order = shipment.order
    people = services.cooperative_people(db.session, order)
    for user in people:
        with force_locale(user.locale or "zh_Hans_CN"):
            title = gettext("Cold chain alert: order %(number)s", number=order.number)
            body = gettext(
                "%(peak).1f °C (limits %(low)s to %(high)s °C) from %(start)s.",
                peak=excursion.peak_c,
                low="—" if excursion.low_c is None else f"{excursion.low_c:g}",
                high="—" if excursion.high_c is None else f"{excursion.high_c:g}",
                start=excursion.started_at.astimezone(services.SHANGHAI).strftime("%m-%d %H:%M"),
            )
        notifications.notify(
            db.session,
            user.id,
            "logistics.excursion",
            title,
            body,
            link=f"/logistics/shipments/{shipment.id}",
            dedupe_key=f"excursion:{excursion.id}:{user.id}",
        )
    claimed = services.mark_excursion_notified(db.session, excursion.id)
    db.session.commit()
    phone = order.cooperative.contact_phone
    if claimed is not None and phone:
        providers.sms_sender().send(
            phone,
            "COLD_CHAIN_ALERT",
            {
                "order": order.number,
                "peak": f"{excursion.peak_c:.1f}",
                "time": excursion.started_at.astimezone(services.SHANGHAI).strftime("%m-%d %H:%M"),
            },
        )
    return len(people)


_CHECKPOINT_NEWS = {
    CheckpointKind.DELIVERED: "delivered",
    CheckpointKind.DELAYED: "delayed",
    CheckpointKind.DAMAGED: "damaged",
    CheckpointKind.LOST: "lost",
    CheckpointKind.RETURNED: "returned",
}


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def notify_checkpoint(checkpoint_id: int) -> int:
    """Tell the buyer (and, for a problem, the cooperative) about a delivery or an
    exception. Deduplicated per checkpoint and person."""
    checkpoint = db.session.get(Checkpoint, checkpoint_id)
    if checkpoint is None or checkpoint.kind not in _CHECKPOINT_NEWS:
        return 0
    shipment = checkpoint.shipment
    order = shipment.order
    kind = _CHECKPOINT_NEWS[checkpoint.kind]
    recipients = [order.buyer]
    if kind != "delivered":
        recipients += services.cooperative_people(db.session, order)
    for user in recipients:
        with force_locale(user.locale or "zh_Hans_CN"):
            titles = {
                "delivered": gettext("Order %(number)s has been delivered", number=order.number),
                "delayed": gettext("Order %(number)s is delayed", number=order.number),
                "damaged": gettext("Order %(number)s was damaged in transit", number=order.number),
                "lost": gettext("Order %(number)s was lost in transit", number=order.number),
                "returned": gettext("Order %(number)s is being returned", number=order.number),
            }
        link = (
            f"/orders/{order.id}"
            if user.id == order.buyer_id
            else f"/logistics/shipments/{shipment.id}"
        )
        notifications.notify(
            db.session,
            user.id,
            f"logistics.{kind}",
            titles[kind],
            checkpoint.note[:200],
            link=link,
            dedupe_key=f"checkpoint:{checkpoint.id}:{user.id}",
        )
    db.session.commit()
    return len(recipients)


def _sandbox_auto() -> bool:
    """Whether the sandbox schedules its pushes: only with a real broker (eager mode
    would run every countdown at once), unless switched off."""
    if current_app.config["CELERY"].get("task_always_eager", False):
        return False
    return current_app.config["LOGISTICS_SANDBOX"].get("auto") is not False


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def subscribe_tracking(shipment_id: int) -> bool:
    """Ask the carrier's tracking service to push updates about the shipment's waybill."""
    shipment = db.session.get(Shipment, shipment_id)
    if shipment is None or shipment.subscribed_at is not None:
        return False
    carrier = CARRIERS.get(shipment.carrier_code)
    if carrier is None or not carrier.tracked:
        return False
    tracking = providers.tracking_provider()
    try:
        tracking.subscribe(shipment.carrier_code, shipment.waybill, phone=shipment.order.phone)
    except TrackingError as exc:
        log.warning("tracking subscription of shipment %s failed: %s", shipment_id, exc)
        return False
    shipment.subscribed_at = utcnow()
    db.session.commit()
    if current_app.config["LOGISTICS_TRACKING_PROVIDER"] == "sandbox" and _sandbox_auto():
        sandbox_advance.apply_async((shipment_id,), countdown=5)
    return True


@shared_task(acks_late=True, ignore_result=True)
def sandbox_advance(shipment_id: int) -> int:
    """Sandbox: push the shipment's journey so far, and come back when the next step is
    due. Re-running it pushes the same history again, which the webhook ignores."""
    shipment = db.session.get(Shipment, shipment_id)
    if shipment is None:
        return 0
    outcome = sandbox.push_due(current_app._get_current_object(), shipment)
    db.session.rollback()
    if outcome.next_at is not None and _sandbox_auto():
        wait = max(1, int((outcome.next_at - utcnow()).total_seconds()) + 1)
        sandbox_advance.apply_async((shipment_id,), countdown=wait)
    return outcome.sent
