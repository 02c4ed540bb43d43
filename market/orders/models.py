"""Carts and orders, and the one table of order states and the moves between them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.extensions import db
from market.types import utcnow

if TYPE_CHECKING:
    from market.auth.models import User
    from market.catalog.models import Product
    from market.cooperatives.models import Cooperative


class OrderStatus(enum.Enum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUND_REQUESTED = "refund_requested"
    REFUNDED = "refunded"


S = OrderStatus


def status_column_type(name: str) -> Enum:
    """OrderStatus for a second column of a table: its CHECK needs a name of its own
    (PostgreSQL refuses two constraints called ck_<table>_orderstatus)."""
    return Enum(
        OrderStatus,
        name=name,
        native_enum=False,
        length=32,
        values_callable=lambda cls: [member.value for member in cls],
        validate_strings=True,
        create_constraint=True,
    )


#: States from which a buyer may ask for money back.
REFUNDABLE = frozenset({S.PAID, S.PACKED, S.SHIPPED, S.DELIVERED, S.COMPLETED})
#: States in which the goods have not left the cooperative (a full refund restocks).
NOT_SHIPPED = frozenset({S.PAID, S.PACKED})


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[OrderStatus]
    #: None: back to the state the order had before the refund request.
    target: OrderStatus | None
    #: The timestamp column the move sets.
    stamp: str | None = None


#: Every legal move of an order, in one place. Anything not listed is refused.
TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("pay", frozenset({S.PENDING_PAYMENT}), S.PAID, "paid_at"),
        Transition("cancel", frozenset({S.PENDING_PAYMENT}), S.CANCELLED, "cancelled_at"),
        Transition("pack", frozenset({S.PAID}), S.PACKED, "packed_at"),
        Transition("ship", frozenset({S.PACKED}), S.SHIPPED, "shipped_at"),
        Transition("deliver", frozenset({S.SHIPPED}), S.DELIVERED, "delivered_at"),
        Transition("complete", frozenset({S.DELIVERED}), S.COMPLETED, "completed_at"),
        Transition("request_refund", REFUNDABLE, S.REFUND_REQUESTED),
        Transition("refund", frozenset({S.REFUND_REQUESTED}), S.REFUNDED, "refunded_at"),
        # A declined request, or a partial refund: the order carries on where it was.
        Transition("resume", frozenset({S.REFUND_REQUESTED}), None),
    )
}


class Order(db.Model):
    """One cooperative's share of a checkout: it is packed and shipped as one parcel."""

    __tablename__ = "orders_orders"
    __table_args__ = (
        CheckConstraint("total_fen > 0", name="total_positive"),
        CheckConstraint("refunded_fen >= 0 AND refunded_fen <= total_fen", name="refund_in_range"),
        Index("ix_orders_orders_cooperative_status", "cooperative_id", "status"),
        Index("ix_orders_orders_buyer_created", "buyer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: YN + date (Asia/Shanghai) + six-digit sequence of that day, e.g. YN20261127000042.
    number: Mapped[str] = mapped_column(String(20), unique=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("market_users.id", ondelete="RESTRICT"))
    cooperative_id: Mapped[int] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="RESTRICT")
    )
    status: Mapped[OrderStatus] = mapped_column(default=OrderStatus.PENDING_PAYMENT, index=True)
    #: Where the order was before a refund request, to go back on a decline.
    status_before_refund: Mapped[OrderStatus | None] = mapped_column(
        status_column_type("status_before_refund")
    )
    total_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refund_requested_fen: Mapped[int | None] = mapped_column(BigInteger)
    refund_reason: Mapped[str | None] = mapped_column(String(200))
    #: The payment the buyer makes for all orders of one checkout (None until created).
    payment_intent_id: Mapped[str | None] = mapped_column(
        ForeignKey("payments_payment_intents.id", ondelete="SET NULL"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(String(11))
    #: GB/T 2260 code of the deepest division chosen (county, or city, or province).
    division_code: Mapped[str] = mapped_column(String(6))
    address: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(String(200), default="")
    #: Unpaid orders are cancelled (and restocked) after this.
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    packed_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(40))

    buyer: Mapped[User] = relationship()
    cooperative: Mapped[Cooperative] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", order_by="OrderEvent.id", cascade="all, delete-orphan"
    )

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)

    def __repr__(self) -> str:
        return f"<Order {self.number} {self.status.value}>"


class OrderLine(db.Model):
    __tablename__ = "orders_order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_fen >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders_orders.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_products.id", ondelete="SET NULL"), index=True
    )
    #: The farmer who listed the product at the time: they pack this line.
    farmer_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_users.id", ondelete="SET NULL"), index=True
    )
    #: Title, unit and price as the buyer bought them (the product may change later).
    title: Mapped[str] = mapped_column(String(60))
    unit: Mapped[str] = mapped_column(String(8))
    unit_price_fen: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int]
    packed_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product | None] = relationship()

    @property
    def total_fen(self) -> int:
        return self.unit_price_fen * self.quantity


class OrderEvent(db.Model):
    """The order's history: every state change, who made it and why."""

    __tablename__ = "orders_order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders_orders.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[OrderStatus] = mapped_column(status_column_type("from_status"))
    to_status: Mapped[OrderStatus] = mapped_column(status_column_type("to_status"))
    #: None when the system did it (payment notify, expiry).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("market_users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="events")


class CartItem(db.Model):
    """A signed-in buyer's cart line. Visitors keep theirs in the session cookie."""

    __tablename__ = "orders_cart_items"
    __table_args__ = (
        UniqueConstraint("user_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("market_users.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("market_products.id", ondelete="CASCADE"))
    quantity: Mapped[int]
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderNumberCounter(db.Model):
    """Today's last order sequence number, taken with one UPDATE ... RETURNING."""

    __tablename__ = "orders_number_counters"

    #: YYYYMMDD in Asia/Shanghai.
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(default=0)
