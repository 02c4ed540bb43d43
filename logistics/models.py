"""Read points, RFID readers and their tag reads, parcels, shipments, checkpoints, cold chain.

Every step a parcel or unit takes is also an EPCIS event in traceability's hash-chained
event store (``traceability_events``); the rows here are the logistics bookkeeping around
those events (who, which waybill, which antenna, which reading) and point at them by
``event_pk``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.extensions import db
from market.types import utcnow

if TYPE_CHECKING:
    from market.cooperatives.models import Cooperative
    from market.orders.models import Order, OrderLine
    from traceability.models import ApiToken, Batch, TraceCode


class ReadPointKind(enum.Enum):
    WAREHOUSE = "warehouse"  #: 仓库
    COLD_STORE = "cold_store"  #: 冷库
    GATE = "gate"  #: 门禁 / 道口 (dock door, hub gate)
    VEHICLE = "vehicle"  #: 车辆 (a reader on a truck)


#: The CBV bizStep a read at each kind of place records, unless the read point says else.
DEFAULT_BIZ_STEP = {
    ReadPointKind.WAREHOUSE: "storing",
    ReadPointKind.COLD_STORE: "storing",
    ReadPointKind.GATE: "arriving",
    ReadPointKind.VEHICLE: "transporting",
}
#: bizSteps a read point may record (CBV 2.0 terms).
READ_BIZ_STEPS = (
    "arriving",
    "departing",
    "receiving",
    "shipping",
    "loading",
    "unloading",
    "storing",
    "transporting",
    "inspecting",
)


class ReadPoint(db.Model):
    """A place where tags are read: a warehouse, cold store, gate or vehicle, with its SGLN."""

    __tablename__ = "logistics_read_points"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None: run by the platform (a 供销社 hub shared by cooperatives).
    cooperative_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[ReadPointKind]
    #: GB/T 2260 code of the county (or city) the place is in.
    division_code: Mapped[str] = mapped_column(String(6))
    #: The owner's 13-digit GLN (the cooperative's, or the platform's).
    gln: Mapped[str] = mapped_column(String(13))
    #: urn:epc:id:sgln:... : the owner's GLN with this read point's extension (AI 254).
    sgln: Mapped[str] = mapped_column(String(255), unique=True)
    #: The CBV bizStep reads here record (one of READ_BIZ_STEPS).
    biz_step: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    cooperative: Mapped[Cooperative | None] = relationship()


class Reader(db.Model):
    """An RFID reader that pushes tag reads with its own API token."""

    __tablename__ = "logistics_readers"
    __table_args__ = (
        CheckConstraint(
            "dedupe_window_s >= 1 AND dedupe_window_s <= 3600", name="dedupe_window_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(60))
    #: Make and model, e.g. Impinj R700.
    model: Mapped[str] = mapped_column(String(60), default="")
    #: Where reads land when the antenna is not in the map.
    read_point_id: Mapped[int] = mapped_column(
        ForeignKey("logistics_read_points.id", ondelete="RESTRICT"), index=True
    )
    #: Antenna number (as a string) -> read point id (as a string).
    antenna_map: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: Reads of the same tag on the same antenna within this many seconds are one read.
    dedupe_window_s: Mapped[int] = mapped_column(default=30)
    #: The reader's clock sends local (Asia/Shanghai) times without an offset.
    local_time: Mapped[bool] = mapped_column(default=False)
    #: The bearer token the reader authenticates with (scope "rfid").
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_api_tokens.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(default=True)
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    cooperative: Mapped[Cooperative | None] = relationship()
    read_point: Mapped[ReadPoint] = relationship()
    token: Mapped[ApiToken | None] = relationship()


class ReadStatus(enum.Enum):
    PENDING = "pending"  #: stored, not yet turned into an event
    RECORDED = "recorded"  #: part of an EPCIS ObjectEvent (``event_pk``)
    MERGED = "merged"  #: the same tag at the same read point within the window of a recorded read
    QUARANTINED = "quarantined"  #: unknown EPC (or another cooperative's): see QuarantinedEpc


class TagRead(db.Model):
    """One de-duplicated tag read, stored under a unique key so a re-sent batch adds nothing."""

    __tablename__ = "logistics_tag_reads"
    __table_args__ = (
        Index("ix_logistics_tag_reads_reader_status", "reader_id", "status", "seen_at"),
        Index("ix_logistics_tag_reads_epc_point", "epc", "read_point_id", "seen_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: readers.dedupe_key: sha256 of reader, EPC, antenna, window and time bucket.
    dedupe_key: Mapped[str] = mapped_column(String(32), unique=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("logistics_readers.id", ondelete="CASCADE"))
    #: The EPC canonicalised: a pure-identity URI (sgtin, sscc) when decodable, else hex.
    epc: Mapped[str] = mapped_column(String(255))
    antenna: Mapped[int] = mapped_column(default=0)
    read_point_id: Mapped[int | None] = mapped_column(
        ForeignKey("logistics_read_points.id", ondelete="SET NULL")
    )
    rssi_dbm: Mapped[float | None] = mapped_column(Float)
    seen_count: Mapped[int] = mapped_column(default=1)
    seen_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[ReadStatus] = mapped_column(default=ReadStatus.PENDING)
    event_pk: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_events.id", ondelete="SET NULL")
    )


class QuarantineReason(enum.Enum):
    UNKNOWN = "unknown"  #: no code or parcel on the platform carries this EPC
    OTHER_COOPERATIVE = "other_cooperative"  #: a cooperative's reader saw another's goods


class QuarantinedEpc(db.Model):
    """An EPC readers saw that could not be recorded: kept for admins, never dropped."""

    __tablename__ = "logistics_quarantine"
    __table_args__ = (UniqueConstraint("scope", "epc"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "coop:<id>" or "platform": whose list it is on (the reader's owner).
    scope: Mapped[str] = mapped_column(String(20))
    cooperative_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="CASCADE"), index=True
    )
    epc: Mapped[str] = mapped_column(String(255))
    reason: Mapped[QuarantineReason]
    read_count: Mapped[int] = mapped_column(default=0)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    last_reader_id: Mapped[int | None] = mapped_column(
        ForeignKey("logistics_readers.id", ondelete="SET NULL")
    )
    last_read_point_id: Mapped[int | None] = mapped_column(
        ForeignKey("logistics_read_points.id", ondelete="SET NULL")
    )
    #: Set when an admin dismissed the entry or its reads were recorded after all.
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str] = mapped_column(String(20), default="")

    last_reader: Mapped[Reader | None] = relationship()
    last_read_point: Mapped[ReadPoint | None] = relationship()


class ParcelStatus(enum.Enum):
    PACKED = "packed"
    SHIPPED = "shipped"


class Parcel(db.Model):
    """A packed parcel of (part of) an order, identified by an SSCC."""

    __tablename__ = "logistics_parcels"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders_orders.id", ondelete="RESTRICT"), index=True
    )
    cooperative_id: Mapped[int] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="RESTRICT"), index=True
    )
    shipment_id: Mapped[int | None] = mapped_column(
        ForeignKey("logistics_shipments.id", ondelete="SET NULL"), index=True
    )
    #: 18-digit SSCC (AI 00) under the platform's company prefix, extension digit 1.
    sscc: Mapped[str] = mapped_column(String(18), unique=True)
    #: urn:epc:id:sscc:... (what events name).
    sscc_uri: Mapped[str] = mapped_column(String(64), unique=True)
    #: SSCC-96 EPC (24 hex) to write to the parcel's RFID tag.
    epc_hex: Mapped[str] = mapped_column(String(24), unique=True)
    status: Mapped[ParcelStatus] = mapped_column(default=ParcelStatus.PACKED)
    #: The AggregationEvent that packed it.
    pack_event_pk: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_events.id", ondelete="SET NULL")
    )
    packed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_users.id", ondelete="SET NULL")
    )
    packed_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship()
    shipment: Mapped[Shipment | None] = relationship(back_populates="parcels")
    items: Mapped[list[ParcelItem]] = relationship(
        back_populates="parcel", order_by="ParcelItem.id", cascade="all, delete-orphan"
    )


class ParcelItem(db.Model):
    """What went into a parcel for an order line: one unit code, or a quantity of a batch."""

    __tablename__ = "logistics_parcel_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("code_id IS NULL OR quantity = 1", name="one_unit_per_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_id: Mapped[int] = mapped_column(
        ForeignKey("logistics_parcels.id", ondelete="CASCADE"), index=True
    )
    order_line_id: Mapped[int] = mapped_column(
        ForeignKey("orders_order_lines.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("traceability_batches.id", ondelete="RESTRICT"), index=True
    )
    #: A unit code packed one by one (a unit is packed once: unique).
    code_id: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_codes.id", ondelete="RESTRICT"), unique=True
    )
    #: Sale units of the line: 1 for a unit code.
    quantity: Mapped[int] = mapped_column(default=1)

    parcel: Mapped[Parcel] = relationship(back_populates="items")
    order_line: Mapped[OrderLine] = relationship()
    batch: Mapped[Batch] = relationship()
    code: Mapped[TraceCode | None] = relationship()


class ShipmentStatus(enum.Enum):
    SHIPPED = "shipped"  #: handed over, nothing heard yet
    ACCEPTED = "accepted"  #: 揽收
    IN_TRANSIT = "in_transit"  #: 运输中
    OUT_FOR_DELIVERY = "out_for_delivery"  #: 派送中
    DELIVERED = "delivered"  #: 已签收
    DELAYED = "delayed"  #: 异常 / 延误
    DAMAGED = "damaged"  #: 破损
    LOST = "lost"  #: 丢失
    RETURNED = "returned"  #: 退回


#: Statuses that mean something went wrong.
EXCEPTION_STATUSES = frozenset(
    {ShipmentStatus.DELAYED, ShipmentStatus.DAMAGED, ShipmentStatus.LOST, ShipmentStatus.RETURNED}
)


class Shipment(db.Model):
    """An order handed to a carrier (or to the cooperative's own delivery) with a waybill."""

    __tablename__ = "logistics_shipments"
    __table_args__ = (UniqueConstraint("carrier_code", "waybill"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders_orders.id", ondelete="RESTRICT"), unique=True
    )
    cooperative_id: Mapped[int] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="RESTRICT"), index=True
    )
    #: logistics.carriers code: SF, JD, EMS, ZTO, YTO, YUNDA, DEPPON, COOP.
    carrier_code: Mapped[str] = mapped_column(String(8))
    #: Normalised waybill number (运单号), checked against the carrier's format.
    waybill: Mapped[str] = mapped_column(String(32))
    status: Mapped[ShipmentStatus] = mapped_column(default=ShipmentStatus.SHIPPED, index=True)
    #: Cold-chain profile refining the category's limits ("live", "frozen", ...); "" none.
    cold_profile: Mapped[str] = mapped_column(String(20), default="")
    #: The shipping ObjectEvent.
    ship_event_pk: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_events.id", ondelete="SET NULL")
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_users.id", ondelete="SET NULL")
    )
    shipped_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    last_update_at: Mapped[datetime | None]
    #: When the carrier tracking service was asked to push updates.
    subscribed_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship()
    parcels: Mapped[list[Parcel]] = relationship(back_populates="shipment", order_by="Parcel.id")
    checkpoints: Mapped[list[Checkpoint]] = relationship(
        back_populates="shipment", order_by="(Checkpoint.at, Checkpoint.id)"
    )


