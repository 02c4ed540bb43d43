"""What the payments core needs from a payment provider, and nothing more.

The core speaks Stripe's shapes (PaymentIntent, Refund, Event); a provider turns them
into one outside system's calls. Two implementations exist:

- `AlipayProvider` (market.payments.alipay_provider): python-alipay-sdk, RSA2. With
  PAYMENT_PROVIDER=alipay it talks to Alipay; with PAYMENT_PROVIDER=sandbox (the embedded
  default) the same class talks to the offline gateway in market.payments.sandbox, with
  keys generated on first run. So every test exercises the real signing and verifying.
- A null provider is not needed: the sandbox is the offline one.

WeChat Pay fits later as a third class (`wechatpayv3`), without changes to the core:

- `start()` returns a next_action variant instead of a redirect: H5 ->
  {"type": "wechat_pay_redirect_to_url", ...}, Native -> {"type":
  "wechat_pay_display_qr_code", "data": code_url}, JSAPI -> the signed parameters for
  WeixinJSBridge. The intent then sits in requires_action exactly as with Alipay.
- `parse_notify()` verifies the Wechatpay-Signature header with the configured platform
  public key, checks Wechatpay-Timestamp is within 5 minutes (our own freshness check),
  decrypts the AES-256-GCM `resource` with the APIv3 key, and returns the same
  `Notification` (out_trade_no, transaction_id as trade_no, amount.total in fen,
  SUCCESS -> TRADE_SUCCESS, CLOSED -> TRADE_CLOSED, refunds carry out_refund_no).
- `ack()` answers 204 (or 200 {"code": "SUCCESS"}) instead of the text `success`.
- `query`, `close`, `refund` map to /v3/pay/transactions/out-trade-no/{no},
  .../close and /v3/refund/domestic/refunds; WeChat's out_trade_no also cannot be
  reused after closing, so the `{pi_id}_{attempt}` scheme carries over.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from market.errors import DomainError

Device = Literal["mobile", "desktop"]


class TradeState(enum.Enum):
    """A provider trade's state, in Alipay's words."""

    NOT_FOUND = "NOT_FOUND"  #: the buyer never opened the cashier, so no trade exists yet
    WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
    TRADE_SUCCESS = "TRADE_SUCCESS"
    TRADE_FINISHED = "TRADE_FINISHED"  #: paid, and no refund possible any more
    TRADE_CLOSED = "TRADE_CLOSED"  #: closed unpaid, or fully refunded

    @property
    def is_paid(self) -> bool:
        return self in (TradeState.TRADE_SUCCESS, TradeState.TRADE_FINISHED)


@dataclass(frozen=True)
class PaymentStart:
    """Where to send the buyer to pay (becomes the intent's next_action)."""

    url: str
    next_action: dict[str, Any]


@dataclass(frozen=True)
class TradeInfo:
    state: TradeState
    out_trade_no: str
    trade_no: str | None = None
    amount_fen: int | None = None
    refunded_fen: int = 0


@dataclass(frozen=True)
class Notification:
    """A verified async notify, normalized."""

    notify_id: str
    out_trade_no: str
    state: TradeState
    trade_no: str | None
    amount_fen: int | None
    #: Set on refund notifies (Alipay sends them to the same URL).
    refund_fen: int | None = None
    out_request_no: str | None = None
    raw: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_refund(self) -> bool:
        return self.refund_fen is not None


@dataclass(frozen=True)
class ReturnInfo:
    """What came back on return_url. Signed, but still never proof of payment."""

    out_trade_no: str
    signature_valid: bool


class CloseOutcome(enum.Enum):
    CLOSED = "closed"
    NOT_FOUND = "not_found"  #: no trade was ever opened: nothing to close
    ALREADY_PAID = "already_paid"  #: ACQ.TRADE_STATUS_ERROR: the buyer paid
    ALREADY_CLOSED = "already_closed"


@dataclass(frozen=True)
class RefundOutcome:
    succeeded: bool
    refunded_total_fen: int | None = None
    failure: str | None = None


class ProviderError(DomainError):
    """The provider answered, and said no."""

    code = "provider_error"


class ProviderUnavailableError(ProviderError):
    """Timeout, 5xx, code 20000, ACQ.SYSTEM_ERROR: the outcome is unknown; ask again later."""

    code = "provider_unavailable"


class InvalidNotifyError(DomainError):
    """A notify we must not act on: bad signature, SHA-1, not our app or seller..."""

    code = "invalid_notify"


class Provider(Protocol):
    """One payment provider, as the payments core uses it."""

    name: str

    def start(
        self,
        *,
        out_trade_no: str,
        amount_fen: int,
        subject: str,
        return_url: str,
        notify_url: str,
        expires_at: datetime,
        device: Device,
        quit_url: str | None = None,
    ) -> PaymentStart:
        """Build the signed redirect that opens the provider's cashier (no network)."""
        ...

    def query(self, out_trade_no: str) -> TradeInfo:
        """Ask the provider for the trade's state (alipay.trade.query)."""
        ...

    def close(self, out_trade_no: str) -> CloseOutcome:
        """Close an unpaid trade so it can never be paid (alipay.trade.close)."""
        ...

    def refund(self, out_trade_no: str, out_request_no: str, amount_fen: int) -> RefundOutcome:
        """Refund part of a paid trade; the same out_request_no is safe to retry."""
        ...

    def parse_notify(self, params: Mapping[str, str]) -> Notification:
        """Verify and normalize an async notify; raise InvalidNotifyError if not ours."""
        ...

    def parse_return(self, params: Mapping[str, str]) -> ReturnInfo | None:
        """Read the buyer's return (never proof of payment)."""
        ...

    def ack(self, handled: bool) -> tuple[str, int, dict[str, str]]:
        """The exact response body, status and headers the provider expects."""
        ...
