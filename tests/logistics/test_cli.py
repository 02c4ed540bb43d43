"""`flask logistics simulate-reader`, `sandbox-push` and `process-reads`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from logistics import journey
from logistics.models import Excursion, QuarantinedEpc, Shipment, TagRead
from market.extensions import db
from market.orders.models import Order, OrderStatus
from market.types import utcnow
from tests.logistics.helpers import make_world, order_status, pack, ship
from traceability import services as trace
from traceability.models import TraceEvent


@pytest.fixture(autouse=True)
def _fresh_cache():
    journey.CACHE.clear()


def test_simulate_reader_feeds_a_journey_of_the_shipment_on_its_way(app):
    world = make_world(app)
    pack(app, world, at=utcnow() - timedelta(hours=4))
    ship(app, world, at=utcnow() - timedelta(hours=3))
    result = app.test_cli_runner().invoke(args=["logistics", "simulate-reader", "--deliver"])
    assert result.exit_code == 0, result.output
    assert result.output.count("HTTP 202") == 4
    with app.app_context():
        gate_events = db.session.scalars(
            select(TraceEvent).where(
                TraceEvent.source == "rfid", TraceEvent.biz_step.in_(["departing", "arriving"])
            )
        ).all()
        assert len(gate_events) == 3
        [stray] = db.session.scalars(select(QuarantinedEpc)).all()
        assert stray.epc == "E2801160600002054E3D1A2B"
        assert db.session.scalar(select(func.count(Excursion.id))) == 1
        _checked, problems = trace.verify_chains(db.session)
        assert problems == []
    assert order_status(app, world.order) is OrderStatus.DELIVERED
    # Run again: nothing is on its way, so a demo order of the unit left is shipped and
    # read at the same gates; the stray tag is still one entry in the quarantine.
    again = app.test_cli_runner().invoke(args=["logistics", "simulate-reader"])
    assert again.exit_code == 0, again.output
    assert "paid, packed and shipped by SF" in again.output
    with app.app_context():
        [stray] = db.session.scalars(select(QuarantinedEpc)).all()
        assert stray.read_count == 4  # two antennas saw it, in each run


def test_simulate_reader_makes_a_demo_order_after_the_demo_data_is_loaded(app):
    runner = app.test_cli_runner()
    loaded = runner.invoke(args=["demo", "load"])
    assert loaded.exit_code == 0, loaded.output
    result = runner.invoke(args=["logistics", "simulate-reader"])
    assert result.exit_code == 0, result.output
    assert "paid, packed and shipped by SF" in result.output
    with app.app_context():
        shipment = db.session.scalars(select(Shipment).order_by(Shipment.id.desc())).first()
        order = db.session.get(Order, shipment.order_id)
        assert order.status is OrderStatus.SHIPPED
        assert shipment.carrier_code == "SF"
        assert db.session.scalar(select(func.count(TagRead.id))) > 0
        assert db.session.scalar(select(func.count(QuarantinedEpc.id))) == 1


def test_sandbox_push_plays_the_carriers_journey_through_the_webhook(app):
    world = make_world(app)
    pack(app, world, at=utcnow() - timedelta(hours=5))
    shipment_id = ship(app, world, at=utcnow() - timedelta(hours=4))
    runner = app.test_cli_runner()
    # Ten times faster: four hours in, most of a two-day journey is due.
    first = runner.invoke(args=["logistics", "sandbox-push", str(shipment_id), "--speed", "10"])
    assert first.exit_code == 0, first.output
    assert "HTTP 200" in first.output
    with app.app_context():
        shipment = db.session.get(Shipment, shipment_id)
        kinds = [c.kind.value for c in shipment.checkpoints]
        assert kinds[0] == "accepted"
        assert len(kinds) >= 5
        assert shipment.status.value != "shipped"
    # The service pushes the whole history again each time: nothing is recorded twice.
    again = runner.invoke(args=["logistics", "sandbox-push", str(shipment_id), "--speed", "10"])
    assert again.exit_code == 0, again.output
    with app.app_context():
        assert len(db.session.get(Shipment, shipment_id).checkpoints) == len(kinds)


def test_process_reads_records_what_a_lost_task_left_pending(app, client):
    from logistics import tasks
    from tests.logistics.helpers import bearer, gates, impinj

    world = make_world(app)
    pack(app, world, at=utcnow() - timedelta(hours=2))
    [(_point, reader, token)] = gates(app, world)[:1]
    delay = tasks.process_reads.delay
    tasks.process_reads.delay = lambda *_a, **_k: None
    try:
        client.post(
            f"/logistics/readers/{reader}/reads",
            data=impinj([world.epcs[0]], utcnow() - timedelta(minutes=30)),
            headers={**bearer(token), "Content-Type": "application/x-ndjson"},
        )
    finally:
        tasks.process_reads.delay = delay
    result = app.test_cli_runner().invoke(args=["logistics", "process-reads"])
    assert result.exit_code == 0
    assert "1 reads handled" in result.output
    with app.app_context():
        assert (
            db.session.scalar(select(func.count(TraceEvent.id)).where(TraceEvent.source == "rfid"))
            == 1
        )
