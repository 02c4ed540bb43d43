"""Demo logistics: the parcels, shipments, carrier updates and RFID reads of the demo orders.

Called from market.demo after the reports demo has written its orders (paid, shipped,
completed over 14 months) and before the dashboards' summaries are rebuilt, so the
"RFID use in logistics" indicator and the buyers' order pages have something to show.

For every demo order that was shipped or completed, what the real flow leaves behind,
at the order's own times:

- a parcel with its SSCC; where a batch of the product was on sale by then, packed from
  it (a few recent gift boxes with their unit codes) with the packing AggregationEvent;
  the others get their SSCC when shipped, as ``create_shipment`` does for an order packed
  without trace codes;
- the shipment with a carrier and a waybill number in that carrier's format (checked by
  ``carriers.validate_waybill``; UPU S10 numbers carry their check digit) and its
  shipping ObjectEvent;
- the carrier's tracking updates as checkpoints: picked up, departed, arrived at the
  destination city's hub, and for completed orders out for delivery and delivered;
- for a share of parcels that grows over the months (about a third a year ago, three
  in four in the last month), RFID reads at the cooperative's warehouse and dock door;
- the order history rows and "packed" times the orders service would have written.

Parcels, shipments, checkpoints and their events are written many at once, in the shapes
the services make them (``services.packing_event``, ``shipping_event``,
``checkpoint_event``, ``tracking_key``, ``number_parcel``; events through
``traceability.services.append_events``, so the hash chains hold): going through
``pack_order`` / ``create_shipment`` / ``apply_tracking_updates`` one order at a time
took longer than the rest of ``flask demo load`` together. The RFID reads do go through
the real services: posted as a reader posts them (``ingest_reads``) and turned into
EPCIS ObjectEvents by the worker's code (``process_pending_reads``).

Order statuses and times are left as the reports demo wrote them (an order still
"shipped" gets no delivery). Deterministic: one seeded generator, the orders taken in
time order, every time counted from the order's own. Idempotent: when a demo order
already has a shipment nothing is added.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from logistics import services
from logistics.carriers import CARRIERS, s10_check_digit, validate_waybill
from logistics.interfaces import TrackingStatus, TrackingUpdate
from logistics.models import (
    Checkpoint,
    CheckpointKind,
    Parcel,
    ParcelItem,
    ParcelStatus,
    Reader,
    ReadPoint,
    ReadPointKind,
    Shipment,
    ShipmentStatus,
)
from market import places
from market.auth.models import Role, User
from market.catalog.models import Category, Product
from market.orders.models import Order, OrderEvent, OrderLine, OrderStatus
from market.types import utcnow
from traceability import codes
from traceability import services as trace
from traceability.models import Batch, CodeKind, EventEPC, TraceCode, TraceEvent

SEED = 20151015
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Share of parcels read by RFID at the newest demo shipment, and how much less per year
#: back, so the trend against the plan's 40% / 50% / 70% milestones shows.
RFID_SHARE_NOW = 0.76
RFID_SHARE_DROP_PER_YEAR = 0.40
RFID_SHARE_FLOOR = 0.2
#: Most unit codes of one batch packed into demo parcels: the rest stay for the scan
#: page and for ``flask logistics simulate-reader`` to pack.
UNIT_CODES_PER_BATCH = 5
#: A batch is packed from once this long has passed since its harvest.
BATCH_READY = timedelta(days=14)
#: Carriers (code, weight) by product category; to Hong Kong, Macao and Taiwan only SF
#: and EMS (UPU S10 numbers).
CARRIER_MIX: dict[Category | None, tuple[tuple[str, int], ...]] = {
    Category.AQUATIC: (("SF", 8), ("JD", 2)),
    Category.FRUIT: (("SF", 5), ("JD", 2), ("DEPPON", 2), ("EMS", 1)),
    Category.VEGETABLE: (("SF", 7), ("JD", 3)),
    None: (("SF", 3), ("EMS", 2), ("ZTO", 2), ("YTO", 2), ("YUNDA", 1), ("JD", 1)),
}
ABROAD = (("SF", 3), ("EMS", 1))
ABROAD_PREFIXES = ("71", "81", "82")
#: Each shipping cooperative's read points (name, kind, bizStep), seen by one reader:
#: antenna 1 at the dock door, antenna 3 over the shelves.
DOCK = ("合作社仓库 发货口", ReadPointKind.GATE, "loading")
SHELVES = ("合作社仓库 货架区", ReadPointKind.WAREHOUSE, "storing")
DOCK_ANTENNA, SHELF_ANTENNA = 1, 3
READER_NAME = "仓库 RFID 通道"
READER_MODEL = "Impinj R700"


@dataclass
class _Plan:
    """One demo order's logistics, decided before anything is written."""

    order: Order
    carrier: str
    waybill: str
    packed_at: datetime
    rfid: bool
    #: (line, batch, unit codes) of the lines packed from a batch.
    lines: list[tuple[OrderLine, Batch, list[TraceCode]]] = field(default_factory=list)
    parcel: Parcel | None = None
    shipment: Shipment | None = None


