"""Batches, lot codes, unit codes, stock, scans and the event hash chain."""

from __future__ import annotations

import itertools
import json
import random
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from market.catalog.models import Product
from market.errors import DomainError
from market.extensions import db
from market.types import utcnow
from tests.traceability.conftest import batch_data, days_ago, make_batch, make_product
from traceability import codes, epcis, services
from traceability.models import (
    Batch,
    BatchSource,
    ChainHead,
    CodeKind,
    EventBatch,
    LabelLayout,
    ScanRecord,
    TraceCode,
    TraceEvent,
)


def test_a_batch_gets_a_lot_code_from_the_county_initials_and_harvest_month(app, world):
    with app.app_context():
        batch = db.session.get(Batch, world.batch)
        harvest = batch.harvest_date
        assert batch.lot_code == f"XH{harvest:%y%m}A"  # 新会区 -> XH
        assert codes.is_valid_ai_value(batch.lot_code)
        second = make_batch(app, world.coop, world.product, harvest_date=harvest)
        assert second.lot_code == f"XH{harvest:%y%m}B"
        qingyuan = make_batch(
            app, world.coop, world.product, origin_code="441800", harvest_date=harvest
        )
        assert qingyuan.lot_code == f"QY{harvest:%y%m}A"
        custom = make_batch(app, world.coop, world.product, lot_prefix="cp", harvest_date=harvest)
        assert custom.lot_code == f"CP{harvest:%y%m}A"


def test_the_certificate_is_a_snapshot_of_the_batch_and_its_producer(app, world):
    with app.app_context():
        batch = db.session.get(Batch, world.batch)
        assert batch.cert_product_name == "新会陈皮（三年陈）"
        assert batch.cert_quantity == "500公斤"
        assert batch.cert_origin == "广东省江门市新会区会城街道茶坑村"
        assert batch.cert_producer == "新会区会城陈皮专业合作社"
        assert batch.cert_contact == "13700001001"
        assert batch.cert_issued_on == services.today_shanghai()
        assert batch.cert_basis == ["self_test", "internal_control"]


def test_recording_a_batch_issues_its_batch_code_and_a_harvest_event(app, world):
    with app.app_context():
        code = services.batch_code(db.session, world.batch)
        assert code.kind is CodeKind.BATCH
        assert code.serial is None
        assert code.gtin == world.gtin
        events = db.session.scalars(
            select(TraceEvent).where(TraceEvent.batch_id == world.batch)
        ).all()
        assert [(e.event_type, e.biz_step, e.action) for e in events] == [
            ("ObjectEvent", "commissioning", "ADD")
        ]
        document = json.loads(events[0].document)
        prefix = app.config["GS1_COMPANY_PREFIX"]
        assert document["quantityList"] == [
            {
                "epcClass": epcis.lgtin_uri(prefix, world.gtin, world.lot),
                "quantity": 500,
                "uom": "KGM",
            }
        ]
        assert document["eventTimeZoneOffset"] == "+08:00"
        validator = epcis.load_validator(app.config["EPCIS_SCHEMA_DIR"])
        assert epcis.document_errors(validator, epcis.document([document], utcnow())) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"harvest_date": days_ago(-2)}, "future_date"),
        ({"quantity": 0}, "quantity"),
        ({"unit": "吨"}, "unit"),
        ({"origin_code": "110000"}, "invalid_division"),
        ({"name": "  "}, "required"),
        ({"cert_basis": ["trust_me"]}, "cert_basis"),
        ({"lot_prefix": "陈皮"}, "lot_prefix"),
    ],
)
def test_bad_batch_input_is_refused_and_nothing_is_stored(app, world, change, code):
    with app.app_context():
        before = db.session.scalar(select(func.count(Batch.id)))
        with pytest.raises(DomainError) as excinfo:
            make_batch(app, world.coop, world.product, **change)
        assert excinfo.value.code == code
        db.session.rollback()
        assert db.session.scalar(select(func.count(Batch.id))) == before


def test_a_cooperative_cannot_record_a_batch_of_another_cooperatives_product(app, world):
    with app.app_context(), pytest.raises(services.ProductNotOursError):
        make_batch(app, world.coop, world.other_product)


