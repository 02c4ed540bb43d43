"""The offline sandbox: a blueprint that plays Alipay's gateway on the app's own host.

It is the embedded default (PAYMENT_PROVIDER=sandbox), so a newcomer can pay for an order
without an Alipay account, and every failure path of the contract can be tested offline.

- Keys. The sandbox has its own RSA key pair (it signs notifies, returns and answers; its
  public key is what our side is configured with as "the Alipay public key"), and it
  knows the app's public key to check our requests. Both private keys come from the
  environment (PAYMENT_SANDBOX_APP_PRIVATE_KEY, PAYMENT_SANDBOX_GATEWAY_PRIVATE_KEY) or
  are generated on first run into PAYMENT_SANDBOX_KEY_DIR (instance/sandbox-keys/, never
  committed).
- Pages. `GET /sandbox/alipay/gateway.do?<signed request>` checks the app_id and the RSA2
  request signature and shows a phone cashier with 支付 / 取消 / 失败. Paying signs the
  async notify and the return with the sandbox key and sends the buyer to return_url.
- Answers. alipay.trade.query / refund / close arrive through the same gateway URL and are
  answered as signed JSON, exactly as the SDK expects. Our provider reaches them with an
  in-process call (`inprocess_transport`), so a single-threaded dev server never waits on
  itself; PAYMENT_SANDBOX["deliver"] = "http" makes both the answers and the notifies go
  over HTTP to PUBLIC_BASE_URL instead.
- Notifies are sent by the Celery task `deliver_sandbox_notify` after the sandbox's
  commit. With the default in-process delivery the task POSTs the form to our notify
  endpoint through the app's WSGI stack (no network); in tests the notify endpoint is
  also called directly through the test client with `notify_params()`.
- Switches (PAYMENT_SANDBOX in the config, and per trade on the cashier page): notify
  "normal" | "duplicate" | "late" | "missing", tamper_amount, wrong_app_id, and
  gateway_error "" | "system_error" | "http_500" | "timeout" for the API answers.
  A "late" notify goes out `late_seconds` later through Celery; in eager mode (no
  broker) it is held until someone presses "send the held notify" on the sandbox's
  trade page, so the return page is seen before the notify lands.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import urllib.error
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from Cryptodome.PublicKey import RSA
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import BooleanField, HiddenField, SelectField
from wtforms.fields.choices import SelectChoice

from market.extensions import csrf, db
from market.money import MoneyError, fen_to_yuan, yuan_to_fen
from market.payments import signatures
from market.payments.alipay_provider import AlipayProvider, AlipaySettings, http_transport
from market.payments.models import SandboxRefund, SandboxTrade
from market.types import utcnow

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox/alipay")

NOTIFY_MODES = ("normal", "duplicate", "late", "missing")
GATEWAY_ERRORS = ("", "system_error", "http_500", "timeout")
PRODUCT_CODES = {
    "alipay.trade.wap.pay": "QUICK_WAP_WAY",
    "alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY",
}
WRONG_APP_ID = "2021000000009999"
BUYER_ID = "2088102177846880"
BUYER_LOGON_ID = "sandbox***@example.com"


# --- settings and keys -----------------------------------------------------------------


def settings() -> dict[str, Any]:
    return current_app.config["PAYMENT_SANDBOX"]


@dataclass(frozen=True)
class SandboxKeys:
    app_private: RSA.RsaKey
    gateway_private: RSA.RsaKey

    @property
    def app_public(self) -> RSA.RsaKey:
        return self.app_private.public_key()

    @property
    def gateway_public(self) -> RSA.RsaKey:
        return self.gateway_private.public_key()


def keys() -> SandboxKeys:
    """The sandbox's key pairs: from the config/environment, else generated once on disk."""
    config = current_app.config
    cache = current_app.extensions.setdefault("payments.sandbox", {})
    source = (
        config.get("PAYMENT_SANDBOX_APP_PRIVATE_KEY"),
        config.get("PAYMENT_SANDBOX_GATEWAY_PRIVATE_KEY"),
        config.get("PAYMENT_SANDBOX_KEY_DIR"),
    )
    if cache.get("source") != source:
        directory = Path(config["PAYMENT_SANDBOX_KEY_DIR"])
        app_pem = source[0] or _key_file(directory / "app_private_key.pem")
        gateway_pem = source[1] or _key_file(directory / "gateway_private_key.pem")
        cache.update(
            source=source,
            keys=SandboxKeys(
                app_private=signatures.load_private_key(app_pem),
                gateway_private=signatures.load_private_key(gateway_pem),
            ),
        )
    return cache["keys"]