def load(session: Session, *, company_prefix: str) -> list[str]:
    """Add the demo orders' logistics unless it is there; returns what was added."""
    from market.reports import demo as reports_demo

    demo_buyers = select(User.id).where(User.phone.in_([b[0] for b in reports_demo.BUYERS]))
    orders = list(
        session.scalars(
            select(Order)
            .options(
                selectinload(Order.lines),
                selectinload(Order.events),
                selectinload(Order.cooperative),
            )
            .where(
                Order.buyer_id.in_(demo_buyers),
                Order.status.in_((OrderStatus.SHIPPED, OrderStatus.COMPLETED)),
                Order.shipped_at.is_not(None),
            )
            .order_by(Order.shipped_at, Order.id)
        )
    )
    if not orders or session.scalar(
        select(Shipment.id).where(Shipment.order_id.in_([o.id for o in orders])).limit(1)
    ):
        return []
    rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
    admins = _admins(session, {o.cooperative_id for o in orders})
    plans = _plan(session, rng, orders, company_prefix)
    _parcels(session, plans, admins, company_prefix)
    _shipments(session, rng, plans, admins)
    events: list[tuple[trace.NewEvent, Callable[[int], None]]] = []
    for plan in plans:
        events += _packing_and_shipping(plan, admins, company_prefix)
        events += _checkpoints(session, rng, plan)
    # Appended in the order they were recorded, so each chain runs forward in time.
    events.sort(key=lambda pair: pair[0].now)
    rows = trace.append_events(session, [new for new, _set in events])
    for (_new, set_pk), row in zip(events, rows, strict=True):
        set_pk(row.id)
    for plan in plans:
        _order_history(plan, admins)
    recorded = _rfid(session, rng, plans, company_prefix)
    session.flush()
    return [
        f"demo shipments {len(plans)}",
        f"demo RFID-read shipments {sum(p.rfid for p in plans)} ({recorded} tag reads)",
    ]


# --------------------------------------------------------------------------------------
# Deciding
# --------------------------------------------------------------------------------------


def _admins(session: Session, coop_ids: set[int]) -> dict[int, int | None]:
    """Each cooperative's admin: who packs and ships the demo orders."""
    found: dict[int, int | None] = dict.fromkeys(coop_ids)
    for user_id, coop_id in session.execute(
        select(User.id, User.cooperative_id)
        .where(User.cooperative_id.in_(coop_ids), User.role == Role.COOP_ADMIN)
        .order_by(User.id)
    ):
        found[coop_id] = found[coop_id] or user_id
    return found


def rfid_share(shipped_at: datetime, newest: datetime) -> float:
    """The chance a parcel shipped at ``shipped_at`` carried a tag that was read."""
    years = (newest - shipped_at).total_seconds() / (365 * 86400)
    return max(RFID_SHARE_FLOOR, RFID_SHARE_NOW - RFID_SHARE_DROP_PER_YEAR * years)


