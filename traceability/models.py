"""Batches (lots), trace codes, scans, EPCIS events, API tokens and label jobs."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.extensions import db
from market.types import utcnow

if TYPE_CHECKING:
    from market.auth.models import User
    from market.catalog.models import Product
    from market.cooperatives.models import Cooperative


class OriginKind(enum.Enum):
    """Where a batch was grown, raised or caught."""

    PLOT = "plot"  #: 地块 / 田块
    ORCHARD = "orchard"  #: 果园
    TEA_GARDEN = "tea_garden"  #: 茶园
    GREENHOUSE = "greenhouse"  #: 大棚
    POND = "pond"  #: 鱼塘 / 虾塘
    BOAT = "boat"  #: 渔船 (catch)
    FARM = "farm"  #: 养殖场 / 栏舍
    WORKSHOP = "workshop"  #: 加工坊 (processed goods)
    OTHER = "other"


class InputKind(enum.Enum):
    """Farm inputs that GB/T 29373 / 29568 records list."""

    PESTICIDE = "pesticide"  #: 农药
    FERTILISER = "fertiliser"  #: 肥料
    FEED = "feed"  #: 饲料
    VET_DRUG = "vet_drug"  #: 兽药 / 渔药
    OTHER = "other"


class InspectionKind(enum.Enum):
    SELF_TEST = "self_test"  #: 自检 (e.g. rapid residue test)
    LAB = "lab"  #: 委托检测 by a laboratory


class InspectionResult(enum.Enum):
    PASS = "pass"  # noqa: S105 - a test result, not a password
    FAIL = "fail"


#: Bases of a 承诺达标合格证 (stored as these codes in Batch.cert_basis).
CERT_BASES = ("commissioned_test", "self_test", "internal_control", "self_commitment")


class CodeKind(enum.Enum):
    UNIT = "unit"  #: one SGTIN per unit (一物一码)
    BATCH = "batch"  #: GTIN + lot for bulk goods (一批一证)


class LabelLayout(enum.Enum):
    ROLL_40X30 = "40x30"  #: thermal roll, 40 × 30 mm, one label per page
    ROLL_60X40 = "60x40"  #: thermal roll, 60 × 40 mm, one label per page
    A4_3X8 = "a4"  #: A4 sheet of 3 × 8 labels


class JobStatus(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Batch(db.Model):
    """One production batch (lot): the unit a 承诺达标合格证 and a lot code are issued for."""

    __tablename__ = "traceability_batches"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("stock_added >= 0", name="stock_added_not_negative"),
        CheckConstraint(
            "stock_left >= 0 AND stock_left <= stock_added", name="stock_left_in_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("market_products.id", ondelete="RESTRICT"), index=True
    )
    cooperative_id: Mapped[int] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="RESTRICT"), index=True
    )
    #: GS1 AI 10 lot code, ASCII (codes.new_lot_code), e.g. QY2611A. Unique platform-wide.
    lot_code: Mapped[str] = mapped_column(String(20), unique=True)
    #: The Chinese batch name people use, e.g. 2026年11月大红柑第一批.
    name: Mapped[str] = mapped_column(String(60))
    variety: Mapped[str] = mapped_column(String(40), default="")
    #: Harvest, slaughter or catch date (or production date for processed goods).
    harvest_date: Mapped[date]
    quantity: Mapped[int]
    #: One of market.catalog.models.UNITS.
    unit: Mapped[str] = mapped_column(String(8))
    origin_kind: Mapped[OriginKind] = mapped_column(default=OriginKind.PLOT)
    #: GB/T 2260 county (or city) code of the origin.
    origin_code: Mapped[str] = mapped_column(String(6), index=True)
    #: Town and village, e.g. 会城街道茶坑村.
    origin_village: Mapped[str] = mapped_column(String(60), default="")
    #: The plot, pond, boat or pen: 3号地块, 5号塘, 粤阳西渔12345.
    origin_site: Mapped[str] = mapped_column(String(60), default="")
    #: Farming, catch or processing method: 高位池养殖, 刺网捕捞, 自然晒制.
    method: Mapped[str] = mapped_column(String(60), default="")
    notes: Mapped[str] = mapped_column(Text, default="")

    # 承诺达标合格证: a snapshot taken when the batch is created, so a printed certificate
    # never changes underneath its label.
    cert_product_name: Mapped[str] = mapped_column(String(60))
    cert_quantity: Mapped[str] = mapped_column(String(30))
    cert_origin: Mapped[str] = mapped_column(String(120))
    cert_producer: Mapped[str] = mapped_column(String(60))
    cert_contact: Mapped[str] = mapped_column(String(30), default="")
    cert_issued_on: Mapped[date]
    #: Subset of CERT_BASES.
    cert_basis: Mapped[list[str]] = mapped_column(JSON, default=list)

    #: Sale units of the product put on sale from this batch, in all (a running total).
    stock_added: Mapped[int] = mapped_column(default=0)
    #: Of those, the units still on sale: part of the product's stock, not yet in an order.
    #: Orders take from the oldest batch first (traceability.stock).
    stock_left: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Bumped by every change that shows on the scan page (the page cache's key).
    version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    product: Mapped[Product] = relationship()
    cooperative: Mapped[Cooperative] = relationship()
    created_by: Mapped[User | None] = relationship()
    inputs: Mapped[list[BatchInput]] = relationship(
        back_populates="batch",
        order_by="(BatchInput.used_on, BatchInput.id)",
        cascade="all, delete-orphan",
    )
    inspections: Mapped[list[Inspection]] = relationship(
        back_populates="batch",
        order_by="(Inspection.tested_on, Inspection.id)",
        cascade="all, delete-orphan",
    )

    def __repr__(self) -> str:
        return f"<Batch {self.id} {self.lot_code}>"


class OrderLineBatch(db.Model):
    """Units of an order line taken from a batch's stock at checkout (first in, first out).

    A line's units beyond its rows here were not from a recorded batch. The rows stay when
    the units go back to the batch (unpaid order cancelled, refunded before shipping):
    ``returned_at`` is set, so the batch counts them as on sale again, not as sold.
    """

    __tablename__ = "traceability_order_line_batches"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    order_line_id: Mapped[int] = mapped_column(
        ForeignKey("orders_order_lines.id", ondelete="CASCADE"), primary_key=True
    )
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("traceability_batches.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    quantity: Mapped[int]
    returned_at: Mapped[datetime | None]

    batch: Mapped[Batch] = relationship()


class BatchSource(db.Model):
    """A batch made from another (fresh 大红柑 -> 陈皮), recorded by a TransformationEvent."""

    __tablename__ = "traceability_batch_sources"

    batch_id: Mapped[int] = mapped_column(
        ForeignKey("traceability_batches.id", ondelete="CASCADE"), primary_key=True
    )
    source_batch_id: Mapped[int] = mapped_column(
        ForeignKey("traceability_batches.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class BatchInput(db.Model):
    """A pesticide, fertiliser, feed or veterinary drug used on a batch, with its date."""

    __tablename__ = "traceability_batch_inputs"
    __table_args__ = (
        CheckConstraint("safety_days IS NULL OR safety_days >= 0", name="safety_days_ok"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("traceability_batches.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[InputKind]
    #: Product name and, for pesticides, the active ingredient: 阿维菌素 1.8% 乳油.
    name: Mapped[str] = mapped_column(String(60))
    #: Dose as written on the record: 每亩 40 毫升.
    amount: Mapped[str] = mapped_column(String(40), default="")
    used_on: Mapped[date]
    #: Pre-harvest interval or withdrawal period (安全间隔期 / 休药期), days.
    safety_days: Mapped[int | None]
    notes: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    batch: Mapped[Batch] = relationship(back_populates="inputs")


class Inspection(db.Model):
    """A self-test or laboratory test of a batch, with its result and report."""

    __tablename__ = "traceability_inspections"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("traceability_batches.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[InspectionKind]
    tested_on: Mapped[date]
    #: What was tested: 农药残留速测（有机磷和氨基甲酸酯类）.
    items: Mapped[str] = mapped_column(String(120))
    result: Mapped[InspectionResult]
    #: Laboratory or tester.
    agency: Mapped[str] = mapped_column(String(60), default="")
    report_no: Mapped[str] = mapped_column(String(40), default="")
    #: Stored report: "<sha256 hex>.pdf" in TRACE_REPORT_DIR, or a market.media photo key.
    report_file: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    batch: Mapped[Batch] = relationship(back_populates="inspections")


class TraceCode(db.Model):
    """An issued trace code: a unit SGTIN (GTIN + serial), or the batch's GTIN + lot code."""

    __tablename__ = "traceability_codes"
    __table_args__ = (
        UniqueConstraint("gtin", "serial"),
        Index("ix_traceability_codes_batch_kind", "batch_id", "kind", "issue_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("traceability_batches.id", ondelete="CASCADE"))
    kind: Mapped[CodeKind]
    #: GTIN-14 of the product when the code was issued.
    gtin: Mapped[str] = mapped_column(String(14))
    #: AI 21 serial: random, numeric, below 2**38, no leading zero. None for a batch code.
    serial: Mapped[str | None] = mapped_column(String(20))
    #: SGTIN-96 EPC (24 upper-case hex) for an RFID tag. None for a batch code.
    epc_hex: Mapped[str | None] = mapped_column(String(24), unique=True)
    #: Which issue of this batch the code came from (1, 2, ...); 0 for the batch code.
    issue_no: Mapped[int] = mapped_column(default=0)
    scan_count: Mapped[int] = mapped_column(default=0)
    #: Distinct visitor-days that scanned it, and the distinct cities among them.
    visitor_count: Mapped[int] = mapped_column(default=0)
    city_count: Mapped[int] = mapped_column(default=0)
    first_scanned_at: Mapped[datetime | None]
    last_scanned_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    batch: Mapped[Batch] = relationship()


class ScanRecord(db.Model):
    """The first scan of one code by one visitor on one day (Asia/Shanghai).

    No IP address is stored: ``visitor_key`` is a keyed HMAC of the address and the day,
    so the same phone is counted once a day and cannot be followed across days.
    """

    __tablename__ = "traceability_scans"
    __table_args__ = (UniqueConstraint("code_id", "visitor_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("traceability_codes.id", ondelete="CASCADE"))
    visitor_key: Mapped[str] = mapped_column(String(32))
    day: Mapped[date]
    #: Approximate city from the proxy's geo header (a name or GB/T 2260 city code).
    city: Mapped[str | None] = mapped_column(String(40))
    #: "ok", "missing" or "wrong" HMAC tag; "rfid" for an EPC look-up.
    tag_status: Mapped[str] = mapped_column(String(8))
    first_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(db.Model):
    """A bearer token for the EPCIS API. Only a SHA-256 hash of the token is stored."""

    __tablename__ = "traceability_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The first characters of the token, to tell tokens apart in lists.
    prefix: Mapped[str] = mapped_column(String(12))
    #: The cooperative the token acts for; None for a platform-wide token.
    cooperative_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="CASCADE"), index=True
    )
    #: Who minted it.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("market_users.id", ondelete="SET NULL"))
    #: Subset of services.TOKEN_SCOPES.
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    cooperative: Mapped[Cooperative | None] = relationship()
    user: Mapped[User | None] = relationship()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Capture(db.Model):
    """One accepted POST /epcis/capture."""

    __tablename__ = "traceability_captures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_api_tokens.id", ondelete="SET NULL")
    )
    cooperative_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="SET NULL")
    )
    event_count: Mapped[int] = mapped_column(default=0)
    #: Events already stored with the same eventID and content (a retried capture).
    duplicate_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TraceEvent(db.Model):
    """An EPCIS 2.0 event, append-only and hash-chained per batch.

    ``document`` is the event as canonical JSON (without recordTime, which is
    ``record_time``); the other columns are indexes derived from it. ``hash`` is the
    SHA-256 of the chain position, the previous hash, the record time and the document,
    so changing or deleting an event breaks the chain (``flask trace verify``).
    """

    __tablename__ = "traceability_events"
    __table_args__ = (UniqueConstraint("chain_key", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    event_type: Mapped[str] = mapped_column(String(40), index=True)
    action: Mapped[str | None] = mapped_column(String(8))
    event_time: Mapped[datetime] = mapped_column(index=True)
    event_tz: Mapped[str] = mapped_column(String(6))
    record_time: Mapped[datetime] = mapped_column(index=True)
    biz_step: Mapped[str | None] = mapped_column(String(255), index=True)
    disposition: Mapped[str | None] = mapped_column(String(255), index=True)
    read_point: Mapped[str | None] = mapped_column(String(255), index=True)
    biz_location: Mapped[str | None] = mapped_column(String(255), index=True)
    document: Mapped[str] = mapped_column(Text)
    #: The batch whose chain holds the event (None: not about one of our batches).
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_batches.id", ondelete="RESTRICT"), index=True
    )
    #: The cooperative that recorded it (None: the platform).
    owner_cooperative_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="SET NULL"), index=True
    )
    recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_users.id", ondelete="SET NULL")
    )
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_api_tokens.id", ondelete="SET NULL")
    )
    capture_id: Mapped[str | None] = mapped_column(
        ForeignKey("traceability_captures.id", ondelete="SET NULL")
    )
    #: "ui" (recorded on a page) or "api" (EPCIS capture).
    source: Mapped[str] = mapped_column(String(8))
    chain_key: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    batch: Mapped[Batch | None] = relationship()


