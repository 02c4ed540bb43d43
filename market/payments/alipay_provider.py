"""Alipay behind the Provider interface, with python-alipay-sdk (import `alipay`).

The SDK builds and signs requests and verifies the gateway's signed answers. Notifies and
returns are verified here with our own canonical string (the contract: drop `sign`,
`sign_type` and empty values; RSA2 only; False, never an exception, on a bad signature).
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError

from market.money import MoneyError, fen_to_yuan, yuan_to_fen
from market.payments import signatures
from market.payments.interfaces import (
    CloseOutcome,
    Device,
    InvalidNotifyError,
    Notification,
    PaymentStart,
    ProviderError,
    ProviderUnavailableError,
    RefundOutcome,
    ReturnInfo,
    TradeInfo,
    TradeState,
)

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
ALIPAY_GATEWAY = "https://openapi.alipay.com/gateway.do"

#: (gateway URL, signed query string) -> raw response body. The default does what the SDK
#: does (an HTTP GET); the sandbox plugs in an in-process call.
Transport = Callable[[str, str], str]

#: Answers that mean "we do not know what happened": ask again later.
UNKNOWN_OUTCOME_CODES = {"20000"}
UNKNOWN_OUTCOME_SUB_CODES = {"ACQ.SYSTEM_ERROR", "isp.unknow-error", "aop.ACQ.SYSTEM_ERROR"}


def http_transport(timeout: float) -> Transport:
    def send(gateway: str, query: str) -> str:
        with urllib.request.urlopen(f"{gateway}?{query}", timeout=timeout) as response:  # noqa: S310 - the configured gateway
            return response.read().decode("utf-8")

    return send


@dataclass(frozen=True)
class AlipaySettings:
    app_id: str
    seller_id: str
    private_key: str
    alipay_public_key: str
    gateway: str = ALIPAY_GATEWAY
    timeout: float = 15.0


class _Client(AliPay):
    """The SDK's client, with a pluggable transport and Beijing-time timestamps."""

    def __init__(self, settings: AlipaySettings, transport: Transport):
        super().__init__(
            appid=settings.app_id,
            app_private_key_string=_pem(settings.private_key, private=True),
            alipay_public_key_string=_pem(settings.alipay_public_key, private=False),
            sign_type="RSA2",
        )
        self._gateway = settings.gateway
        self._transport = transport

    def build_body(self, method, biz_content=None, **kwargs):
        data = super().build_body(method, biz_content, **kwargs)
        # Alipay reads the timestamp as Beijing time; the SDK uses the server's local time.
        data["timestamp"] = datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        return data

    def verified_sync_response(self, data, response_type):
        raw = self._transport(self._gateway, self.sign_data(data))
        return self._verify_and_return_sync_response(raw, response_type)

    def redirect_url(self, order_string: str) -> str:
        return f"{self._gateway}?{order_string}"


def _pem(text: str, *, private: bool) -> str:
    key = signatures.load_private_key(text) if private else signatures.load_public_key(text)
    if private:
        return key.export_key(format="PEM", pkcs=8).decode()
    return key.export_key(format="PEM").decode()


