"""Payment rules: intents, refunds, notifies, reconciliation, keys. No HTTP here.

Functions take a session and plain values, change models, and never commit. Work that
must wait for the commit (webhook deliveries, sandbox notifies, follow-up queries) is put
in the session's outbox with `after_commit()` and sent by the session's after_commit
hook (Warehouse's pattern), or dropped on rollback.

Other packages hear about money moving through blinker signals sent inside the same
transaction (`intent_succeeded`, `intent_canceled`, `refund_succeeded`, `refund_failed`;
each with `session=`), so an order is marked paid in the same commit as its payment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import string
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from blinker import Namespace
from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from market.errors import ConflictError, DomainError, NotFoundError
from market.money import fen_to_yuan
from market.payments.interfaces import (
    CloseOutcome,
    Device,
    InvalidNotifyError,
    Notification,
    ProviderError,
    ProviderUnavailableError,
    TradeInfo,
    TradeState,
)
from market.payments.models import (
    MARKET_ACCOUNT,
    ApiKey,
    Event,
    IdempotencyKey,
    IntentStatus,
    PaymentIntent,
    ProviderNotification,
    Refund,
    RefundStatus,
    WebhookEndpoint,
)
from market.payments.providers import external_url, get_provider, public_url
from market.types import utcnow

log = logging.getLogger(__name__)

_signals = Namespace()
intent_succeeded = _signals.signal("payment-intent-succeeded")
intent_canceled = _signals.signal("payment-intent-canceled")
refund_succeeded = _signals.signal("refund-succeeded")
refund_failed = _signals.signal("refund-failed")

#: Alipay's limit for one trade is ¥100,000,000; ours is ¥1,000,000 per intent.
MAX_AMOUNT_FEN = 100_000_000
#: How long one payment try (one Alipay trade) stays open when the intent sets no limit.
TRADE_MINUTES = 30
#: Stripe keeps idempotency keys for 24 hours.
IDEMPOTENCY_HOURS = 24
ALPHABET = string.ascii_letters + string.digits


class IntentNotFoundError(NotFoundError):
    code = "resource_missing"


class UnexpectedStateError(ConflictError):
    code = "payment_intent_unexpected_state"


class IntentExpiredError(ConflictError):
    code = "payment_intent_expired"


class AmountTooLargeError(DomainError):
    code = "amount_too_large"


class InvalidParameterError(DomainError):
    code = "parameter_invalid"


class IdempotencyMismatchError(DomainError):
    code = "idempotency_error"


# --- the outbox: work that waits for the commit ------------------------------------------

_OUTBOX = "payments.outbox"
_READY = "payments.outbox.ready"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once this session's transaction has committed (never on rollback)."""
    session.info.setdefault(_OUTBOX, []).append(action)


def _committed(session: Session) -> None:
    session.info.setdefault(_READY, []).extend(session.info.pop(_OUTBOX, []))


def _run_ready(session: Session, transaction) -> None:
    # After the transaction has ended, so its connection is back in the pool: an eager
    # task that opens its own never waits for a second connection while holding one.
    if transaction.parent is not None:
        return
    for action in session.info.pop(_READY, []):
        try:
            action()
        except Exception:  # the commit stands; a lost task is caught by the sweepers
            log.exception("after-commit action failed")


def _drop_outbox(session: Session) -> None:
    session.info.pop(_OUTBOX, None)


def install_outbox() -> None:
    if not sa_event.contains(Session, "after_commit", _committed):
        sa_event.listen(Session, "after_commit", _committed)
        sa_event.listen(Session, "after_transaction_end", _run_ready)
        sa_event.listen(Session, "after_rollback", _drop_outbox)


# --- ids and shapes ----------------------------------------------------------------------


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def intent_json(intent: PaymentIntent) -> dict[str, Any]:
    """The PaymentIntent as the API shows it (Stripe's field names)."""
    return {
        "id": intent.id,
        "object": "payment_intent",
        "amount": intent.amount,
        "amount_received": intent.amount_received,
        "amount_refunded": intent.amount_refunded,
        "currency": intent.currency,
        "status": intent.status.value,
        "description": intent.description or None,
        "metadata": dict(intent.metadata_ or {}),
        "payment_method_types": ["alipay"],
        "next_action": intent.next_action,
        "last_payment_error": intent.last_payment_error,
        "cancellation_reason": intent.cancellation_reason,
        "canceled_at": _unix(intent.canceled_at),
        "created": _unix(intent.created_at),
        "livemode": intent.provider != "sandbox",
    }


