"""`flask trace verify` and `flask trace create-token`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from market.extensions import db
from market.types import utcnow
from traceability import services
from traceability.models import ApiToken, TraceEvent


def _ship(app, world) -> None:
    with app.app_context():
        services.record_ui_event(
            db.session,
            world.batch,
            "shipping",
            when=utcnow() - timedelta(minutes=1),
            user_id=None,
            company_prefix="6970000",
            note="顺丰冷运",
        )
        db.session.commit()


def test_verify_passes_on_intact_chains(app, world):
    _ship(app, world)
    result = app.test_cli_runner().invoke(args=["trace", "verify"])
    assert result.exit_code == 0, result.output
    assert "All event chains intact: 2 events checked." in result.output


def test_verify_reports_a_changed_event_and_exits_non_zero(app, world):
    _ship(app, world)
    with app.app_context():
        event = db.session.scalars(
            select(TraceEvent).where(TraceEvent.biz_step == "shipping")
        ).one()
        db.session.execute(
            update(TraceEvent)
            .where(TraceEvent.id == event.id)
            .values(document=event.document.replace("顺丰冷运", "常温运输"))
        )
        db.session.commit()
        event_id = event.event_id
    result = app.test_cli_runner().invoke(args=["trace", "verify"])
    assert result.exit_code == 1
    assert event_id in result.output
    assert "hash mismatch" in result.output


def test_verify_reports_a_deleted_event(app, world):
    _ship(app, world)
    with app.app_context():
        db.session.execute(TraceEvent.__table__.delete().where(TraceEvent.biz_step == "shipping"))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["trace", "verify"])
    assert result.exit_code == 1
    assert "events were deleted" in result.output


def test_create_token_prints_a_working_token_once(app, world, client):
    result = app.test_cli_runner().invoke(
        args=[
            "trace",
            "create-token",
            "--name",
            "冷库读写器",
            "--cooperative",
            str(world.coop),
            "--scope",
            "query",
        ]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("yn_")
    with app.app_context():
        row = db.session.scalars(select(ApiToken)).one()
        assert row.scopes == ["query"]
        assert row.cooperative_id == world.coop
        assert token not in row.token_hash
    response = client.get("/epcis/events", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_create_token_refuses_an_unknown_cooperative(app, world):
    result = app.test_cli_runner().invoke(
        args=["trace", "create-token", "--name", "x", "--cooperative", "没有这个合作社"]
    )
    assert result.exit_code != 0
    assert "No cooperative" in result.output