class EventEPC(db.Model):
    """An identifier an event names, by field, for MATCH_* queries."""

    __tablename__ = "traceability_event_epcs"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_pk: Mapped[int] = mapped_column(
        ForeignKey("traceability_events.id", ondelete="CASCADE"), index=True
    )
    #: epc, child, parent, input, output (instance identifiers) or quantity,
    #: childQuantity, inputQuantity, outputQuantity (class identifiers).
    field: Mapped[str] = mapped_column(String(16))
    epc: Mapped[str] = mapped_column(String(255), index=True)


class EventBatch(db.Model):
    """Every batch an event is about (a TransformationEvent is about its inputs too)."""

    __tablename__ = "traceability_event_batches"

    event_pk: Mapped[int] = mapped_column(
        ForeignKey("traceability_events.id", ondelete="CASCADE"), primary_key=True
    )
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("traceability_batches.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ChainHead(db.Model):
    """The length and last hash of each event chain, so a deleted last event shows too."""

    __tablename__ = "traceability_chain_heads"

    chain_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    length: Mapped[int] = mapped_column(default=0)
    head_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LabelJob(db.Model):
    """A label PDF being rendered by a Celery task; the page polls its progress."""

    __tablename__ = "traceability_label_jobs"
    __table_args__ = (
        CheckConstraint("done >= 0 AND done <= total", name="progress_in_range"),
        CheckConstraint("copies >= 1", name="copies_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("traceability_batches.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("market_users.id", ondelete="SET NULL"))
    layout: Mapped[LabelLayout]
    kind: Mapped[CodeKind]
    #: Unit codes of this issue only (None: every unit code of the batch).
    issue_no: Mapped[int | None]
    #: Copies of the batch label (kind batch).
    copies: Mapped[int] = mapped_column(default=1)
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    status: Mapped[JobStatus] = mapped_column(default=JobStatus.PENDING)
    file_name: Mapped[str | None] = mapped_column(String(80))
    error: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    batch: Mapped[Batch] = relationship()

    @property
    def percent(self) -> int:
        if self.status is JobStatus.DONE:
            return 100
        return int(self.done * 100 / self.total) if self.total else 0
