"""Logistics rules: read points, readers and tag reads, packing, shipments, cold chain.

Functions take a session and plain values, raise DomainError subclasses and never commit
(the view, API handler, CLI or task does, once). Every step a parcel or unit takes is
recorded as an EPCIS event through traceability's ``append_event``, so the events join
the hash chains: an event naming unit SGTINs (or lot quantities) goes into the chain of
the first batch it names and is linked to every batch it names, as an EPCIS capture
would; an event naming only parcel SSCCs goes into the cooperative's chain.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from logistics import coldchain, readers
from logistics.carriers import CARRIERS, OWN_DELIVERY, WaybillError, validate_waybill
from logistics.epc import PARCEL_SSCC_EXTENSION, canonical_epc, sscc96_hex
from logistics.interfaces import TrackingStatus, TrackingUpdate
from logistics.models import (
    DEFAULT_BIZ_STEP,
    READ_BIZ_STEPS,
    Checkpoint,
    CheckpointKind,
    Excursion,
    Parcel,
    ParcelItem,
    ParcelStatus,
    QuarantinedEpc,
    QuarantineReason,
    Reader,
    ReadPoint,
    ReadPointKind,
    ReadStatus,
    Shipment,
    ShipmentStatus,
    TagRead,
    TemperatureReading,
)
from market import places
from market.auth.models import Role, User
from market.catalog.models import Product
from market.cooperatives.models import Cooperative
from market.errors import ConflictError, DomainError, NotFoundError
from market.orders import services as orders
from market.orders.models import Order, OrderLine, OrderStatus
from market.types import utcnow
from traceability import codes, epcis
from traceability import services as trace
from traceability.models import ApiToken, Batch, CodeKind, TraceCode

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The API token scope that lets a reader push its reads.
READER_SCOPE = "rfid"
#: JSON-LD prefix of this platform's own vocabulary (dispositions CBV has no word for).
OWN_VOCAB = "urn:yuenong:"
#: Tag reads turned into events per transaction.
PROCESS_CHUNK = 1000
#: Most temperature readings one request may carry.
MAX_READINGS = 5000
#: Events are not recorded for times further in the future than this (clock skew).
CLOCK_SKEW = timedelta(minutes=5)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class LogisticsError(DomainError):
    code = "invalid"


class ReaderAuthError(DomainError):
    """A reader's request that cannot be let in; ``status`` is the HTTP answer."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message, code=code)
        self.status = status


class PackError(LogisticsError):
    """A packing that cannot be done; ``line_id`` names the order line it concerns."""

    def __init__(self, message: str, *, code: str, field: str | None = None, line_id=None):
        super().__init__(message, code=code, field=field)
        self.line_id = line_id


def _clean(value: str | None, limit: int, field_name: str, *, required: bool = False) -> str:
    text = " ".join((value or "").split())
    if required and not text:
        raise LogisticsError(f"{field_name} is required", field=field_name, code="required")
    if len(text) > limit:
        raise LogisticsError(f"{field_name} is too long", field=field_name, code="too_long")
    return text


def _check_time(when: datetime, field_name: str, now: datetime | None = None) -> datetime:
    if when.tzinfo is None:
        raise ValueError("naive datetime")
    if when > (now or utcnow()) + CLOCK_SKEW:
        raise LogisticsError("time in the future", field=field_name, code="future_date")
    return when.astimezone(UTC)


def _scope_of(cooperative_id: int | None) -> str:
    return "platform" if cooperative_id is None else f"coop:{cooperative_id}"


def _hash_key(*parts: object) -> str:
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# --------------------------------------------------------------------------------------
# Read points
# --------------------------------------------------------------------------------------


def owner_gln(company_prefix: str, cooperative_id: int | None) -> str:
    """The GLN of a cooperative's premises (as traceability's SGLNs), or the platform's."""
    return codes.make_gln(company_prefix, cooperative_id or 0)


def _read_point_values(
    name: str, kind: ReadPointKind | str, division_code: str, biz_step: str | None
) -> dict[str, Any]:
    try:
        kind = ReadPointKind(kind)
    except ValueError:
        raise LogisticsError("unknown kind", field="kind", code="kind") from None
    if not places.get(division_code or ""):
        raise LogisticsError("unknown division", field="division_code", code="invalid_division")
    step = biz_step or DEFAULT_BIZ_STEP[kind]
    if step not in READ_BIZ_STEPS:
        raise LogisticsError("unknown bizStep", field="biz_step", code="biz_step")
    return {
        "name": _clean(name, 60, "name", required=True),
        "kind": kind,
        "division_code": division_code,
        "biz_step": step,
    }


def create_read_point(
    session: Session,
    *,
    cooperative_id: int | None,
    name: str,
    kind: ReadPointKind | str,
    division_code: str,
    biz_step: str | None = None,
    company_prefix: str,
) -> ReadPoint:
    """Register a warehouse, cold store, gate or vehicle; it gets an SGLN: the owner's GLN
    with the read point's number as extension (AI 254)."""
    if cooperative_id is not None and session.get(Cooperative, cooperative_id) is None:
        raise NotFoundError("no such cooperative")
    values = _read_point_values(name, kind, division_code, biz_step)
    gln = owner_gln(company_prefix, cooperative_id)
    point = ReadPoint(
        cooperative_id=cooperative_id,
        gln=gln,
        # A placeholder until the id (the extension) is known.
        sgln=f"pending:{_hash_key(gln, utcnow().isoformat(), id(values))}",
        **values,
    )
    session.add(point)
    session.flush()
    point.sgln = codes.sgln_uri(company_prefix, gln, str(point.id))
    session.flush()
    return point


def update_read_point(
    session: Session,
    read_point_id: int,
    *,
    name: str,
    kind: ReadPointKind | str,
    division_code: str,
    biz_step: str | None,
    active: bool = True,
) -> ReadPoint:
    """Rename, re-place or switch off a read point (its SGLN never changes)."""
    point = get_read_point(session, read_point_id)
    for key, value in _read_point_values(name, kind, division_code, biz_step).items():
        setattr(point, key, value)
    point.active = bool(active)
    session.flush()
    return point


def get_read_point(session: Session, read_point_id: int) -> ReadPoint:
    point = session.get(ReadPoint, read_point_id)
    if point is None:
        raise NotFoundError("no such read point")
    return point


def read_points_for(session: Session, cooperative_id: int | None) -> list[ReadPoint]:
    """A cooperative's read points, or (None) the platform's."""
    cond = (
        ReadPoint.cooperative_id.is_(None)
        if cooperative_id is None
        else ReadPoint.cooperative_id == cooperative_id
    )
    return list(session.scalars(select(ReadPoint).where(cond).order_by(ReadPoint.name)))


# --------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------


def _check_reader_values(
    session: Session,
    cooperative_id: int | None,
    *,
    name: str,
    model: str,
    read_point_id: int,
    antenna_map: Mapping[Any, Any] | None,
    dedupe_window_s: int,
) -> dict[str, Any]:
    def own_point(point_id: object, field_name: str) -> ReadPoint:
        point = session.get(ReadPoint, point_id) if isinstance(point_id, int) else None
        if point is None or point.cooperative_id != cooperative_id:
            raise LogisticsError(
                "not one of the owner's read points", field=field_name, code="read_point"
            )
        return point

    own_point(read_point_id, "read_point_id")
    try:
        mapping = readers.check_antenna_map(antenna_map or {})
    except ValueError as exc:
        raise LogisticsError(str(exc), field="antenna_map", code="antenna_map") from None
    for point_id in mapping.values():
        if not point_id.isdigit():
            raise LogisticsError("unknown read point", field="antenna_map", code="antenna_map")
        own_point(int(point_id), "antenna_map")
    if (
        isinstance(dedupe_window_s, bool)
        or not isinstance(dedupe_window_s, int)
        or not 1 <= dedupe_window_s <= 3600
    ):
        raise LogisticsError("window out of range", field="dedupe_window_s", code="range")
    return {
        "name": _clean(name, 60, "name", required=True),
        "model": _clean(model, 60, "model"),
        "read_point_id": read_point_id,
        "antenna_map": mapping,
        "dedupe_window_s": dedupe_window_s,
    }


def _mint_reader_token(
    session: Session, reader: Reader, user_id: int | None
) -> tuple[ApiToken, str]:
    token, plain = trace.create_token(
        session,
        name=f"RFID {reader.name}"[:60],
        scopes=[READER_SCOPE],
        cooperative_id=reader.cooperative_id,
        user_id=user_id,
    )
    reader.token_id = token.id
    return token, plain


