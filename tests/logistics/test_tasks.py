"""The logistics tasks: idempotent notifications, the worker, the carrier sandbox."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from logistics import config, providers, services, tasks
from logistics.models import Excursion, Shipment
from market.extensions import db
from market.notifications.models import Notification
from market.types import utcnow
from tests.logistics.helpers import make_world, pack, prefix, ship


def _excursion(app, world) -> int:
    pack(app, world, at=utcnow() - timedelta(hours=3))
    shipment_id = ship(app, world, at=utcnow() - timedelta(hours=2))
    with app.app_context():
        parcel_id = db.session.get(Shipment, shipment_id).parcels[0].id
        start = utcnow() - timedelta(hours=1)
        services.record_temperatures(
            db.session,
            [
                services.ParcelReading(
                    parcel_id, services.coldchain.Reading(start + timedelta(minutes=i), c)
                )
                for i, c in enumerate([3.0, 12.0, 3.0])
            ],
            source="manual",
            table=config.thresholds(app),
        )
        [excursion_id] = services.check_excursions(
            db.session, shipment_id, table=config.thresholds(app)
        )
        db.session.commit()
    return excursion_id


def test_an_excursion_is_told_once_in_app_and_by_text_message(app):
    world = make_world(app)
    excursion_id = _excursion(app, world)
    sms = providers.sms_sender(app)
    before = len(sms.sent)
    with app.app_context():
        assert tasks.notify_excursion.run(excursion_id) == 2  # the admin and the farmer
        assert tasks.notify_excursion.run(excursion_id) == 2
        titles = db.session.scalars(
            select(Notification.title).where(Notification.kind == "logistics.excursion")
        ).all()
        assert len(titles) == 2
        assert all(t.startswith("冷链告警：订单") for t in titles)
        assert db.session.get(Excursion, excursion_id).notified_at is not None
    assert len(sms.sent) == before + 1
    phone, template, params = sms.sent[-1]
    assert (phone, template, params["peak"]) == ("13700004444", "COLD_CHAIN_ALERT", "12.0")


def test_a_delivery_is_told_to_the_buyer_once(app):
    world = make_world(app)
    pack(app, world)
    shipment_id = ship(app, world)
    with app.app_context():
        outcome = services.record_checkpoint(
            db.session, shipment_id, "delivered", at=utcnow(), company_prefix=prefix(app)
        )
        db.session.commit()
        checkpoint_id = outcome.checkpoint.id
        assert tasks.notify_checkpoint.run(checkpoint_id) == 1
        assert tasks.notify_checkpoint.run(checkpoint_id) == 1
        [note] = db.session.scalars(select(Notification)).all()
        assert note.user_id == world.buyer
        assert note.link == f"/orders/{world.order}"


def test_the_sandbox_task_pushes_what_is_due_through_the_webhook(app):
    world = make_world(app)
    pack(app, world, at=utcnow() - timedelta(hours=6))
    shipment_id = ship(app, world, at=utcnow() - timedelta(hours=5))
    with app.app_context():
        assert tasks.sandbox_advance.run(shipment_id) >= 1
        sent = tasks.sandbox_advance.run(shipment_id)
        shipment = db.session.get(Shipment, shipment_id)
        assert len(shipment.checkpoints) == sent
        assert shipment.checkpoints[0].source == "carrier"


def test_the_worker_run_twice_records_nothing_twice(app, client):
    from tests.logistics.helpers import bearer, gates, impinj
    from traceability.models import TraceEvent

    world = make_world(app)
    pack(app, world, at=utcnow() - timedelta(hours=2))
    [(_point, reader, token)] = gates(app, world)[:1]
    client.post(
        f"/logistics/readers/{reader}/reads",
        data=impinj(world.epcs[:2], utcnow() - timedelta(minutes=20)),
        headers={**bearer(token), "Content-Type": "application/x-ndjson"},
    )
    with app.app_context():
        assert tasks.process_reads.run(reader) == 0
        assert tasks.process_all_pending_reads.run() == 0
        assert (
            db.session.scalar(select(func.count(TraceEvent.id)).where(TraceEvent.source == "rfid"))
            == 1
        )
