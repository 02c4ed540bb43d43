"""The demo data includes traced batches, and loading it twice adds nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from market import demo
from market.extensions import db
from traceability import services
from traceability.models import Batch, BatchSource, TraceCode, TraceEvent


def test_demo_batches_are_traced_and_loading_twice_adds_nothing(app):
    with app.app_context():
        demo.load(db.session)
        db.session.commit()
        counts = (
            db.session.scalar(select(func.count(Batch.id))),
            db.session.scalar(select(func.count(TraceCode.id))),
            db.session.scalar(select(func.count(TraceEvent.id))),
        )
        assert counts[0] >= 4
        assert counts[1] > counts[0]
        demo.load(db.session)
        db.session.commit()
        assert counts == (
            db.session.scalar(select(func.count(Batch.id))),
            db.session.scalar(select(func.count(TraceCode.id))),
            db.session.scalar(select(func.count(TraceEvent.id))),
        )
        peel = db.session.scalars(
            select(Batch).where(Batch.name == "2016年大红柑皮 晒制陈化")
        ).one()
        assert db.session.scalars(select(BatchSource).where(BatchSource.batch_id == peel.id)).one()
        assert services.verify_chains(db.session)[1] == []