def register_reader(
    session: Session,
    *,
    cooperative_id: int | None,
    name: str,
    read_point_id: int,
    model: str = "",
    antenna_map: Mapping[Any, Any] | None = None,
    dedupe_window_s: int = 30,
    local_time: bool = False,
    user_id: int | None = None,
) -> tuple[Reader, str]:
    """Register a reader and mint its API token; returns the reader and the token (shown
    once, never stored)."""
    values = _check_reader_values(
        session,
        cooperative_id,
        name=name,
        model=model,
        read_point_id=read_point_id,
        antenna_map=antenna_map,
        dedupe_window_s=dedupe_window_s,
    )
    reader = Reader(cooperative_id=cooperative_id, local_time=bool(local_time), **values)
    session.add(reader)
    session.flush()
    _token, plain = _mint_reader_token(session, reader, user_id)
    session.flush()
    return reader, plain


def update_reader(
    session: Session,
    reader_id: int,
    *,
    name: str,
    read_point_id: int,
    model: str = "",
    antenna_map: Mapping[Any, Any] | None = None,
    dedupe_window_s: int = 30,
    local_time: bool = False,
    active: bool = True,
) -> Reader:
    reader = get_reader(session, reader_id)
    values = _check_reader_values(
        session,
        reader.cooperative_id,
        name=name,
        model=model,
        read_point_id=read_point_id,
        antenna_map=antenna_map,
        dedupe_window_s=dedupe_window_s,
    )
    for key, value in values.items():
        setattr(reader, key, value)
    reader.local_time = bool(local_time)
    reader.active = bool(active)
    session.flush()
    return reader


def rotate_reader_token(session: Session, reader_id: int, *, user_id: int | None) -> str:
    """Revoke the reader's token and mint a new one (returned; shown once)."""
    reader = get_reader(session, reader_id)
    if reader.token_id is not None:
        trace.revoke_token(session, reader.token_id)
    _token, plain = _mint_reader_token(session, reader, user_id)
    session.flush()
    return plain


def get_reader(session: Session, reader_id: int) -> Reader:
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise NotFoundError("no such reader")
    return reader


def readers_for(session: Session, cooperative_id: int | None) -> list[Reader]:
    cond = (
        Reader.cooperative_id.is_(None)
        if cooperative_id is None
        else Reader.cooperative_id == cooperative_id
    )
    return list(
        session.scalars(
            select(Reader)
            .options(selectinload(Reader.read_point), selectinload(Reader.token))
            .where(cond)
            .order_by(Reader.name)
        )
    )


def authenticate_reader(
    session: Session, reader_id: int, authorization: str | None, *, now: datetime | None = None
) -> Reader:
    """The reader, if ``authorization`` carries its own active token; else ReaderAuthError."""
    kind, _sep, value = (authorization or "").partition(" ")
    if kind.lower() != "bearer" or not value.strip():
        raise ReaderAuthError(
            "unauthorized", "Send the reader's token: Authorization: Bearer <token>", 401
        )
    token = trace.authenticate_token(session, value.strip(), now=now)
    if token is None:
        raise ReaderAuthError("unauthorized", "The token is unknown or revoked", 401)
    reader = session.get(Reader, reader_id)
    if reader is None or reader.token_id != token.id:
        # Whether the reader exists is only told to its own token.
        raise ReaderAuthError("forbidden", "This token does not belong to this reader", 403)
    if READER_SCOPE not in (token.scopes or []):
        raise ReaderAuthError("forbidden", f"The token lacks the {READER_SCOPE!r} scope", 403)
    if not reader.active:
        raise ReaderAuthError("reader_disabled", "This reader is switched off", 403)
    return reader


# --------------------------------------------------------------------------------------
# Tag read ingest
# --------------------------------------------------------------------------------------


@dataclass
class IngestResult:
    """What one POST of reads did."""

    #: Reads parsed from the body, and kept after de-duplication within the body.
    parsed: int = 0
    kept: int = 0
    #: Rows stored now; the rest were stored by an earlier post (same dedupe key).
    stored: int = 0
    duplicates: int = 0
    #: Reader events that carry no read (Impinj inventoryStatus ...).
    ignored: int = 0
    errors: list[readers.ReadError] = field(default_factory=list)


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(TagRead.__table__)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(TagRead.__table__.c.id)
    )
    return len(session.execute(stmt, rows).all())


def ingest_reads(
    session: Session,
    reader: Reader,
    body: bytes,
    content_type: str | None,
    *,
    now: datetime | None = None,
) -> IngestResult:
    """Parse, de-duplicate and store a reader's pushed reads (events come later, from
    the worker: :func:`process_pending_reads`).

    EPCs are canonicalised first (a unit's SGTIN-96 hex and its URI are one tag), then
    reads of one tag on one antenna within the reader's window are kept once, and each
    kept read is stored under its dedupe key with "on conflict do nothing": posting the
    same body again stores nothing. Raises readers.ReadPayloadError for an unusable body.
    """
    now = now or utcnow()
    parsed = readers.parse_reads(
        body, content_type, naive_tz=SHANGHAI if reader.local_time else None, received_at=now
    )
    window = timedelta(seconds=reader.dedupe_window_s)
    errors = list(parsed.errors)
    usable = []
    for read in parsed.reads:
        if read.seen_at > now + CLOCK_SKEW:
            # A reader clock running ahead would file the read before things that
            # happen after it; refused like a reader whose clock was never set.
            errors.append(
                readers.ReadError(
                    read.raw_index,
                    "bad_time",
                    "The read time is in the future; is the reader's clock right?",
                )
            )
        else:
            usable.append(read)
    errors.sort(key=lambda e: e.index)
    canonical = [replace(r, epc=canonical_epc(r.epc)) for r in usable]
    kept = readers.dedupe(canonical, window)
    default_point = str(reader.read_point_id)
    rows = [
        {
            "dedupe_key": readers.dedupe_key(read, window, reader_id=reader.id),
            "reader_id": reader.id,
            "epc": read.epc,
            "antenna": read.antenna,
            "read_point_id": int(
                readers.read_point_for(read.antenna, reader.antenna_map, default_point)
            ),
            "rssi_dbm": read.rssi_dbm,
            "seen_count": read.seen_count,
            "seen_at": read.seen_at,
            "received_at": now,
            "status": ReadStatus.PENDING,
        }
        for read in kept
    ]
    stored = _insert_ignoring_duplicates(session, rows)
    if reader.last_seen_at is None or now - reader.last_seen_at > timedelta(seconds=10):
        reader.last_seen_at = now
    session.flush()
    return IngestResult(
        parsed=len(usable),
        kept=len(kept),
        stored=stored,
        duplicates=len(kept) - stored,
        ignored=parsed.ignored,
        errors=errors,
    )


# --------------------------------------------------------------------------------------
# From reads to events (the worker)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What an EPC names on this platform: a unit code or a parcel."""

    kind: str  # "unit" | "parcel"
    cooperative_id: int
    batch_id: int | None = None
    parcel_id: int | None = None


def resolve_epcs(session: Session, epcs: Iterable[str]) -> dict[str, Target]:
    """The unit codes and parcels the (canonical) EPCs name; unknown ones are left out."""
    found: dict[str, Target] = {}
    wanted_units: dict[tuple[str, str], str] = {}
    parcels: list[str] = []
    for epc in set(epcs):
        if epc.startswith("urn:epc:id:sgtin:"):
            parsed = epcis.parse_identifier(epc)
            if parsed is not None and parsed.serial is not None:
                wanted_units[(parsed.gtin, parsed.serial)] = epc
        elif epc.startswith("urn:epc:id:sscc:"):
            parcels.append(epc)
    serials = sorted({serial for _gtin, serial in wanted_units})
    for start in range(0, len(serials), 500):
        rows = session.execute(
            select(TraceCode.gtin, TraceCode.serial, TraceCode.batch_id, Batch.cooperative_id)
            .join(Batch, Batch.id == TraceCode.batch_id)
            .where(
                TraceCode.kind == CodeKind.UNIT, TraceCode.serial.in_(serials[start : start + 500])
            )
        ).all()
        for gtin, serial, batch_id, coop_id in rows:
            epc = wanted_units.get((gtin, serial))
            if epc is not None:
                found[epc] = Target("unit", coop_id, batch_id=batch_id)
    for start in range(0, len(parcels), 500):
        rows = session.execute(
            select(Parcel.sscc_uri, Parcel.id, Parcel.cooperative_id).where(
                Parcel.sscc_uri.in_(parcels[start : start + 500])
            )
        ).all()
        for uri, parcel_id, coop_id in rows:
            found[uri] = Target("parcel", coop_id, parcel_id=parcel_id)
    return found