class CheckpointKind(enum.Enum):
    ACCEPTED = "accepted"
    DEPARTED = "departed"
    IN_TRANSIT = "in_transit"
    ARRIVED = "arrived"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELAYED = "delayed"
    DAMAGED = "damaged"
    LOST = "lost"
    RETURNED = "returned"


class Checkpoint(db.Model):
    """A step of a shipment: recorded by hand, or pushed by the carrier's tracking service."""

    __tablename__ = "logistics_checkpoints"
    __table_args__ = (UniqueConstraint("shipment_id", "source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("logistics_shipments.id", ondelete="CASCADE")
    )
    kind: Mapped[CheckpointKind]
    at: Mapped[datetime]
    #: Where, as the carrier or the person wrote it (江门中转场).
    location: Mapped[str] = mapped_column(String(60), default="")
    #: GB/T 2260 code of the place, when known.
    division_code: Mapped[str | None] = mapped_column(String(6))
    note: Mapped[str] = mapped_column(String(200), default="")
    #: "manual" or "carrier".
    source: Mapped[str] = mapped_column(String(10))
    #: Makes a re-sent carrier push idempotent (a hash of the update); unique per shipment.
    source_key: Mapped[str] = mapped_column(String(32))
    recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_users.id", ondelete="SET NULL")
    )
    event_pk: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_events.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    shipment: Mapped[Shipment] = relationship(back_populates="checkpoints")


