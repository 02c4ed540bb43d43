"""Stripe-shaped payment records: intents, refunds, events, webhooks, API keys.

Plus the notify log that makes Alipay's async notifications idempotent, and the two
tables the offline sandbox gateway keeps (it plays Alipay, so it remembers its own
trades separately from ours).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
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

#: The account the marketplace's own checkout charges under. API keys of other accounts
#: (integrators) see only their own objects.
MARKET_ACCOUNT = "market"


class IntentStatus(enum.Enum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (IntentStatus.SUCCEEDED, IntentStatus.CANCELED)


class RefundStatus(enum.Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentIntent(db.Model):
    __tablename__ = "payments_payment_intents"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_received >= 0", name="received_not_negative"),
        CheckConstraint("amount_refunded <= amount_received", name="refund_not_above_received"),
        Index("ix_payments_payment_intents_account_created", "account", "created_at"),
    )

    #: "pi_" + 24 random characters.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account: Mapped[str] = mapped_column(String(40), default=MARKET_ACCOUNT)
    #: Integer fen; Stripe calls the field `amount`.
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="cny")
    status: Mapped[IntentStatus] = mapped_column(
        default=IntentStatus.REQUIRES_PAYMENT_METHOD, index=True
    )
    description: Mapped[str] = mapped_column(String(256), default="")
    #: Stripe-style metadata: a flat dict of short strings.
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    #: "alipay" or "sandbox": who was asked to take the money.
    provider: Mapped[str] = mapped_column(String(16))
    #: Alipay refuses to reuse a closed out_trade_no, so each try gets `{id}_{attempt}`.
    attempt: Mapped[int] = mapped_column(default=0)
    #: Alipay's own trade number once it is known.
    provider_trade_no: Mapped[str | None] = mapped_column(String(64))
    next_action: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    return_url: Mapped[str | None] = mapped_column(String(500))
    amount_received: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    last_payment_error: Mapped[dict[str, str] | None] = mapped_column(JSON)
    cancellation_reason: Mapped[str | None] = mapped_column(String(40))
    #: Set when something did not add up (amount, late payment); a person must look.
    review_reason: Mapped[str | None] = mapped_column(String(200))
    #: No trade may be paid after this (Alipay's time_expire); None means 30 min per try.
    expires_at: Mapped[datetime | None]
    #: time_expire of the current try's trade.
    trade_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    succeeded_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]

    refunds: Mapped[list[Refund]] = relationship(
        back_populates="payment_intent", order_by="Refund.created_at"
    )

    @property
    def out_trade_no(self) -> str | None:
        return f"{self.id}_{self.attempt}" if self.attempt else None

    @property
    def amount_refundable(self) -> int:
        pending = sum(r.amount for r in self.refunds if r.status is RefundStatus.PENDING)
        return self.amount_received - self.amount_refunded - pending

    def __repr__(self) -> str:
        return f"<PaymentIntent {self.id} {self.status.value} {self.amount}>"


class Refund(db.Model):
    __tablename__ = "payments_refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    #: "re_" + 24 random characters; also Alipay's out_request_no, reused on every retry.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account: Mapped[str] = mapped_column(String(40), default=MARKET_ACCOUNT)
    payment_intent_id: Mapped[str] = mapped_column(
        ForeignKey("payments_payment_intents.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[RefundStatus] = mapped_column(default=RefundStatus.PENDING, index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    payment_intent: Mapped[PaymentIntent] = relationship(back_populates="refunds")


class Event(db.Model):
    """What happened, as Stripe tells it: `payment_intent.succeeded`, `charge.refunded`..."""

    __tablename__ = "payments_events"
    __table_args__ = (Index("ix_payments_events_account_created", "account", "created_at"),)

    #: "evt_" + 24 random characters.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(60))
    #: {"object": <the object as the API shows it at that moment>}
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEndpoint(db.Model):
    __tablename__ = "payments_webhook_endpoints"

    #: "we_" + 24 random characters.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account: Mapped[str] = mapped_column(String(40), index=True)
    url: Mapped[str] = mapped_column(String(500))
    #: "whsec_..." shared with the integrator; signs every delivery (HMAC-SHA256).
    secret: Mapped[str] = mapped_column(String(80))
    #: Event types to send, or ["*"].
    enabled_events: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["*"])
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def wants(self, event_type: str) -> bool:
        return self.active and ("*" in self.enabled_events or event_type in self.enabled_events)


class DeliveryStatus(enum.Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  #: gave up after the last retry


class WebhookDelivery(db.Model):
    __tablename__ = "payments_webhook_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "endpoint_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(
        ForeignKey("payments_events.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("payments_webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[DeliveryStatus] = mapped_column(default=DeliveryStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    event: Mapped[Event] = relationship()
    endpoint: Mapped[WebhookEndpoint] = relationship()


class ApiKey(db.Model):
    """A secret API key. Only its SHA-256 is kept; the key itself is shown once."""

    __tablename__ = "payments_api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(80))
    #: "sk_test_" (sandbox) or "sk_live_" (Alipay), for people reading a list of keys.
    prefix: Mapped[str] = mapped_column(String(8))
    last4: Mapped[str] = mapped_column(String(4))
    #: hex SHA-256 of the whole key; keys are 190 random bits, so a fast hash is enough.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @property
    def livemode(self) -> bool:
        return self.prefix == "sk_live_"


class IdempotencyKey(db.Model):
    """The first response to a POST with an Idempotency-Key, replayed for repeats."""

    __tablename__ = "payments_idempotency_keys"
    __table_args__ = (UniqueConstraint("account", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of the canonical request parameters: the same key with others is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int]
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ProviderNotification(db.Model):
    """Every verified async notify we acted on, keyed by the provider's notify_id."""

    __tablename__ = "payments_provider_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    notify_id: Mapped[str] = mapped_column(String(128), unique=True)
    out_trade_no: Mapped[str] = mapped_column(String(64), index=True)
    trade_status: Mapped[str] = mapped_column(String(32), default="")
    #: handled | amount_mismatch | late_payment | refund | ignored
    outcome: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, str]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the offline sandbox gateway's own books ----------------------------------------


class SandboxTrade(db.Model):
    """A trade as the sandbox gateway (playing Alipay) sees it."""

    __tablename__ = "payments_sandbox_trades"
    __table_args__ = (
        CheckConstraint("total_fen > 0", name="total_positive"),
        CheckConstraint("refunded_fen <= total_fen", name="refund_not_above_total"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The gateway's own number, like Alipay's 2026112722001...
    trade_no: Mapped[str] = mapped_column(String(64), unique=True)
    out_trade_no: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(40))
    product_code: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(256))
    total_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    #: WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_CLOSED, TRADE_FINISHED
    status: Mapped[str] = mapped_column(String(20), default="WAIT_BUYER_PAY")
    notify_url: Mapped[str | None] = mapped_column(String(500))
    return_url: Mapped[str | None] = mapped_column(String(500))
    quit_url: Mapped[str | None] = mapped_column(String(500))
    time_expire: Mapped[datetime | None]
    #: Switches chosen on the cashier page (notify mode, tampering...).
    switches: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: A notify held back by the "late" switch, sent when asked.
    pending_notify: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class SandboxRefund(db.Model):
    __tablename__ = "payments_sandbox_refunds"
    __table_args__ = (UniqueConstraint("trade_id", "out_request_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trade_id: Mapped[int] = mapped_column(
        ForeignKey("payments_sandbox_trades.id", ondelete="CASCADE"), index=True
    )
    out_request_no: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