def refund_json(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "currency": "cny",
        "payment_intent": refund.payment_intent_id,
        "status": refund.status.value,
        "reason": refund.reason or None,
        "failure_reason": refund.failure_reason,
        "metadata": dict(refund.metadata_ or {}),
        "created": _unix(refund.created_at),
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "object": "event",
        "type": event.type,
        "created": _unix(event.created_at),
        "livemode": bool(event.data.get("object", {}).get("livemode", False)),
        "data": event.data,
    }


# --- events (and the webhook deliveries they cause) -------------------------------------


def record_event(session: Session, account: str, event_type: str, obj: dict[str, Any]) -> Event:
    """Store an event and queue its webhook deliveries for after the commit."""
    from market.payments import webhooks

    event = Event(
        id=new_id("evt_"),
        account=account,
        type=event_type,
        data={"object": obj},
        created_at=utcnow(),
    )
    session.add(event)
    webhooks.queue_deliveries(session, event)
    return event


def _intent_event(session: Session, intent: PaymentIntent, event_type: str) -> None:
    record_event(session, intent.account, event_type, intent_json(intent))


# --- intents ------------------------------------------------------------------------------


def validate_metadata(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """Stripe's limits: 50 keys, keys up to 40 characters, values up to 500."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidParameterError("metadata must be an object", field="metadata")
    if len(metadata) > 50:
        raise InvalidParameterError("metadata has more than 50 keys", field="metadata")
    clean: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or len(key) > 40 or "[" in key:
            raise InvalidParameterError("metadata keys are 1-40 characters", field="metadata")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidParameterError("metadata values are strings", field="metadata")
        if len(str(value)) > 500:
            raise InvalidParameterError(
                "metadata values are up to 500 characters", field="metadata"
            )
        clean[key] = str(value)
    return clean


def create_intent(
    session: Session,
    *,
    amount: int,
    account: str = MARKET_ACCOUNT,
    currency: str = "cny",
    description: str = "",
    metadata: Mapping[str, Any] | None = None,
    expires_at: datetime | None = None,
    provider: str | None = None,
) -> PaymentIntent:
    """A new PaymentIntent in requires_payment_method."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidParameterError("amount must be an integer number of fen", field="amount")
    if not 1 <= amount <= MAX_AMOUNT_FEN:
        raise InvalidParameterError(
            f"amount must be between 1 and {MAX_AMOUNT_FEN} fen", field="amount"
        )
    if (currency or "").lower() != "cny":
        raise InvalidParameterError("only cny is supported", field="currency")
    if len(description or "") > 256:
        raise InvalidParameterError("description is at most 256 characters", field="description")
    intent = PaymentIntent(
        id=new_id("pi_"),
        account=account,
        amount=amount,
        currency="cny",
        description=(description or "").strip(),
        metadata_=validate_metadata(metadata),
        provider=provider or current_app.config["PAYMENT_PROVIDER"],
        expires_at=expires_at,
        status=IntentStatus.REQUIRES_PAYMENT_METHOD,
        attempt=0,
        amount_received=0,
        amount_refunded=0,
        created_at=utcnow(),
    )
    session.add(intent)
    # Flushed now: callers point rows at it by id (no relationship orders the inserts).
    session.flush()
    _intent_event(session, intent, "payment_intent.created")
    return intent


def get_intent(
    session: Session, intent_id: str, *, account: str | None = None, lock: bool = False
) -> PaymentIntent:
    query = select(PaymentIntent).where(PaymentIntent.id == intent_id)
    if account is not None:
        query = query.where(PaymentIntent.account == account)
    if lock:
        # Re-read under the lock: a copy already in the session may be stale.
        query = query.with_for_update().execution_options(populate_existing=True)
    intent = session.scalars(query).first()
    if intent is None:
        raise IntentNotFoundError(f"No such payment_intent: '{intent_id}'", field="id")
    return intent


def list_intents(
    session: Session,
    account: str,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[PaymentIntent], bool]:
    """Newest first, Stripe's cursor pagination; returns (page, has_more)."""
    query = select(PaymentIntent).where(PaymentIntent.account == account)
    order = (PaymentIntent.created_at.desc(), PaymentIntent.id.desc())
    if starting_after:
        cursor = get_intent(session, starting_after, account=account)
        query = query.where(
            or_(
                PaymentIntent.created_at < cursor.created_at,
                (PaymentIntent.created_at == cursor.created_at) & (PaymentIntent.id < cursor.id),
            )
        )
    elif ending_before:
        cursor = get_intent(session, ending_before, account=account)
        query = query.where(
            or_(
                PaymentIntent.created_at > cursor.created_at,
                (PaymentIntent.created_at == cursor.created_at) & (PaymentIntent.id > cursor.id),
            )
        )
        rows = list(
            session.scalars(
                query.order_by(PaymentIntent.created_at.asc(), PaymentIntent.id.asc()).limit(
                    limit + 1
                )
            )
        )
        has_more = len(rows) > limit
        return list(reversed(rows[:limit])), has_more
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def _provider_for(intent: PaymentIntent):
    return get_provider(intent.provider)


def confirm_intent(
    session: Session,
    intent_id: str,
    *,
    return_url: str,
    device: Device = "mobile",
    account: str | None = None,
) -> PaymentIntent:
    """Build the redirect to the provider's cashier: the intent goes to requires_action.

    No network call for a new try: the redirect is a signed URL. A confirm while a try is
    open reuses its out_trade_no (Alipay accepts the same trade again), unless the buyer
    switched between phone (wap pay) and desktop (page pay): then the open trade is closed
    first and a new try, with a new out_trade_no, starts.
    """
    intent = get_intent(session, intent_id, account=account, lock=True)
    if intent.status not in (IntentStatus.REQUIRES_PAYMENT_METHOD, IntentStatus.REQUIRES_ACTION):
        raise UnexpectedStateError(
            f"You cannot confirm this PaymentIntent because it has a status of "
            f"{intent.status.value}."
        )
    now = utcnow()
    if intent.expires_at is not None and intent.expires_at <= now + timedelta(minutes=1):
        raise IntentExpiredError("This PaymentIntent can no longer be paid.")
    fresh = intent.status is IntentStatus.REQUIRES_PAYMENT_METHOD or not intent.trade_expires_at
    if not fresh and ("wap.pay" in (redirect_url(intent) or "")) != (device == "mobile"):
        # Phone <-> desktop is another Alipay product: close this trade, open a new one.
        if not _close_current_try(session, intent):
            return intent  # the buyer had paid it after all
        fresh = True
    if fresh:
        intent.attempt += 1
        limit = now + timedelta(minutes=TRADE_MINUTES)
        intent.trade_expires_at = min(limit, intent.expires_at) if intent.expires_at else limit
    elif intent.trade_expires_at <= now + timedelta(minutes=1):
        raise IntentExpiredError("This payment try has expired; cancel and start again.")
    provider = _provider_for(intent)
    start = provider.start(
        out_trade_no=intent.out_trade_no,
        amount_fen=intent.amount,
        subject=intent.description or f"YueNong Market {fen_to_yuan(intent.amount)}",
        return_url=external_url("payments.alipay_return"),
        notify_url=public_url("payments.alipay_notify"),
        expires_at=intent.trade_expires_at,
        device=device,
        quit_url=external_url("payments.alipay_return", payment_intent=intent.id),
    )
    action = json.loads(json.dumps(start.next_action))
    redirect = action.get(action.get("type", ""), {})
    if isinstance(redirect, dict) and "return_url" in redirect:
        redirect["return_url"] = return_url
    intent.next_action = action
    intent.return_url = return_url
    intent.last_payment_error = None
    was = intent.status
    intent.status = IntentStatus.REQUIRES_ACTION
    if was is not IntentStatus.REQUIRES_ACTION:
        _intent_event(session, intent, "payment_intent.requires_action")
    return intent


def redirect_url(intent: PaymentIntent) -> str | None:
    action = intent.next_action or {}
    inner = action.get(action.get("type", ""), {})
    return inner.get("url") if isinstance(inner, dict) else None


def _close_current_try(session: Session, intent: PaymentIntent) -> bool:
    """Close the open trade first. False when the buyer turned out to have paid."""
    if not intent.attempt:
        return True
    provider = _provider_for(intent)
    outcome = provider.close(intent.out_trade_no)
    if outcome is CloseOutcome.ALREADY_PAID:
        # ACQ.TRADE_STATUS_ERROR: paid (or closed already); the query tells which.
        info = provider.query(intent.out_trade_no)
        if info.state.is_paid:
            _apply_trade(session, intent, info, source="query")
            return False
    return True


def cancel_intent(
    session: Session,
    intent_id: str,
    *,
    reason: str | None = None,
    account: str | None = None,
) -> PaymentIntent:
    """Cancel: close the Alipay trade first. If the buyer already paid, the intent comes
    back succeeded instead (the caller must check the status)."""
    intent = get_intent(session, intent_id, account=account, lock=True)
    if intent.status.is_final:
        raise UnexpectedStateError(
            f"You cannot cancel this PaymentIntent because it has a status of "
            f"{intent.status.value}."
        )
    if not _close_current_try(session, intent):
        return intent
    _cancel(session, intent, reason or "requested_by_customer")
    return intent


def _cancel(session: Session, intent: PaymentIntent, reason: str) -> None:
    intent.status = IntentStatus.CANCELED
    intent.canceled_at = utcnow()
    intent.cancellation_reason = reason
    intent.next_action = None
    _intent_event(session, intent, "payment_intent.canceled")
    intent_canceled.send(intent, session=session)


def update_amount(session: Session, intent_id: str, amount: int) -> PaymentIntent:
    """Change what is owed before payment (e.g. one order of a checkout was cancelled).

    An open try is closed first; the next confirm starts a new one. If the buyer already
    paid, the intent comes back succeeded and the amount is left alone.
    """
    intent = get_intent(session, intent_id, lock=True)
    if intent.status not in (IntentStatus.REQUIRES_PAYMENT_METHOD, IntentStatus.REQUIRES_ACTION):
        raise UnexpectedStateError(
            f"You cannot update this PaymentIntent because it has a status of "
            f"{intent.status.value}."
        )
    if not 1 <= amount <= MAX_AMOUNT_FEN:
        raise InvalidParameterError("amount out of range", field="amount")
    if intent.status is IntentStatus.REQUIRES_ACTION:
        if not _close_current_try(session, intent):
            return intent
        intent.status = IntentStatus.REQUIRES_PAYMENT_METHOD
        intent.next_action = None
        intent.trade_expires_at = None
    intent.amount = amount
    return intent


def _flag(intent: PaymentIntent, reason: str) -> None:
    log.error("payment intent %s needs review: %s", intent.id, reason)
    intent.review_reason = reason[:200]


def _apply_trade(
    session: Session,
    intent: PaymentIntent,
    info: TradeInfo | Notification,
    *,
    source: str,
) -> str:
    """Move the intent forward from what the provider says. Returns the outcome name."""
    state = info.state
    if state.is_paid:
        if intent.status is IntentStatus.SUCCEEDED:
            return "duplicate"
        if info.out_trade_no != intent.out_trade_no:
            _flag(intent, f"paid on an old try {info.out_trade_no} ({source})")
            return "late_payment"
        if info.amount_fen != intent.amount:
            shown = (
                "?"
                if info.amount_fen is None or info.amount_fen < 0
                else fen_to_yuan(info.amount_fen)
            )
            _flag(
                intent,
                f"amount mismatch from {source}: provider says {shown}, intent is "
                f"{fen_to_yuan(intent.amount)}",
            )
            return "amount_mismatch"
        if intent.status is IntentStatus.CANCELED:
            _flag(intent, f"paid after it was canceled ({source})")
            return "late_payment"
        intent.status = IntentStatus.SUCCEEDED
        intent.amount_received = info.amount_fen
        intent.provider_trade_no = info.trade_no
        intent.succeeded_at = utcnow()
        intent.next_action = None
        intent.last_payment_error = None
        _intent_event(session, intent, "payment_intent.succeeded")
        intent_succeeded.send(intent, session=session)
        return "handled"
    if state is TradeState.TRADE_CLOSED:
        if intent.status.is_final or info.out_trade_no != intent.out_trade_no:
            return "ignored"  # closed after a full refund, or an old try: nothing to do
        intent.last_payment_error = {
            "code": "payment_failed",
            "message": "The Alipay trade was closed without payment.",
        }
        _cancel(session, intent, "abandoned")
        return "handled"
    return "ignored"


def refresh_intent(session: Session, intent_id: str) -> PaymentIntent:
    """Ask the provider (alipay.trade.query) and settle; close the try once it expired.

    Raises ProviderUnavailableError when the answer is unknown (nothing changes).
    """
    intent = get_intent(session, intent_id, lock=True)
    if intent.status not in (IntentStatus.REQUIRES_ACTION, IntentStatus.PROCESSING):
        return intent
    provider = _provider_for(intent)
    info = provider.query(intent.out_trade_no)
    if info.state.is_paid or info.state is TradeState.TRADE_CLOSED:
        _apply_trade(session, intent, info, source="query")
        return intent
    expired = intent.trade_expires_at is not None and intent.trade_expires_at <= utcnow()
    if expired and _close_current_try(session, intent):
        intent.last_payment_error = {
            "code": "payment_expired",
            "message": "The buyer did not pay before the trade expired.",
        }
        _cancel(session, intent, "abandoned")
    return intent


def stuck_intent_ids(
    session: Session, *, older_than_seconds: int = 60, limit: int = 200
) -> list[str]:
    """Intents waiting on the provider long enough to ask (or past their time_expire)."""
    now = utcnow()
    return list(
        session.scalars(
            select(PaymentIntent.id)
            .where(
                PaymentIntent.status.in_((IntentStatus.REQUIRES_ACTION, IntentStatus.PROCESSING)),
                or_(
                    PaymentIntent.updated_at <= now - timedelta(seconds=older_than_seconds),
                    PaymentIntent.trade_expires_at <= now,
                ),
            )
            .order_by(PaymentIntent.updated_at)
            .limit(limit)
        )
    )


# --- what comes back from the provider ------------------------------------------------


def _intent_for_trade(session: Session, out_trade_no: str, *, lock: bool) -> PaymentIntent | None:
    intent_id, _, attempt = out_trade_no.rpartition("_")
    if not intent_id.startswith("pi_") or not attempt.isdigit():
        return None
    try:
        return get_intent(session, intent_id, lock=lock)
    except IntentNotFoundError:
        return None


def receive_notify(session: Session, params: Mapping[str, str]) -> bool:
    """Handle an async notify. True: answer `success`; False: answer `fail` (retry)."""
    out_trade_no = params.get("out_trade_no") or ""
    known = _intent_for_trade(session, out_trade_no, lock=False)
    provider = get_provider(known.provider if known else None)
    try:
        note = provider.parse_notify(params)
    except InvalidNotifyError as exc:
        log.warning("refused a %s notify for %r: %s", provider.name, out_trade_no, exc.code)
        return False
    intent = _intent_for_trade(session, note.out_trade_no, lock=True)
    if intent is None:
        log.warning("notify for unknown trade %r: changed nothing", note.out_trade_no)
        return False
    seen = session.scalars(
        select(ProviderNotification.id).where(ProviderNotification.notify_id == note.notify_id)
    ).first()
    if seen is not None:
        return True
    if note.is_refund:
        outcome = _apply_refund_notify(session, intent, note)
    else:
        outcome = _apply_trade(session, intent, note, source="notify")
    session.add(
        ProviderNotification(
            provider=provider.name,
            notify_id=note.notify_id,
            out_trade_no=note.out_trade_no,
            trade_status=note.state.value,
            outcome=outcome,
            payload=dict(note.raw),
        )
    )
    session.flush()
    return True


def notify_seen(session: Session, notify_id: str | None) -> bool:
    if not notify_id:
        return False
    found = select(ProviderNotification.id).where(ProviderNotification.notify_id == notify_id)
    return session.scalars(found).first() is not None


def handle_return(session: Session, params: Mapping[str, str]) -> PaymentIntent | None:
    """The buyer is back from the cashier. Never proof of payment: mark processing and
    ask the provider after the commit."""
    if params.get("out_trade_no"):
        intent = _intent_for_trade(session, params["out_trade_no"], lock=True)
        if intent is None:
            return None
        info = _provider_for(intent).parse_return(params)
        if info is not None and not info.signature_valid:
            log.warning("return for %s carries an invalid signature", intent.id)
        if (
            intent.status is IntentStatus.REQUIRES_ACTION
            and params["out_trade_no"] == intent.out_trade_no
        ):
            intent.status = IntentStatus.PROCESSING
            _intent_event(session, intent, "payment_intent.processing")
    else:
        try:
            intent = get_intent(session, params.get("payment_intent", ""))
        except IntentNotFoundError:
            return None
    if intent.status in (IntentStatus.REQUIRES_ACTION, IntentStatus.PROCESSING):
        from market.payments import tasks

        intent_id = intent.id
        after_commit(session, lambda: tasks.refresh_intent.delay(intent_id))
    return intent


# --- refunds -----------------------------------------------------------------------------


def create_refund(
    session: Session,
    *,
    payment_intent: str,
    amount: int | None = None,
    reason: str = "",
    metadata: Mapping[str, Any] | None = None,
    account: str | None = None,
) -> Refund:
    """Record a pending refund of part or all of what was received (never more than is
    left). No money moves yet: the caller commits, then calls `attempt_refund`. So a
    refund is on our books before Alipay is asked, and a crash in between is finished by
    reconciliation with the same out_request_no instead of paying out twice."""
    intent = get_intent(session, payment_intent, account=account, lock=True)
    if intent.status is not IntentStatus.SUCCEEDED:
        raise UnexpectedStateError(
            "This PaymentIntent has not succeeded, so there is nothing to refund.",
            code="charge_not_refundable",
        )
    left = intent.amount_refundable
    if amount is None:
        amount = left
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidParameterError("amount must be a positive integer of fen", field="amount")
    if left <= 0:
        raise AmountTooLargeError(
            "This PaymentIntent has already been refunded in full.",
            field="amount",
            code="charge_already_refunded",
        )
    if amount > left:
        raise AmountTooLargeError(
            f"Refund amount ({fen_to_yuan(amount)}) is greater than the unrefunded amount "
            f"({fen_to_yuan(left)}).",
            field="amount",
        )
    if len(reason or "") > 200:
        raise InvalidParameterError("reason is at most 200 characters", field="reason")
    refund = Refund(
        id=new_id("re_"),
        account=intent.account,
        payment_intent_id=intent.id,
        amount=amount,
        status=RefundStatus.PENDING,
        reason=(reason or "").strip(),
        metadata_=validate_metadata(metadata),
        attempts=0,
        created_at=utcnow(),
    )
    session.add(refund)
    intent.refunds.append(refund)
    session.flush()
    record_event(session, intent.account, "refund.created", refund_json(refund))
    return refund


def _attempt_refund(session: Session, intent: PaymentIntent, refund: Refund) -> None:
    refund.attempts += 1
    try:
        outcome = _provider_for(intent).refund(intent.out_trade_no, refund.id, refund.amount)
    except ProviderUnavailableError as exc:
        log.warning("refund %s: outcome unknown (%s); will retry", refund.id, exc)
        return
    except ProviderError as exc:
        outcome_failure = str(exc)[:200]
        _fail_refund(session, refund, outcome_failure)
        return
    if outcome.succeeded:
        _succeed_refund(session, intent, refund)
    else:
        _fail_refund(session, refund, outcome.failure or "declined")


def _succeed_refund(session: Session, intent: PaymentIntent, refund: Refund) -> None:
    if refund.status is not RefundStatus.PENDING:
        return
    refund.status = RefundStatus.SUCCEEDED
    intent.amount_refunded += refund.amount
    session.flush()
    record_event(session, intent.account, "refund.updated", refund_json(refund))
    record_event(session, intent.account, "charge.refunded", intent_json(intent))
    refund_succeeded.send(refund, session=session)


def _fail_refund(session: Session, refund: Refund, reason: str) -> None:
    if refund.status is not RefundStatus.PENDING:
        return
    refund.status = RefundStatus.FAILED
    refund.failure_reason = reason
    session.flush()
    record_event(session, refund.account, "refund.failed", refund_json(refund))
    refund_failed.send(refund, session=session)


def _apply_refund_notify(session: Session, intent: PaymentIntent, note: Notification) -> str:
    refund = session.get(Refund, note.out_request_no or "")
    if refund is None or refund.payment_intent_id != intent.id:
        log.warning("refund notify for unknown refund %r", note.out_request_no)
        return "ignored"
    _succeed_refund(session, intent, refund)
    return "refund"


def attempt_refund(session: Session, refund_id: str) -> Refund | None:
    """Ask the provider to pay a pending refund (out_request_no = the refund id, so a
    retry never pays twice). Unknown outcomes leave it pending for reconciliation."""
    refund = session.get(Refund, refund_id)
    if refund is None or refund.status is not RefundStatus.PENDING:
        return refund
    intent = get_intent(session, refund.payment_intent_id, lock=True)
    session.refresh(refund)
    if refund.status is RefundStatus.PENDING:
        _attempt_refund(session, intent, refund)
    return refund


def pending_refund_ids(session: Session, *, older_than_seconds: int = 60) -> list[str]:
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    return list(
        session.scalars(
            select(Refund.id)
            .where(Refund.status == RefundStatus.PENDING, Refund.updated_at <= cutoff)
            .order_by(Refund.updated_at)
            .limit(200)
        )
    )


def get_refund(session: Session, refund_id: str, *, account: str | None = None) -> Refund:
    refund = session.get(Refund, refund_id)
    if refund is None or (account is not None and refund.account != account):
        raise NotFoundError(f"No such refund: '{refund_id}'", field="id", code="resource_missing")
    return refund


def get_event(session: Session, event_id: str, *, account: str) -> Event:
    found = session.get(Event, event_id)
    if found is None or found.account != account:
        raise NotFoundError(f"No such event: '{event_id}'", field="id", code="resource_missing")
    return found


def list_events(session: Session, account: str, *, limit: int = 10, type_: str | None = None):
    query = select(Event).where(Event.account == account)
    if type_:
        query = query.where(Event.type == type_)
    rows = list(
        session.scalars(query.order_by(Event.created_at.desc(), Event.id.desc()).limit(limit + 1))
    )
    return rows[:limit], len(rows) > limit


# --- API keys ------------------------------------------------------------------------------


def _hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(
    session: Session, name: str, *, account: str = MARKET_ACCOUNT, live: bool | None = None
) -> tuple[ApiKey, str]:
    """Mint a secret key; the key itself is returned once and only its hash is kept."""
    if live is None:
        live = current_app.config["PAYMENT_PROVIDER"] != "sandbox"
    prefix = "sk_live_" if live else "sk_test_"
    raw = prefix + "".join(secrets.choice(ALPHABET) for _ in range(32))
    key = ApiKey(
        account=account,
        name=name.strip()[:80] or "key",
        prefix=prefix,
        last4=raw[-4:],
        key_hash=_hash_key(raw),
    )
    session.add(key)
    session.flush()
    return key, raw


def authenticate_api_key(session: Session, raw: str) -> ApiKey | None:
    if not raw or not raw.startswith(("sk_test_", "sk_live_")) or len(raw) > 100:
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == _hash_key(raw))).first()
    if key is None or key.revoked_at is not None:
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=5):
        key.last_used_at = now  # coarse, so busy keys do not write on every call
    return key