def _key_file(path: Path) -> str:
    """Read a private key file, generating it first (0600, race-free) when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = signatures.generate_private_key_pem()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(pem)
        try:
            os.link(tmp, path)  # fails if another process got there first: use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        log.info("generated sandbox key %s", path)
    return path.read_text()


def provider() -> AlipayProvider:
    """Our Alipay provider, configured against this sandbox."""
    conf = settings()
    sandbox_keys = keys()
    deliver_http = conf.get("deliver") == "http"
    gateway = _gateway_url()
    provider_settings = AlipaySettings(
        app_id=conf["app_id"],
        seller_id=conf["seller_id"],
        private_key=sandbox_keys.app_private.export_key(format="PEM", pkcs=8).decode(),
        alipay_public_key=sandbox_keys.gateway_public.export_key(format="PEM").decode(),
        gateway=gateway,
        timeout=10.0,
    )
    cache = current_app.extensions.setdefault("payments.sandbox", {})
    key = (provider_settings, deliver_http)
    if cache.get("provider_key") != key:
        transport = http_transport(10.0) if deliver_http else inprocess_transport
        cache.update(
            provider_key=key,
            provider=AlipayProvider(provider_settings, name="sandbox", transport=transport),
        )
    return cache["provider"]


def _gateway_url() -> str:
    from market.payments.providers import external_url, public_url

    if settings().get("deliver") == "http":
        return public_url("sandbox.gateway")
    return external_url("sandbox.gateway")


# --- the gateway's API answers -----------------------------------------------------------


class GatewayTimeoutError(TimeoutError):
    """The simulated gateway did not answer in time."""


def inprocess_transport(_gateway: str, query: str) -> str:
    """Hand a signed request straight to the sandbox, as if it had gone over HTTP."""
    error = settings().get("gateway_error") or ""
    if error == "timeout":
        raise GatewayTimeoutError("sandbox gateway timed out (switch)")
    if error == "http_500":
        raise urllib.error.HTTPError(_gateway, 500, "Internal Server Error (switch)", None, None)  # type: ignore[arg-type]
    return answer(db.session, dict(parse_qsl(query, keep_blank_values=True)))


def answer(session: Session, params: Mapping[str, str]) -> str:
    """The signed JSON answer to one API request (trade.query / refund / close)."""
    method = params.get("method", "")
    response_type = method.replace(".", "_") + "_response"
    handler = API_METHODS.get(method)
    if handler is None:
        return _signed("error_response", _error("40002", "isv.invalid-method", "不存在的方法名"))
    if settings().get("gateway_error") == "system_error":
        body = _error("20000", "ACQ.SYSTEM_ERROR", "系统繁忙", msg="Service Currently Unavailable")
        return _signed(response_type, body)
    refused = _check_request(params)
    if refused:
        return _signed(response_type, refused)
    try:
        biz = json.loads(params.get("biz_content") or "{}")
    except ValueError:
        return _signed(response_type, _error("40002", "isv.invalid-parameter", "biz_content"))
    return _signed(response_type, handler(session, biz))


def _check_request(params: Mapping[str, str]) -> dict[str, str] | None:
    if params.get("app_id") != settings()["app_id"]:
        return _error("40002", "isv.invalid-app-id", "无效的AppID参数")
    if params.get("sign_type") != "RSA2":
        return _error("40002", "isv.invalid-signature-type", "签名类型不支持")
    if not signatures.verify_request(params, keys().app_public):
        return _error("40002", "isv.invalid-signature", "验签出错")
    return None


def _error(code: str, sub_code: str, sub_msg: str, *, msg: str | None = None) -> dict[str, str]:
    default = {"40002": "Invalid Arguments", "40004": "Business Failed"}
    return {
        "code": code,
        "msg": msg or default.get(code, "Failed"),
        "sub_code": sub_code,
        "sub_msg": sub_msg,
    }


def _signed(response_type: str, body: dict[str, Any]) -> str:
    # Alipay signs the exact JSON text of the inner object; the SDK cuts it out and checks.
    inner = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    sign = signatures.rsa2_sign(inner, keys().gateway_private)
    return f'{{"{response_type}":{inner},"sign":"{sign}"}}'


def _find(session: Session, out_trade_no: str | None, *, lock: bool = False) -> SandboxTrade | None:
    if not out_trade_no:
        return None
    query = select(SandboxTrade).where(SandboxTrade.out_trade_no == out_trade_no)
    if lock:
        query = query.with_for_update()
    trade = session.scalars(query).first()
    if trade is not None:
        _expire_if_due(trade)
    return trade


def _expire_if_due(trade: SandboxTrade) -> None:
    """Alipay closes an unpaid trade at its time_expire."""
    if trade.status == "WAIT_BUYER_PAY" and trade.time_expire and trade.time_expire <= utcnow():
        trade.status = "TRADE_CLOSED"
        trade.closed_at = trade.time_expire


def _not_found(out_trade_no: str | None) -> dict[str, str]:
    return {
        **_error("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"),
        "out_trade_no": out_trade_no or "",
    }


def _query(session: Session, biz: dict[str, Any]) -> dict[str, Any]:
    trade = _find(session, biz.get("out_trade_no"))
    if trade is None:
        return _not_found(biz.get("out_trade_no"))
    body = {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_logon_id": BUYER_LOGON_ID,
        "trade_status": trade.status,
        "total_amount": fen_to_yuan(trade.total_fen),
    }
    if trade.paid_at:
        body["send_pay_date"] = _beijing(trade.paid_at)
        body["buyer_pay_amount"] = fen_to_yuan(trade.total_fen)
    return body


def _close(session: Session, biz: dict[str, Any]) -> dict[str, Any]:
    trade = _find(session, biz.get("out_trade_no"), lock=True)
    if trade is None:
        return _not_found(biz.get("out_trade_no"))
    if trade.status != "WAIT_BUYER_PAY":
        return _error("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
    trade.status = "TRADE_CLOSED"
    trade.closed_at = utcnow()
    return {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
    }


def _refund(session: Session, biz: dict[str, Any]) -> dict[str, Any]:
    trade = _find(session, biz.get("out_trade_no"), lock=True)
    if trade is None:
        return _not_found(biz.get("out_trade_no"))
    out_request_no = biz.get("out_request_no") or biz.get("out_trade_no")
    try:
        amount = yuan_to_fen(str(biz.get("refund_amount", "")))
    except MoneyError:
        return _error("40004", "ACQ.INVALID_PARAMETER", "退款金额不合法")
    done = {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_logon_id": BUYER_LOGON_ID,
    }
    existing = session.scalars(
        select(SandboxRefund).where(
            SandboxRefund.trade_id == trade.id, SandboxRefund.out_request_no == out_request_no
        )
    ).first()
    if existing is not None:  # a retry of the same refund: no second payout
        return {**done, "fund_change": "N", "refund_fee": fen_to_yuan(trade.refunded_fen)}
    if trade.status not in ("TRADE_SUCCESS",):
        return _error("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
    if amount <= 0 or amount > trade.total_fen - trade.refunded_fen:
        return _error("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
    session.add(SandboxRefund(trade_id=trade.id, out_request_no=out_request_no, amount_fen=amount))
    trade.refunded_fen += amount
    if trade.refunded_fen == trade.total_fen:
        trade.status = "TRADE_CLOSED"
        trade.closed_at = utcnow()
    session.flush()
    params = notify_params(trade, refund_request_no=out_request_no)
    _send_after_commit(session, trade, params, copies=1)
    return {**done, "fund_change": "Y", "refund_fee": fen_to_yuan(trade.refunded_fen)}


API_METHODS = {
    "alipay.trade.query": _query,
    "alipay.trade.close": _close,
    "alipay.trade.refund": _refund,
}


# --- notifies and returns --------------------------------------------------------------


def _beijing(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def notify_params(
    trade: SandboxTrade,
    *,
    refund_request_no: str | None = None,
    tamper_amount: bool = False,
    wrong_app_id: bool = False,
    notify_id: str | None = None,
) -> dict[str, str]:
    """The signed async notify Alipay would send for the trade's current state."""
    conf = settings()
    total = trade.total_fen
    if tamper_amount:
        total = 1 if total != 1 else 2
    params = {
        "notify_time": _beijing(utcnow()),
        "notify_type": "trade_status_sync",
        "notify_id": notify_id or secrets.token_hex(16),
        "app_id": WRONG_APP_ID if wrong_app_id else conf["app_id"],
        "auth_app_id": conf["app_id"],
        "charset": "utf-8",
        "version": "1.0",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_id": BUYER_ID,
        "buyer_logon_id": BUYER_LOGON_ID,
        "seller_id": conf["seller_id"],
        "trade_status": trade.status,
        "total_amount": fen_to_yuan(total),
        "subject": trade.subject,
        "gmt_create": _beijing(trade.created_at),
    }
    if trade.paid_at:
        params.update(
            gmt_payment=_beijing(trade.paid_at),
            receipt_amount=fen_to_yuan(total),
            buyer_pay_amount=fen_to_yuan(total),
        )
    if trade.closed_at and trade.status == "TRADE_CLOSED":
        params["gmt_close"] = _beijing(trade.closed_at)
    if refund_request_no:
        params.update(
            out_biz_no=refund_request_no,
            refund_fee=fen_to_yuan(trade.refunded_fen),
            gmt_refund=_beijing(utcnow()),
        )
    return signatures.sign_notify(params, keys().gateway_private)


