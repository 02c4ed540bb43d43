"""The plan's informatization indicators, measured from real trace codes, parcels and reads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from logistics import services as logistics
from logistics.models import Parcel, Reader
from market.auth.models import User
from market.extensions import db
from market.reports import periods, rollups, services
from market.reports.models import DailyInformatization, MonthlyInformatization
from market.reports.periods import DateRange
from market.types import utcnow
from tests.factories import platform_admin
from tests.logistics.helpers import gates, impinj, make_world, pack, prefix, ship
from traceability import services as trace
from traceability.models import InspectionKind, InspectionResult


@pytest.fixture
def shop(app):
    world = make_world(app, units=3, quantity=2)
    with app.app_context():
        world.platform = platform_admin(phone="13900008001").id
        db.session.commit()
    return world


def indicators(app, shop) -> dict[str, services.Indicator]:
    today = periods.local_today()
    with app.app_context():
        rollups.refresh_informatization(db.session, today - timedelta(days=1), today)
        rollups.refresh_orders(db.session, [shop.order])
        db.session.commit()
        node = services.resolve_node(db.session, db.session.get(User, shop.platform))
        found = services.informatization(db.session, node, DateRange(today, today))
    return {i.key: i for i in found}


def test_units_sold_with_a_unit_code_are_those_packed_by_code(app, shop):
    before = indicators(app, shop)["trace_coverage"]
    assert (before.numerator, before.denominator) == (0, 2)
    pack(app, shop, serials=shop.serials[:1], batch_quantity=1)  # one by code, one from bulk
    after = indicators(app, shop)["trace_coverage"]
    assert (after.numerator, after.denominator) == (1, 2)
    assert after.share == 0.5
    assert after.target_id is None  # the plan sets no number for traceability


def test_batches_with_an_inspection_record(app, shop):
    first = indicators(app, shop)["inspection_coverage"]
    assert (first.numerator, first.denominator) == (0, 1)
    with app.app_context():
        trace.add_inspection(
            db.session,
            shop.batch,
            kind=InspectionKind.SELF_TEST,
            tested_on=periods.local_today(),
            items="农药残留速测",
            result=InspectionResult.PASS,
            company_prefix=prefix(app),
        )
        db.session.commit()
    second = indicators(app, shop)["inspection_coverage"]
    assert (second.numerator, second.denominator) == (1, 1)


def test_a_shipment_counts_as_rfid_once_a_reader_saw_its_parcel(app, shop):
    pack(app, shop)
    ship(app, shop)
    before = indicators(app, shop)["rfid_shipments"]
    assert (before.numerator, before.denominator) == (0, 1)
    assert before.goal.value == 70  # the 2020 milestone applies from 2020 on
    assert before.progress.status == "behind"
    [(_point, reader_id, _token)] = gates(app, shop)[:1]
    with app.app_context():
        parcel = db.session.scalars(select(Parcel)).one()
        reader = db.session.get(Reader, reader_id)
        logistics.ingest_reads(
            db.session, reader, impinj([parcel.epc_hex], utcnow()), "application/x-ndjson"
        )
        logistics.process_pending_reads(db.session, reader_id, company_prefix=prefix(app))
        db.session.commit()
    after = indicators(app, shop)["rfid_shipments"]
    assert (after.numerator, after.denominator) == (1, 1)
    assert after.progress.status == "met"


def test_a_read_of_a_unit_packed_in_the_parcel_also_counts(app, shop):
    pack(app, shop)
    ship(app, shop)
    [(_point, reader_id, _token)] = gates(app, shop)[:1]
    with app.app_context():
        reader = db.session.get(Reader, reader_id)
        logistics.ingest_reads(
            db.session, reader, impinj([shop.epcs[0]], utcnow()), "application/x-ndjson"
        )
        logistics.process_pending_reads(db.session, reader_id, company_prefix=prefix(app))
        db.session.commit()
    assert indicators(app, shop)["rfid_shipments"].numerator == 1


def test_cooperatives_active_online_against_the_plan(app, shop):
    active = indicators(app, shop)["active_cooperatives"]
    assert (active.numerator, active.denominator) == (1, 2)
    assert active.percent == 50
    assert active.target.indicator.zh == "传统产业企业信息网络应用率"
    assert active.progress.ratio == pytest.approx(50 / 90)


def test_informatization_rows_are_kept_per_day_and_month(app, shop):
    pack(app, shop)
    indicators(app, shop)
    with app.app_context():
        [row] = db.session.scalars(select(DailyInformatization)).all()
        assert (row.units_sold, row.units_coded, row.batches) == (2, 2, 1)
        [month] = db.session.scalars(select(MonthlyInformatization)).all()
        assert (month.units_sold, month.units_coded) == (2, 2)
        # Refreshing again changes nothing.
        rollups.refresh_recent_informatization(db.session)
        db.session.commit()
        again = db.session.scalars(select(DailyInformatization)).one()
        assert (again.units_sold, again.units_coded, again.batches) == (2, 2, 1)
