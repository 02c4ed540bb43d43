"""`flask logistics ...`: simulate RFID readers along a journey, drive the carrier sandbox,
record pending reads."""

from __future__ import annotations

import base64
import json
import secrets
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from logistics import config, sandbox, services, tasks
from logistics.models import (
    Parcel,
    ParcelItem,
    Reader,
    ReadPoint,
    ReadPointKind,
    Shipment,
    ShipmentStatus,
)
from market.extensions import db
from market.types import utcnow
from traceability import codes

logistics_cli = AppGroup("logistics", help="Logistics: RFID readers, carriers, cold chain.")

#: The demo's gates: (name, kind, bizStep, GB/T 2260 code).
DEMO_GATES = (
    ("合作社冷库 出库门", ReadPointKind.GATE, "departing", None),
    ("江门冷链中转仓 入口", ReadPointKind.GATE, "arriving", "440703"),
    ("广州城配中心 入口", ReadPointKind.GATE, "arriving", "440111"),
)
#: A tag nobody on the platform issued (it lands in the quarantine).
STRAY_EPC = "E2801160600002054E3D1A2B"
#: Shipments handed over longer ago than this are not fed by default: gates read "now"
#: would contradict what the carrier reported since (the demo data's older shipments).
RECENT = timedelta(days=2)


def _shipment(shipment_id: int | None, *, create: bool = False) -> Shipment:
    if shipment_id is not None:
        found = db.session.get(Shipment, shipment_id)
        if found is None:
            raise click.UsageError(f"No shipment {shipment_id}")
        return found
    found = db.session.scalars(
        select(Shipment)
        .where(
            Shipment.status.not_in([ShipmentStatus.DELIVERED, ShipmentStatus.RETURNED]),
            Shipment.shipped_at >= utcnow() - RECENT,
        )
        .order_by(Shipment.shipped_at.desc())
    ).first()
    if found is None and create:
        found = _demo_shipment()
    if found is None:
        raise click.UsageError(
            "No shipment on its way since two days ago. Pack and ship an order first "
            "(Logistics -> To pack), or name one with --shipment."
        )
    return found


def _demo_shipment() -> Shipment | None:
    """A demo order of a unit-coded product (chilled goods first), paid in the payment
    sandbox, packed and shipped by SF this morning. None when the demo data lacks one."""
    from market.auth.models import Role, User
    from market.catalog.models import Category, Product, ProductStatus
    from market.orders import services as orders
    from market.orders.models import OrderStatus
    from market.payments import sandbox as pay_sandbox
    from market.payments import services as payments
    from market.payments.models import SandboxTrade
    from traceability.models import Batch, CodeKind, TraceCode

    app = current_app
    if app.config["PAYMENT_PROVIDER"] != "sandbox":
        return None
    packed = select(ParcelItem.code_id).where(ParcelItem.code_id.is_not(None))
    row = db.session.execute(
        select(TraceCode, Product)
        .join(Batch, Batch.id == TraceCode.batch_id)
        .join(Product, Product.id == Batch.product_id)
        .where(
            TraceCode.kind == CodeKind.UNIT,
            TraceCode.id.not_in(packed),
            Product.stock >= 1,
            Product.status == ProductStatus.ON_SALE,
        )
        .order_by((Product.category == Category.AQUATIC).desc(), TraceCode.id)
        .limit(1)
    ).first()
    buyer = db.session.scalars(
        select(User).where(User.role == Role.BUYER, User.active.is_(True)).order_by(User.id)
    ).first()
    if row is None or buyer is None:
        return None
    code, product = row
    admin = db.session.scalars(
        select(User).where(
            User.cooperative_id == product.cooperative_id, User.role == Role.COOP_ADMIN
        )
    ).first()
    if admin is None:
        return None
    address = orders.Address(
        recipient=buyer.name or "王小明",
        phone=buyer.phone,
        province_code="440000",
        city_code="440100",
        county_code="440106",
        address="天河路 100 号 2 栋 301",
    )
    [order] = orders.place_orders(
        db.session, buyer.id, [orders.LineRequest(product.id, 1, product.price_fen)], address
    )
    order_id, line_id = order.id, order.lines[0].id
    db.session.commit()
    # Paid the way a buyer pays: through the sandbox gateway and its signed notify.
    intent = orders.prepare_payment(db.session, order_id)
    base = app.config["PUBLIC_BASE_URL"].rstrip("/")
    intent = payments.confirm_intent(
        db.session, intent.id, return_url=f"{base}/orders/{order_id}", device="desktop"
    )
    redirect = urlsplit(payments.redirect_url(intent) or "")
    db.session.commit()
    with app.test_client() as browser:  # the buyer's browser opens the cashier
        opened = browser.get(redirect.path + "?" + redirect.query)
    trade_no = opened.headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]
    trade = db.session.scalars(
        select(SandboxTrade).where(SandboxTrade.trade_no == trade_no)
    ).first()
    if trade is None:
        return None
    trade.status, trade.paid_at = "TRADE_SUCCESS", utcnow()
    payments.receive_notify(db.session, pay_sandbox.notify_params(trade))
    db.session.commit()
    if orders.get_order(db.session, order_id).status is not OrderStatus.PAID:
        return None
    prefix = app.config["GS1_COMPANY_PREFIX"]
    morning = utcnow() - timedelta(hours=5)
    services.pack_order(
        db.session,
        order_id,
        admin,
        [services.LineAssignment(line_id, codes=[code.epc_hex])],
        company_prefix=prefix,
        now=morning - timedelta(minutes=30),
    )
    waybill = f"SF{secrets.randbelow(10**13):013d}"
    shipment = services.create_shipment(
        db.session,
        order_id,
        carrier_code="SF",
        waybill=waybill,
        actor_id=admin.id,
        company_prefix=prefix,
        cold_profile="live" if product.category is Category.AQUATIC else "",
        profiles=services.cold_profiles(config.thresholds()),
        now=morning,
    )
    db.session.commit()
    click.echo(f"demo order {order.number}: paid, packed and shipped by SF {waybill}")
    return shipment


