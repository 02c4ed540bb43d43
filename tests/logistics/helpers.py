"""A small cold-chain shop for the logistics tests: a prawn cooperative, a batch with unit
codes, a buyer's paid order, read points and readers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from flask import Flask

from logistics import services
from logistics.models import ReadPointKind
from market.auth.models import User
from market.catalog.models import Category, Product
from market.extensions import db
from market.orders import services as orders
from market.orders.models import OrderStatus
from market.types import utcnow
from tests.factories import CooperativeFactory, ProductFactory, buyer, coop_admin, farmer
from tests.orders.helpers import ADDRESS
from traceability import codes
from traceability import services as trace
from traceability.models import OriginKind, TraceCode


def prefix(app: Flask) -> str:
    return app.config["GS1_COMPANY_PREFIX"]


def make_world(app: Flask, *, units: int = 3, quantity: int = 2) -> SimpleNamespace:
    """A cooperative selling chilled prawns (limits 0-4 °C), a batch with ``units`` unit
    codes, and a buyer's paid order of ``quantity`` of them."""
    with app.app_context():
        coop = CooperativeFactory(
            name="湛江市麻章区对虾养殖专业合作社",
            division_code="440811",
            contact_phone="13700004444",
        )
        admin = coop_admin(coop, phone="13700000444", name="吴海生")
        grower = farmer(coop, phone="13600000444", name="陈阿水")
        someone = buyer(phone="13500000444", name="王小明")
        other_coop = CooperativeFactory(name="增城荔枝合作社", division_code="440118")
        other_admin = coop_admin(other_coop, phone="13700000445")
        product = ProductFactory(
            cooperative=coop,
            farmer=grower,
            title="湛江对虾 鲜活 2斤",
            category=Category.AQUATIC,
            unit="盒",
            price_fen=8800,
            stock=50,
        )
        db.session.flush()
        product.gtin = codes.make_gtin(prefix(app), product.id)
        batch = trace.create_batch(
            db.session,
            coop.id,
            trace.BatchData(
                product_id=product.id,
                name="11月 3号高位池 南美白对虾",
                harvest_date=trace.today_shanghai() - timedelta(days=1),
                quantity=800,
                unit="斤",
                origin_code="440811",
                origin_kind=OriginKind.POND,
            ),
            user_id=admin.id,
            company_prefix=prefix(app),
        )
        trace.issue_codes(db.session, batch.id, units, company_prefix=prefix(app), max_count=100)
        unit_codes = trace.unit_codes(db.session, batch.id)
        [order] = orders.place_orders(
            db.session,
            someone.id,
            [orders.LineRequest(product.id, quantity, product.price_fen)],
            ADDRESS,
        )
        orders.transition(db.session, order, "pay", note="test")
        db.session.commit()
        return SimpleNamespace(
            coop=coop.id,
            other_coop=other_coop.id,
            admin=admin.id,
            farmer=grower.id,
            buyer=someone.id,
            product=product.id,
            gtin=product.gtin,
            batch=batch.id,
            lot=batch.lot_code,
            codes=[c.id for c in unit_codes],
            serials=[c.serial for c in unit_codes],
            epcs=[c.epc_hex for c in unit_codes],
            order=order.id,
            order_number=order.number,
            line=order.lines[0].id,
            phones={
                "admin": admin.phone,
                "farmer": grower.phone,
                "buyer": someone.phone,
                "other_admin": other_admin.phone,
            },
        )


def user(user_id: int) -> User:
    return db.session.get(User, user_id)


def pack(app: Flask, world: SimpleNamespace, serials=None, *, batch_quantity: int = 0, at=None):
    """Pack the order (as its admin) with unit codes; returns the parcel id."""
    with app.app_context():
        chosen = world.serials[:2] if serials is None else serials
        parcel = services.pack_order(
            db.session,
            world.order,
            user(world.admin),
            [
                services.LineAssignment(
                    world.line,
                    codes=list(chosen),
                    batch_id=world.batch if batch_quantity else None,
                    quantity=batch_quantity,
                )
            ],
            company_prefix=prefix(app),
            now=at,
        )
        db.session.commit()
        return parcel.id


def ship(
    app: Flask, world: SimpleNamespace, waybill: str = "SF1311029837165", *, at=None, **kwargs
) -> int:
    with app.app_context():
        shipment = services.create_shipment(
            db.session,
            world.order,
            carrier_code=kwargs.pop("carrier_code", "SF"),
            waybill=waybill,
            actor_id=world.admin,
            company_prefix=prefix(app),
            now=at,
            **kwargs,
        )
        db.session.commit()
        return shipment.id


