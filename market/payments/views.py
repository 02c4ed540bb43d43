"""Where Alipay talks to us: the async notify and the buyer's return."""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Blueprint, abort, redirect, request, url_for
from sqlalchemy.exc import IntegrityError

from market.extensions import csrf, db
from market.payments import services
from market.payments.models import IntentStatus, PaymentIntent
from market.payments.providers import get_provider

log = logging.getLogger(__name__)

bp = Blueprint("payments", __name__, url_prefix="/payments")

REDIRECT_STATUS = {
    IntentStatus.SUCCEEDED: "succeeded",
    IntentStatus.PROCESSING: "processing",
}


@bp.post("/alipay/notify")
@csrf.exempt
def alipay_notify():
    """Alipay's async notify: a plain form POST, no cookies, answered `success` / `fail`."""
    params = request.form.to_dict()
    try:
        handled = services.receive_notify(db.session, params)
        if handled:
            db.session.commit()
        else:
            db.session.rollback()
    except IntegrityError:
        # The same notify_id raced in twice; the other one handled it.
        db.session.rollback()
        handled = services.notify_seen(db.session, params.get("notify_id"))
    body, status, headers = get_provider().ack(handled)
    return body, status, headers


@bp.get("/alipay/return")
def alipay_return():
    """The buyer is back. Mark processing, ask Alipay after the commit, and send the buyer
    to the intent's return_url (never fulfil from this request alone)."""
    intent = services.handle_return(db.session, request.args.to_dict())
    if intent is None:
        db.session.rollback()
        abort(404)
    intent_id, target = intent.id, intent.return_url
    db.session.commit()
    intent = db.session.get(PaymentIntent, intent_id)
    status = REDIRECT_STATUS.get(intent.status, "failed")
    if not target:
        return redirect(url_for("core.home"), 303)
    parts = urlsplit(target)
    extra = urlencode({"payment_intent": intent_id, "redirect_status": status})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return redirect(urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")), 303)
