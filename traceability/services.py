"""Traceability rules: batches, codes, scans, hash-chained EPCIS events, tokens, label jobs.

Functions take a session and plain values, raise DomainError subclasses, and never
commit (the view, API handler, CLI or task does, once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from jsonschema import Draft7Validator
from pypinyin import Style, lazy_pinyin
from sqlalchemy import and_, bindparam, exists, func, literal, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, contains_eager, selectinload

from market import places
from market.auth.models import User
from market.catalog.models import UNITS, Product
from market.cooperatives.models import Cooperative
from market.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from market.types import UTCDateTime, utcnow
from traceability import codes, epcis
from traceability.models import (
    CERT_BASES,
    ApiToken,
    Batch,
    BatchInput,
    BatchSource,
    Capture,
    ChainHead,
    CodeKind,
    EventBatch,
    EventEPC,
    InputKind,
    Inspection,
    InspectionKind,
    InspectionResult,
    JobStatus,
    LabelJob,
    LabelLayout,
    OriginKind,
    ScanRecord,
    TraceCode,
    TraceEvent,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: "rfid": an RFID reader pushing tag reads to logistics (minted with the reader).
TOKEN_SCOPES = ("capture", "query", "rfid")
TOKEN_PREFIX = "yn_"  # noqa: S105 - the public prefix of API tokens
MAX_STOCK_ADD = 1_000_000
MAX_BATCH_QUANTITY = 100_000_000
#: Oldest harvest a batch may record, in years.
MAX_AGE_YEARS = 50
#: Largest number of units one packing event may name one by one.
MAX_PACK_UNITS = 1000


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class TraceError(DomainError):
    code = "invalid"


class ProductNotOursError(PermissionDeniedError):
    code = "product_not_ours"


class NoGtinError(TraceError):
    code = "no_gtin"


class LabelsPrintedError(ConflictError):
    code = "labels_printed"


class NoCodesError(TraceError):
    code = "no_codes"


class CaptureError(DomainError):
    """An EPCIS capture that cannot be accepted; ``errors`` lists every reason."""

    code = "invalid_document"
    status = 400

    def __init__(self, errors: list[dict[str, str]], *, code: str | None = None) -> None:
        super().__init__("; ".join(e["message"] for e in errors[:3]), code=code)
        self.errors = errors


class CaptureForbiddenError(CaptureError):
    code = "forbidden"
    status = 403


class CaptureConflictError(CaptureError):
    code = "conflict"
    status = 409


class PageTokenError(DomainError):
    code = "invalid_page_token"


# --------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------


def today_shanghai(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(SHANGHAI).date()


@dataclass
class BatchData:
    """What a person fills in for a batch (see Batch for the meaning of each field)."""

    product_id: int
    name: str
    harvest_date: date
    quantity: int
    unit: str
    origin_code: str
    origin_kind: OriginKind = OriginKind.PLOT
    origin_village: str = ""
    origin_site: str = ""
    variety: str = ""
    method: str = ""
    notes: str = ""
    cert_basis: Sequence[str] = ()
    cert_issued_on: date | None = None
    #: Overrides the cooperative's contact phone on the certificate.
    cert_contact: str = ""
    #: 1-8 capital letters; default: initials of the origin county (清远 -> QY).
    lot_prefix: str = ""


def lot_prefix_for(division_code: str) -> str:
    """Pinyin initials of a place name without its 市/区/县 suffix: 清远市 -> QY."""
    name = places.name_of(division_code)
    for suffix in ("自治县", "市", "区", "县"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            name = name[: -len(suffix)]
            break
    letters = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).upper()
    letters = "".join(ch for ch in letters if "A" <= ch <= "Z")[:8]
    return letters or "YN"


def _next_lot_code(session: Session, prefix: str, harvest: date) -> str:
    stem = f"{prefix}{harvest:%y%m}"
    taken = set(
        session.scalars(select(Batch.lot_code).where(Batch.lot_code.startswith(stem))).all()
    )
    seq = 1
    while codes.new_lot_code(prefix, harvest, seq) in taken:
        seq += 1
    return codes.new_lot_code(prefix, harvest, seq)


def _clean_text(value: str, limit: int, field_name: str, *, required: bool = False) -> str:
    text = " ".join((value or "").split())
    if required and not text:
        raise TraceError(f"{field_name} is required", field=field_name, code="required")
    if len(text) > limit:
        raise TraceError(f"{field_name} is too long", field=field_name, code="too_long")
    return text


def _check_batch_data(data: BatchData, today: date) -> dict[str, Any]:
    if isinstance(data.quantity, bool) or not isinstance(data.quantity, int):
        raise TraceError("quantity must be a whole number", field="quantity", code="quantity")
    if not 0 < data.quantity <= MAX_BATCH_QUANTITY:
        raise TraceError("quantity out of range", field="quantity", code="quantity")
    if data.unit not in UNITS:
        raise TraceError("unknown unit", field="unit", code="unit")
    if not places.is_valid_guangdong_code(data.origin_code or ""):
        raise TraceError("not a Guangdong division", field="origin_code", code="invalid_division")
    if data.harvest_date > today:
        raise TraceError("harvest date in the future", field="harvest_date", code="future_date")
    # Aged goods (陈皮, 普洱) are recorded decades after the harvest, but not centuries.
    if data.harvest_date < today - timedelta(days=MAX_AGE_YEARS * 366):
        raise TraceError("harvest date too old", field="harvest_date", code="too_old")
    unknown = [b for b in data.cert_basis if b not in CERT_BASES]
    if unknown:
        raise TraceError("unknown certificate basis", field="cert_basis", code="cert_basis")
    issued = data.cert_issued_on or today
    if issued > today or issued < data.harvest_date - timedelta(days=1):
        raise TraceError(
            "certificate date must be between harvest and today",
            field="cert_issued_on",
            code="cert_date",
        )
    prefix = (data.lot_prefix or "").strip().upper()
    if prefix and not (prefix.isascii() and prefix.isalpha() and len(prefix) <= 8):
        raise TraceError("lot prefix must be 1-8 letters", field="lot_prefix", code="lot_prefix")
    return {
        "name": _clean_text(data.name, 60, "name", required=True),
        "variety": _clean_text(data.variety, 40, "variety"),
        "harvest_date": data.harvest_date,
        "quantity": data.quantity,
        "unit": data.unit,
        "origin_kind": OriginKind(data.origin_kind),
        "origin_code": data.origin_code,
        "origin_village": _clean_text(data.origin_village, 60, "origin_village"),
        "origin_site": _clean_text(data.origin_site, 60, "origin_site"),
        "method": _clean_text(data.method, 60, "method"),
        "notes": (data.notes or "").strip()[:2000],
        "cert_basis": [b for b in CERT_BASES if b in data.cert_basis],
        "cert_issued_on": issued,
        "_contact": _clean_text(data.cert_contact, 30, "cert_contact"),
        "_prefix": prefix,
    }


def _certificate(product: Product, coop: Cooperative, values: dict[str, Any]) -> dict[str, Any]:
    """The 承诺达标合格证 fields as printed (a snapshot of the batch's facts)."""
    origin = places.full_name(values["origin_code"]) + values["origin_village"]
    return {
        "cert_product_name": product.title[:60],
        "cert_quantity": f"{values['quantity']}{values['unit']}"[:30],
        "cert_origin": origin[:120],
        "cert_producer": coop.name[:60],
        "cert_contact": (values["_contact"] or coop.contact_phone or "")[:30],
    }


def create_batch(
    session: Session,
    cooperative_id: int,
    data: BatchData,
    *,
    user_id: int | None,
    company_prefix: str,
    now: datetime | None = None,
) -> Batch:
    """Record a batch of one of the cooperative's products, with its lot code, 合格证
    snapshot, batch-level code and a commissioning (harvest) event."""
    now = now or utcnow()
    coop = session.get(Cooperative, cooperative_id)
    if coop is None:
        raise NotFoundError("no such cooperative")
    product = session.get(Product, data.product_id)
    if product is None or product.cooperative_id != cooperative_id:
        raise ProductNotOursError("the product is not this cooperative's", field="product_id")
    if not product.gtin:
        raise NoGtinError("the product has no GTIN yet", field="product_id")
    values = _check_batch_data(data, today_shanghai(now))
    prefix = values.pop("_prefix") or lot_prefix_for(values["origin_code"])
    certificate = _certificate(product, coop, values)
    values.pop("_contact")
    for _attempt in range(5):
        lot = _next_lot_code(session, prefix, values["harvest_date"])
        batch = Batch(
            product_id=product.id,
            cooperative_id=coop.id,
            lot_code=lot,
            created_by_id=user_id,
            **values,
            **certificate,
        )
        try:
            with session.begin_nested():
                session.add(batch)
                session.flush()
        except IntegrityError:
            # Another request took the same lot code at the same moment; count on.
            continue
        break
    else:
        raise ConflictError("could not allocate a lot code", field="lot_prefix")
    session.add(TraceCode(batch_id=batch.id, kind=CodeKind.BATCH, gtin=product.gtin, issue_no=0))
    harvest_noon = datetime.combine(values["harvest_date"], time(12), SHANGHAI)
    record_ui_event(
        session,
        batch.id,
        "harvest",
        when=min(harvest_noon.astimezone(UTC), now),
        user_id=user_id,
        company_prefix=company_prefix,
    )
    return batch


EDITABLE_FIELDS = (
    "name",
    "variety",
    "origin_kind",
    "origin_code",
    "origin_village",
    "origin_site",
    "method",
    "notes",
    "cert_basis",
)


def labels_printed(session: Session, batch_id: int) -> bool:
    return (
        session.scalar(select(func.count(LabelJob.id)).where(LabelJob.batch_id == batch_id)) or 0
    ) > 0


def update_batch(session: Session, batch_id: int, data: BatchData) -> Batch:
    """Correct a batch's descriptive fields; refused once labels have been printed.

    The product, lot code, harvest date and quantity stay as recorded: the harvest event
    in the chain already carries them.
    """
    batch = get_batch(session, batch_id)
    if labels_printed(session, batch_id):
        raise LabelsPrintedError("labels are printed; the certificate cannot change")
    data.product_id = batch.product_id
    data.harvest_date = batch.harvest_date
    data.quantity = batch.quantity
    data.unit = batch.unit
    data.cert_issued_on = batch.cert_issued_on
    values = _check_batch_data(data, today_shanghai())
    for name in EDITABLE_FIELDS:
        setattr(batch, name, values[name])
    values["quantity"], values["unit"] = batch.quantity, batch.unit
    for name, value in _certificate(batch.product, batch.cooperative, values).items():
        setattr(batch, name, value)
    session.flush()
    touch_batches(session, [batch.id])
    session.refresh(batch)
    return batch


def touch_batches(session: Session, batch_ids: Iterable[int]) -> None:
    """Bump the version of these batches and of every batch made from them (their scan
    pages show this history), so cached scan pages are rendered again."""
    ids = set(batch_ids)
    frontier = set(ids)
    for _level in range(3):
        made_from = set(
            session.scalars(
                select(BatchSource.batch_id).where(BatchSource.source_batch_id.in_(frontier))
            )
        )
        frontier = made_from - ids
        if not frontier:
            break
        ids |= frontier
    if ids:
        session.execute(
            update(Batch).where(Batch.id.in_(ids)).values(version=Batch.version + 1),
            execution_options={"synchronize_session": False},
        )


def get_batch(session: Session, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFoundError("no such batch")
    return batch


def add_input(
    session: Session,
    batch_id: int,
    *,
    kind: InputKind,
    name: str,
    used_on: date,
    amount: str = "",
    safety_days: int | None = None,
    notes: str = "",
) -> BatchInput:
    """Record a pesticide, fertiliser, feed or veterinary drug used on the batch."""
    batch = get_batch(session, batch_id)
    if used_on > today_shanghai():
        raise TraceError("date in the future", field="used_on", code="future_date")
    if safety_days is not None and not 0 <= safety_days <= 365:
        raise TraceError("safety interval out of range", field="safety_days", code="range")
    row = BatchInput(
        batch_id=batch.id,
        kind=InputKind(kind),
        name=_clean_text(name, 60, "name", required=True),
        amount=_clean_text(amount, 40, "amount"),
        used_on=used_on,
        safety_days=safety_days,
        notes=_clean_text(notes, 120, "notes"),
    )
    session.add(row)
    session.flush()
    touch_batches(session, [batch.id])
    return row


def add_inspection(
    session: Session,
    batch_id: int,
    *,
    kind: InspectionKind,
    tested_on: date,
    items: str,
    result: InspectionResult,
    agency: str = "",
    report_no: str = "",
    report_file: str | None = None,
    user_id: int | None = None,
    company_prefix: str,
) -> Inspection:
    """Record a self-test or laboratory result, and an EPCIS inspecting event for it."""
    batch = get_batch(session, batch_id)
    if tested_on > today_shanghai():
        raise TraceError("date in the future", field="tested_on", code="future_date")
    kind, result = InspectionKind(kind), InspectionResult(result)
    row = Inspection(
        batch_id=batch.id,
        kind=kind,
        tested_on=tested_on,
        items=_clean_text(items, 120, "items", required=True),
        result=result,
        agency=_clean_text(agency, 60, "agency"),
        report_no=_clean_text(report_no, 40, "report_no"),
        report_file=report_file,
    )
    session.add(row)
    session.flush()
    when = datetime.combine(tested_on, time(12), SHANGHAI).astimezone(UTC)
    record_ui_event(
        session,
        batch.id,
        "inspection",
        when=min(when, utcnow()),
        user_id=user_id,
        company_prefix=company_prefix,
        passed=result is InspectionResult.PASS,
        note=row.items,
    )
    return row


def put_on_sale(session: Session, batch_id: int, units: int) -> Batch:
    """Add ``units`` of the product's sale unit from this batch to the product's stock.

    The stock is raised with one conditional UPDATE (never read-modify-write), then the
    batch's ``stock_added`` (all it ever put on sale) and ``stock_left`` (what of it is
    still on sale) rise by the same units, so stock on sale is linked to its batch and
    orders take it from there (traceability.stock).
    """
    from market.catalog import services as catalog

    batch = get_batch(session, batch_id)
    if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= MAX_STOCK_ADD:
        raise TraceError("units out of range", field="units", code="range")
    result = session.execute(
        update(Product)
        .where(Product.id == batch.product_id, Product.stock <= catalog.MAX_STOCK - units)
        .values(stock=Product.stock + units),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount == 0:
        raise TraceError("stock would exceed the maximum", field="units", code="range")
    session.execute(
        update(Batch)
        .where(Batch.id == batch.id)
        .values(stock_added=Batch.stock_added + units, stock_left=Batch.stock_left + units),
        execution_options={"synchronize_session": False},
    )
    catalog.refresh_availability(session, batch.product_id)
    session.refresh(batch)
    return batch


def batches_on_sale(session: Session, product_id: int) -> list[Batch]:
    """The batches with units of this product still on sale, in the order orders take
    them: oldest harvest first (harvest_date, then id)."""
    return list(
        session.scalars(
            select(Batch)
            .where(Batch.product_id == product_id, Batch.stock_left > 0)
            .order_by(Batch.harvest_date, Batch.id)
        )
    )


def current_batch(session: Session, product_id: int) -> Batch | None:
    """The batch stock is now being sold from: the next order's units come from it (the
    oldest harvest with stock left; first in, first out). None if no batch has any left."""
    return session.scalars(
        select(Batch)
        .where(Batch.product_id == product_id, Batch.stock_left > 0)
        .order_by(Batch.harvest_date, Batch.id)
        .limit(1)
    ).first()


def source_batches(session: Session, batch_id: int, depth: int = 3) -> list[Batch]:
    """The batches this one was made from, and theirs, up to ``depth`` levels."""
    seen: dict[int, Batch] = {}
    frontier = [batch_id]
    for _level in range(depth):
        if not frontier:
            break
        rows = session.scalars(
            select(Batch)
            .join(BatchSource, BatchSource.source_batch_id == Batch.id)
            .where(BatchSource.batch_id.in_(frontier))
        ).all()
        frontier = [row.id for row in rows if row.id not in seen and row.id != batch_id]
        for row in rows:
            seen.setdefault(row.id, row)
    return list(seen.values())


# --------------------------------------------------------------------------------------
# Codes
# --------------------------------------------------------------------------------------


def issue_codes(
    session: Session,
    batch_id: int,
    count: int,
    *,
    company_prefix: str,
    max_count: int,
    rng: Any = secrets,
) -> int:
    """Issue ``count`` unit codes (SGTIN: GTIN + random serial) for a batch.

    Serials are random in [10**10, 2**38) (never sequential, so they cannot be guessed),
    unique per GTIN, and each code gets its SGTIN-96 EPC. Returns the issue number.
    """
    batch = get_batch(session, batch_id)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= max_count:
        raise TraceError("count out of range", field="count", code="range")
    gtin = batch.product.gtin
    if not gtin:
        raise NoGtinError("the product has no GTIN", field="count")
    issue_no = (
        session.scalar(select(func.max(TraceCode.issue_no)).where(TraceCode.batch_id == batch.id))
        or 0
    ) + 1
    serials: set[str] = set()
    while len(serials) < count:
        wanted = count - len(serials)
        fresh = {codes.new_serial(rng) for _ in range(wanted)} - serials
        for start in range(0, len(fresh), 500):
            chunk = list(fresh)[start : start + 500]
            taken = session.scalars(
                select(TraceCode.serial).where(TraceCode.gtin == gtin, TraceCode.serial.in_(chunk))
            ).all()
            fresh -= set(taken)
        serials |= fresh
    now = utcnow()
    rows = [
        {
            "batch_id": batch.id,
            "kind": CodeKind.UNIT,
            "gtin": gtin,
            "serial": serial,
            "epc_hex": codes.sgtin96_hex(company_prefix, gtin, serial, filter_value=1),
            "issue_no": issue_no,
            "created_at": now,
        }
        for serial in serials
    ]
    for start in range(0, len(rows), 1000):
        session.execute(TraceCode.__table__.insert(), rows[start : start + 1000])
    session.flush()
    return issue_no


def batch_code(session: Session, batch_id: int) -> TraceCode:
    """The batch-level code (GTIN + lot) of a batch, issued when the batch was recorded."""
    code = session.scalars(
        select(TraceCode).where(TraceCode.batch_id == batch_id, TraceCode.kind == CodeKind.BATCH)
    ).first()
    if code is None:
        batch = get_batch(session, batch_id)
        code = TraceCode(batch_id=batch.id, kind=CodeKind.BATCH, gtin=batch.product.gtin)
        session.add(code)
        session.flush()
    return code


@dataclass(frozen=True)
class IssueSummary:
    issue_no: int
    count: int
    created_at: datetime


def issues(session: Session, batch_id: int) -> list[IssueSummary]:
    rows = session.execute(
        select(TraceCode.issue_no, func.count(TraceCode.id), func.min(TraceCode.created_at))
        .where(TraceCode.batch_id == batch_id, TraceCode.kind == CodeKind.UNIT)
        .group_by(TraceCode.issue_no)
        .order_by(TraceCode.issue_no)
    ).all()
    return [IssueSummary(no, count, created) for no, count, created in rows]


def code_link(
    base_url: str, secret: bytes, code: TraceCode, lot: str, *, tag_length: int = 8
) -> str:
    """The GS1 Digital Link of a code on our domain, with its HMAC tag ``s``."""
    tag = codes.code_tag(secret, code.gtin, lot, code.serial, tag_length)
    return codes.build_digital_link(base_url, code.gtin, lot, code.serial, extra_query={"s": tag})


def unit_codes(
    session: Session, batch_id: int, issue_no: int | None = None, *, offset: int = 0, limit=None
) -> list[TraceCode]:
    query = (
        select(TraceCode)
        .where(TraceCode.batch_id == batch_id, TraceCode.kind == CodeKind.UNIT)
        .order_by(TraceCode.issue_no, TraceCode.id)
        .offset(offset)
    )
    if issue_no is not None:
        query = query.where(TraceCode.issue_no == issue_no)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


# --------------------------------------------------------------------------------------
# Resolving and scanning
# --------------------------------------------------------------------------------------


def find_unit_code(session: Session, gtin: str, serial: str) -> TraceCode | None:
    """The unit code with this GTIN and serial, its batch loaded in the same query."""
    return session.scalars(
        select(TraceCode)
        .join(Batch, Batch.id == TraceCode.batch_id)
        .where(TraceCode.gtin == gtin, TraceCode.serial == serial, TraceCode.kind == CodeKind.UNIT)
        .options(contains_eager(TraceCode.batch))
    ).first()


def find_batch_code(session: Session, gtin: str, lot: str) -> TraceCode | None:
    """The batch-level code of the lot ``lot`` of GTIN ``gtin``, its batch loaded."""
    return session.scalars(
        select(TraceCode)
        .join(Batch, Batch.id == TraceCode.batch_id)
        .where(TraceCode.gtin == gtin, TraceCode.kind == CodeKind.BATCH, Batch.lot_code == lot)
        .options(contains_eager(TraceCode.batch))
    ).first()


@dataclass(frozen=True)
class ScanTarget:
    """What the scan page needs of a code and its batch, read in one light query."""

    code_id: int
    kind: CodeKind
    serial: str | None
    scan_count: int
    visitor_count: int
    city_count: int
    first_scanned_at: datetime | None
    last_scanned_at: datetime | None
    batch_id: int
    lot: str
    batch_created_at: datetime
    batch_version: int
    batch_updated_at: datetime
    cooperative_id: int
    product_name: str
    gtin: str
    #: Whether the visitor asked about has a ScanRecord of this code already.
    seen: bool | None = None


_TARGET_COLUMNS = (
    TraceCode.id,
    TraceCode.kind,
    TraceCode.serial,
    TraceCode.scan_count,
    TraceCode.visitor_count,
    TraceCode.city_count,
    TraceCode.first_scanned_at,
    TraceCode.last_scanned_at,
    Batch.id,
    Batch.lot_code,
    Batch.created_at,
    Batch.version,
    Batch.updated_at,
    Batch.cooperative_id,
    Batch.cert_product_name,
    TraceCode.gtin,
    exists(
        select(ScanRecord.id).where(
            ScanRecord.code_id == TraceCode.id, ScanRecord.visitor_key == bindparam("visitor")
        )
    ),
)
# Built once: the scan page runs these on every request.
_UNIT_TARGET = (
    select(*_TARGET_COLUMNS)
    .join(Batch, Batch.id == TraceCode.batch_id)
    .where(
        TraceCode.gtin == bindparam("gtin"),
        TraceCode.serial == bindparam("serial"),
        TraceCode.kind == CodeKind.UNIT,
    )
)
_BATCH_TARGET = (
    select(*_TARGET_COLUMNS)
    .join(Batch, Batch.id == TraceCode.batch_id)
    .where(
        TraceCode.gtin == bindparam("gtin"),
        Batch.lot_code == bindparam("lot"),
        TraceCode.kind == CodeKind.BATCH,
    )
)


def unit_scan_target(
    conn: Connection, gtin: str, serial: str, visitor: str = ""
) -> ScanTarget | None:
    """The unit code with this GTIN and serial as the scan page needs it, and whether
    ``visitor`` has scanned it before (one query)."""
    return _scan_target(conn, _UNIT_TARGET, {"gtin": gtin, "serial": serial, "visitor": visitor})


def batch_scan_target(
    conn: Connection, gtin: str, lot: str, visitor: str = ""
) -> ScanTarget | None:
    """The batch-level code of lot ``lot`` of GTIN ``gtin``, as the scan page needs it."""
    return _scan_target(conn, _BATCH_TARGET, {"gtin": gtin, "lot": lot, "visitor": visitor})


#: Positions of the datetimes in a ScanTarget row (first/last scan, batch created/updated).
_TARGET_TIMES = (6, 7, 10, 12)
_compiled_targets: dict[tuple[int, str], tuple[str, dict[str, Any]]] = {}


def _scan_target(conn: Connection, statement: Any, params: dict[str, Any]) -> ScanTarget | None:
    """Run a scan-target query. On PostgreSQL it goes straight to the driver's cursor with
    SQL compiled once: SQLAlchemy's result machinery (and psycopg building a column
    description of 17 columns per query) costs the busiest page more than the query
    does. Errors are judged and wrapped as ``conn.execute`` would (a dropped connection
    invalidates it, so the caller may retry). Elsewhere it is an ordinary execute."""
    if conn.dialect.name != "postgresql":
        row = conn.execute(statement, params).first()
        return ScanTarget(*row) if row is not None else None
    key = (id(statement), conn.dialect.name)
    compiled = _compiled_targets.get(key)
    if compiled is None:
        done = statement.compile(dialect=conn.dialect)
        # The constants in the WHERE (the code kind) as stored: enums by value.
        constants = {k: getattr(v, "value", v) for k, v in done.params.items() if k not in params}
        compiled = _compiled_targets[key] = (str(done), constants)
    sql, defaults = compiled
    arguments = {**defaults, **params}
    dbapi_connection = conn.connection.dbapi_connection
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(sql, arguments)
            row = cursor.fetchone()
    except conn.dialect.loaded_dbapi.Error as exc:
        dropped = conn.dialect.is_disconnect(exc, dbapi_connection, None)
        if dropped:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            arguments,
            exc,
            conn.dialect.loaded_dbapi.Error,
            connection_invalidated=dropped,
            dialect=conn.dialect,
        ) from exc
    if row is None:
        return None
    values = list(row)
    values[1] = CodeKind(values[1])
    for index in _TARGET_TIMES:
        if values[index] is not None:
            values[index] = values[index].astimezone(UTC)
    return ScanTarget(*values)


def visitor_key(secret: bytes, address: str, day: date) -> str:
    """A keyed hash of the scanner's address and the day: counts a phone once a day
    without storing or being able to recover its address."""
    message = f"{address}|{day.isoformat()}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def normalize_city(raw: str | None) -> str | None:
    """A city from the proxy's header: a GB/T 2260 code becomes its prefecture-level
    city's name; a name is kept (trimmed). Empty or unknown values give None."""
    if not raw:
        return None
    text = raw.strip()
    if text.isdigit() and len(text) == 6:
        city = places.city_of(text) or places.get(text)
        return city.name if city is not None else None
    text = " ".join(text.split())[:40]
    return text or None


@dataclass(frozen=True)
class ScanStats:
    scan_count: int
    visitor_count: int
    city_count: int
    first_scanned_at: datetime | None
    last_scanned_at: datetime | None


def record_scan(
    session: Session,
    code_id: int,
    *,
    visitor: str,
    day: date,
    city: str | None,
    tag_status: str,
    now: datetime | None = None,
) -> ScanStats:
    """Count a scan of a code: totals on the code, and one ScanRecord per visitor-day.

    A visitor's repeated scans cost one indexed read and one UPDATE ... RETURNING; only
    their first scan of the day is written as a ScanRecord (with its city).
    """
    now = now or utcnow()
    seen = session.scalar(
        select(ScanRecord.id).where(
            ScanRecord.code_id == code_id, ScanRecord.visitor_key == visitor
        )
    )
    values: dict[str, Any] = {
        "scan_count": TraceCode.scan_count + 1,
        "first_scanned_at": func.coalesce(TraceCode.first_scanned_at, literal(now, UTCDateTime())),
        "last_scanned_at": now,
    }
    if seen is None:
        try:
            with session.begin_nested():
                session.add(
                    ScanRecord(
                        code_id=code_id,
                        visitor_key=visitor,
                        day=day,
                        city=city,
                        tag_status=tag_status,
                        first_at=now,
                    )
                )
        except IntegrityError:
            pass  # the same visitor's other request won the race; that one counted them
        else:
            values["visitor_count"] = TraceCode.visitor_count + 1
            if city:
                values["city_count"] = (
                    select(func.count(func.distinct(ScanRecord.city)))
                    .where(ScanRecord.code_id == code_id, ScanRecord.city.is_not(None))
                    .scalar_subquery()
                )
    row = session.execute(
        update(TraceCode)
        .where(TraceCode.id == code_id)
        .values(**values)
        .returning(
            TraceCode.scan_count,
            TraceCode.visitor_count,
            TraceCode.city_count,
            TraceCode.first_scanned_at,
            TraceCode.last_scanned_at,
        ),
        execution_options={"synchronize_session": False},
    ).one()
    return ScanStats(*row)


def scan_cities(session: Session, code_id: int) -> list[str]:
    return list(
        session.scalars(
            select(ScanRecord.city)
            .where(ScanRecord.code_id == code_id, ScanRecord.city.is_not(None))
            .group_by(ScanRecord.city)
            .order_by(func.min(ScanRecord.first_at))
        )
    )


# --------------------------------------------------------------------------------------
# Events: recording (UI and API) and the hash chain
# --------------------------------------------------------------------------------------


def cooperative_location(company_prefix: str, cooperative_id: int) -> str | None:
    """The SGLN (urn:epc:id:sgln:...) that stands for a cooperative's premises: location
    reference = cooperative id under the platform's prefix (None if it does not fit)."""
    try:
        return codes.sgln_uri(company_prefix, codes.make_gln(company_prefix, cooperative_id), "0")
    except codes.CodeError:
        return None


def cooperative_of_location(company_prefix: str, uri: str | None) -> int | None:
    """The cooperative id behind one of our SGLNs, else None."""
    if not uri or not uri.startswith(f"urn:epc:id:sgln:{company_prefix}."):
        return None
    fields = uri.split(":")[-1].split(".")
    if len(fields) != 3 or not fields[1].isdigit():
        return None
    return int(fields[1]) or None


#: UN/CEFACT codes for sale units that are weights; the rest are counted (no uom).
_UOM = {"公斤": ("KGM", 1), "克": ("GRM", 1), "斤": ("KGM", 0.5)}


def lot_quantity(
    company_prefix: str, batch: Batch, quantity: int | None = None, unit: str | None = None
) -> dict:
    """A quantityElement for (part of) a batch: its LGTIN class, amount and unit.

    ``quantity`` counts in ``unit`` (the batch's own unit unless given: packing counts
    the product's sale units, e.g. 罐, which carry no UN/CEFACT weight code)."""
    amount = batch.quantity if quantity is None else quantity
    unit = batch.unit if unit is None else unit
    element: dict[str, Any] = {
        "epcClass": epcis.lgtin_uri(company_prefix, batch.product.gtin, batch.lot_code)
    }
    if unit in _UOM:
        uom, factor = _UOM[unit]
        value = amount * factor
        element["quantity"] = int(value) if float(value).is_integer() else value
        element["uom"] = uom
    else:
        element["quantity"] = amount
    return element


#: What each event a person records from the UI means in EPCIS / CBV terms.
UI_EVENT_KINDS = {
    "harvest": ("ObjectEvent", "ADD", "commissioning", "active"),
    "inspection": ("ObjectEvent", "OBSERVE", "inspecting", None),
    "packing": ("AggregationEvent", "ADD", "packing", "in_progress"),
    "processing": ("TransformationEvent", None, "commissioning", "active"),
    "storing": ("ObjectEvent", "OBSERVE", "storing", "sellable_not_accessible"),
    "shipping": ("ObjectEvent", "OBSERVE", "shipping", "in_transit"),
    "receiving": ("ObjectEvent", "OBSERVE", "receiving", "in_progress"),
    "sensor": ("ObjectEvent", "OBSERVE", "sensor_reporting", None),
    "recall": ("ObjectEvent", "OBSERVE", "holding", "recalled"),
}
#: Kinds a person picks on the event form (harvest and inspection come with their forms).
FORM_EVENT_KINDS = ("packing", "processing", "storing", "shipping", "receiving", "sensor", "recall")


def record_ui_event(
    session: Session,
    batch_id: int,
    kind: str,
    *,
    when: datetime,
    user_id: int | None,
    company_prefix: str,
    note: str = "",
    place_code: str | None = None,
    temperature_c: float | None = None,
    humidity_pct: float | None = None,
    passed: bool | None = None,
    source_batch_id: int | None = None,
    source_quantity: int | None = None,
    pack_units: int | None = None,
    rng: Any = secrets,
) -> TraceEvent:
    """Record one of UI_EVENT_KINDS for a batch as an EPCIS event and append it to the
    batch's chain."""
    if kind not in UI_EVENT_KINDS:
        raise TraceError("unknown event kind", field="kind", code="kind")
    if when.tzinfo is None:
        raise ValueError("naive event time")
    if when > utcnow() + timedelta(minutes=5):
        raise TraceError("event time in the future", field="when", code="future_date")
    batch = get_batch(session, batch_id)
    if place_code and not places.get(place_code):
        raise TraceError("unknown place", field="place_code", code="invalid_division")
    _event_type, action, biz_step, disposition = UI_EVENT_KINDS[kind]
    if kind == "inspection":
        disposition = "conformant" if passed else "non_conformant"
    location = cooperative_location(company_prefix, batch.cooperative_id)
    extensions = {"note": note.strip()[:200] if note else "", "placeCode": place_code or ""}
    readings = []
    if temperature_c is not None:
        if not -60 <= temperature_c <= 80:
            raise TraceError("temperature out of range", field="temperature_c", code="range")
        readings.append({"type": "Temperature", "value": float(temperature_c), "uom": "CEL"})
    if humidity_pct is not None:
        if not 0 <= humidity_pct <= 100:
            raise TraceError("humidity out of range", field="humidity_pct", code="range")
        readings.append({"type": "RelativeHumidity", "value": float(humidity_pct), "uom": "P1"})
    if kind == "sensor" and not readings:
        raise TraceError("a reading is required", field="temperature_c", code="required")
    linked = [batch.id]
    if kind == "packing":
        span = 10 ** (16 - len(company_prefix))
        draw = rng.randbelow(span) if hasattr(rng, "randbelow") else rng.randrange(span)
        parent = codes.sscc_uri(company_prefix, codes.make_sscc(company_prefix, 0, draw))
        units = unit_codes(session, batch.id, limit=pack_units) if pack_units else []
        if pack_units and len(units) > MAX_PACK_UNITS:
            raise TraceError("too many units", field="pack_units", code="range")
        if pack_units and not units:
            raise NoCodesError("no unit codes to pack", field="pack_units")
        event = epcis.aggregation_event(
            event_time=when,
            action=action,
            parent_id=parent,
            child_epcs=[codes.sgtin_pure_uri(company_prefix, c.gtin, c.serial) for c in units],
            child_quantities=[] if units else [lot_quantity(company_prefix, batch)],
            biz_step=biz_step,
            disposition=disposition,
            read_point=location,
            biz_location=location,
            extensions=extensions,
        )
    elif kind == "processing":
        if source_batch_id is None:
            raise TraceError("choose the batch it was made from", field="source_batch_id")
        source = session.get(Batch, source_batch_id)
        if source is None or source.cooperative_id != batch.cooperative_id or source.id == batch.id:
            raise TraceError(
                "not a batch of this cooperative", field="source_batch_id", code="source"
            )
        if source_quantity is not None and not 0 < source_quantity <= MAX_BATCH_QUANTITY:
            raise TraceError("quantity out of range", field="source_quantity", code="range")
        event = epcis.transformation_event(
            event_time=when,
            inputs=[lot_quantity(company_prefix, source, source_quantity)],
            outputs=[lot_quantity(company_prefix, batch)],
            biz_step=biz_step,
            disposition=disposition,
            read_point=location,
            biz_location=location,
            extensions=extensions,
        )
        linked.append(source.id)
        if session.get(BatchSource, (batch.id, source.id)) is None:
            session.add(BatchSource(batch_id=batch.id, source_batch_id=source.id))
    else:
        event = epcis.object_event(
            event_time=when,
            action=action,
            biz_step=biz_step,
            disposition=disposition,
            read_point=location,
            biz_location=location,
            quantities=[lot_quantity(company_prefix, batch)],
            sensors=readings,
            extensions=extensions,
        )
    return append_event(
        session,
        event,
        chain_batch_id=batch.id,
        linked_batch_ids=linked,
        owner_cooperative_id=batch.cooperative_id,
        source="ui",
        recorded_by_id=user_id,
    )


def chain_key_for(batch_id: int | None, owner_cooperative_id: int | None) -> str:
    if batch_id is not None:
        return f"batch:{batch_id}"
    if owner_cooperative_id is not None:
        return f"coop:{owner_cooperative_id}"
    return "platform"


def _lock_head(session: Session, chain_key: str) -> ChainHead:
    query = select(ChainHead).where(ChainHead.chain_key == chain_key).with_for_update()
    head = session.scalars(query).first()
    if head is not None:
        return head
    try:
        with session.begin_nested():
            head = ChainHead(chain_key=chain_key, length=0, head_hash=epcis.GENESIS_HASH)
            session.add(head)
    except IntegrityError:
        head = session.scalars(query).one()
    return head


def _record_time(now: datetime) -> datetime:
    # Millisecond precision survives every database, so the hash input is stable.
    return now.astimezone(UTC).replace(microsecond=now.microsecond // 1000 * 1000)


def append_event(
    session: Session,
    event: dict[str, Any],
    *,
    chain_batch_id: int | None,
    linked_batch_ids: Iterable[int] = (),
    owner_cooperative_id: int | None,
    source: str,
    recorded_by_id: int | None = None,
    token_id: int | None = None,
    capture_id: str | None = None,
    now: datetime | None = None,
) -> TraceEvent:
    """Append an event (already in stored form) to its chain and index it.

    The chain head row is locked (SELECT ... FOR UPDATE on PostgreSQL) so concurrent
    appends to one chain queue up instead of forking it.
    """
    [row] = append_events(
        session,
        [
            NewEvent(
                event,
                chain_batch_id=chain_batch_id,
                linked_batch_ids=tuple(linked_batch_ids),
                owner_cooperative_id=owner_cooperative_id,
                source=source,
                recorded_by_id=recorded_by_id,
                token_id=token_id,
                capture_id=capture_id,
                now=now,
            )
        ],
    )
    return row


@dataclass(frozen=True)
class NewEvent:
    """An event to append with :func:`append_events`: the arguments of append_event."""

    event: dict[str, Any]
    chain_batch_id: int | None
    owner_cooperative_id: int | None
    source: str
    linked_batch_ids: tuple[int, ...] = ()
    recorded_by_id: int | None = None
    token_id: int | None = None
    capture_id: str | None = None
    #: The record time (default: now).
    now: datetime | None = None


def append_events(session: Session, items: Sequence[NewEvent]) -> list[TraceEvent]:
    """Append events in the order given, each to its chain, and index them: what
    :func:`append_event` does for one, with one flush for all the rows (a loader that
    writes thousands of events). The chains' head rows are locked in key order."""
    keys = [chain_key_for(i.chain_batch_id, i.owner_cooperative_id) for i in items]
    heads = {key: _lock_head(session, key) for key in sorted(set(keys))}
    rows: list[TraceEvent] = []
    for item, chain_key in zip(items, keys, strict=True):
        head = heads[chain_key]
        record_time = _record_time(item.now or utcnow())
        text = epcis.canonical_json(item.event)
        seq, prev = head.length, head.head_hash
        digest = epcis.chain_hash(chain_key, seq, prev, epcis.format_time(record_time), text)
        rows.append(
            TraceEvent(
                **epcis.index_fields(item.event),
                record_time=record_time,
                document=text,
                batch_id=item.chain_batch_id,
                owner_cooperative_id=item.owner_cooperative_id,
                recorded_by_id=item.recorded_by_id,
                token_id=item.token_id,
                capture_id=item.capture_id,
                source=item.source,
                chain_key=chain_key,
                seq=seq,
                prev_hash=prev,
                hash=digest,
            )
        )
        head.length = seq + 1
        head.head_hash = digest
    session.add_all(rows)
    session.flush()
    touched: set[int] = set()
    for item, row in zip(items, rows, strict=True):
        session.add_all(
            EventEPC(event_pk=row.id, field=f, epc=e) for f, e in epcis.identifiers(item.event)
        )
        batch_ids = list(
            dict.fromkeys(
                [*([item.chain_batch_id] if item.chain_batch_id else []), *item.linked_batch_ids]
            )
        )
        session.add_all(EventBatch(event_pk=row.id, batch_id=b) for b in batch_ids)
        touched.update(batch_ids)
    session.flush()
    touch_batches(session, touched)
    return rows


def export_event(row: TraceEvent) -> dict[str, Any]:
    """An event as the query interface returns it: its stored document plus recordTime."""
    event = json.loads(row.document)
    event["recordTime"] = epcis.format_time(row.record_time)
    return event


@dataclass
class Problem:
    chain_key: str
    message: str
    event_pk: int | None = None
    event_id: str | None = None

    def __str__(self) -> str:
        where = f" event {self.event_pk} ({self.event_id})" if self.event_pk else ""
        return f"{self.chain_key}{where}: {self.message}"


def verify_chains(session: Session) -> tuple[int, list[Problem]]:
    """Check every chain: hashes, links, positions, heads and the derived index columns.

    Returns (number of events checked, problems). A changed event breaks its own hash;
    a deleted one leaves a gap in the positions (or, if it was the last, a chain shorter
    than its head says).
    """
    problems: list[Problem] = []
    checked = 0
    heads = {h.chain_key: h for h in session.scalars(select(ChainHead))}
    keys = set(heads) | set(session.scalars(select(TraceEvent.chain_key).distinct()))
    for key in sorted(keys):
        expected_seq, prev = 0, epcis.GENESIS_HASH
        rows = session.scalars(
            select(TraceEvent).where(TraceEvent.chain_key == key).order_by(TraceEvent.seq)
        )
        for row in rows:
            checked += 1

            def report(message: str, row=row, key=key) -> None:
                problems.append(Problem(key, message, row.id, row.event_id))

            if row.seq != expected_seq:
                report(f"events {expected_seq}..{row.seq - 1} of the chain are missing (deleted)")
            if row.prev_hash != prev:
                report("does not link to the event before it")
            recomputed = epcis.chain_hash(
                key, row.seq, row.prev_hash, epcis.format_time(row.record_time), row.document
            )
            if recomputed != row.hash:
                report("its content was changed after it was recorded (hash mismatch)")
            try:
                event = json.loads(row.document)
                derived = epcis.index_fields(event)
                stored_ids = sorted(
                    session.execute(
                        select(EventEPC.field, EventEPC.epc).where(EventEPC.event_pk == row.id)
                    ).all()
                )
            except (ValueError, KeyError, TypeError):
                report("its stored document is not a valid event")
            else:
                for name, value in derived.items():
                    if getattr(row, name) != value:
                        report(f"column {name} no longer matches the event document")
                if stored_ids != sorted(epcis.identifiers(event)):
                    report("its identifier index no longer matches the event document")
            expected_seq, prev = row.seq + 1, row.hash
        head = heads.get(key)
        if head is None:
            problems.append(Problem(key, "the chain has no head record"))
        elif head.length != expected_seq or head.head_hash != prev:
            problems.append(
                Problem(
                    key,
                    f"the chain ends at {expected_seq} events but its head records "
                    f"{head.length}: events were deleted or the head was changed",
                )
            )
    return checked, problems


# --------------------------------------------------------------------------------------
# EPCIS capture and query
# --------------------------------------------------------------------------------------


def _batches_named(session: Session, event: dict[str, Any]) -> list[tuple[str, Batch]]:
    """(field, batch) for every identifier in the event that names one of our batches."""
    found: list[tuple[str, Batch]] = []
    for field_name, uri in epcis.identifiers(event):
        parsed = epcis.parse_identifier(uri)
        if parsed is None:
            continue
        batch = None
        if parsed.serial is not None:
            code = find_unit_code(session, parsed.gtin, parsed.serial)
            if code is not None and (parsed.lot is None or code.batch.lot_code == parsed.lot):
                batch = code.batch
        elif parsed.lot is not None:
            batch = session.scalars(
                select(Batch)
                .join(Product, Product.id == Batch.product_id)
                .where(Product.gtin == parsed.gtin, Batch.lot_code == parsed.lot)
            ).first()
        if batch is not None:
            found.append((field_name, batch))
    return found


def capture(
    session: Session,
    document: Any,
    *,
    token: ApiToken,
    validator: Draft7Validator,
    max_events: int,
) -> Capture:
    """Validate and store an EPCISDocument, all events or none.

    Every event is linked to the batches its identifiers name (SGTINs of our unit codes,
    LGTINs of our lots, or their Digital Links) and appended to the chain of the first
    one (the output of a transformation); a token of a cooperative may only write about
    that cooperative's batches. An event whose eventID is already stored is skipped if it
    is the same event (a retried capture) and refused if it is a different one.
    """
    errors = epcis.document_errors(validator, document)
    if errors:
        raise CaptureError(errors)
    events = document["epcisBody"]["eventList"]
    if len(events) > max_events:
        raise CaptureError(
            [{"path": "/epcisBody/eventList", "message": f"At most {max_events} events"}],
            code="too_many_events",
        )
    extra_context = epcis.extension_context(document)
    plans: list[tuple[dict, list[tuple[str, Batch]]]] = []
    forbidden: list[dict[str, str]] = []
    conflicts: list[dict[str, str]] = []
    duplicates = 0
    for index, raw in enumerate(events):
        stored = epcis.stored_event(raw, extra_context)
        existing = session.scalars(
            select(TraceEvent).where(TraceEvent.event_id == stored["eventID"])
        ).first()
        if existing is not None:
            if existing.document == epcis.canonical_json(stored):
                duplicates += 1
                continue
            conflicts.append(
                {
                    "path": f"/epcisBody/eventList/{index}/eventID",
                    "message": f"eventID {stored['eventID']} is already stored with other content",
                }
            )
            continue
        named = _batches_named(session, stored)
        if token.cooperative_id is not None:
            for _field, batch in named:
                if batch.cooperative_id != token.cooperative_id:
                    forbidden.append(
                        {
                            "path": f"/epcisBody/eventList/{index}",
                            "message": f"Lot {batch.lot_code} belongs to another cooperative",
                        }
                    )
                    break
        plans.append((stored, named))
    if forbidden:
        raise CaptureForbiddenError(forbidden)
    if conflicts:
        raise CaptureConflictError(conflicts)
    record = Capture(
        id=str(uuid.uuid4()),
        token_id=token.id,
        cooperative_id=token.cooperative_id,
        event_count=len(plans),
        duplicate_count=duplicates,
    )
    session.add(record)
    session.flush()
    for stored, named in plans:
        outputs = [b for f, b in named if f in ("output", "outputQuantity")]
        inputs = [b for f, b in named if f in ("input", "inputQuantity")]
        ordered = outputs + [b for _f, b in named]
        chain_batch = ordered[0] if ordered else None
        append_event(
            session,
            stored,
            chain_batch_id=chain_batch.id if chain_batch else None,
            linked_batch_ids=[b.id for b in ordered],
            owner_cooperative_id=chain_batch.cooperative_id
            if chain_batch
            else token.cooperative_id,
            source="api",
            recorded_by_id=token.user_id,
            token_id=token.id,
            capture_id=record.id,
        )
        for output in outputs:
            for source_batch in inputs:
                if source_batch.id != output.id and (
                    session.get(BatchSource, (output.id, source_batch.id)) is None
                ):
                    session.add(BatchSource(batch_id=output.id, source_batch_id=source_batch.id))
    session.flush()
    return record


def _page_serializer(secret: bytes) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="epcis-events-page")


def query_events(
    session: Session,
    query: epcis.EventQuery,
    *,
    cooperative_id: int | None,
    page_secret: bytes,
) -> tuple[list[TraceEvent], str | None]:
    """Run a SimpleEventQuery; returns a page of events and the next page's token.

    A cooperative's token sees the events it recorded and every event about its batches;
    a platform token sees all. Results are ordered by eventTime, then by record.
    """
    stmt = select(TraceEvent)
    if cooperative_id is not None:
        stmt = stmt.where(
            or_(
                TraceEvent.owner_cooperative_id == cooperative_id,
                exists(
                    select(EventBatch.event_pk)
                    .join(Batch, Batch.id == EventBatch.batch_id)
                    .where(
                        EventBatch.event_pk == TraceEvent.id,
                        Batch.cooperative_id == cooperative_id,
                    )
                ),
            )
        )
    if query.event_types:
        stmt = stmt.where(TraceEvent.event_type.in_(query.event_types))
    for column, value, op in (
        (TraceEvent.event_time, query.ge_event_time, "ge"),
        (TraceEvent.event_time, query.lt_event_time, "lt"),
        (TraceEvent.record_time, query.ge_record_time, "ge"),
        (TraceEvent.record_time, query.lt_record_time, "lt"),
    ):
        if value is not None:
            stmt = stmt.where(column >= value if op == "ge" else column < value)
    for column, values in (
        (TraceEvent.biz_step, query.biz_steps),
        (TraceEvent.disposition, query.dispositions),
        (TraceEvent.read_point, query.read_points),
        (TraceEvent.biz_location, query.biz_locations),
        (TraceEvent.action, query.actions),
        (TraceEvent.event_id, query.event_ids),
    ):
        if values:
            stmt = stmt.where(column.in_(values))
    for name, (exact, prefixes) in query.matches.items():
        fields = epcis.MATCH_FIELDS[name]
        conditions = []
        if exact:
            conditions.append(EventEPC.epc.in_(exact))
        conditions.extend(EventEPC.epc.startswith(p, autoescape=True) for p in prefixes)
        if not conditions:
            continue
        stmt = stmt.where(
            exists(
                select(EventEPC.id).where(
                    EventEPC.event_pk == TraceEvent.id,
                    EventEPC.field.in_(fields),
                    or_(*conditions),
                )
            )
        )
    fingerprint = query.fingerprint()
    serializer = _page_serializer(page_secret)
    if query.page_token:
        try:
            position = serializer.loads(query.page_token)
            if position["f"] != fingerprint:
                raise PageTokenError("the token belongs to another query")
            after_time = datetime.fromisoformat(position["t"])
            after_id = int(position["i"])
        except (BadSignature, KeyError, TypeError, ValueError) as exc:
            raise PageTokenError("invalid nextPageToken") from exc
        stmt = stmt.where(
            or_(
                TraceEvent.event_time > after_time,
                and_(TraceEvent.event_time == after_time, TraceEvent.id > after_id),
            )
        )
    rows = list(
        session.scalars(
            stmt.order_by(TraceEvent.event_time, TraceEvent.id).limit(query.per_page + 1)
        )
    )
    next_token = None
    if len(rows) > query.per_page:
        rows = rows[: query.per_page]
        last = rows[-1]
        next_token = serializer.dumps(
            {"f": fingerprint, "t": last.event_time.astimezone(UTC).isoformat(), "i": last.id}
        )
    return rows, next_token


def get_capture(session: Session, capture_id: str, *, cooperative_id: int | None) -> Capture:
    record = session.get(Capture, capture_id)
    if record is None or (cooperative_id is not None and record.cooperative_id != cooperative_id):
        raise NotFoundError("no such capture")
    return record


# --------------------------------------------------------------------------------------
# Timelines (what the scan page shows)
# --------------------------------------------------------------------------------------


@dataclass
class TimelineEntry:
    event_type: str
    event_time: datetime
    biz_step: str | None
    disposition: str | None
    action: str | None
    #: The cooperative whose premises the event happened at (from our SGLNs).
    cooperative: Cooperative | None
    place_code: str | None
    note: str
    sensors: list[dict[str, Any]] = field(default_factory=list)
    #: Lot code when the event belongs to a batch this one was made from.
    from_lot: str | None = None
    quantities: list[dict[str, Any]] = field(default_factory=list)
    child_count: int = 0


def timeline(
    session: Session, batch: Batch, *, company_prefix: str, limit: int = 200
) -> list[TimelineEntry]:
    """The batch's events and those of the batches it was made from, in time order."""
    sources = source_batches(session, batch.id)
    lot_of = {b.id: b.lot_code for b in sources}
    ids = [batch.id, *lot_of]
    rows = session.execute(
        select(TraceEvent, EventBatch.batch_id)
        .join(EventBatch, EventBatch.event_pk == TraceEvent.id)
        .where(EventBatch.batch_id.in_(ids))
        .order_by(TraceEvent.event_time, TraceEvent.id)
        .limit(limit * 2)
    ).all()
    entries: dict[int, TimelineEntry] = {}
    coop_cache: dict[int, Cooperative | None] = {}
    for row, linked_batch_id in rows:
        if row.id in entries:
            if linked_batch_id == batch.id:
                entries[row.id].from_lot = None
            continue
        event = json.loads(row.document)
        coop_id = cooperative_of_location(company_prefix, row.biz_location or row.read_point)
        if coop_id is not None and coop_id not in coop_cache:
            coop_cache[coop_id] = session.get(Cooperative, coop_id)
        readings = [
            report
            for element in event.get("sensorElementList") or []
            for report in element.get("sensorReport") or []
            if isinstance(report, dict)
        ]
        entries[row.id] = TimelineEntry(
            event_type=row.event_type,
            event_time=row.event_time,
            biz_step=row.biz_step,
            disposition=row.disposition,
            action=row.action,
            cooperative=coop_cache.get(coop_id) if coop_id else None,
            place_code=event.get("yn:placeCode"),
            note=str(event.get("yn:note") or ""),
            sensors=readings[:12],
            from_lot=None if linked_batch_id == batch.id else lot_of.get(linked_batch_id),
            quantities=list(event.get("quantityList") or event.get("outputQuantityList") or []),
            child_count=len(event.get("childEPCs") or []),
        )
    ordered = sorted(entries.values(), key=lambda e: e.event_time)
    return ordered[-limit:]


def latest_disposition(session: Session, batch_id: int) -> str | None:
    """The disposition of the batch's latest event that has one (e.g. "recalled")."""
    return session.scalars(
        select(TraceEvent.disposition)
        .join(EventBatch, EventBatch.event_pk == TraceEvent.id)
        .where(EventBatch.batch_id == batch_id, TraceEvent.disposition.is_not(None))
        .order_by(TraceEvent.event_time.desc(), TraceEvent.id.desc())
        .limit(1)
    ).first()


def is_recalled(session: Session, batch_id: int) -> bool:
    """True once a recall event has been recorded for the batch (a recall is not undone
    by later events)."""
    return (
        session.scalar(
            select(func.count(TraceEvent.id))
            .join(EventBatch, EventBatch.event_pk == TraceEvent.id)
            .where(EventBatch.batch_id == batch_id, TraceEvent.disposition == "recalled")
        )
        or 0
    ) > 0


# --------------------------------------------------------------------------------------
# API tokens
# --------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough (no password hashing).
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    *,
    name: str,
    scopes: Sequence[str],
    cooperative_id: int | None,
    user_id: int | None,
) -> tuple[ApiToken, str]:
    """Mint an API token; returns the row and the token itself (shown once, never stored)."""
    name = _clean_text(name, 60, "name", required=True)
    chosen = [s for s in TOKEN_SCOPES if s in scopes]
    if not chosen or len(chosen) != len(set(scopes)):
        raise TraceError("choose capture and/or query", field="scopes", code="scopes")
    if cooperative_id is not None and session.get(Cooperative, cooperative_id) is None:
        raise NotFoundError("no such cooperative", field="cooperative_id")
    if user_id is not None and session.get(User, user_id) is None:
        raise NotFoundError("no such user", field="user_id")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        token_hash=_token_hash(plain),
        prefix=plain[:10],
        cooperative_id=cooperative_id,
        user_id=user_id,
        scopes=chosen,
    )
    session.add(token)
    session.flush()
    return token, plain