def test_unit_codes_are_random_unique_sgtins_with_rfid_epcs(app, world):
    with app.app_context():
        prefix = app.config["GS1_COMPANY_PREFIX"]
        first = services.issue_codes(
            db.session, world.batch, 300, company_prefix=prefix, max_count=1000
        )
        second = services.issue_codes(
            db.session, world.batch, 5, company_prefix=prefix, max_count=1000
        )
        assert (first, second) == (1, 2)
        rows = services.unit_codes(db.session, world.batch)
        assert len(rows) == 305
        serials = [r.serial for r in rows]
        assert len(set(serials)) == 305
        assert all(codes.is_valid_sgtin96_serial(s) and not s.startswith("0") for s in serials)
        # Not sequential: sorted serials are far apart on average.
        ordered = sorted(int(s) for s in serials)
        gaps = [b - a for a, b in itertools.pairwise(ordered)]
        assert min(gaps) > 1
        for row in rows[:20]:
            assert codes.decode_sgtin96(row.epc_hex) == (world.gtin, row.serial, prefix)


def test_serial_collisions_are_drawn_again(app, world):
    class Repeating:
        """Gives the same numbers again and again before new ones."""

        def __init__(self):
            self.values = [5, 5, 5, 6, 7, 5, 6, 8]

        def randbelow(self, n):
            return self.values.pop(0) if self.values else random.randrange(n)

    with app.app_context():
        prefix = app.config["GS1_COMPANY_PREFIX"]
        services.issue_codes(
            db.session, world.batch, 3, company_prefix=prefix, max_count=10, rng=Repeating()
        )
        rows = services.unit_codes(db.session, world.batch)
        assert len({r.serial for r in rows}) == 3


def test_issuing_too_many_codes_at_once_is_refused(app, world):
    with app.app_context(), pytest.raises(DomainError) as excinfo:
        services.issue_codes(db.session, world.batch, 11, company_prefix="6970000", max_count=10)
    assert excinfo.value.code == "range"


def test_stock_put_on_sale_is_linked_to_its_batch(app, world):
    """Stock is sold first in, first out: the current batch is the oldest harvest with
    stock left (it used to mean the newest batch put on sale), and the next once it is
    sold out."""
    with app.app_context():
        services.put_on_sale(db.session, world.batch, 40)
        db.session.commit()
        product = db.session.get(Product, world.product)
        assert product.stock == 40
        first = db.session.get(Batch, world.batch)
        assert (first.stock_added, first.stock_left) == (40, 40)
        newer = make_batch(app, world.coop, world.product, harvest_date=days_ago(1))
        services.put_on_sale(db.session, newer.id, 10)
        db.session.commit()
        assert db.session.get(Product, world.product).stock == 50
        assert services.current_batch(db.session, world.product).id == world.batch
        assert [b.id for b in services.batches_on_sale(db.session, world.product)] == [
            world.batch,
            newer.id,
        ]
        db.session.execute(update(Batch).where(Batch.id == world.batch).values(stock_left=0))
        assert services.current_batch(db.session, world.product).id == newer.id
        assert [b.id for b in services.batches_on_sale(db.session, world.product)] == [newer.id]


def test_scans_are_counted_per_visitor_day_without_storing_addresses(app, world):
    with app.app_context():
        services.issue_codes(db.session, world.batch, 1, company_prefix="6970000", max_count=5)
        code = services.unit_codes(db.session, world.batch)[0]
        secret = b"k" * 32
        day = services.today_shanghai()
        phone = services.visitor_key(secret, "203.0.113.7", day)
        assert "203.0.113.7" not in phone
        assert len(phone) == 32
        assert services.visitor_key(secret, "203.0.113.7", day + timedelta(days=1)) != phone
        for _ in range(3):
            services.record_scan(
                db.session, code.id, visitor=phone, day=day, city="江门市", tag_status="ok"
            )
        other = services.visitor_key(secret, "198.51.100.9", day)
        stats = services.record_scan(
            db.session, code.id, visitor=other, day=day, city="北京市", tag_status="ok"
        )
        db.session.commit()
        assert (stats.scan_count, stats.visitor_count, stats.city_count) == (4, 2, 2)
        assert stats.first_scanned_at is not None
        stored = db.session.scalars(select(ScanRecord)).all()
        assert sorted(r.city for r in stored) == ["北京市", "江门市"]
        assert services.scan_cities(db.session, code.id) == ["江门市", "北京市"]