def return_params(trade: SandboxTrade) -> dict[str, str]:
    """The signed parameters Alipay appends to return_url after payment."""
    conf = settings()
    params = {
        "app_id": conf["app_id"],
        "auth_app_id": conf["app_id"],
        "charset": "utf-8",
        "method": trade.method + ".return",
        "out_trade_no": trade.out_trade_no,
        "seller_id": conf["seller_id"],
        "timestamp": _beijing(utcnow()),
        "total_amount": fen_to_yuan(trade.total_fen),
        "trade_no": trade.trade_no,
        "version": "1.0",
    }
    return signatures.sign_notify(params, keys().gateway_private)


def _send_after_commit(
    session: Session, trade: SandboxTrade, params: dict[str, str], *, copies: int, delay: int = 0
) -> None:
    from market.payments import services, tasks

    url = trade.notify_url
    if not url:
        return

    def send() -> None:
        if delay:
            tasks.deliver_sandbox_notify.apply_async((url, params, copies), countdown=delay)
        else:
            tasks.deliver_sandbox_notify.delay(url, params, copies)

    services.after_commit(session, send)


def post_notify(url: str, params: Mapping[str, str]) -> str:
    """POST one notify and return the body of the answer ("success" / "fail")."""
    if settings().get("deliver") == "http":
        import urllib.request

        data = urlencode(params).encode()
        req = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 - our URL
        req.add_header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
            return response.read().decode().strip()
    parts = urlsplit(url)
    path = urlunsplit(("", "", parts.path, parts.query, ""))
    with current_app.test_client() as client:
        response = client.post(path, data=dict(params))
        return response.get_data(as_text=True).strip()


