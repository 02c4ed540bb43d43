"""The journey of a unit (scan page) or of an order (buyer's order page), in time order.

For a unit code: the batch's own events (harvest, tests, storage: those that name no
individual unit or parcel), the unit's events, and the events of every parcel or
container it was packed into, while it was in it (from the AggregationEvent ADD that
put it in to the DELETE that took it out, if any). For an order: the events of its
parcels, of the units packed in them, and the batch events of what they hold.

Everything comes from traceability's event store (``traceability_events`` and its
identifier index), so a journey shows exactly what the EPCIS export holds. Places are
named from our read points, the ``yn:placeCode`` extension (GB/T 2260, market.places)
and the cooperatives' own locations.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app, g
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import Connection, exists, select
from sqlalchemy.orm import Session

from logistics.carriers import CARRIERS
from logistics.epc import format_sscc
from logistics.models import Parcel, ParcelItem, ReadPoint, Shipment, ShipmentStatus
from market import places
from market.cooperatives.models import Cooperative
from traceability import codes, epcis
from traceability import services as trace
from traceability.models import EventBatch, EventEPC, TraceCode, TraceEvent

#: How deep containers nest: unit -> parcel -> pallet -> container.
MAX_DEPTH = 3
#: Most entries a journey shows (the latest ones).
MAX_ENTRIES = 300
_INSTANCE_FIELDS = ("epc", "child", "parent")
_ALERT_DISPOSITIONS = frozenset(
    {"damaged", "recalled", "non_conformant", "returned", "stolen", "urn:yuenong:disp:lost"}
)


@dataclass
class Reading:
    celsius: float
    alarm: bool


@dataclass
class JourneyEntry:
    event_pk: int
    event_id: str
    event_type: str
    at: datetime
    #: A stable key for the title (see :func:`entry_title`).
    title: str
    biz_step: str | None
    disposition: str | None
    place: str = ""
    note: str = ""
    #: What the public scan page may show: hubs yes, the buyer's street and the courier's
    #: name and phone (in carrier messages) no.
    place_public: str = ""
    note_public: bool = True
    alert: bool = False
    readings: list[Reading] = field(default_factory=list)
    #: "batch" (about the lot), "unit" (this unit) or "parcel" (a container it was in).
    scope: str = "batch"
    parcel: str = ""
    carrier: str = ""
    waybill: str = ""
    child_count: int = 0
    excursion: dict[str, Any] | None = None


@dataclass
class Journey:
    entries: list[JourneyEntry]
    #: SSCCs (formatted) of the parcels and containers involved.
    parcels: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.entries)


# --------------------------------------------------------------------------------------
# Finding the events
# --------------------------------------------------------------------------------------


@dataclass
class _Stay:
    """A time a unit (or container) spent inside a container."""

    start: datetime
    end: datetime | None = None

    def holds(self, moment: datetime) -> bool:
        return moment >= self.start and (self.end is None or moment <= self.end)


def _containers(
    session: Session, children: dict[str, list[_Stay] | None]
) -> dict[str, list[_Stay]]:
    """The containers the ``children`` were packed into, with when each was inside.

    ``children`` maps an identifier to the stays that bound it (None: always); a
    container's stay is clipped to its child's.
    """
    if not children:
        return {}
    rows = session.execute(
        select(EventEPC.epc, TraceEvent.id, TraceEvent.action, TraceEvent.event_time)
        .join(TraceEvent, TraceEvent.id == EventEPC.event_pk)
        .where(
            EventEPC.field == "child",
            EventEPC.epc.in_(list(children)),
            TraceEvent.event_type == "AggregationEvent",
        )
        .order_by(TraceEvent.event_time, TraceEvent.id)
    ).all()
    if not rows:
        return {}
    parents = dict(
        session.execute(
            select(EventEPC.event_pk, EventEPC.epc).where(
                EventEPC.field == "parent", EventEPC.event_pk.in_({r[1] for r in rows})
            )
        ).all()
    )
    stays: dict[str, list[_Stay]] = {}
    for child, event_pk, action, at in rows:
        parent = parents.get(event_pk)
        if parent is None:
            continue
        bound = children[child]
        if bound is not None and not any(s.holds(at) for s in bound):
            continue
        spans = stays.setdefault(parent, [])
        if action == "DELETE":
            if spans and spans[-1].end is None:
                spans[-1].end = at
        elif action == "ADD" and (not spans or spans[-1].end is not None):
            end = next((s.end for s in bound or [] if s.holds(at)), None)
            spans.append(_Stay(at, end))
    return stays


def _events_naming(session: Session, identifiers: list[str]) -> list[tuple[int, str, datetime]]:
    if not identifiers:
        return []
    return list(
        session.execute(
            select(EventEPC.event_pk, EventEPC.epc, TraceEvent.event_time)
            .join(TraceEvent, TraceEvent.id == EventEPC.event_pk)
            .where(EventEPC.epc.in_(identifiers))
        ).all()
    )


def _batch_events(session: Session, batch_ids: list[int]) -> set[int]:
    """Events about the lots themselves: linked to the batches, naming no unit or parcel."""
    if not batch_ids:
        return set()
    names_instance = exists(
        select(EventEPC.id).where(
            EventEPC.event_pk == EventBatch.event_pk, EventEPC.field.in_(_INSTANCE_FIELDS)
        )
    )
    return set(
        session.scalars(
            select(EventBatch.event_pk).where(EventBatch.batch_id.in_(batch_ids), ~names_instance)
        )
    )


def _collect(
    session: Session, own: list[str], batch_ids: list[int]
) -> tuple[dict[int, str], list[str]]:
    """Event pks -> scope, and the containers involved, for units ``own``."""
    scopes: dict[int, str] = {}
    for pk in _batch_events(session, batch_ids):
        scopes[pk] = "batch"
    for pk, _epc, _at in _events_naming(session, own):
        scopes[pk] = "unit"
    frontier: dict[str, list[_Stay] | None] = dict.fromkeys(own)
    containers: list[str] = []
    for _level in range(MAX_DEPTH):
        found = _containers(session, frontier)
        found = {k: v for k, v in found.items() if k not in containers and k not in own}
        if not found:
            break
        containers.extend(found)
        for pk, epc, at in _events_naming(session, list(found)):
            if pk not in scopes and any(s.holds(at) for s in found[epc]):
                scopes[pk] = "parcel"
        frontier = dict(found)
    return scopes, containers


# --------------------------------------------------------------------------------------
# Turning events into entries
# --------------------------------------------------------------------------------------


def _title(event: dict[str, Any], row: TraceEvent) -> str:
    if event.get("yn:checkpoint"):
        return "checkpoint:" + str(event["yn:checkpoint"])
    if event.get("yn:excursion"):
        return "excursion"
    if row.disposition == "recalled":
        return "recalled"
    if row.event_type == "TransformationEvent":
        return "processed"
    if row.event_type == "AggregationEvent":
        return "unpacked" if row.action == "DELETE" else "packed"
    if row.biz_step == "shipping" and event.get("yn:waybill"):
        return "shipped"
    return "step:" + (row.biz_step or "other")


def _readings(event: dict[str, Any]) -> list[Reading]:
    found = []
    for element in event.get("sensorElementList") or []:
        for report in element.get("sensorReport") or []:
            if not isinstance(report, dict) or report.get("type") != "Temperature":
                continue
            value = report.get("value", report.get("maxValue"))
            if isinstance(value, int | float):
                found.append(Reading(float(value), report.get("exception") == "ALARM_CONDITION"))
    return found


class _Places:
    """Names of places, looked up once per journey."""

    def __init__(self, session: Session, company_prefix: str) -> None:
        self.session = session
        self.prefix = company_prefix
        self.points: dict[str, ReadPoint] = {}
        self.coops: dict[int, Cooperative | None] = {}

    def preload(self, sglns: set[str]) -> None:
        if sglns:
            for point in self.session.scalars(select(ReadPoint).where(ReadPoint.sgln.in_(sglns))):
                self.points[point.sgln] = point

    def name(self, event: dict[str, Any], row: TraceEvent) -> str:
        location = str(event.get("yn:location") or "")
        code = str(event.get("yn:placeCode") or "")
        point = self.points.get(row.read_point or "") or self.points.get(row.biz_location or "")
        if point is not None:
            return f"{point.name} · {places.name_of(point.division_code)}"
        if location:
            if code and places.name_of(code) not in location:
                return f"{location} · {places.full_name(code)}"
            return location
        if code:
            return places.full_name(code)
        coop_id = trace.cooperative_of_location(self.prefix, row.biz_location or row.read_point)
        if coop_id is not None:
            if coop_id not in self.coops:
                self.coops[coop_id] = self.session.get(Cooperative, coop_id)
            coop = self.coops[coop_id]
            if coop is not None:
                return f"{coop.name} · {places.name_of(coop.division_code)}"
        return ""


def _entries(
    session: Session, scopes: dict[int, str], *, company_prefix: str
) -> list[JourneyEntry]:
    if not scopes:
        return []
    rows = list(
        session.scalars(
            select(TraceEvent)
            .where(TraceEvent.id.in_(list(scopes)))
            .order_by(TraceEvent.event_time, TraceEvent.id)
        )
    )[-MAX_ENTRIES:]
    names = _Places(session, company_prefix)
    names.preload(
        {r.read_point for r in rows if r.read_point}
        | {r.biz_location for r in rows if r.biz_location}
    )
    entries = []
    for row in rows:
        event = json.loads(row.document)
        readings = _readings(event)
        title = _title(event, row)
        excursion = None
        if title == "excursion":
            excursion = {
                "kind": event.get("yn:excursion"),
                "limit_c": event.get("yn:limitC"),
                "peak_c": event.get("yn:peakC"),
                "minutes": event.get("yn:minutes"),
            }
        alert = (
            excursion is not None
            or (row.disposition or "") in _ALERT_DISPOSITIONS
            or title == "checkpoint:delayed"
            or any(r.alarm for r in readings)
        )
        place = names.name(event, row)
        place_public, note_public = place, True
        if title.startswith("checkpoint:"):
            note_public = False
            if title in ("checkpoint:out_for_delivery", "checkpoint:delivered"):
                city = places.city_of(str(event.get("yn:placeCode") or ""))
                place_public = city.name if city is not None else ""
        parent = event.get("parentID") if row.event_type == "AggregationEvent" else None
        sscc = parent or next(
            (e for e in event.get("epcList") or [] if str(e).startswith("urn:epc:id:sscc:")), ""
        )
        entries.append(
            JourneyEntry(
                event_pk=row.id,
                event_id=row.event_id,
                event_type=row.event_type,
                at=row.event_time,
                title=title,
                biz_step=row.biz_step,
                disposition=row.disposition,
                place=place,
                note=str(event.get("yn:note") or "")[:200],
                place_public=place_public,
                note_public=note_public,
                alert=alert,
                readings=readings[:12],
                scope=scopes[row.id],
                parcel=_sscc_label(sscc) if sscc else "",
                carrier=str(event.get("yn:carrier") or ""),
                waybill=str(event.get("yn:waybill") or ""),
                child_count=len(event.get("childEPCs") or [])
                + sum(
                    int(q.get("quantity") or 0) if isinstance(q.get("quantity"), int) else 0
                    for q in event.get("childQuantityList") or []
                ),
                excursion=excursion,
            )
        )
    return entries


def _sscc_label(uri: str) -> str:
    """``urn:epc:id:sscc:6970000.1000000012`` -> the SSCC as printed."""
    try:
        prefix, serial_ref = uri.rsplit(":", 1)[1].split(".")
        body = serial_ref[0] + prefix + serial_ref[1:]
        return format_sscc(body + codes.gtin_check_digit(body))
    except (ValueError, IndexError, codes.CodeError):
        return uri


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------


def _unit_uri(company_prefix: str, gtin: str, serial: str) -> str | None:
    try:
        return codes.sgtin_pure_uri(company_prefix, gtin, serial)
    except codes.CodeError:
        return None


def unit_journey(
    session: Session, *, gtin: str, serial: str, batch_id: int, company_prefix: str
) -> Journey | None:
    """The journey of one unit code, or None when nothing happened to it as a unit yet
    (the batch record on the scan page says all there is)."""
    uri = _unit_uri(company_prefix, gtin, serial)
    if (
        uri is None
        or session.scalar(select(EventEPC.id).where(EventEPC.epc == uri).limit(1)) is None
    ):
        return None
    batch_ids = [batch_id, *(b.id for b in trace.source_batches(session, batch_id))]
    scopes, containers = _collect(session, [uri], batch_ids)
    return Journey(
        _entries(session, scopes, company_prefix=company_prefix),
        [_sscc_label(c) for c in containers],
    )


def order_journey(session: Session, order_id: int, *, company_prefix: str) -> Journey | None:
    """The journey of an order's parcels, or None when none was packed here."""
    parcels = list(session.scalars(select(Parcel).where(Parcel.order_id == order_id)))
    if not parcels:
        return None
    unit_rows = session.execute(
        select(TraceCode.gtin, TraceCode.serial)
        .join(ParcelItem, ParcelItem.code_id == TraceCode.id)
        .where(ParcelItem.parcel_id.in_([p.id for p in parcels]))
    ).all()
    units = []
    for gtin, serial in unit_rows:
        try:
            units.append(codes.sgtin_pure_uri(company_prefix, gtin, serial))
        except codes.CodeError:
            continue
    batch_ids = sorted(
        set(
            session.scalars(
                select(ParcelItem.batch_id).where(ParcelItem.parcel_id.in_([p.id for p in parcels]))
            )
        )
    )
    scopes: dict[int, str] = dict.fromkeys(_batch_events(session, batch_ids), "batch")
    packed_at = min(p.packed_at for p in parcels)
    for pk, _epc, at in _events_naming(session, units):
        if at >= packed_at:
            scopes.setdefault(pk, "unit")
    for pk, _epc, _at in _events_naming(session, [p.sscc_uri for p in parcels]):
        scopes[pk] = "parcel"
    return Journey(
        _entries(session, scopes, company_prefix=company_prefix),
        [format_sscc(p.sscc) for p in parcels],
    )


