"""What every HTML and JSON endpoint shares: errors, filters, authorization."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, abort, current_app, jsonify, render_template, request
from flask_babel import get_locale, gettext, lazy_gettext
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from market import money, places, policy
from market.auth.services import mask_phone

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")

ERROR_TEXTS = {
    400: (lazy_gettext("Bad request"), lazy_gettext("Something in the request was not right.")),
    403: (lazy_gettext("Not allowed"), lazy_gettext("You do not have access to this page.")),
    404: (lazy_gettext("Page not found"), lazy_gettext("The page does not exist or has moved.")),
    405: (lazy_gettext("Not allowed"), lazy_gettext("This action is not supported here.")),
    413: (lazy_gettext("Too large"), lazy_gettext("The upload is too large.")),
    429: (
        lazy_gettext("Too many requests"),
        lazy_gettext("Please wait a moment and try again."),
    ),
    500: (
        lazy_gettext("Something went wrong"),
        lazy_gettext("We have been notified. Please try again later."),
    ),
}

API_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "server_error",
}


#: Sent with every response (traceability's scan fast path adds them itself).
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


def authorize(action: str, target: Any = None) -> None:
    """Abort with 403 (or send visitors to sign in) unless the policy allows it."""
    if policy.can(current_user, action, target):
        return
    if not current_user.is_authenticated:
        from market.extensions import login_manager

        abort(login_manager.unauthorized())
    abort(403)


def field_error(form: Any, exc: Any, messages: dict[str, str]) -> None:
    """Put a service's error on the form field it concerns, in the user's language."""
    text = messages.get(exc.code, gettext("Please check this field."))
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = [*list(field.errors), text]
    else:
        form.form_errors.append(text)


def is_api_request() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/epcis/")


def api_error(status: int, code: str, message: str, **extra: Any):
    body: dict[str, Any] = {"error": {"code": code, "message": message, **extra}}
    return jsonify(body), status


def phone_for(user: Any) -> str:
    """The phone number as the current viewer may see it."""
    if user is None:
        return ""
    if policy.can(current_user, "user.view_phone", user):
        return user.phone
    return mask_phone(user.phone)


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(SHANGHAI).strftime(fmt)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["fen"] = money.format_fen
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["place"] = places.full_name
    app.jinja_env.filters["place_short"] = places.name_of
    app.jinja_env.globals["phone_for"] = phone_for
    app.jinja_env.globals["can"] = lambda action, target=None: policy.can(
        current_user, action, target
    )
    app.jinja_env.globals["get_locale"] = get_locale

    @app.context_processor
    def _inject() -> dict[str, Any]:
        unread = 0
        if current_user.is_authenticated:
            from market.extensions import db
            from market.notifications.services import unread_count

            unread = unread_count(db.session, current_user.id)
        return {"languages": app.config["LANGUAGES"], "unread_notifications": unread}

    @app.after_request
    def _security_headers(response):
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        if is_api_request():
            return api_error(400, "csrf_failed", exc.description)
        return _render_error(400, gettext("The form expired. Please go back and try again."))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if exc.response is not None and status in (301, 302, 303, 307, 308):
            return exc.response
        if exc.response is not None and status == 401:
            return exc.response
        if exc.response is not None and not is_api_request():
            return exc.response
        if is_api_request():
            body, status = api_error(status, API_CODES.get(status, "error"), exc.description or "")
        else:
            body, status = _render_error(status)
        # Keep what the exception says about retrying (429, 503: Retry-After).
        retry = [(name, value) for name, value in exc.get_headers() if name == "Retry-After"]
        return body, status, retry

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        from market.extensions import db

        db.session.rollback()
        if current_app.testing and current_app.config.get("PROPAGATE_UNEXPECTED", True):
            raise exc
        if is_api_request():
            return api_error(500, "server_error", "internal error")
        return _render_error(500)


def _render_error(status: int, message: str | None = None):
    title, default = ERROR_TEXTS.get(status, ERROR_TEXTS[500])
    return (
        render_template(
            "errors/error.html", status=status, title=title, message=message or default
        ),
        status,
    )