def revoke_api_key(session: Session, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError("no such key")
    key.revoked_at = key.revoked_at or utcnow()
    return key


# --- idempotency ------------------------------------------------------------------------------


def request_fingerprint(method: str, path: str, params: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {"method": method, "path": path, "params": params}, sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_idempotent(
    session: Session, account: str, key: str, fingerprint: str
) -> IdempotencyKey | None:
    """The stored first response for this key, or None. Other params: an error."""
    row = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.account == account, IdempotencyKey.key == key)
    ).first()
    if row is None:
        return None
    if row.created_at <= utcnow() - timedelta(hours=IDEMPOTENCY_HOURS):
        session.delete(row)
        session.flush()
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyMismatchError(
            "Keys for idempotent requests can only be used with the same parameters they "
            "were first used with."
        )
    return row


def claim_idempotency_key(
    session: Session, account: str, key: str, method: str, path: str, fingerprint: str
) -> IdempotencyKey:
    """Insert the key now, so a concurrent twin waits on it (and then replays)."""
    row = IdempotencyKey(
        account=account,
        key=key,
        method=method,
        path=path,
        request_hash=fingerprint,
        response_status=0,
        response_body="",
    )
    session.add(row)
    session.flush()
    return row


def prune_idempotency_keys(session: Session) -> int:
    cutoff = utcnow() - timedelta(hours=IDEMPOTENCY_HOURS)
    old = list(session.scalars(select(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)))
    for row in old:
        session.delete(row)
    return len(old)


def create_webhook_endpoint(
    session: Session, url: str, *, account: str = MARKET_ACCOUNT, events: list[str] | None = None
) -> WebhookEndpoint:
    if not url.startswith(("https://", "http://")):
        raise InvalidParameterError("url must be http(s)", field="url")
    endpoint = WebhookEndpoint(
        id=new_id("we_"),
        account=account,
        url=url,
        secret="whsec_" + secrets.token_urlsafe(32),
        enabled_events=events or ["*"],
        active=True,
    )
    session.add(endpoint)
    session.flush()
    return endpoint