def _plan(
    session: Session, rng: random.Random, orders: list[Order], company_prefix: str
) -> list[_Plan]:
    product_ids = {line.product_id for o in orders for line in o.lines if line.product_id}
    categories = dict(
        session.execute(
            select(Product.id, Product.category).where(Product.id.in_(product_ids))
        ).all()
    )
    batches: dict[int, list[Batch]] = defaultdict(list)
    for batch in session.scalars(
        select(Batch)
        .where(Batch.product_id.in_(product_ids), Batch.stock_added > 0)
        .order_by(Batch.harvest_date.desc(), Batch.id.desc())
    ):
        batches[batch.product_id].append(batch)
    newest = orders[-1].shipped_at
    used: set[tuple[str, str]] = set()
    plans = []
    for order in orders:
        destination = order.division_code or ""
        mix = (
            ABROAD
            if destination.startswith(ABROAD_PREFIXES)
            else CARRIER_MIX.get(categories.get(order.lines[0].product_id), CARRIER_MIX[None])
        )
        carrier = rng.choices([c for c, _w in mix], [w for _c, w in mix])[0]
        plan = _Plan(
            order,
            carrier,
            _waybill(rng, carrier, destination, used),
            packed_at=order.shipped_at - timedelta(minutes=rng.randrange(40, 180)),
            rfid=rng.random() < rfid_share(order.shipped_at, newest),
        )
        packed_on = plan.packed_at.astimezone(SHANGHAI).date()
        for line in order.lines:
            ready = [
                b
                for b in batches.get(line.product_id, ())
                if b.harvest_date + BATCH_READY <= packed_on
            ]
            if ready:
                plan.lines.append((line, ready[0], []))
        plans.append(plan)
    _assign_unit_codes(session, plans, company_prefix)
    return plans


def _waybill(rng: random.Random, carrier: str, destination: str, used: set) -> str:
    """A waybill number in the carrier's format, not used before in this load."""

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    while True:
        if carrier == "SF":
            number = "SF" + rng.choice("1234") + digits(12)
        elif carrier == "JD":
            number = "JDV" + rng.choice("ABCE") + digits(11)
        elif carrier == "EMS" and destination.startswith(ABROAD_PREFIXES):
            serial = digits(8)
            number = f"EE{serial}{s10_check_digit(serial)}CN"
        elif carrier == "EMS":
            number = "11" + digits(11)
        elif carrier == "ZTO":
            number = "7" + rng.choice("35") + digits(12)
        elif carrier == "YTO":
            number = "YT" + rng.choice("678") + digits(12)
        elif carrier == "YUNDA":
            number = "4" + rng.choice("36") + digits(13)
        else:
            number = "DPK" + rng.choice("36") + digits(11)
        number = validate_waybill(carrier, number)
        if (carrier, number) not in used:
            used.add((carrier, number))
            return number


def _assign_unit_codes(session: Session, plans: list[_Plan], company_prefix: str) -> None:
    """Pack unit codes into the newest parcels of their batch: codes that were packed
    into the batch's cases before the order was packed, and are in no parcel yet."""
    batch_ids = {batch.id for plan in plans for _line, batch, _units in plan.lines}
    if not batch_ids:
        return
    in_parcels = select(ParcelItem.code_id).where(ParcelItem.code_id.is_not(None))
    units: dict[int, list[TraceCode]] = defaultdict(list)
    for code in session.scalars(
        select(TraceCode)
        .where(
            TraceCode.batch_id.in_(batch_ids),
            TraceCode.kind == CodeKind.UNIT,
            TraceCode.id.not_in(in_parcels),
        )
        .order_by(TraceCode.id)
    ):
        units[code.batch_id].append(code)
    uris = {
        codes.sgtin_pure_uri(company_prefix, c.gtin, c.serial): c.id
        for found in units.values()
        for c in found
    }
    # A unit's last event (its case packing): a parcel packed before it cannot hold it.
    last_event: dict[int, datetime] = {}
    for epc, at in session.execute(
        select(EventEPC.epc, TraceEvent.event_time)
        .join(TraceEvent, TraceEvent.id == EventEPC.event_pk)
        .where(EventEPC.epc.in_(list(uris)))
    ):
        code_id = uris[epc]
        last_event[code_id] = max(at, last_event.get(code_id, at))
    budget = dict.fromkeys(units, UNIT_CODES_PER_BATCH)
    for plan in reversed(plans):
        for line, batch, chosen in plan.lines:
            while budget.get(batch.id, 0) > 0 and len(chosen) < line.quantity:
                free = [
                    c
                    for c in units[batch.id]
                    if last_event.get(c.id, plan.packed_at) < plan.packed_at
                ]
                if not free:
                    break
                units[batch.id].remove(free[0])
                chosen.append(free[0])
                budget[batch.id] -= 1


# --------------------------------------------------------------------------------------
# Parcels, shipments and their events
# --------------------------------------------------------------------------------------