def _demo_readers(shipment: Shipment) -> list[tuple[Reader, str]]:
    """One reader per demo gate of the shipment's cooperative (made once), with a fresh
    token each (the old one is revoked)."""
    prefix = current_app.config["GS1_COMPANY_PREFIX"]
    coop = shipment.order.cooperative
    found = []
    for name, kind, step, division in DEMO_GATES:
        point = db.session.scalars(
            select(ReadPoint).where(ReadPoint.cooperative_id == coop.id, ReadPoint.name == name)
        ).first()
        if point is None:
            point = services.create_read_point(
                db.session,
                cooperative_id=coop.id,
                name=name,
                kind=kind,
                division_code=division or coop.division_code,
                biz_step=step,
                company_prefix=prefix,
            )
        reader = db.session.scalars(
            select(Reader).where(Reader.cooperative_id == coop.id, Reader.read_point_id == point.id)
        ).first()
        if reader is None:
            reader, token = services.register_reader(
                db.session,
                cooperative_id=coop.id,
                name=f"{name} R700",
                model="Impinj R700",
                read_point_id=point.id,
                dedupe_window_s=30,
            )
        else:
            token = services.rotate_reader_token(db.session, reader.id, user_id=None)
        found.append((reader, token))
    db.session.commit()
    return found


def _tags(shipment: Shipment) -> list[str]:
    """The hex EPCs a gate sees: each parcel's SSCC-96 tag and its units' SGTIN-96 tags."""
    prefix = current_app.config["GS1_COMPANY_PREFIX"]
    tags = []
    for parcel in db.session.scalars(select(Parcel).where(Parcel.shipment_id == shipment.id)):
        tags.append(parcel.epc_hex)
        for item in db.session.scalars(
            select(ParcelItem).where(
                ParcelItem.parcel_id == parcel.id, ParcelItem.code_id.is_not(None)
            )
        ):
            code = item.code
            tags.append(codes.sgtin96_hex(prefix, code.gtin, code.serial))
    return tags


def _impinj_events(tags: list[str], at: datetime, *, extra: list[str] = ()) -> bytes:
    """NDJSON as an Impinj R700 streams it: each tag seen three times in two seconds,
    by two antennas; unit tags carry only the base64 ``epc`` (the default preset)."""
    lines = []
    for index, tag in enumerate([*tags, *extra]):
        for repeat in range(3):
            seen = at + timedelta(milliseconds=index * 40 + repeat * 700)
            stamp = seen.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            event = {
                "antennaPort": 1 + repeat % 2,
                "peakRssiCdbm": -5200 - 100 * repeat,
                "lastSeenTime": stamp,
            }
            if index == 0:
                event["epcHex"] = tag
            else:
                event["epc"] = base64.b64encode(bytes.fromhex(tag)).decode()
            lines.append(
                json.dumps(
                    {
                        "timestamp": stamp,
                        "hostname": "impinj-demo",
                        "eventType": "tagInventory",
                        "tagInventoryEvent": event,
                    }
                )
            )
    lines.append(
        json.dumps(
            {
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "eventType": "inventoryStatus",
                "inventoryStatusEvent": {"inventoryStatus": "running"},
            }
        )
    )
    return ("\n".join(lines) + "\n").encode()