def gates(app: Flask, world: SimpleNamespace) -> list[tuple[int, int, str]]:
    """Three gates of the cooperative, each with its reader: (read point, reader, token)."""
    found = []
    with app.app_context():
        for name, step, division in (
            ("合作社冷库 出库门", "departing", "440811"),
            ("江门冷链中转仓 入口", "arriving", "440703"),
            ("广州城配中心 入口", "arriving", "440111"),
        ):
            point = services.create_read_point(
                db.session,
                cooperative_id=world.coop,
                name=name,
                kind=ReadPointKind.GATE,
                division_code=division,
                biz_step=step,
                company_prefix=prefix(app),
            )
            reader, token = services.register_reader(
                db.session,
                cooperative_id=world.coop,
                name=f"{name} R700",
                read_point_id=point.id,
                dedupe_window_s=30,
            )
            found.append((point.id, reader.id, token))
        db.session.commit()
    return found


def order_status(app: Flask, order_id: int) -> OrderStatus:
    with app.app_context():
        return orders.get_order(db.session, order_id).status


def impinj(epcs: list[str], at: datetime, *, repeats: int = 3, antenna: int = 1) -> bytes:
    """Impinj IoT Device Interface NDJSON: each tag seen ``repeats`` times, 500 ms apart."""
    lines = []
    for index, epc in enumerate(epcs):
        for repeat in range(repeats):
            seen = (at + timedelta(milliseconds=index * 10 + repeat * 500)).astimezone(UTC)
            stamp = seen.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            lines.append(
                json.dumps(
                    {
                        "timestamp": stamp,
                        "hostname": "impinj-14-1f-2e",
                        "eventType": "tagInventory",
                        "tagInventoryEvent": {
                            "epcHex": epc,
                            "antennaPort": antenna,
                            "peakRssiCdbm": -5750,
                            "lastSeenTime": stamp,
                        },
                    }
                )
            )
    return "\n".join(lines).encode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def minutes_ago(n: float) -> datetime:
    return utcnow() - timedelta(minutes=n)


def product_gtin(app: Flask, product_id: int) -> str:
    with app.app_context():
        return db.session.get(Product, product_id).gtin


def code_epc(app: Flask, code_id: int) -> str:
    with app.app_context():
        return db.session.get(TraceCode, code_id).epc_hex


def logistics_world(app: Flask, product: Product, buyer_id: int, code_id: int) -> dict:
    """For the permission matrix (inside an app context; it commits): a second order of
    ``product``, paid, packed with unit code ``code_id`` and shipped by the cooperative's
    own delivery; a read point, a reader and one unknown tag in the quarantine."""
    from market.auth.models import Role
    from market.extensions import db as _db

    coop_id = product.cooperative_id
    packer = _db.session.scalars(
        _db.select(User).where(User.cooperative_id == coop_id, User.role == Role.COOP_ADMIN)
    ).first()
    [order] = orders.place_orders(
        _db.session, buyer_id, [orders.LineRequest(product.id, 1, product.price_fen)], ADDRESS
    )
    orders.transition(_db.session, order, "pay")
    code = _db.session.get(TraceCode, code_id)
    services.pack_order(
        _db.session,
        order.id,
        packer,
        [services.LineAssignment(order.lines[0].id, codes=[code.epc_hex])],
        company_prefix=prefix(app),
    )
    shipment = services.create_shipment(
        _db.session,
        order.id,
        carrier_code="COOP",
        waybill="",
        actor_id=packer.id,
        company_prefix=prefix(app),
    )
    point = services.create_read_point(
        _db.session,
        cooperative_id=coop_id,
        name="冷库门",
        kind=ReadPointKind.GATE,
        division_code=product.cooperative.division_code,
        company_prefix=prefix(app),
    )
    reader, _token = services.register_reader(
        _db.session, cooperative_id=coop_id, name="R700", read_point_id=point.id
    )
    services.ingest_reads(
        _db.session,
        reader,
        json.dumps([{"epc": "E2801160600002054E3D1A2B", "antenna": 1}]).encode(),
        "application/json",
    )
    services.process_pending_reads(_db.session, reader.id, company_prefix=prefix(app))
    from logistics.models import QuarantinedEpc

    entry = _db.session.scalars(_db.select(QuarantinedEpc)).one()
    ids = {
        "shipment": shipment.id,
        "read_point": point.id,
        "reader": reader.id,
        "quarantine": entry.id,
    }
    _db.session.commit()
    return ids