@pytest.mark.parametrize(
    ("raw", "city"),
    [
        ("440705", "江门市"),
        ("441800", "清远市"),
        (" 深圳市 ", "深圳市"),
        ("", None),
        ("999999", None),
    ],
)
def test_city_headers_are_normalised_to_prefecture_cities(raw, city):
    assert services.normalize_city(raw) == city


def test_editing_a_batch_updates_its_certificate_until_labels_are_printed(app, world):
    with app.app_context():
        batch = db.session.get(Batch, world.batch)
        services.update_batch(
            db.session,
            batch.id,
            batch_data(world.product, origin_village="会城街道天马村", cert_contact="0750-1234567"),
        )
        assert batch.cert_origin == "广东省江门市新会区会城街道天马村"
        assert batch.cert_contact == "0750-1234567"
        assert batch.quantity == 500
        services.create_label_job(
            db.session,
            batch.id,
            layout=LabelLayout.ROLL_40X30,
            kind=CodeKind.BATCH,
            copies=2,
            max_labels=100,
        )
        with pytest.raises(services.LabelsPrintedError):
            services.update_batch(db.session, batch.id, batch_data(world.product))


def test_processing_links_the_new_batch_to_the_one_it_was_made_from(app, world):
    with app.app_context():
        prefix = app.config["GS1_COMPANY_PREFIX"]
        peel = make_batch(
            app, world.coop, world.product, name="三年陈皮", quantity=60, harvest_date=days_ago(2)
        )
        services.record_ui_event(
            db.session,
            peel.id,
            "processing",
            when=utcnow() - timedelta(hours=1),
            user_id=world.admin,
            company_prefix=prefix,
            note="开皮、晒干",
            source_batch_id=world.batch,
            source_quantity=300,
        )
        db.session.commit()
        assert db.session.get(BatchSource, (peel.id, world.batch)) is not None
        entries = services.timeline(db.session, peel, company_prefix=prefix)
        kinds = [(e.event_type, e.from_lot) for e in entries]
        assert ("ObjectEvent", world.lot) in kinds  # the fresh fruit's harvest
        assert ("TransformationEvent", None) in kinds
        transformation = db.session.scalars(
            select(TraceEvent).where(TraceEvent.event_type == "TransformationEvent")
        ).one()
        linked = db.session.scalars(
            select(EventBatch.batch_id).where(EventBatch.event_pk == transformation.id)
        ).all()
        assert sorted(linked) == sorted([peel.id, world.batch])
        assert entries[-1].cooperative.id == world.coop


def test_processing_from_another_cooperatives_batch_is_refused(app, world):
    with app.app_context():
        shrimp = make_batch(app, world.other_coop, world.other_product, origin_code="440811")
        with pytest.raises(DomainError) as excinfo:
            services.record_ui_event(
                db.session,
                world.batch,
                "processing",
                when=utcnow(),
                user_id=None,
                company_prefix="6970000",
                source_batch_id=shrimp.id,
            )
        assert excinfo.value.code == "source"


def test_packing_unit_codes_records_an_aggregation_into_an_sscc(app, world):
    with app.app_context():
        prefix = app.config["GS1_COMPANY_PREFIX"]
        services.issue_codes(db.session, world.batch, 6, company_prefix=prefix, max_count=10)
        row = services.record_ui_event(
            db.session,
            world.batch,
            "packing",
            when=utcnow(),
            user_id=None,
            company_prefix=prefix,
            pack_units=4,
        )
        event = json.loads(row.document)
        assert event["type"] == "AggregationEvent"
        assert event["parentID"].startswith(f"urn:epc:id:sscc:{prefix}.")
        assert len(event["childEPCs"]) == 4
        assert all(e.startswith(f"urn:epc:id:sgtin:{prefix}.") for e in event["childEPCs"])