def journey_events(session: Session, journey: Journey) -> list[dict[str, Any]]:
    """The journey's events as the EPCIS query interface exports them (with recordTime)."""
    rows = {
        r.id: r
        for r in session.scalars(
            select(TraceEvent).where(TraceEvent.id.in_([e.event_pk for e in journey.entries]))
        )
    }
    return [trace.export_event(rows[e.event_pk]) for e in journey.entries if e.event_pk in rows]


def journey_document(session: Session, journey: Journey, created: datetime) -> dict[str, Any]:
    """The journey as an EPCISDocument (validates against the EPCIS 2.0 schema)."""
    return epcis.document(journey_events(session, journey), created)


# --------------------------------------------------------------------------------------
# Hooks: the scan page (via app.extensions["journey_provider"]) and the order page
# --------------------------------------------------------------------------------------


class _Cache:
    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[tuple, tuple[float, str]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple, ttl: float) -> str | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or time.monotonic() - found[0] > ttl:
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: tuple, value: str) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: Rendered scan-page journeys by (app, code, batch, locale).
CACHE = _Cache()


def scan_journey(
    conn: Connection, target: Any, rendering: Callable[[], AbstractContextManager] = nullcontext
) -> str:
    """The journey fragment traceability's scan page shows under its verification box.

    ``target`` is traceability's ScanTarget. Only unit codes have a journey; for the
    rest, and for units nothing happened to yet, the answer is "" after one indexed
    look-up on the page's own connection. Rendered journeys are kept a short while per
    process (LOGISTICS_JOURNEY_CACHE_SECONDS): a scan page is opened far more often than
    a parcel moves. ``rendering`` is entered around the template (the scan page's fast
    path answers without a request context and builds one only to render).
    """
    if getattr(getattr(target, "kind", None), "value", None) != "unit" or not target.serial:
        return ""
    app = current_app._get_current_object()
    ttl = app.config["LOGISTICS_JOURNEY_CACHE_SECONDS"]
    key = (id(app), target.code_id, target.batch_created_at, str(g.get("locale") or get_locale()))
    if ttl > 0:
        cached = CACHE.get(key, ttl)
        if cached is not None:
            return cached
    html = ""
    prefix = app.config["GS1_COMPANY_PREFIX"]
    gtin = getattr(target, "gtin", None) or conn.scalar(
        select(TraceCode.gtin).where(TraceCode.id == target.code_id)
    )
    uri = _unit_uri(prefix, gtin, target.serial) if gtin else None
    if uri is not None and conn.scalar(select(EventEPC.id).where(EventEPC.epc == uri).limit(1)):
        from market.extensions import db

        with rendering():
            journey = unit_journey(
                db.session,
                gtin=gtin,
                serial=target.serial,
                batch_id=target.batch_id,
                company_prefix=prefix,
            )
            if journey:
                html = app.jinja_env.get_template("logistics/_journey.html").render(
                    journey=journey, journey_public=True
                )
    if ttl > 0:
        CACHE.put(key, html)
    return html