def _parcels(
    session: Session, plans: list[_Plan], admins: dict[int, int | None], company_prefix: str
) -> None:
    """Each order's parcel, numbered; packed from a batch in the morning, or (nothing
    on sale from a batch) given its SSCC when the waybill was entered."""
    for plan in plans:
        order = plan.order
        plan.parcel = services.unnumbered_parcel(
            order,
            user_id=admins.get(order.cooperative_id),
            now=plan.packed_at if plan.lines else order.shipped_at,
        )
        for line, batch, units in plan.lines:
            for code in units:
                plan.parcel.items.append(
                    ParcelItem(order_line_id=line.id, batch_id=batch.id, code_id=code.id)
                )
            if line.quantity > len(units):
                plan.parcel.items.append(
                    ParcelItem(
                        order_line_id=line.id,
                        batch_id=batch.id,
                        quantity=line.quantity - len(units),
                    )
                )
    session.add_all(plan.parcel for plan in plans)
    session.flush()
    for plan in plans:
        services.number_parcel(plan.parcel, company_prefix)
    session.flush()


def _shipments(
    session: Session, rng: random.Random, plans: list[_Plan], admins: dict[int, int | None]
) -> None:
    for plan in plans:
        order = plan.order
        plan.shipment = Shipment(
            order_id=order.id,
            cooperative_id=order.cooperative_id,
            carrier_code=plan.carrier,
            waybill=plan.waybill,
            status=ShipmentStatus.SHIPPED,
            created_by_id=admins.get(order.cooperative_id),
            shipped_at=order.shipped_at,
            last_update_at=order.shipped_at,
            # The tracking service is asked to push updates right after shipping.
            subscribed_at=order.shipped_at + timedelta(seconds=rng.randrange(5, 60)),
        )
    session.add_all(plan.shipment for plan in plans)
    session.flush()
    for plan in plans:
        plan.parcel.shipment_id = plan.shipment.id
        plan.parcel.status = ParcelStatus.SHIPPED


def _packing_and_shipping(
    plan: _Plan, admins: dict[int, int | None], company_prefix: str
) -> list[tuple[trace.NewEvent, Callable[[int], None]]]:
    order, parcel, shipment = plan.order, plan.parcel, plan.shipment
    admin = admins.get(order.cooperative_id)
    found = []
    if plan.lines:
        batch_ids = sorted({batch.id for _line, batch, _units in plan.lines})
        event = services.packing_event(
            order,
            parcel,
            children=[
                codes.sgtin_pure_uri(company_prefix, code.gtin, code.serial)
                for _line, _batch, units in plan.lines
                for code in units
            ],
            quantities=[
                (batch, line.quantity - len(units))
                for line, batch, units in plan.lines
                if line.quantity > len(units)
            ],
            company_prefix=company_prefix,
            now=plan.packed_at,
        )
        new = trace.NewEvent(
            event,
            chain_batch_id=batch_ids[0],
            linked_batch_ids=tuple(batch_ids),
            owner_cooperative_id=order.cooperative_id,
            source="ui",
            recorded_by_id=admin,
            now=plan.packed_at,
        )
        found.append((new, lambda pk: setattr(parcel, "pack_event_pk", pk)))
    event = services.shipping_event(
        order, shipment, [parcel], company_prefix=company_prefix, now=order.shipped_at
    )
    new = trace.NewEvent(
        event,
        chain_batch_id=None,
        owner_cooperative_id=order.cooperative_id,
        source="ui",
        recorded_by_id=admin,
        now=order.shipped_at,
    )
    found.append((new, lambda pk: setattr(shipment, "ship_event_pk", pk)))
    return found


def _hub(code: str) -> tuple[str, str | None]:
    """The carrier's sorting centre for a place: (name, division code)."""
    city = places.city_of(code) or places.province_of(code) or places.get(code)
    if city is None:
        return "转运中心", None
    name = city.name
    for suffix in ("特别行政区", "市"):
        name = name.removesuffix(suffix)
    return f"{name}转运中心", city.code


def _branch(code: str) -> str:
    division = places.get(code)
    return f"{division.name}营业点" if division else "营业点"