# --- the cashier (pages a buyer sees) --------------------------------------------------


class CashierForm(FlaskForm):
    action = HiddenField()
    notify = SelectField(
        "notify",
        choices=[SelectChoice(mode, mode) for mode in NOTIFY_MODES],
        default="normal",
    )
    tamper_amount = BooleanField("tamper_amount")
    wrong_app_id = BooleanField("wrong_app_id")


def _new_trade_no() -> str:
    today = datetime.now(SHANGHAI).strftime("%Y%m%d")
    return f"{today}22001{secrets.randbelow(10**15):015d}"


def _parse_beijing(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        return None


def _cashier_error(code: str, message: str, status: int = 400):
    return render_template("payments/sandbox_error.html", code=code, message=message), status


@bp.route("/gateway.do", methods=["GET", "POST"])
@csrf.exempt
def gateway():
    """Alipay's gateway: a cashier page for pay requests, signed JSON for API calls."""
    params = {**request.args.to_dict(), **request.form.to_dict()}
    method = params.get("method", "")
    if method in API_METHODS or method not in PRODUCT_CODES:
        error = settings().get("gateway_error")
        if error in ("http_500", "timeout"):
            return ("Internal Server Error", 500) if error == "http_500" else ("Timeout", 504)
        body = answer(db.session, params)
        db.session.commit()
        return current_app.response_class(body, mimetype="application/json")
    refused = _check_request(params)
    if refused:
        return _cashier_error(refused["sub_code"], refused["sub_msg"])
    try:
        biz = json.loads(params.get("biz_content") or "{}")
        amount = yuan_to_fen(str(biz.get("total_amount", "")))
    except (ValueError, MoneyError):
        return _cashier_error("ACQ.INVALID_PARAMETER", _("The amount is not valid."))
    out_trade_no = str(biz.get("out_trade_no") or "")
    subject = str(biz.get("subject") or "")
    if not out_trade_no or len(out_trade_no) > 64 or not subject or amount <= 0:
        return _cashier_error("ACQ.INVALID_PARAMETER", _("The request is incomplete."))
    if biz.get("product_code") != PRODUCT_CODES[method]:
        return _cashier_error("ACQ.INVALID_PARAMETER", "product_code")
    trade = _find(db.session, out_trade_no, lock=True)
    if trade is None:
        trade = SandboxTrade(
            trade_no=_new_trade_no(),
            out_trade_no=out_trade_no,
            app_id=params["app_id"],
            method=method,
            product_code=biz["product_code"],
            subject=subject[:256],
            total_fen=amount,
            notify_url=params.get("notify_url"),
            return_url=params.get("return_url"),
            quit_url=biz.get("quit_url"),
            time_expire=_parse_beijing(biz.get("time_expire")),
            switches={},
        )
        db.session.add(trade)
        _expire_if_due(trade)
    elif trade.total_fen != amount or trade.subject != subject[:256]:
        return _cashier_error("ACQ.CONTEXT_INCONSISTENT", _("The trade details do not match."))
    db.session.commit()
    return redirect(url_for("sandbox.trade", trade_no=trade.trade_no), 303)


@bp.route("/trades/<trade_no>", methods=["GET", "POST"])
def trade(trade_no: str):
    """The cashier for one trade: 支付 / 取消 / 失败, and the switches."""
    item = db.session.scalars(
        select(SandboxTrade).where(SandboxTrade.trade_no == trade_no).with_for_update()
    ).first()
    if item is None:
        abort(404)
    _expire_if_due(item)
    conf = settings()
    form = CashierForm(
        data=None
        if request.method == "POST"
        else {
            "notify": conf.get("notify", "normal"),
            "tamper_amount": bool(conf.get("tamper_amount")),
            "wrong_app_id": bool(conf.get("wrong_app_id")),
        }
    )
    if request.method == "POST":
        if not form.validate_on_submit():
            db.session.rollback()
            return render_template("payments/cashier.html", trade=item, form=form), 400
        action = form.action.data
        if action == "send_notify" and item.pending_notify:
            params = item.pending_notify
            item.pending_notify = None
            _send_after_commit(db.session, item, params, copies=1)
            db.session.commit()
            return redirect(url_for("sandbox.trade", trade_no=trade_no), 303)
        if item.status != "WAIT_BUYER_PAY":
            db.session.commit()
            return render_template("payments/cashier.html", trade=item, form=form), 409
        if action == "pay":
            return _pay(item, form)
        if action == "fail":
            item.status = "TRADE_CLOSED"
            item.closed_at = utcnow()
            _send_after_commit(db.session, item, notify_params(item), copies=1)
            db.session.commit()
            back = item.quit_url or item.return_url
            return render_template(
                "payments/sandbox_error.html",
                code="PAYMENT_FAIL",
                message=_("The payment failed."),
                back=back,
            )
        if action == "cancel":
            db.session.commit()
            if item.quit_url:
                return redirect(item.quit_url, 303)
            return render_template("payments/cashier.html", trade=item, form=form)
        db.session.rollback()
        abort(400)
    db.session.commit()
    return render_template("payments/cashier.html", trade=item, form=form)


def _pay(item: SandboxTrade, form: CashierForm):
    mode = form.notify.data if form.notify.data in NOTIFY_MODES else "normal"
    item.status = "TRADE_SUCCESS"
    item.paid_at = utcnow()
    item.switches = {
        "notify": mode,
        "tamper_amount": bool(form.tamper_amount.data),
        "wrong_app_id": bool(form.wrong_app_id.data),
    }
    params = notify_params(
        item,
        tamper_amount=item.switches["tamper_amount"],
        wrong_app_id=item.switches["wrong_app_id"],
    )
    if mode == "normal":
        _send_after_commit(db.session, item, params, copies=1)
    elif mode == "duplicate":
        _send_after_commit(db.session, item, params, copies=2)
    elif mode == "late":
        if current_app.config["CELERY"].get("task_always_eager"):
            item.pending_notify = params  # held until "send the held notify" is pressed
        else:
            delay = int(settings().get("late_seconds", 15))
            _send_after_commit(db.session, item, params, copies=1, delay=delay)
    db.session.commit()
    if not item.return_url:
        return render_template("payments/cashier.html", trade=item, form=form)
    return redirect(_with_params(item.return_url, return_params(item)), 303)


def _with_params(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