class TemperatureReading(db.Model):
    """One temperature reading of a parcel, from a reader, a logger or typed in by hand."""

    __tablename__ = "logistics_temperatures"
    __table_args__ = (
        UniqueConstraint("parcel_id", "source", "at"),
        Index("ix_logistics_temperatures_shipment_at", "shipment_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("logistics_parcels.id", ondelete="CASCADE"))
    shipment_id: Mapped[int | None] = mapped_column(
        ForeignKey("logistics_shipments.id", ondelete="CASCADE")
    )
    #: The sensor: "manual", "reader:<id>" or the logger's id; excursions are per source.
    source: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime]
    celsius: Mapped[float] = mapped_column(Float)
    read_point_id: Mapped[int | None] = mapped_column(
        ForeignKey("logistics_read_points.id", ondelete="SET NULL")
    )
    #: The sensor_reporting event that carries it (as an EPCIS sensor element).
    event_pk: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_events.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Excursion(db.Model):
    """A run of readings beyond the cold-chain limits (coldchain.excursions)."""

    __tablename__ = "logistics_excursions"
    __table_args__ = (UniqueConstraint("shipment_id", "source", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("logistics_shipments.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(120))
    #: "high" or "low".
    kind: Mapped[str] = mapped_column(String(4))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    peak_c: Mapped[float] = mapped_column(Float)
    low_c: Mapped[float | None] = mapped_column(Float)
    high_c: Mapped[float | None] = mapped_column(Float)
    reading_count: Mapped[int] = mapped_column(default=1)
    #: The first reading back in range; None while the run lasts.
    returned_at: Mapped[datetime | None]
    #: The event that marks it on the timeline.
    event_pk: Mapped[int | None] = mapped_column(
        ForeignKey("traceability_events.id", ondelete="SET NULL")
    )
    notified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    shipment: Mapped[Shipment] = relationship()