@dataclass
class OrderLogistics:
    """What the order page shows: the shipment, if any, and the parcels' journey."""

    shipment: Shipment | None
    journey: Journey | None


def order_journey_for_template(order: Any) -> OrderLogistics:
    """The ``order_journey(order)`` template global of the order page."""
    from market.extensions import db

    shipment = db.session.scalars(select(Shipment).where(Shipment.order_id == order.id)).first()
    return OrderLogistics(
        shipment,
        order_journey(
            db.session, order.id, company_prefix=current_app.config["GS1_COMPANY_PREFIX"]
        ),
    )


# --------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------


def entry_title(entry: JourneyEntry) -> str:
    """What a journey entry says happened, in the reader's language."""
    checkpoints = {
        "accepted": _("Picked up by the carrier"),
        "departed": _("Departed"),
        "in_transit": _("In transit"),
        "arrived": _("Arrived"),
        "out_for_delivery": _("Out for delivery"),
        "delivered": _("Delivered"),
        "delayed": _("Delayed"),
        "damaged": _("Damaged"),
        "lost": _("Lost"),
        "returned": _("Returned"),
    }
    if entry.title.startswith("checkpoint:"):
        return checkpoints.get(entry.title.split(":", 1)[1], _("In transit"))
    fixed = {
        "excursion": _("Temperature out of range"),
        "recalled": _("Recalled"),
        "processed": _("Processed"),
        "packed": _("Packed into a parcel"),
        "unpacked": _("Unpacked"),
        "shipped": _("Shipped"),
    }
    if entry.title in fixed:
        return fixed[entry.title]
    steps = {
        "commissioning": _("Harvested or produced"),
        "inspecting": _("Inspected"),
        "storing": _("Into storage"),
        "receiving": _("Received"),
        "arriving": _("Arrived"),
        "departing": _("Departed"),
        "loading": _("Loaded"),
        "unloading": _("Unloaded"),
        "transporting": _("In transport"),
        "sensor_reporting": _("Temperature recorded"),
        "holding": _("Held"),
        "shipping": _("Shipped"),
        "retail_selling": _("Sold"),
        "sampling": _("Sampled"),
    }
    return steps.get(entry.title.split(":", 1)[1], _("Recorded"))


def excursion_text(entry: JourneyEntry) -> str:
    data = entry.excursion or {}
    peak, limit, minutes = data.get("peak_c"), data.get("limit_c"), data.get("minutes")
    if not isinstance(peak, int | float) or not isinstance(limit, int | float):
        return ""
    if data.get("kind") == "low":
        return _(
            "Down to %(peak).1f °C, below the lowest %(limit).1f °C, for %(minutes)s min.",
            peak=peak,
            limit=limit,
            minutes=minutes,
        )
    return _(
        "Up to %(peak).1f °C, above the highest %(limit).1f °C, for %(minutes)s min.",
        peak=peak,
        limit=limit,
        minutes=minutes,
    )


def carrier_label(code: str) -> str:
    """A carrier's name in the reader's language."""
    carrier = CARRIERS.get(code or "")
    if carrier is None:
        return code or ""
    return carrier.label(str(get_locale() or "zh"))


def shipment_status_label(status: ShipmentStatus) -> str:
    from logistics.forms import STATUS_LABELS

    return str(STATUS_LABELS.get(status, status.value))
