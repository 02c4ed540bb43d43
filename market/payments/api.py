"""The Stripe-shaped JSON API: payment intents, refunds, events.

Authentication is a secret API key, `Authorization: Bearer sk_...` (or HTTP Basic with
the key as the user name, as `curl -u sk_test_...:` sends it); keys are minted with
`flask payments create-key`. No cookies, so no CSRF. Bodies may be JSON or
form-encoded the way Stripe's libraries send them (`metadata[order]=YN...`).

A POST with an `Idempotency-Key` header stores its first response and replays it
(`Idempotent-Replayed: true`) for 24 hours; the same key with other parameters is a 400
`idempotency_error`. Errors are JSON: {"error": {"type", "code", "message", "param"}}.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, g, request
from sqlalchemy.exc import IntegrityError

from market.errors import ConflictError, DomainError, NotFoundError
from market.extensions import csrf, db
from market.payments import services
from market.payments.interfaces import ProviderError, ProviderUnavailableError
from market.payments.models import IntentStatus
from market.web import api_error

log = logging.getLogger(__name__)

bp = Blueprint("payments_api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

METADATA_KEY = re.compile(r"^metadata\[([^\[\]]{1,40})\]$")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")


class ParamError(Exception):
    def __init__(self, message: str, param: str | None = None, code: str = "parameter_invalid"):
        super().__init__(message)
        self.param = param
        self.code = code


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
    return (
        json.dumps(body, ensure_ascii=False),
        status,
        {"Content-Type": "application/json", **(headers or {})},
    )


def _error(status: int, code: str, message: str, *, param: str | None = None, kind: str = ""):
    kind = kind or ("api_error" if status >= 500 else "invalid_request_error")
    return api_error(status, code, message, type=kind, param=param)


def _error_body(status: int, code: str, message: str, param: str | None = None) -> dict:
    kind = "api_error" if status >= 500 else "invalid_request_error"
    return {"error": {"code": code, "message": message, "type": kind, "param": param}}


@bp.before_request
def _authenticate():
    header = request.headers.get("Authorization", "")
    raw = ""
    if header.startswith("Bearer "):
        raw = header[7:].strip()
    elif request.authorization is not None and request.authorization.type == "basic":
        raw = request.authorization.username or ""
    if not raw:
        response = _error(
            401,
            "api_key_required",
            "You did not provide an API key. Send it as 'Authorization: Bearer sk_...'.",
        )
        response[0].headers["WWW-Authenticate"] = 'Bearer realm="YueNong Market"'
        return response
    key = services.authenticate_api_key(db.session, raw)
    if key is None:
        db.session.rollback()
        shown = raw[:8] + "*" * 4 + raw[-4:] if len(raw) > 12 else "****"
        response = _error(401, "api_key_invalid", f"Invalid API Key provided: {shown}")
        response[0].headers["WWW-Authenticate"] = 'Bearer realm="YueNong Market"'
        return response
    db.session.commit()  # last_used_at
    g.api_account = key.account
    return None


# --- parameters --------------------------------------------------------------------------


def _params() -> dict[str, Any]:
    """Request parameters from JSON, a form body, or (GET) the query string."""
    if request.method == "GET":
        return request.args.to_dict()
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ParamError("The request body is not a JSON object.", code="parameter_invalid")
        return data
    params: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for key, value in request.form.items(multi=False):
        match = METADATA_KEY.match(key)
        if match:
            metadata[match.group(1)] = value
        elif key == "metadata" and value == "":
            params["metadata"] = {}
        else:
            params[key] = value
    if metadata:
        params["metadata"] = metadata
    return params


def _only(params: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in params:
        if key not in allowed:
            raise ParamError(f"Received unknown parameter: {key}", key, "parameter_unknown")


def _int(params: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise ParamError(f"Missing required param: {name}.", name, "parameter_missing")
        return None
    if isinstance(value, bool):
        raise ParamError(f"Invalid integer: {value}", name)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,12}", value.strip()):
        return int(value.strip())
    raise ParamError(f"Invalid integer: {value}", name)


def _bool(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0", ""):
        return False
    raise ParamError(f"Invalid boolean: {value}", name)


def _str(params: dict[str, Any], name: str, *, max_length: int = 500) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParamError(f"Invalid string: {name}", name)
    if len(value) > max_length:
        raise ParamError(f"{name} is longer than {max_length} characters", name)
    return value


def _return_url(params: dict[str, Any]) -> str | None:
    url = _str(params, "return_url", max_length=500)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ParamError("return_url must be an absolute http(s) URL", "return_url", "url_invalid")
    return url


def _device(params: dict[str, Any]) -> str:
    device = params.get("device") or "mobile"
    if device not in ("mobile", "desktop"):
        raise ParamError("device must be mobile or desktop", "device")
    return device


# --- the wrapper: parse, idempotency, errors, one commit ---------------------------------

Handler = Callable[..., tuple[int, dict[str, Any]]]


def _status_for(exc: DomainError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ProviderUnavailableError):
        return 503
    if isinstance(exc, ProviderError):
        return 502
    if isinstance(exc, ConflictError | services.IdempotencyMismatchError):
        return 400
    return 400


def endpoint(fn: Handler):
    @wraps(fn)
    def run(**kwargs):
        try:
            params = _params()
        except ParamError as exc:
            return _error(400, exc.code, str(exc), param=exc.param)
        account = g.api_account
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        if key is not None and not (0 < len(key) <= 255):
            return _error(400, "idempotency_key_invalid", "Idempotency-Key is 1-255 characters.")
        fingerprint = services.request_fingerprint(request.method, request.path, params)
        claimed = None
        if key:
            try:
                stored = services.find_idempotent(db.session, account, key, fingerprint)
            except services.IdempotencyMismatchError as exc:
                db.session.rollback()
                return _error(400, exc.code, str(exc), kind="idempotency_error")
            if stored is not None:
                return _replay(stored)
            try:
                claimed = services.claim_idempotency_key(
                    db.session, account, key, request.method, request.path, fingerprint
                )
            except IntegrityError:
                db.session.rollback()
                stored = services.find_idempotent(db.session, account, key, fingerprint)
                if stored is not None and stored.response_status:
                    return _replay(stored)
                return _error(409, "idempotency_key_in_use", "A request with this key is running.")
        try:
            status, body = fn(params, account, **kwargs)
        except ParamError as exc:
            db.session.rollback()
            return _error(400, exc.code, str(exc), param=exc.param)
        except DomainError as exc:
            db.session.rollback()
            status = _status_for(exc)
            body = _error_body(status, exc.code, str(exc), exc.field)
            if key and not isinstance(exc, ProviderUnavailableError):
                # Stripe saves the result of a request that ran, errors included.
                _store(account, key, fingerprint, status, body)
            return _json(status, body)
        if claimed is not None:
            claimed.response_status = status
            claimed.response_body = json.dumps(body, ensure_ascii=False)
        db.session.commit()
        return _json(status, body)

    return run


def _store(account: str, key: str, fingerprint: str, status: int, body: dict) -> None:
    try:
        row = services.claim_idempotency_key(
            db.session, account, key, request.method, request.path, fingerprint
        )
        row.response_status = status
        row.response_body = json.dumps(body, ensure_ascii=False)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()


def _replay(stored) -> tuple:
    db.session.rollback()
    return (
        stored.response_body,
        stored.response_status,
        {"Content-Type": "application/json", "Idempotent-Replayed": "true"},
    )


def _list(url: str, rows: list, has_more: bool, shape) -> dict[str, Any]:
    return {"object": "list", "url": url, "has_more": has_more, "data": [shape(r) for r in rows]}


def _limit(params: dict[str, Any]) -> int:
    limit = _int(params, "limit", required=False)
    limit = 10 if limit is None else limit
    if not 1 <= limit <= 100:
        raise ParamError("limit must be between 1 and 100", "limit")
    return limit


# --- payment intents -------------------------------------------------------------------


@bp.route("/payment_intents", methods=["GET", "POST"])
@endpoint
def payment_intents(params: dict[str, Any], account: str):
    if request.method == "GET":
        _only(params, ("limit", "starting_after", "ending_before"))
        rows, has_more = services.list_intents(
            db.session,
            account,
            limit=_limit(params),
            starting_after=params.get("starting_after") or None,
            ending_before=params.get("ending_before") or None,
        )
        return 200, _list("/v1/payment_intents", rows, has_more, services.intent_json)
    _only(
        params,
        ("amount", "currency", "description", "metadata", "confirm", "return_url", "device"),
    )
    amount = _int(params, "amount", required=True)
    currency = _str(params, "currency", max_length=3)
    if currency is None:
        raise ParamError("Missing required param: currency.", "currency", "parameter_missing")
    confirm = _bool(params, "confirm")
    return_url = _return_url(params)
    if confirm and not return_url:
        raise ParamError(
            "return_url is required with confirm=true", "return_url", "parameter_missing"
        )
    intent = services.create_intent(
        db.session,
        amount=amount,
        account=account,
        currency=currency,
        description=_str(params, "description", max_length=256) or "",
        metadata=params.get("metadata"),
    )
    if confirm:
        services.confirm_intent(
            db.session, intent.id, return_url=return_url, device=_device(params), account=account
        )
    return 200, services.intent_json(intent)


@bp.get("/payment_intents/<intent_id>")
@endpoint
def payment_intent(params: dict[str, Any], account: str, intent_id: str):
    _only(params, ())
    return 200, services.intent_json(services.get_intent(db.session, intent_id, account=account))


@bp.post("/payment_intents/<intent_id>/confirm")
@endpoint
def confirm_payment_intent(params: dict[str, Any], account: str, intent_id: str):
    _only(params, ("return_url", "device"))
    current = services.get_intent(db.session, intent_id, account=account)
    return_url = _return_url(params) or current.return_url
    if not return_url:
        raise ParamError("return_url is required to confirm", "return_url", "parameter_missing")
    intent = services.confirm_intent(
        db.session, intent_id, return_url=return_url, device=_device(params), account=account
    )
    return 200, services.intent_json(intent)


@bp.post("/payment_intents/<intent_id>/cancel")
@endpoint
def cancel_payment_intent(params: dict[str, Any], account: str, intent_id: str):
    _only(params, ("cancellation_reason",))
    reason = params.get("cancellation_reason") or "requested_by_customer"
    if reason not in CANCELLATION_REASONS:
        raise ParamError("Invalid cancellation_reason", "cancellation_reason")
    intent = services.cancel_intent(db.session, intent_id, reason=reason, account=account)
    if intent.status is IntentStatus.SUCCEEDED:
        # Alipay said the trade was already paid: that is now recorded (and committed).
        return 400, _error_body(
            400,
            "payment_intent_unexpected_state",
            "The buyer has already paid; this PaymentIntent has succeeded and cannot be "
            "canceled. Refund it instead.",
        ) | {"payment_intent": services.intent_json(intent)}
    return 200, services.intent_json(intent)


# --- refunds ------------------------------------------------------------------------------


@bp.post("/refunds")
@endpoint
def refunds(params: dict[str, Any], account: str):
    _only(params, ("payment_intent", "amount", "reason", "metadata"))
    intent_id = _str(params, "payment_intent", max_length=40)
    if not intent_id:
        raise ParamError(
            "Missing required param: payment_intent.", "payment_intent", "parameter_missing"
        )
    refund = services.create_refund(
        db.session,
        payment_intent=intent_id,
        amount=_int(params, "amount", required=False),
        reason=_str(params, "reason", max_length=200) or "",
        metadata=params.get("metadata"),
        account=account,
    )
    refund_id = refund.id
    # A second commit on purpose: the pending refund (and the idempotency key) are on our
    # books before Alipay is asked to move money.
    db.session.commit()
    refund = services.attempt_refund(db.session, refund_id)
    return 200, services.refund_json(refund)


@bp.get("/refunds/<refund_id>")
@endpoint
def refund(params: dict[str, Any], account: str, refund_id: str):
    _only(params, ())
    return 200, services.refund_json(services.get_refund(db.session, refund_id, account=account))


# --- events ------------------------------------------------------------------------------


@bp.get("/events")
@endpoint
def events(params: dict[str, Any], account: str):
    _only(params, ("limit", "type"))
    rows, has_more = services.list_events(
        db.session, account, limit=_limit(params), type_=params.get("type") or None
    )
    return 200, _list("/v1/events", rows, has_more, services.event_json)


@bp.get("/events/<event_id>")
@endpoint
def event(params: dict[str, Any], account: str, event_id: str):
    _only(params, ())
    return 200, services.event_json(services.get_event(db.session, event_id, account=account))