def _post(
    url: str | None, path: str, body: bytes, token: str, content_type: str
) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    if url:
        request = urllib.request.Request(  # noqa: S310 - the operator's own server
            url.rstrip("/") + path, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
    with current_app.test_client() as client:
        response = client.post(path, data=body, headers=headers)
        return response.status_code, response.get_json(silent=True) or {}


@logistics_cli.command("simulate-reader")
@click.option(
    "--shipment",
    "shipment_id",
    type=int,
    help="Shipment id (default: the newest on its way, shipped in the last two days).",
)
@click.option(
    "--url", help="Post to a running server (e.g. http://127.0.0.1:5000) instead of in-process."
)
@click.option(
    "--excursion/--no-excursion",
    default=True,
    show_default=True,
    help="Let the logger see the parcel warm up for a while.",
)
@click.option(
    "--deliver/--no-deliver",
    default=False,
    show_default=True,
    help="Record the delivery at the end.",
)
def simulate_reader(
    shipment_id: int | None, url: str | None, excursion: bool, deliver: bool
) -> None:
    """Feed a demo journey: three RFID gates read the shipment's parcel and units (with
    the repeats real readers send, and one stray tag), and a logger reports temperatures.

    Without a shipment on its way shipped in the last two days (the demo data's are
    older), a demo order of a unit-coded product is placed, paid in the payment sandbox,
    packed and shipped first."""
    shipment = _shipment(shipment_id, create=True)
    shipment_id = shipment.id
    tags = _tags(shipment)
    readers = _demo_readers(shipment)
    shipment = db.session.get(Shipment, shipment_id)
    start = shipment.shipped_at
    now = utcnow()
    span = max(now - start, timedelta(minutes=3))
    start = now - span
    step = span / (len(readers) + 1)
    for number, (reader, token) in enumerate(readers, start=1):
        at = start + step * number
        body = _impinj_events(tags, at, extra=[STRAY_EPC] if number == 2 else [])
        status, answer = _post(
            url, f"/logistics/readers/{reader.id}/reads", body, token, "application/x-ndjson"
        )
        click.echo(f"{reader.name}: HTTP {status} {json.dumps(answer, ensure_ascii=False)}")
        if status >= 400:
            sys.exit(1)
    logger_reader, logger_token = readers[0]
    parcel_epc = tags[0] if tags else None
    if parcel_epc:
        # Readings inside the shipment's limits, but for a while well above them.
        limits = services.limits_for(db.session, shipment, config.thresholds())
        low = limits.low_c if limits and limits.low_c is not None else None
        high = limits.high_c if limits and limits.high_c is not None else None
        if low is None and high is None:
            low, high = 2.0, 6.0
        elif low is None:
            low = high - 4
        elif high is None:
            high = low + 4
        middle = (low + high) / 2
        readings = []
        points = 12
        for i in range(points):
            at = start + span * (i + 1) / (points + 1)
            warm = excursion and 5 <= i <= 7
            celsius = high + 3 + (i - 5) * 0.4 if warm else middle + ((i % 3) - 1) * 0.4
            readings.append(
                {"epc": parcel_epc, "time": at.isoformat(), "celsius": round(celsius, 1)}
            )
        body = json.dumps({"sensor": "demo-logger-01", "readings": readings}).encode()
        status, answer = _post(
            url,
            f"/logistics/readers/{logger_reader.id}/temperatures",
            body,
            logger_token,
            "application/json",
        )
        click.echo(f"logger: HTTP {status} {json.dumps(answer, ensure_ascii=False)}")
    if deliver:
        outcome = services.record_checkpoint(
            db.session,
            shipment_id,
            "delivered",
            at=utcnow(),
            company_prefix=current_app.config["GS1_COMPANY_PREFIX"],
            note="模拟签收",
        )
        db.session.commit()
        if outcome.created:
            tasks.notify_checkpoint.delay(outcome.checkpoint.id)
        click.echo("delivered")


@logistics_cli.command("sandbox-push")
@click.argument("shipment_id", type=int)
@click.option(
    "--speed",
    type=float,
    help="Play the journey this many times faster (default: LOGISTICS_SANDBOX speed).",
)
def sandbox_push(shipment_id: int, speed: float | None) -> None:
    """Push the sandbox carrier's tracking history of a shipment, as far as it is due."""
    shipment = _shipment(shipment_id)
    outcome = sandbox.push_due(current_app._get_current_object(), shipment, speed=speed)
    db.session.rollback()
    click.echo(f"pushed {outcome.sent} updates: HTTP {outcome.status}")
    if outcome.next_at is not None:
        click.echo(f"next update due at {outcome.next_at.isoformat()}")


@logistics_cli.command("process-reads")
def process_reads() -> None:
    """Record every pending tag read now (what the worker does after each post)."""
    done = tasks.process_all_pending_reads.run()
    click.echo(f"{done} reads handled")