def authenticate_token(
    session: Session, plain: str, *, now: datetime | None = None
) -> ApiToken | None:
    """The active token with this value, or None. Marks it used (at most once a minute)."""
    if not plain or not plain.startswith(TOKEN_PREFIX) or len(plain) > 100:
        return None
    token = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(plain))
    ).first()
    if token is None or not token.is_active:
        return None
    now = now or utcnow()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return token


def revoke_token(session: Session, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError("no such token")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def tokens_for(session: Session, cooperative_id: int | None) -> list[ApiToken]:
    """Tokens of one cooperative, or (None) the platform-wide ones."""
    cond = (
        ApiToken.cooperative_id.is_(None)
        if cooperative_id is None
        else ApiToken.cooperative_id == cooperative_id
    )
    return list(session.scalars(select(ApiToken).where(cond).order_by(ApiToken.id.desc())))


# --------------------------------------------------------------------------------------
# Label jobs
# --------------------------------------------------------------------------------------


def create_label_job(
    session: Session,
    batch_id: int,
    *,
    layout: LabelLayout,
    kind: CodeKind,
    issue_no: int | None = None,
    copies: int = 1,
    user_id: int | None = None,
    max_labels: int,
) -> LabelJob:
    """Queue a label PDF: every unit code (of one issue, or all), or copies of the batch
    label."""
    batch = get_batch(session, batch_id)
    kind, layout = CodeKind(kind), LabelLayout(layout)
    if kind is CodeKind.UNIT:
        query = select(func.count(TraceCode.id)).where(
            TraceCode.batch_id == batch.id, TraceCode.kind == CodeKind.UNIT
        )
        if issue_no is not None:
            query = query.where(TraceCode.issue_no == issue_no)
        total = session.scalar(query) or 0
        if total == 0:
            raise NoCodesError("no unit codes issued", field="issue_no")
        copies = 1
    else:
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= max_labels:
            raise TraceError("copies out of range", field="copies", code="range")
        batch_code(session, batch.id)
        total, issue_no = copies, None
    if total > max_labels:
        raise TraceError("too many labels for one job", field="issue_no", code="too_many")
    job = LabelJob(
        batch_id=batch.id,
        user_id=user_id,
        layout=layout,
        kind=kind,
        issue_no=issue_no,
        copies=copies,
        total=total,
        status=JobStatus.PENDING,
    )
    session.add(job)
    session.flush()
    return job


def label_jobs(session: Session, batch_id: int, limit: int = 10) -> list[LabelJob]:
    return list(
        session.scalars(
            select(LabelJob)
            .where(LabelJob.batch_id == batch_id)
            .order_by(LabelJob.id.desc())
            .limit(limit)
        )
    )


def batches_for(
    session: Session, *, cooperative_ids: Sequence[int] | None, limit: int = 200
) -> list[Batch]:
    """Batches of these cooperatives (None: every cooperative), newest first."""
    query = (
        select(Batch)
        .options(selectinload(Batch.product))
        .order_by(Batch.harvest_date.desc(), Batch.id.desc())
        .limit(limit)
    )
    if cooperative_ids is not None:
        query = query.where(Batch.cooperative_id.in_(cooperative_ids))
    return list(session.scalars(query))


def code_counts(session: Session, batch_ids: Sequence[int]) -> dict[int, int]:
    if not batch_ids:
        return {}
    rows = session.execute(
        select(TraceCode.batch_id, func.count(TraceCode.id))
        .where(TraceCode.batch_id.in_(batch_ids), TraceCode.kind == CodeKind.UNIT)
        .group_by(TraceCode.batch_id)
    ).all()
    return dict(rows)