def _chain(app, world):
    prefix = app.config["GS1_COMPANY_PREFIX"]
    for kind, extra in (
        ("storing", {"temperature_c": 4.5}),
        ("shipping", {"note": "顺丰冷运"}),
        ("receiving", {}),
    ):
        services.record_ui_event(
            db.session,
            world.batch,
            kind,
            when=utcnow() - timedelta(minutes=10),
            user_id=None,
            company_prefix=prefix,
            **extra,
        )
    db.session.commit()


def test_an_intact_chain_verifies(app, world):
    with app.app_context():
        _chain(app, world)
        checked, problems = services.verify_chains(db.session)
        assert checked == 4
        assert problems == []
        head = db.session.get(ChainHead, f"batch:{world.batch}")
        assert head.length == 4


def test_a_changed_event_is_detected(app, world):
    with app.app_context():
        _chain(app, world)
        victim = db.session.scalars(
            select(TraceEvent).where(TraceEvent.biz_step == "shipping")
        ).one()
        forged = victim.document.replace("顺丰冷运", "常温运输")
        db.session.execute(
            update(TraceEvent).where(TraceEvent.id == victim.id).values(document=forged)
        )
        db.session.commit()
        _checked, problems = services.verify_chains(db.session)
        assert [p.event_pk for p in problems] == [victim.id]
        assert "hash mismatch" in problems[0].message


def test_a_changed_index_column_is_detected(app, world):
    with app.app_context():
        _chain(app, world)
        db.session.execute(
            update(TraceEvent)
            .where(TraceEvent.biz_step == "shipping")
            .values(disposition="retail_sold")
        )
        db.session.commit()
        _checked, problems = services.verify_chains(db.session)
        assert any("disposition" in p.message for p in problems)


def test_a_deleted_event_is_detected_in_the_middle_and_at_the_end(app, world):
    with app.app_context():
        _chain(app, world)
        rows = db.session.scalars(
            select(TraceEvent).where(TraceEvent.batch_id == world.batch).order_by(TraceEvent.seq)
        ).all()
        db.session.execute(delete(TraceEvent).where(TraceEvent.id == rows[1].id))
        db.session.commit()
        _checked, problems = services.verify_chains(db.session)
        assert any("missing" in p.message for p in problems)
        db.session.execute(delete(TraceEvent).where(TraceEvent.id == rows[-1].id))
        db.session.commit()
        _checked, problems = services.verify_chains(db.session)
        assert any("head records 4" in p.message for p in problems)


def test_recall_shows_on_the_batch(app, world):
    with app.app_context():
        assert not services.is_recalled(db.session, world.batch)
        services.record_ui_event(
            db.session,
            world.batch,
            "recall",
            when=utcnow(),
            user_id=None,
            company_prefix="6970000",
            note="抽检不合格",
        )
        services.record_ui_event(
            db.session,
            world.batch,
            "storing",
            when=utcnow(),
            user_id=None,
            company_prefix="6970000",
        )
        assert services.is_recalled(db.session, world.batch)


def test_event_times_in_the_future_are_refused(app, world):
    with app.app_context(), pytest.raises(DomainError) as excinfo:
        services.record_ui_event(
            db.session,
            world.batch,
            "shipping",
            when=utcnow() + timedelta(days=1),
            user_id=None,
            company_prefix="6970000",
        )
    assert excinfo.value.code == "future_date"


def test_a_product_without_a_gtin_cannot_get_batches(app, world):
    with app.app_context():
        from market.cooperatives.models import Cooperative

        coop = db.session.get(Cooperative, world.coop)
        product = make_product(app, coop, title="无码产品")
        product.gtin = None
        with pytest.raises(services.NoGtinError):
            make_batch(app, world.coop, product.id)


def test_unit_code_lookup_needs_the_right_gtin_and_serial(app, world):
    with app.app_context():
        services.issue_codes(db.session, world.batch, 1, company_prefix="6970000", max_count=5)
        code = db.session.scalars(select(TraceCode).where(TraceCode.kind == CodeKind.UNIT)).one()
        assert services.find_unit_code(db.session, world.gtin, code.serial).id == code.id
        assert services.find_unit_code(db.session, world.gtin, code.serial + "1") is None
        assert services.find_batch_code(db.session, world.gtin, world.lot) is not None
        assert services.find_batch_code(db.session, world.gtin, "ZZ9999A") is None