def _disposition_for(biz_step: str) -> str | None:
    if biz_step in ("arriving", "departing", "transporting", "loading", "unloading", "shipping"):
        return "in_transit"
    if biz_step == "receiving":
        return "in_progress"
    if biz_step == "storing":
        return "sellable_not_accessible"
    return None


@dataclass(frozen=True)
class _Read:
    """What the worker needs of a stored read (plain values: no ORM objects per read)."""

    id: int
    epc: str
    read_point_id: int | None
    seen_at: datetime


_READ_COLUMNS = (TagRead.id, TagRead.epc, TagRead.read_point_id, TagRead.seen_at)


def _quarantine(
    session: Session,
    reader: Reader,
    read: _Read,
    reason: QuarantineReason,
) -> None:
    scope = _scope_of(reader.cooperative_id)
    entry = session.scalars(
        select(QuarantinedEpc).where(QuarantinedEpc.scope == scope, QuarantinedEpc.epc == read.epc)
    ).first()
    if entry is None:
        try:
            with session.begin_nested():
                entry = QuarantinedEpc(
                    scope=scope,
                    cooperative_id=reader.cooperative_id,
                    epc=read.epc,
                    reason=reason,
                    read_count=0,
                    first_seen_at=read.seen_at,
                    last_seen_at=read.seen_at,
                )
                session.add(entry)
        except IntegrityError:
            entry = session.scalars(
                select(QuarantinedEpc).where(
                    QuarantinedEpc.scope == scope, QuarantinedEpc.epc == read.epc
                )
            ).one()
    entry.read_count += 1
    entry.reason = reason
    entry.first_seen_at = min(entry.first_seen_at, read.seen_at)
    if read.seen_at >= entry.last_seen_at:
        entry.last_seen_at = read.seen_at
        entry.last_reader_id = reader.id
        entry.last_read_point_id = read.read_point_id
    # Seen again after it was dismissed: back on the list.
    entry.resolved_at = None
    entry.resolution = ""


@dataclass
class ProcessResult:
    recorded: int = 0
    merged: int = 0
    quarantined: int = 0
    events: int = 0


class _Recorded:
    """Recorded reads of the batch's tags near its times, to join a straddling burst to
    the event already made for it (one query for the whole batch)."""

    def __init__(self, session: Session, reads: Sequence[_Read], window: timedelta) -> None:
        self.window = window
        self.found: dict[tuple[str, int | None], list[tuple[datetime, int]]] = defaultdict(list)
        if not reads:
            return
        epcs = sorted({r.epc for r in reads})
        low = min(r.seen_at for r in reads) - window
        high = max(r.seen_at for r in reads) + window
        for start in range(0, len(epcs), 500):
            rows = session.execute(
                select(TagRead.epc, TagRead.read_point_id, TagRead.seen_at, TagRead.event_pk).where(
                    TagRead.epc.in_(epcs[start : start + 500]),
                    TagRead.status == ReadStatus.RECORDED,
                    TagRead.seen_at >= low,
                    TagRead.seen_at <= high,
                )
            ).all()
            for epc, point_id, seen_at, event_pk in rows:
                self.found[(epc, point_id)].append((seen_at, event_pk))

    def event_for(self, read: _Read) -> int | None:
        for seen_at, event_pk in self.found.get((read.epc, read.read_point_id), ()):
            if abs(seen_at - read.seen_at) <= self.window:
                return event_pk
        return None


def _set_status(
    session: Session, ids: list[int], status: ReadStatus, event_pk: int | None = None
) -> None:
    for start in range(0, len(ids), 500):
        session.execute(
            update(TagRead)
            .where(TagRead.id.in_(ids[start : start + 500]))
            .values(status=status, event_pk=event_pk),
            execution_options={"synchronize_session": False},
        )


def record_reads(
    session: Session,
    reader: Reader,
    reads: Sequence[_Read],
    *,
    company_prefix: str,
) -> ProcessResult:
    """Turn stored reads into EPCIS ObjectEvents (OBSERVE) at their read points.

    Unknown EPCs, and other cooperatives' goods seen by a cooperative's reader, go to the
    quarantine. A tag already recorded at the same read point within the window (a burst
    that straddled two posts) joins that event instead of making a new one. The rest are
    grouped: the tags a read point saw within one window (a parcel and its units passing
    a gate) become one event, named in time order.
    """
    result = ProcessResult()
    window = timedelta(seconds=reader.dedupe_window_s)
    targets = resolve_epcs(session, (r.epc for r in reads))
    recorded = _Recorded(session, reads, window)
    points = {
        p.id: p
        for p in session.scalars(
            select(ReadPoint).where(
                ReadPoint.id.in_({r.read_point_id for r in reads} | {reader.read_point_id})
            )
        )
    }
    quarantined: list[int] = []
    merged: dict[int, list[int]] = defaultdict(list)
    groups: dict[tuple[int, int], list[list[_Read]]] = defaultdict(list)
    for read in sorted(reads, key=lambda r: (r.seen_at, r.id)):
        target = targets.get(read.epc)
        if target is None:
            _quarantine(session, reader, read, QuarantineReason.UNKNOWN)
            quarantined.append(read.id)
            continue
        if reader.cooperative_id is not None and target.cooperative_id != reader.cooperative_id:
            _quarantine(session, reader, read, QuarantineReason.OTHER_COOPERATIVE)
            quarantined.append(read.id)
            continue
        if read.read_point_id not in points:
            # The read point was deleted since: the reader's own stands in.
            read = replace(read, read_point_id=reader.read_point_id)
        existing = recorded.event_for(read)
        if existing is not None:
            merged[existing].append(read.id)
            continue
        runs = groups[(read.read_point_id, target.cooperative_id)]
        if runs and read.seen_at - runs[-1][0].seen_at <= window:
            runs[-1].append(read)
        else:
            runs.append([read])
    for (point_id, coop_id), runs in groups.items():
        point = points[point_id]
        for run in runs:
            epcs = list(dict.fromkeys(r.epc for r in run))
            batch_ids = sorted(
                {targets[e].batch_id for e in epcs if targets[e].batch_id is not None}
            )
            event = epcis.object_event(
                event_time=run[0].seen_at,
                action="OBSERVE",
                biz_step=point.biz_step,
                disposition=_disposition_for(point.biz_step),
                read_point=point.sgln,
                biz_location=point.sgln
                if point.kind in (ReadPointKind.WAREHOUSE, ReadPointKind.COLD_STORE)
                else None,
                epcs=epcs,
                extensions={"placeCode": point.division_code},
            )
            row = trace.append_event(
                session,
                event,
                chain_batch_id=batch_ids[0] if batch_ids else None,
                linked_batch_ids=batch_ids,
                owner_cooperative_id=coop_id,
                source="rfid",
                token_id=reader.token_id,
            )
            _set_status(session, [r.id for r in run], ReadStatus.RECORDED, row.id)
            result.events += 1
            result.recorded += len(run)
    for event_pk, ids in merged.items():
        _set_status(session, ids, ReadStatus.MERGED, event_pk)
        result.merged += len(ids)
    _set_status(session, quarantined, ReadStatus.QUARANTINED)
    result.quarantined = len(quarantined)
    session.flush()
    return result