def tracking_updates(rng: random.Random, plan: _Plan) -> list[TrackingUpdate]:
    """What the carrier's tracking service pushed: picked up, departed, arrived at the
    destination hub; for a completed order, out for delivery and delivered when the
    order says it was. Nothing later than now."""
    order = plan.order
    origin, destination = order.cooperative.division_code, order.division_code or ""
    name = CARRIERS[plan.carrier].name_zh
    origin_hub, origin_hub_code = _hub(origin)
    dest_hub, dest_hub_code = _hub(destination)
    accepted = order.shipped_at + timedelta(minutes=rng.randrange(45, 120))
    departed = accepted + timedelta(minutes=rng.randrange(120, 300))
    delivered = order.delivered_at
    if delivered is not None:
        arrived = max(
            delivered - timedelta(minutes=rng.randrange(360, 720)), departed + timedelta(hours=3)
        )
    else:
        arrived = departed + timedelta(minutes=rng.randrange(600, 1500))
    steps = [
        (
            TrackingStatus.ACCEPTED,
            _branch(origin),
            origin,
            accepted,
            f"【{_branch(origin)}】{name}已揽收",
        ),
        (
            TrackingStatus.IN_TRANSIT,
            origin_hub,
            origin_hub_code,
            departed,
            f"快件已从【{origin_hub}】发出，准备发往【{dest_hub}】",
        ),
        (TrackingStatus.IN_TRANSIT, dest_hub, dest_hub_code, arrived, f"快件到达【{dest_hub}】"),
    ]
    if delivered is not None:
        out = max(
            delivered - timedelta(minutes=rng.randrange(60, 180)), arrived + timedelta(minutes=30)
        )
        receiver = rng.choice(("本人", "家人", "快递柜", "前台"))
        steps += [
            (
                TrackingStatus.OUT_FOR_DELIVERY,
                _branch(destination),
                destination,
                out,
                "快件已交给快递员，正在派送途中",
            ),
            (
                TrackingStatus.DELIVERED,
                _branch(destination),
                destination,
                delivered,
                f"快件已签收，签收人：{receiver}",
            ),
        ]
    now = utcnow()
    return [
        TrackingUpdate(
            plan.waybill,
            status,
            location,
            at.replace(microsecond=0),
            code if code and places.get(code) else None,
            message,
        )
        for status, location, code, at, message in steps
        if at <= now
    ]


def _checkpoints(
    session: Session, rng: random.Random, plan: _Plan
) -> list[tuple[trace.NewEvent, Callable[[int], None]]]:
    """The carrier's updates as ``apply_tracking_updates`` records them (checkpoint
    kinds, keys and events), each pushed a minute or two after it happened."""
    shipment = plan.shipment
    found = []
    for update in tracking_updates(rng, plan):
        kind = services.checkpoint_kind_for(update)
        checkpoint = Checkpoint(
            shipment_id=shipment.id,
            kind=kind,
            at=update.at,
            location=update.location[:60],
            division_code=update.division_code,
            note=update.message[:200],
            source="carrier",
            source_key=services.tracking_key(update),
            created_at=update.at + timedelta(seconds=rng.randrange(30, 150)),
        )
        session.add(checkpoint)
        event = services.checkpoint_event(
            shipment,
            [plan.parcel],
            kind,
            at=update.at,
            location=checkpoint.location,
            division_code=checkpoint.division_code,
            note=checkpoint.note,
        )
        new = trace.NewEvent(
            event,
            chain_batch_id=None,
            owner_cooperative_id=shipment.cooperative_id,
            source="carrier",
            now=checkpoint.created_at,
        )
        found.append((new, lambda pk, row=checkpoint: setattr(row, "event_pk", pk)))
        shipment.status = services.STATUS_AFTER[kind]
        shipment.last_update_at = update.at
        if kind is CheckpointKind.DELIVERED:
            shipment.delivered_at = shipment.delivered_at or update.at
    return found


def _order_history(plan: _Plan, admins: dict[int, int | None]) -> None:
    """The "packed" times and history rows the orders service writes on the way."""
    order = plan.order
    admin = admins.get(order.cooperative_id)
    for line in order.lines:
        line.packed_at = line.packed_at or plan.packed_at
    order.packed_at = order.packed_at or plan.packed_at
    moves = [
        ("pack", OrderStatus.PAID, OrderStatus.PACKED, plan.packed_at, admin),
        ("ship", OrderStatus.PACKED, OrderStatus.SHIPPED, order.shipped_at, admin),
    ]
    if order.status is OrderStatus.COMPLETED and order.delivered_at and order.completed_at:
        moves += [
            ("deliver", OrderStatus.SHIPPED, OrderStatus.DELIVERED, order.delivered_at, None),
            (
                "complete",
                OrderStatus.DELIVERED,
                OrderStatus.COMPLETED,
                order.completed_at,
                order.buyer_id,
            ),
        ]
    done = {event.action for event in order.events}
    for action, before, after, at, actor in moves:
        if action not in done:
            order.events.append(
                OrderEvent(
                    action=action,
                    from_status=before,
                    to_status=after,
                    actor_id=actor,
                    created_at=at,
                )
            )