class AlipayProvider:
    """Alipay (or the sandbox that plays it), RSA2 both ways."""

    def __init__(self, settings: AlipaySettings, *, name: str = "alipay", transport=None):
        self.name = name
        self.settings = settings
        self._client = _Client(settings, transport or http_transport(settings.timeout))
        self._alipay_public = signatures.load_public_key(settings.alipay_public_key)

    # --- starting a payment (no network: a signed redirect) -------------------------

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
        extra = {"time_expire": expires_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")}
        if device == "mobile":
            if quit_url:
                extra["quit_url"] = quit_url
            order_string = self._client.api_alipay_trade_wap_pay(
                subject=subject[:256],
                out_trade_no=out_trade_no,
                total_amount=fen_to_yuan(amount_fen),
                return_url=return_url,
                notify_url=notify_url,
                # The SDK's default is QUICK_WAP_PAY; the phone product is QUICK_WAP_WAY.
                product_code="QUICK_WAP_WAY",
                **extra,
            )
        else:
            order_string = self._client.api_alipay_trade_page_pay(
                subject=subject[:256],
                out_trade_no=out_trade_no,
                total_amount=fen_to_yuan(amount_fen),
                return_url=return_url,
                notify_url=notify_url,
                product_code="FAST_INSTANT_TRADE_PAY",
                **extra,
            )
        url = self._client.redirect_url(order_string)
        return PaymentStart(
            url=url,
            next_action={
                "type": "alipay_handle_redirect",
                "alipay_handle_redirect": {
                    "url": url,
                    "native_url": None,
                    "native_data": None,
                    "return_url": None,
                },
            },
        )

    # --- asking the gateway ----------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], dict]) -> dict:
        try:
            response = fn()
        except AliPayValidationError as exc:
            log.error("alipay %s: the answer's signature does not verify", what)
            raise ProviderUnavailableError(
                "answer signature invalid", code="bad_signature"
            ) from exc
        except AliPayException as exc:
            log.warning("alipay %s refused without a signed answer: %s", what, exc)
            raise ProviderError(str(exc)) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            log.warning("alipay %s: gateway unreachable: %s", what, exc)
            raise ProviderUnavailableError(str(exc)) from exc
        except (ValueError, KeyError, AttributeError) as exc:  # not JSON, not the shape
            log.warning("alipay %s: unreadable answer: %s", what, exc)
            raise ProviderUnavailableError("unreadable answer") from exc
        code = str(response.get("code", ""))
        sub_code = str(response.get("sub_code", ""))
        if code in UNKNOWN_OUTCOME_CODES or sub_code in UNKNOWN_OUTCOME_SUB_CODES:
            log.warning("alipay %s: outcome unknown (%s %s)", what, code, sub_code)
            raise ProviderUnavailableError(
                f"{code} {sub_code}".strip(), code="provider_unavailable"
            )
        return response

    def query(self, out_trade_no: str) -> TradeInfo:
        response = self._call(
            "trade.query", lambda: self._client.api_alipay_trade_query(out_trade_no=out_trade_no)
        )
        if response.get("code") != "10000":
            if response.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return TradeInfo(state=TradeState.NOT_FOUND, out_trade_no=out_trade_no)
            raise ProviderError(str(response.get("sub_code") or response.get("code")))
        try:
            state = TradeState(response.get("trade_status", ""))
            amount = yuan_to_fen(response["total_amount"])
        except (ValueError, KeyError, MoneyError) as exc:
            raise ProviderUnavailableError("unreadable trade.query answer") from exc
        return TradeInfo(
            state=state,
            out_trade_no=out_trade_no,
            trade_no=response.get("trade_no"),
            amount_fen=amount,
        )

    def close(self, out_trade_no: str) -> CloseOutcome:
        response = self._call(
            "trade.close", lambda: self._client.api_alipay_trade_close(out_trade_no=out_trade_no)
        )
        if response.get("code") == "10000":
            return CloseOutcome.CLOSED
        sub_code = response.get("sub_code")
        if sub_code == "ACQ.TRADE_NOT_EXIST":
            return CloseOutcome.NOT_FOUND
        if sub_code == "ACQ.TRADE_STATUS_ERROR":
            return CloseOutcome.ALREADY_PAID
        raise ProviderError(str(sub_code or response.get("code")))

    def refund(self, out_trade_no: str, out_request_no: str, amount_fen: int) -> RefundOutcome:
        response = self._call(
            "trade.refund",
            lambda: self._client.api_alipay_trade_refund(
                refund_amount=fen_to_yuan(amount_fen),
                out_trade_no=out_trade_no,
                out_request_no=out_request_no,
            ),
        )
        if response.get("code") != "10000":
            return RefundOutcome(
                succeeded=False, failure=str(response.get("sub_code") or response.get("code"))
            )
        total = None
        if response.get("refund_fee"):
            try:
                total = yuan_to_fen(response["refund_fee"])
            except MoneyError:
                total = None
        return RefundOutcome(succeeded=True, refunded_total_fen=total)

    # --- what Alipay sends us --------------------------------------------------------

    def parse_notify(self, params: Mapping[str, str]) -> Notification:
        if params.get("sign_type") != "RSA2":
            raise InvalidNotifyError("sign_type is not RSA2", code="weak_sign_type")
        if not signatures.verify_notify(params, self._alipay_public):
            raise InvalidNotifyError("signature does not verify", code="bad_signature")
        if params.get("app_id") != self.settings.app_id:
            raise InvalidNotifyError("app_id is not ours", code="wrong_app_id")
        if self.settings.seller_id and params.get("seller_id") != self.settings.seller_id:
            raise InvalidNotifyError("seller_id is not ours", code="wrong_seller_id")
        notify_id = params.get("notify_id") or ""
        out_trade_no = params.get("out_trade_no") or ""
        if not notify_id or not out_trade_no:
            raise InvalidNotifyError("notify_id or out_trade_no missing", code="incomplete")
        try:
            state = TradeState(params.get("trade_status", ""))
        except ValueError as exc:
            raise InvalidNotifyError("unknown trade_status", code="unknown_status") from exc
        return Notification(
            notify_id=notify_id,
            out_trade_no=out_trade_no,
            state=state,
            trade_no=params.get("trade_no"),
            amount_fen=_fen_or_none(params.get("total_amount")),
            refund_fen=_fen_or_none(params.get("refund_fee")),
            out_request_no=params.get("out_biz_no") or None,
            raw=dict(params),
        )

    def parse_return(self, params: Mapping[str, str]) -> ReturnInfo | None:
        out_trade_no = params.get("out_trade_no")
        if not out_trade_no:
            return None
        valid = signatures.verify_notify(params, self._alipay_public) and (
            params.get("app_id") == self.settings.app_id
        )
        return ReturnInfo(out_trade_no=out_trade_no, signature_valid=valid)

    def ack(self, handled: bool) -> tuple[str, int, dict[str, str]]:
        return ("success" if handled else "fail"), 200, {"Content-Type": "text/plain"}


def _fen_or_none(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return yuan_to_fen(value)
    except MoneyError:
        return -1  # present but unreadable: compares unequal to any real amount