def process_pending_reads(
    session: Session, reader_id: int, *, company_prefix: str, limit: int = PROCESS_CHUNK
) -> ProcessResult:
    """Record up to ``limit`` of the reader's pending reads (oldest first).

    On PostgreSQL the rows are locked with SKIP LOCKED, so two workers never record the
    same read twice; the caller commits and calls again while reads are left.
    """
    reader = get_reader(session, reader_id)
    query = (
        select(*_READ_COLUMNS)
        .where(TagRead.reader_id == reader.id, TagRead.status == ReadStatus.PENDING)
        .order_by(TagRead.seen_at, TagRead.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    reads = [_Read(*row) for row in session.execute(query)]
    if not reads:
        return ProcessResult()
    if len(reads) == limit:
        # Take the rest of the last burst too, so a chunk boundary does not cut a pallet
        # passing the gate into two events.
        rest = (
            select(*_READ_COLUMNS)
            .where(
                TagRead.reader_id == reader.id,
                TagRead.status == ReadStatus.PENDING,
                TagRead.seen_at <= reads[-1].seen_at + timedelta(seconds=reader.dedupe_window_s),
                TagRead.id.not_in([r.id for r in reads]),
            )
            .order_by(TagRead.seen_at, TagRead.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            rest = rest.with_for_update(skip_locked=True)
        reads += [_Read(*row) for row in session.execute(rest)]
    return record_reads(session, reader, reads, company_prefix=company_prefix)


def pending_reader_ids(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(TagRead.reader_id).where(TagRead.status == ReadStatus.PENDING).distinct()
        )
    )


# --------------------------------------------------------------------------------------
# Quarantine
# --------------------------------------------------------------------------------------


def quarantine_for(
    session: Session, cooperative_id: int | None, *, include_resolved: bool = False
) -> list[QuarantinedEpc]:
    query = (
        select(QuarantinedEpc)
        .options(
            selectinload(QuarantinedEpc.last_reader),
            selectinload(QuarantinedEpc.last_read_point),
        )
        .where(QuarantinedEpc.scope == _scope_of(cooperative_id))
        .order_by(QuarantinedEpc.last_seen_at.desc())
        .limit(500)
    )
    if not include_resolved:
        query = query.where(QuarantinedEpc.resolved_at.is_(None))
    return list(session.scalars(query))


def get_quarantined(session: Session, entry_id: int) -> QuarantinedEpc:
    entry = session.get(QuarantinedEpc, entry_id)
    if entry is None:
        raise NotFoundError("no such quarantine entry")
    return entry


def dismiss_quarantined(session: Session, entry_id: int) -> QuarantinedEpc:
    """Take an entry off the list (its reads stay stored); it returns if seen again."""
    entry = get_quarantined(session, entry_id)
    if entry.resolved_at is None:
        entry.resolved_at = utcnow()
        entry.resolution = "dismissed"
    return entry


def retry_quarantined(session: Session, entry_id: int, *, company_prefix: str) -> ProcessResult:
    """Record the entry's reads after all, now that the EPC is known (a parcel packed, a
    code issued after its tag was read). Raises NotFoundError if it is still unknown."""
    entry = get_quarantined(session, entry_id)
    target = resolve_epcs(session, [entry.epc]).get(entry.epc)
    if target is None or (
        entry.cooperative_id is not None and target.cooperative_id != entry.cooperative_id
    ):
        raise LogisticsError("the EPC is still unknown", code="still_unknown")
    reads = list(
        session.execute(
            select(*_READ_COLUMNS, TagRead.reader_id)
            .join(Reader, Reader.id == TagRead.reader_id)
            .where(
                TagRead.epc == entry.epc,
                TagRead.status == ReadStatus.QUARANTINED,
                Reader.cooperative_id.is_(None)
                if entry.cooperative_id is None
                else Reader.cooperative_id == entry.cooperative_id,
            )
            .order_by(TagRead.seen_at)
        )
    )
    result = ProcessResult()
    by_reader: dict[int, list[_Read]] = defaultdict(list)
    for read_id, epc, point_id, seen_at, reader_id in reads:
        by_reader[reader_id].append(_Read(read_id, epc, point_id, seen_at))
    for reader_id, items in by_reader.items():
        done = record_reads(
            session, get_reader(session, reader_id), items, company_prefix=company_prefix
        )
        result.recorded += done.recorded
        result.merged += done.merged
        result.events += done.events
    entry.resolved_at = utcnow()
    entry.resolution = "recorded"
    return result


# --------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------


@dataclass
class LineAssignment:
    """What goes into the parcel for one order line: unit codes as scanned (Digital
    Links, SGTIN-96 hex, EPC URIs or bare serials), and/or a quantity of one batch."""

    line_id: int
    codes: Sequence[str] = ()
    batch_id: int | None = None
    quantity: int = 0


def lines_to_pack(order: Order, actor: User) -> list[OrderLine]:
    """The order's lines not packed yet that ``actor`` packs (the admin: all of them)."""
    # The same split as the orders service's pack(): the admin packs every line.
    mine = (
        order.lines
        if actor.role is Role.COOP_ADMIN
        else [line for line in order.lines if line.farmer_id == actor.id]
    )
    return [line for line in mine if line.packed_at is None]


def resolve_unit_code(session: Session, text: str, *, product: Product | None) -> TraceCode | None:
    """The unit code a scanned or typed text names: a Digital Link, an SGTIN-96 EPC (hex
    or URI), or a bare serial of one of ``product``'s codes."""
    value = (text or "").strip()
    if not value:
        return None
    gtin = serial = None
    if "/01/" in value:
        try:
            link = codes.parse_digital_link(value)
        except codes.CodeError:
            return None
        gtin, serial = link.gtin, link.serial
    elif value.lower().startswith("urn:epc:") or (len(value) == 24 and value[:2] == "30"):
        try:
            gtin, serial, _prefix = codes.decode_sgtin96(
                value.upper() if len(value) == 24 else value
            )
        except codes.CodeError:
            return None
    elif value.isdigit() and product is not None and product.gtin:
        gtin, serial = product.gtin, value
    if gtin is None or serial is None:
        return None
    return trace.find_unit_code(session, gtin, serial)


def _parcel_sscc(company_prefix: str, parcel_id: int) -> str:
    try:
        return codes.make_sscc(company_prefix, PARCEL_SSCC_EXTENSION, parcel_id)
    except codes.CodeError:
        raise LogisticsError(
            "the company prefix leaves no more SSCC serial numbers", code="sscc_exhausted"
        ) from None


def _new_parcel(
    session: Session, order: Order, *, company_prefix: str, user_id: int | None, now: datetime
) -> Parcel:
    parcel = unnumbered_parcel(order, user_id=user_id, now=now)
    session.add(parcel)
    session.flush()
    number_parcel(parcel, company_prefix)
    session.flush()
    return parcel


def unnumbered_parcel(order: Order, *, user_id: int | None, now: datetime) -> Parcel:
    """A new parcel of the order, with placeholders until its id (its SSCC serial) is
    known: add it, flush, then :func:`number_parcel`."""
    placeholder = _hash_key("parcel", order.id, now.isoformat(), user_id)
    return Parcel(
        order_id=order.id,
        cooperative_id=order.cooperative_id,
        sscc=placeholder[:18],
        sscc_uri=f"pending:{placeholder}",
        epc_hex=placeholder[:24],
        packed_by_id=user_id,
        packed_at=now,
    )


def number_parcel(parcel: Parcel, company_prefix: str) -> None:
    """Give a flushed parcel its SSCC (extension digit 1, serial its id), the SSCC's
    EPC URI and its SSCC-96 tag."""
    parcel.sscc = _parcel_sscc(company_prefix, parcel.id)
    parcel.sscc_uri = codes.sscc_uri(company_prefix, parcel.sscc)
    parcel.epc_hex = sscc96_hex(parcel.sscc_uri)


def order_urn(order: Order) -> str:
    return f"{OWN_VOCAB}order:{order.number}"


def waybill_urn(shipment: Shipment) -> str:
    return f"{OWN_VOCAB}waybill:{shipment.carrier_code}:{shipment.waybill}"


def _plan_line(
    session: Session,
    order: Order,
    line: OrderLine,
    assignment: LineAssignment,
    taken_codes: set[int],
) -> list[tuple[Batch, TraceCode | None, int]]:
    """(batch, unit code or None, quantity) items for one line, all checked."""
    product = session.get(Product, line.product_id) if line.product_id else None
    items: list[tuple[Batch, TraceCode | None, int]] = []
    for text in [t for t in assignment.codes if t and t.strip()]:
        code = resolve_unit_code(session, text, product=product)
        if code is None:
            raise PackError(
                f"unknown code {text[:40]!r}", code="code_unknown", field="codes", line_id=line.id
            )
        batch = code.batch
        if batch.cooperative_id != order.cooperative_id or batch.product_id != line.product_id:
            raise PackError(
                "a code of another product",
                code="code_other_product",
                field="codes",
                line_id=line.id,
            )
        if code.id in taken_codes:
            raise PackError("a code given twice", code="code_twice", field="codes", line_id=line.id)
        packed = session.scalar(select(ParcelItem.id).where(ParcelItem.code_id == code.id))
        if packed is not None:
            raise PackError(
                "the unit is already packed", code="code_packed", field="codes", line_id=line.id
            )
        taken_codes.add(code.id)
        items.append((batch, code, 1))
    if assignment.batch_id:
        batch = session.get(Batch, assignment.batch_id)
        if batch is None or batch.product_id != line.product_id:
            raise PackError(
                "not a batch of this product", code="batch", field="batch_id", line_id=line.id
            )
        quantity = assignment.quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise PackError(
                "quantity out of range", code="quantity", field="quantity", line_id=line.id
            )
        items.append((batch, None, quantity))
    elif assignment.quantity:
        raise PackError("choose the batch", code="batch", field="batch_id", line_id=line.id)
    total = sum(quantity for _b, _c, quantity in items)
    if total != line.quantity:
        raise PackError(
            f"{total} assigned, the line has {line.quantity}",
            code="line_count",
            field="codes" if not assignment.batch_id else "quantity",
            line_id=line.id,
        )
    return items


def pack_order(
    session: Session,
    order_id: int,
    actor: User,
    assignments: Sequence[LineAssignment],
    *,
    company_prefix: str,
    now: datetime | None = None,
) -> Parcel:
    """Pack the actor's unpacked lines of a paid order into a new parcel with an SSCC.

    Each line gets exactly its quantity of unit codes (scanned) and/or of one batch. An
    AggregationEvent (ADD, packing) records the units and lot quantities under the
    parcel's SSCC; then the lines are marked packed through the orders service, which
    moves the order to "packed" once every line is.
    """
    now = now or utcnow()
    order = orders.get_order(session, order_id, lock=True)
    if order.status is not OrderStatus.PAID:
        raise PackError("the order is not waiting to be packed", code="not_packable")
    lines = lines_to_pack(order, actor)
    if not lines:
        raise PackError("nothing left to pack", code="nothing_to_pack")
    by_line = {a.line_id: a for a in assignments}
    taken: set[int] = set()
    plan: list[tuple[OrderLine, list[tuple[Batch, TraceCode | None, int]]]] = []
    for line in lines:
        assignment = by_line.get(line.id) or LineAssignment(line.id)
        plan.append((line, _plan_line(session, order, line, assignment, taken)))
    parcel = _new_parcel(session, order, company_prefix=company_prefix, user_id=actor.id, now=now)
    children: list[str] = []
    quantities: dict[int, tuple[Batch, int]] = {}
    for line, items in plan:
        for batch, code, quantity in items:
            parcel.items.append(
                ParcelItem(
                    order_line_id=line.id,
                    batch_id=batch.id,
                    code_id=code.id if code else None,
                    quantity=quantity,
                )
            )
            if code is not None:
                children.append(codes.sgtin_pure_uri(company_prefix, code.gtin, code.serial))
            else:
                previous = quantities.get(batch.id, (batch, 0))[1]
                quantities[batch.id] = (batch, previous + quantity)
    session.flush()
    batch_ids = sorted({item.batch_id for item in parcel.items})
    event = packing_event(
        order,
        parcel,
        children=children,
        quantities=list(quantities.values()),
        company_prefix=company_prefix,
        now=now,
    )
    row = trace.append_event(
        session,
        event,
        chain_batch_id=batch_ids[0] if batch_ids else None,
        linked_batch_ids=batch_ids,
        owner_cooperative_id=order.cooperative_id,
        source="ui",
        recorded_by_id=actor.id,
        now=now,
    )
    parcel.pack_event_pk = row.id
    orders.pack(session, order.id, actor)
    session.flush()
    return parcel


def packing_event(
    order: Order,
    parcel: Parcel,
    *,
    children: Sequence[str],
    quantities: Sequence[tuple[Batch, int]],
    company_prefix: str,
    now: datetime,
) -> dict[str, Any]:
    """The AggregationEvent (ADD, packing) that puts unit SGTINs ``children`` and
    (batch, sale units) ``quantities`` under the parcel's SSCC. It goes into the chain
    of the first batch packed (linked to every one), by the order's cooperative."""
    location = trace.cooperative_location(company_prefix, order.cooperative_id)
    event = epcis.aggregation_event(
        event_time=now,
        action="ADD",
        parent_id=parcel.sscc_uri,
        child_epcs=list(children),
        child_quantities=[
            trace.lot_quantity(company_prefix, batch, amount, unit=batch.product.unit)
            for batch, amount in quantities
        ],
        biz_step="packing",
        disposition="in_progress",
        read_point=location,
        biz_location=location,
    )
    event["bizTransactionList"] = [{"type": "po", "bizTransaction": order_urn(order)}]
    return event


def parcels_of_order(session: Session, order_id: int) -> list[Parcel]:
    return list(
        session.scalars(
            select(Parcel)
            .options(selectinload(Parcel.items))
            .where(Parcel.order_id == order_id)
            .order_by(Parcel.id)
        )
    )


def packable_batches(session: Session, product_id: int | None) -> list[Batch]:
    """Batches a line of this product can be packed from (those put on sale first)."""
    if product_id is None:
        return []
    return list(
        session.scalars(
            select(Batch)
            .where(Batch.product_id == product_id)
            .order_by((Batch.stock_added > 0).desc(), Batch.harvest_date.desc(), Batch.id.desc())
            .limit(50)
        )
    )


# --------------------------------------------------------------------------------------
# Shipments and checkpoints
# --------------------------------------------------------------------------------------


#: What each checkpoint records in EPCIS / CBV terms: (bizStep, disposition).
CHECKPOINT_EVENTS: dict[CheckpointKind, tuple[str, str | None]] = {
    CheckpointKind.ACCEPTED: ("accepting", "in_transit"),
    CheckpointKind.DEPARTED: ("departing", "in_transit"),
    CheckpointKind.IN_TRANSIT: ("transporting", "in_transit"),
    CheckpointKind.ARRIVED: ("arriving", "in_transit"),
    CheckpointKind.OUT_FOR_DELIVERY: ("transporting", "in_transit"),
    # CBV has no word for "handed to the consumer": our own term, a full URI.
    CheckpointKind.DELIVERED: ("receiving", f"{OWN_VOCAB}disp:delivered"),
    CheckpointKind.DELAYED: ("holding", "in_transit"),
    CheckpointKind.DAMAGED: ("inspecting", "damaged"),
    CheckpointKind.LOST: ("holding", f"{OWN_VOCAB}disp:lost"),
    CheckpointKind.RETURNED: ("receiving", "returned"),
}
STATUS_AFTER = {
    CheckpointKind.ACCEPTED: ShipmentStatus.ACCEPTED,
    CheckpointKind.DEPARTED: ShipmentStatus.IN_TRANSIT,
    CheckpointKind.IN_TRANSIT: ShipmentStatus.IN_TRANSIT,
    CheckpointKind.ARRIVED: ShipmentStatus.IN_TRANSIT,
    CheckpointKind.OUT_FOR_DELIVERY: ShipmentStatus.OUT_FOR_DELIVERY,
    CheckpointKind.DELIVERED: ShipmentStatus.DELIVERED,
    CheckpointKind.DELAYED: ShipmentStatus.DELAYED,
    CheckpointKind.DAMAGED: ShipmentStatus.DAMAGED,
    CheckpointKind.LOST: ShipmentStatus.LOST,
    CheckpointKind.RETURNED: ShipmentStatus.RETURNED,
}
#: Checkpoints people are told about at once.
ALERT_KINDS = frozenset(
    {
        CheckpointKind.DELAYED,
        CheckpointKind.DAMAGED,
        CheckpointKind.LOST,
        CheckpointKind.RETURNED,
        CheckpointKind.DELIVERED,
    }
)


def cold_profiles(table: Mapping[str, Any]) -> list[str]:
    """The profiles (``category:profile`` keys) the cold-chain limits know."""
    return sorted({key.split(":", 1)[1] for key in table if ":" in key})


def create_shipment(
    session: Session,
    order_id: int,
    *,
    carrier_code: str,
    waybill: str,
    actor_id: int | None,
    company_prefix: str,
    cold_profile: str = "",
    profiles: Sequence[str] = (),
    now: datetime | None = None,
) -> Shipment:
    """Hand a packed order to a carrier: check the waybill against the carrier's format,
    record the shipping event for its parcels and move the order to "shipped".

    An order packed without this module (no parcel yet) gets a parcel here, with an SSCC
    but no recorded contents, so the shipment can still be followed.
    """
    now = now or utcnow()
    order = orders.get_order(session, order_id, lock=True)
    if order.status is not OrderStatus.PACKED:
        raise LogisticsError("the order is not packed", code="not_shippable")
    carrier = CARRIERS.get(str(carrier_code).strip().upper())
    if carrier is None:
        raise WaybillError("unknown_carrier", "choose a carrier")
    if not (waybill or "").strip() and carrier.code == OWN_DELIVERY:
        waybill = order.number
    number = validate_waybill(carrier.code, waybill)
    if cold_profile and cold_profile not in profiles:
        raise LogisticsError("unknown profile", field="cold_profile", code="profile")
    taken = session.scalar(
        select(Shipment.id).where(Shipment.carrier_code == carrier.code, Shipment.waybill == number)
    )
    if taken is not None:
        raise ConflictError("waybill already used", field="waybill", code="waybill_taken")
    existing = session.scalar(select(Shipment.id).where(Shipment.order_id == order.id))
    if existing is not None:
        raise ConflictError("the order already has a shipment", code="already_shipped")
    parcels = [p for p in parcels_of_order(session, order.id) if p.shipment_id is None]
    if not parcels:
        parcels = [
            _new_parcel(session, order, company_prefix=company_prefix, user_id=actor_id, now=now)
        ]
    shipment = Shipment(
        order_id=order.id,
        cooperative_id=order.cooperative_id,
        carrier_code=carrier.code,
        waybill=number,
        status=ShipmentStatus.SHIPPED,
        cold_profile=cold_profile or "",
        created_by_id=actor_id,
        shipped_at=now,
        last_update_at=now,
    )
    session.add(shipment)
    session.flush()
    for parcel in parcels:
        parcel.shipment_id = shipment.id
        parcel.status = ParcelStatus.SHIPPED
    event = shipping_event(order, shipment, parcels, company_prefix=company_prefix, now=now)
    row = trace.append_event(
        session,
        event,
        chain_batch_id=None,
        owner_cooperative_id=order.cooperative_id,
        source="ui",
        recorded_by_id=actor_id,
        now=now,
    )
    shipment.ship_event_pk = row.id
    orders.ship(session, order.id, actor_id)
    session.flush()
    return shipment


def shipping_event(
    order: Order,
    shipment: Shipment,
    parcels: Sequence[Parcel],
    *,
    company_prefix: str,
    now: datetime,
) -> dict[str, Any]:
    """The ObjectEvent (shipping) of a shipment's parcels handed to its carrier, at the
    cooperative's premises; it goes into the cooperative's chain."""
    location = trace.cooperative_location(company_prefix, order.cooperative_id)
    event = epcis.object_event(
        event_time=now,
        action="OBSERVE",
        biz_step="shipping",
        disposition="in_transit",
        read_point=location,
        biz_location=location,
        epcs=[p.sscc_uri for p in parcels],
        extensions={"carrier": shipment.carrier_code, "waybill": shipment.waybill},
    )
    event["bizTransactionList"] = [
        {"type": "bol", "bizTransaction": waybill_urn(shipment)},
        {"type": "po", "bizTransaction": order_urn(order)},
    ]
    return event


def get_shipment(session: Session, shipment_id: int) -> Shipment:
    shipment = session.get(Shipment, shipment_id)
    if shipment is None:
        raise NotFoundError("no such shipment")
    return shipment


def shipment_of_order(session: Session, order_id: int) -> Shipment | None:
    return session.scalars(select(Shipment).where(Shipment.order_id == order_id)).first()


def find_shipment(session: Session, carrier_code: str, waybill: str) -> Shipment | None:
    return session.scalars(
        select(Shipment).where(
            Shipment.carrier_code == carrier_code.upper(), Shipment.waybill == waybill
        )
    ).first()


def shipments_for(
    session: Session, cooperative_id: int | None, *, statuses=None, limit: int = 100
) -> list[Shipment]:
    query = (
        select(Shipment)
        .options(selectinload(Shipment.order), selectinload(Shipment.parcels))
        .order_by(Shipment.shipped_at.desc(), Shipment.id.desc())
        .limit(limit)
    )
    if cooperative_id is not None:
        query = query.where(Shipment.cooperative_id == cooperative_id)
    if statuses:
        query = query.where(Shipment.status.in_(statuses))
    return list(session.scalars(query))


@dataclass
class CheckpointOutcome:
    checkpoint: Checkpoint
    #: False when the same update was recorded before (a re-sent push).
    created: bool
    #: The order moved to delivered with it.
    delivered_order: bool = False


def record_checkpoint(
    session: Session,
    shipment_id: int,
    kind: CheckpointKind | str,
    *,
    at: datetime,
    company_prefix: str,
    location: str = "",
    division_code: str | None = None,
    note: str = "",
    source: str = "manual",
    source_key: str | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> CheckpointOutcome:
    """Record a step of a shipment (by hand, or from the carrier) and its EPCIS event.

    The shipment's status follows its latest checkpoint; a delivery moves the order from
    "shipped" to "delivered" through the orders service. The same carrier update twice
    (same ``source_key``) is recorded once.
    """
    shipment = get_shipment(session, shipment_id)
    try:
        kind = CheckpointKind(kind)
    except ValueError:
        raise LogisticsError("unknown checkpoint", field="kind", code="kind") from None
    at = _check_time(at, "at", now)
    if division_code and not places.get(division_code):
        raise LogisticsError("unknown division", field="division_code", code="invalid_division")
    location = _clean(location, 60, "location")
    note = _clean(note, 200, "note")
    key = source_key or _hash_key(source, kind.value, at.isoformat(), location, note)
    existing = session.scalars(
        select(Checkpoint).where(
            Checkpoint.shipment_id == shipment.id, Checkpoint.source_key == key
        )
    ).first()
    if existing is not None:
        return CheckpointOutcome(existing, created=False)
    event = checkpoint_event(
        shipment,
        shipment.parcels,
        kind,
        at=at,
        location=location,
        division_code=division_code,
        note=note,
    )
    row = trace.append_event(
        session,
        event,
        chain_batch_id=None,
        owner_cooperative_id=shipment.cooperative_id,
        source="carrier" if source == "carrier" else "ui",
        recorded_by_id=user_id,
    )
    checkpoint = Checkpoint(
        shipment_id=shipment.id,
        kind=kind,
        at=at,
        location=location,
        division_code=division_code or None,
        note=note,
        source=source,
        source_key=key,
        recorded_by_id=user_id,
        event_pk=row.id,
    )
    session.add(checkpoint)
    if shipment.last_update_at is None or at >= shipment.last_update_at:
        shipment.status = STATUS_AFTER[kind]
        shipment.last_update_at = at
    delivered = False
    if kind is CheckpointKind.DELIVERED:
        shipment.delivered_at = shipment.delivered_at or at
        order = orders.get_order(session, shipment.order_id, lock=True)
        if order.status is OrderStatus.SHIPPED:
            orders.deliver(session, order.id, user_id)
            delivered = True
        else:
            log.info(
                "shipment %s delivered while order %s is %s; order left as it is",
                shipment.id,
                order.number,
                order.status.value,
            )
    session.flush()
    return CheckpointOutcome(checkpoint, created=True, delivered_order=delivered)


def checkpoint_event(
    shipment: Shipment,
    parcels: Sequence[Parcel],
    kind: CheckpointKind,
    *,
    at: datetime,
    location: str,
    division_code: str | None,
    note: str,
) -> dict[str, Any]:
    """The ObjectEvent of a checkpoint (``kind``'s bizStep and disposition) naming the
    shipment's parcels; it goes into the cooperative's chain."""
    biz_step, disposition = CHECKPOINT_EVENTS[kind]
    event = epcis.object_event(
        event_time=at,
        action="OBSERVE",
        biz_step=biz_step,
        disposition=disposition,
        epcs=[p.sscc_uri for p in parcels],
        extensions={
            "checkpoint": kind.value,
            "placeCode": division_code or "",
            "location": location,
            "note": note,
            "carrier": shipment.carrier_code,
            "waybill": shipment.waybill,
        },
    )
    event["bizTransactionList"] = [{"type": "bol", "bizTransaction": waybill_urn(shipment)}]
    return event


def tracking_key(update: TrackingUpdate) -> str:
    """What makes a carrier update the same update when it is pushed again."""
    return _hash_key(
        "carrier",
        update.waybill,
        update.status.value,
        update.at.isoformat(),
        update.location,
        update.message,
    )


def checkpoint_kind_for(update: TrackingUpdate) -> CheckpointKind:
    """The checkpoint a carrier's tracking update stands for."""
    status = update.status
    if status is TrackingStatus.ACCEPTED:
        return CheckpointKind.ACCEPTED
    if status is TrackingStatus.OUT_FOR_DELIVERY:
        return CheckpointKind.OUT_FOR_DELIVERY
    if status is TrackingStatus.DELIVERED:
        return CheckpointKind.DELIVERED
    if status is TrackingStatus.RETURNED:
        return CheckpointKind.RETURNED
    if status is TrackingStatus.EXCEPTION:
        return CheckpointKind.DELAYED
    message = update.message or ""
    if "到达" in message:
        return CheckpointKind.ARRIVED
    if "发出" in message or "发往" in message:
        return CheckpointKind.DEPARTED
    return CheckpointKind.IN_TRANSIT


def apply_tracking_updates(
    session: Session,
    carrier_code: str,
    updates: Sequence[TrackingUpdate],
    *,
    company_prefix: str,
    now: datetime | None = None,
) -> tuple[Shipment, list[CheckpointOutcome]]:
    """Record a carrier push (the waybill's whole history, as such services send it):
    each update once, oldest first. Raises NotFoundError for a waybill we never shipped."""
    if not updates:
        raise LogisticsError("the push carries no updates", code="empty")
    waybill = updates[0].waybill
    shipment = find_shipment(session, carrier_code, waybill)
    if shipment is None:
        raise NotFoundError(f"no shipment with waybill {waybill}")
    outcomes = []
    for item in sorted(updates, key=lambda u: u.at):
        key = tracking_key(item)
        outcomes.append(
            record_checkpoint(
                session,
                shipment.id,
                checkpoint_kind_for(item),
                at=item.at,
                company_prefix=company_prefix,
                location=item.location[:60],
                division_code=item.division_code
                if item.division_code and places.get(item.division_code)
                else None,
                note=item.message[:200],
                source="carrier",
                source_key=key,
                now=now,
            )
        )
    shipment.subscribed_at = shipment.subscribed_at or utcnow()
    return shipment, outcomes


# --------------------------------------------------------------------------------------
# Cold chain
# --------------------------------------------------------------------------------------


def shipment_category(session: Session, shipment: Shipment) -> str | None:
    """The product category whose limits apply: the first line's that has a product."""
    rows = session.execute(
        select(Product.category)
        .join(OrderLine, OrderLine.product_id == Product.id)
        .where(OrderLine.order_id == shipment.order_id)
        .order_by(OrderLine.id)
        .limit(1)
    ).first()
    return rows[0].value if rows else None


def limits_for(
    session: Session, shipment: Shipment, table: Mapping[str, coldchain.Threshold | None]
) -> coldchain.Threshold | None:
    category = shipment_category(session, shipment)
    if category is None:
        return None
    return coldchain.threshold_for(category, shipment.cold_profile or None, table)


def _device_uri(source: str) -> str | None:
    if source.startswith("reader:"):
        return f"{OWN_VOCAB}reader:{source.split(':', 1)[1]}"
    if source.startswith("logger:"):
        sensor = source.split(":", 1)[1]
        if sensor.startswith(("urn:", "http://", "https://")):
            return sensor
        safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in sensor)
        return f"{OWN_VOCAB}logger:{safe}"
    return None


@dataclass(frozen=True)
class ParcelReading:
    parcel_id: int
    reading: coldchain.Reading


def record_temperatures(
    session: Session,
    readings: Sequence[ParcelReading],
    *,
    source: str,
    table: Mapping[str, coldchain.Threshold | None],
    read_point_id: int | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> tuple[int, set[int]]:
    """Store temperature readings of parcels and record them as EPCIS sensor elements
    (one sensor_reporting ObjectEvent per parcel, readings beyond the limits marked
    ALARM_CONDITION). A reading already stored (same parcel, source and time) is skipped.
    Returns how many were stored and the shipments to check for excursions."""
    if len(readings) > MAX_READINGS:
        raise LogisticsError("too many readings", code="too_many")
    now = now or utcnow()
    by_parcel: dict[int, list[coldchain.Reading]] = defaultdict(list)
    for item in readings:
        _check_time(item.reading.at, "at", now)
        by_parcel[item.parcel_id].append(item.reading)
    point = session.get(ReadPoint, read_point_id) if read_point_id else None
    stored = 0
    shipments: set[int] = set()
    for parcel_id, series in by_parcel.items():
        parcel = session.get(Parcel, parcel_id)
        if parcel is None:
            raise NotFoundError("no such parcel")
        seen = set(
            session.scalars(
                select(TemperatureReading.at).where(
                    TemperatureReading.parcel_id == parcel.id,
                    TemperatureReading.source == source,
                    TemperatureReading.at.in_([r.at for r in series]),
                )
            )
        )
        fresh = sorted({r.at: r for r in series if r.at not in seen}.values(), key=lambda r: r.at)
        if not fresh:
            continue
        shipment = parcel.shipment
        limits = limits_for(session, shipment, table) if shipment else None
        event = epcis.object_event(
            event_time=fresh[-1].at,
            action="OBSERVE",
            biz_step="sensor_reporting",
            read_point=point.sgln if point else None,
            epcs=[parcel.sscc_uri],
            extensions={"placeCode": point.division_code if point else ""},
        )
        event["sensorElementList"] = [
            coldchain.to_epcis_sensor_element(
                fresh,
                device_id=_device_uri(source),
                low_c=limits.low_c if limits else None,
                high_c=limits.high_c if limits else None,
            )
        ]
        row = trace.append_event(
            session,
            event,
            chain_batch_id=None,
            owner_cooperative_id=parcel.cooperative_id,
            source="ui" if source == "manual" else "rfid",
            recorded_by_id=user_id,
            now=now,
        )
        session.add_all(
            TemperatureReading(
                parcel_id=parcel.id,
                shipment_id=parcel.shipment_id,
                source=source,
                at=r.at,
                celsius=r.celsius,
                read_point_id=point.id if point else None,
                event_pk=row.id,
            )
            for r in fresh
        )
        stored += len(fresh)
        if parcel.shipment_id is not None:
            shipments.add(parcel.shipment_id)
    session.flush()
    return stored, shipments


def record_manual_temperature(
    session: Session,
    shipment_id: int,
    *,
    celsius: float,
    at: datetime,
    table: Mapping[str, coldchain.Threshold | None],
    user_id: int | None,
) -> set[int]:
    """A temperature read off a thermometer by hand, for every parcel of the shipment."""
    shipment = get_shipment(session, shipment_id)
    try:
        reading = coldchain.Reading(at, celsius, "manual")
    except ValueError:
        raise LogisticsError("not a plausible temperature", field="celsius", code="range") from None
    _check_time(at, "at")
    _stored, shipments = record_temperatures(
        session,
        [ParcelReading(p.id, reading) for p in shipment.parcels],
        source="manual",
        table=table,
        user_id=user_id,
    )
    return shipments


def parcel_for_epc(session: Session, epc: str) -> Parcel | None:
    """The parcel an EPC names: its SSCC, or a unit code packed in it."""
    uri = canonical_epc(readers.normalize_epc(epc))
    if uri.startswith("urn:epc:id:sscc:"):
        return session.scalars(select(Parcel).where(Parcel.sscc_uri == uri)).first()
    target = resolve_epcs(session, [uri]).get(uri)
    if target is None or target.kind != "unit":
        return None
    parsed = epcis.parse_identifier(uri)
    code = trace.find_unit_code(session, parsed.gtin, parsed.serial) if parsed else None
    if code is None:
        return None
    return session.scalars(
        select(Parcel)
        .join(ParcelItem, ParcelItem.parcel_id == Parcel.id)
        .where(ParcelItem.code_id == code.id)
    ).first()


@dataclass
class TemperatureError:
    index: int
    code: str
    message: str


def parse_temperature_items(
    items: Any, *, naive_tz=None
) -> tuple[list[tuple[str, coldchain.Reading]], list[TemperatureError], str | None]:
    """Read ``{"sensor": ..., "readings": [{"epc", "time", "celsius"}]}`` (or the bare
    array): (epc, reading) pairs, the refused items, and the sensor id if given."""
    sensor = None
    if isinstance(items, dict):
        sensor = items.get("sensor")
        if sensor is not None and (not isinstance(sensor, str) or not 0 < len(sensor) <= 100):
            raise LogisticsError("sensor must be text of up to 100 characters", code="bad_shape")
        items = items.get("readings")
    if not isinstance(items, list):
        raise LogisticsError("send an array of readings", code="bad_shape")
    if len(items) > MAX_READINGS:
        raise LogisticsError(f"at most {MAX_READINGS} readings", code="too_many_items")
    good: list[tuple[str, coldchain.Reading]] = []
    errors: list[TemperatureError] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(TemperatureError(index, "bad_item", "An item must be a JSON object"))
            continue
        try:
            epc = readers.normalize_epc(item.get("epc"))
        except ValueError as exc:
            errors.append(TemperatureError(index, "bad_epc", str(exc)))
            continue
        try:
            at = epcis.parse_time(str(item.get("time") or ""))
        except ValueError:
            raw = item.get("time")
            try:
                parsed = datetime.fromisoformat(str(raw))
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is not None or naive_tz is None:
                errors.append(TemperatureError(index, "bad_time", "Not a time with offset"))
                continue
            at = parsed.replace(tzinfo=naive_tz).astimezone(UTC)
        try:
            good.append((epc, coldchain.Reading(at, item.get("celsius"), "")))
        except ValueError as exc:
            errors.append(TemperatureError(index, "bad_celsius", str(exc)))
    return good, errors, sensor


def ingest_temperatures(
    session: Session,
    reader: Reader,
    payload: Any,
    *,
    table: Mapping[str, coldchain.Threshold | None],
    now: datetime | None = None,
) -> tuple[int, list[TemperatureError], set[int]]:
    """Temperatures a reader (or the logger gateway behind it) pushes, naming each
    parcel by its SSCC or a unit packed in it. Returns (stored, errors, shipments)."""
    now = now or utcnow()
    good, errors, sensor = parse_temperature_items(
        payload, naive_tz=SHANGHAI if reader.local_time else None
    )
    source = f"logger:{sensor}" if sensor else f"reader:{reader.id}"
    parcel_of: dict[str, Parcel | None] = {}
    readings: list[ParcelReading] = []
    for index, (epc, reading) in enumerate(good):
        if epc not in parcel_of:
            parcel_of[epc] = parcel_for_epc(session, epc)
        parcel = parcel_of[epc]
        if parcel is None or (
            reader.cooperative_id is not None and parcel.cooperative_id != reader.cooperative_id
        ):
            errors.append(TemperatureError(index, "unknown_epc", f"No parcel carries {epc}"))
            continue
        if reading.at > now + CLOCK_SKEW:
            errors.append(TemperatureError(index, "bad_time", "The time is in the future"))
            continue
        readings.append(ParcelReading(parcel.id, replace(reading, source=source)))
    stored, shipments = record_temperatures(
        session,
        readings,
        source=source,
        table=table,
        # A logger travels with the parcel: its readings were not taken at the gateway.
        read_point_id=None if sensor else reader.read_point_id,
        now=now,
    )
    if reader.last_seen_at is None or now - reader.last_seen_at > timedelta(seconds=10):
        reader.last_seen_at = now
    return stored, errors, shipments


def check_excursions(
    session: Session,
    shipment_id: int,
    *,
    table: Mapping[str, coldchain.Threshold | None],
    min_minutes: float = 10,
) -> list[int]:
    """Find excursions in a shipment's readings (per sensor); record each new one with an
    event that marks it on the timeline, and update those still running. Returns the ids
    of the new excursions (to notify the cooperative about)."""
    shipment = get_shipment(session, shipment_id)
    limits = limits_for(session, shipment, table)
    if limits is None:
        return []
    rows = session.execute(
        select(TemperatureReading.source, TemperatureReading.at, TemperatureReading.celsius)
        .where(TemperatureReading.shipment_id == shipment.id)
        .order_by(TemperatureReading.at)
    ).all()
    series = {(source, at): coldchain.Reading(at, celsius, source) for source, at, celsius in rows}
    found = coldchain.excursions_by_source(
        series.values(), limits.low_c, limits.high_c, timedelta(minutes=min_minutes)
    )
    known = {
        (e.source, e.started_at): e
        for e in session.scalars(select(Excursion).where(Excursion.shipment_id == shipment.id))
    }
    new_ids: list[int] = []
    for source, runs in found.items():
        for run in runs:
            row = known.get((source, run.start))
            if row is not None:
                row.ended_at, row.peak_c = run.end, run.peak_c
                row.reading_count, row.returned_at = run.count, run.returned_at
                continue
            row = Excursion(
                shipment_id=shipment.id,
                source=source,
                kind=run.kind,
                started_at=run.start,
                ended_at=run.end,
                peak_c=run.peak_c,
                low_c=limits.low_c,
                high_c=limits.high_c,
                reading_count=run.count,
                returned_at=run.returned_at,
            )
            session.add(row)
            session.flush()
            in_run = [
                r for r in series.values() if r.source == source and run.start <= r.at <= run.end
            ]
            event = epcis.object_event(
                event_time=run.start,
                action="OBSERVE",
                biz_step="sensor_reporting",
                epcs=[p.sscc_uri for p in shipment.parcels],
                extensions={
                    "excursion": run.kind,
                    "limitC": limits.high_c if run.kind == "high" else limits.low_c,
                    "peakC": run.peak_c,
                    "minutes": round(run.duration.total_seconds() / 60),
                },
            )
            event["sensorElementList"] = [
                coldchain.to_epcis_sensor_element(
                    in_run,
                    device_id=_device_uri(source),
                    low_c=limits.low_c,
                    high_c=limits.high_c,
                    summary=True,
                )
            ]
            event_row = trace.append_event(
                session,
                event,
                chain_batch_id=None,
                owner_cooperative_id=shipment.cooperative_id,
                source="ui" if source == "manual" else "rfid",
            )
            row.event_pk = event_row.id
            new_ids.append(row.id)
    session.flush()
    return new_ids


def excursions_of(session: Session, shipment_id: int) -> list[Excursion]:
    return list(
        session.scalars(
            select(Excursion)
            .where(Excursion.shipment_id == shipment_id)
            .order_by(Excursion.started_at)
        )
    )


def temperatures_of(
    session: Session, shipment_id: int, limit: int = 200
) -> list[TemperatureReading]:
    return list(
        session.scalars(
            select(TemperatureReading)
            .where(TemperatureReading.shipment_id == shipment_id)
            .order_by(TemperatureReading.at.desc())
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------------------
# Who to tell
# --------------------------------------------------------------------------------------


def cooperative_people(session: Session, order: Order) -> list[User]:
    """The cooperative's admins and the farmers with lines in the order."""
    farmer_ids = {line.farmer_id for line in order.lines if line.farmer_id}
    return list(
        session.scalars(
            select(User).where(
                User.cooperative_id == order.cooperative_id,
                User.active.is_(True),
                (User.role == Role.COOP_ADMIN) | (User.id.in_(farmer_ids)),
            )
        )
    )


def orders_waiting(
    session: Session, user: User, status: OrderStatus, *, limit: int = 50
) -> list[Order]:
    """Orders of the user's cooperative in ``status`` that the user handles."""
    if user.cooperative_id is None:
        return []
    query = (
        select(Order)
        .options(selectinload(Order.lines))
        .where(Order.cooperative_id == user.cooperative_id, Order.status == status)
        .order_by(Order.paid_at, Order.id)
        .limit(limit)
    )
    found = list(session.scalars(query))
    if user.role is Role.COOP_ADMIN:
        return found
    return [o for o in found if any(line.farmer_id == user.id for line in o.lines)]


def counts_by_status(session: Session, cooperative_id: int | None) -> dict[ShipmentStatus, int]:
    query = select(Shipment.status, func.count()).group_by(Shipment.status)
    if cooperative_id is not None:
        query = query.where(Shipment.cooperative_id == cooperative_id)
    return dict(session.execute(query).all())


def mark_excursion_notified(session: Session, excursion_id: int) -> Excursion | None:
    row = session.get(Excursion, excursion_id)
    if row is None or row.notified_at is not None:
        return None
    session.execute(
        update(Excursion)
        .where(Excursion.id == excursion_id, Excursion.notified_at.is_(None))
        .values(notified_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    return row