# --------------------------------------------------------------------------------------
# RFID: posted as readers post, recorded as the worker records
# --------------------------------------------------------------------------------------


def _rfid(session: Session, rng: random.Random, plans: list[_Plan], company_prefix: str) -> int:
    """Reads of the tagged parcels (and the unit tags inside): on the shelves after
    packing, at the dock door when the carrier loads them. Returns the reads recorded."""
    reads: dict[int, list[dict]] = defaultdict(list)
    first: dict[int, datetime] = {}
    for plan in (p for p in plans if p.rfid):
        order, parcel = plan.order, plan.parcel
        coop = order.cooperative_id
        first[coop] = min(first.get(coop, parcel.packed_at), parcel.packed_at)
        tags = [parcel.epc_hex] + [
            codes.sgtin96_hex(company_prefix, code.gtin, code.serial)
            for _line, _batch, units in plan.lines
            for code in units
        ]
        if plan.lines:
            at = plan.packed_at + timedelta(minutes=rng.randrange(5, 25))
            reads[coop] += _sightings(rng, tags, SHELF_ANTENNA, at)
        at = order.shipped_at + timedelta(minutes=rng.randrange(5, 35))
        reads[coop] += _sightings(rng, tags, DOCK_ANTENNA, at)
    divisions = {plan.order.cooperative_id: plan.order.cooperative.division_code for plan in plans}
    recorded = 0
    for coop_id, items in sorted(reads.items()):
        reader = _reader(session, coop_id, divisions[coop_id], first[coop_id], company_prefix)
        # Posted once a day, a minute after the day's last read.
        by_day: dict[str, list[dict]] = defaultdict(list)
        for item in items:
            by_day[item["time"][:10]].append(item)
        for _day, posted in sorted(by_day.items()):
            last = max(datetime.fromisoformat(r["time"]) for r in posted)
            services.ingest_reads(
                session,
                reader,
                json.dumps(posted).encode(),
                "application/json",
                now=last + timedelta(minutes=1),
            )
            reader.last_seen_at = last + timedelta(minutes=1)
        while True:
            done = services.process_pending_reads(session, reader.id, company_prefix=company_prefix)
            if not (done.recorded or done.merged or done.quarantined):
                break
            recorded += done.recorded + done.merged
    return recorded


def _reader(
    session: Session, coop_id: int, division: str, first: datetime, company_prefix: str
) -> Reader:
    """The cooperative's dock-door reader (antenna 3 over the shelves), installed a week
    before its first read."""
    points: list[ReadPoint] = [
        services.create_read_point(
            session,
            cooperative_id=coop_id,
            name=name,
            kind=kind,
            division_code=division,
            biz_step=step,
            company_prefix=company_prefix,
        )
        for name, kind, step in (DOCK, SHELVES)
    ]
    dock, shelves = points
    reader, _token = services.register_reader(
        session,
        cooperative_id=coop_id,
        name=READER_NAME,
        model=READER_MODEL,
        read_point_id=dock.id,
        antenna_map={str(SHELF_ANTENNA): str(shelves.id)},
    )
    installed = first - timedelta(days=7)
    for row in (dock, shelves, reader, reader.token):
        row.created_at = installed
    return reader


def _sightings(rng: random.Random, tags: list[str], antenna: int, at: datetime) -> list[dict]:
    """Tags passing an antenna as a reader reports them: each a few times within two
    seconds (the ingest keeps one read per burst)."""
    found = []
    for index, tag in enumerate(tags):
        for repeat in range(rng.randint(1, 3)):
            seen = at + timedelta(milliseconds=index * 40 + repeat * 650)
            found.append(
                {
                    "epc": tag,
                    "antenna": antenna,
                    "rssi": round(-48 - rng.random() * 14, 1),
                    "time": seen.isoformat(timespec="milliseconds"),
                }
            )
    return found
