"""Every notify / return failure case of the contract, against the sandbox gateway."""

from __future__ import annotations

from datetime import timedelta

import pytest
from Cryptodome.Hash import SHA1
from Cryptodome.Signature import pkcs1_15
from sqlalchemy import func, select, update

from market.extensions import db
from market.payments import signatures, tasks
from market.payments.models import (
    Event,
    IntentStatus,
    PaymentIntent,
    ProviderNotification,
    SandboxTrade,
)
from market.types import utcnow
from tests.payments.helpers import (
    RETURN_URL,
    intent,
    local,
    notify_params,
    open_cashier,
    open_intent,
    pay,
    post_notify,
    press,
)


def _count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _events(app, intent_id: str, event_type: str) -> int:
    with app.app_context():
        rows = db.session.scalars(select(Event).where(Event.type == event_type)).all()
        return sum(1 for e in rows if e.data["object"]["id"] == intent_id)


def test_paying_in_the_sandbox_sends_a_signed_notify_and_the_intent_succeeds(app, client):
    intent_id, trade_no, response = pay(app, client, 1230)
    # The buyer goes back to our return URL with Alipay's signed return parameters.
    assert response.status_code == 303
    assert response.headers["Location"].startswith("http://")
    assert "/payments/alipay/return?" in response.headers["Location"]
    paid = intent(app, intent_id)
    assert paid.status is IntentStatus.SUCCEEDED
    assert paid.amount_received == 1230
    assert paid.provider_trade_no
    assert paid.provider_trade_no.startswith(trade_no[:8])
    assert _count(app, ProviderNotification) == 1
    assert _events(app, intent_id, "payment_intent.succeeded") == 1


def test_the_notify_answer_is_exactly_success_in_plain_text(app, client):
    intent_id, trade_no, _ = pay(app, client, notify="missing")
    alipay = app.test_client()  # no cookies, as Alipay's servers send none
    response = post_notify(alipay, notify_params(app, trade_no))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "success"
    assert response.mimetype == "text/plain"
    assert "Set-Cookie" not in response.headers
    assert intent(app, intent_id).status is IntentStatus.SUCCEEDED


def test_a_forged_signature_is_answered_fail_and_changes_nothing(app, client, gateway):
    intent_id, trade_no, _ = pay(app, client, notify="missing")
    params = notify_params(app, trade_no)
    forged = signatures.sign_notify(params, signatures.load_private_key(gateway.keys.forger))
    response = post_notify(client, forged)
    assert response.get_data(as_text=True) == "fail"
    assert intent(app, intent_id).status is IntentStatus.REQUIRES_ACTION
    assert _count(app, ProviderNotification) == 0


def test_a_signature_that_is_not_base64_is_refused_without_an_error(app, client):
    intent_id, trade_no, _ = pay(app, client, notify="missing")
    params = {**notify_params(app, trade_no), "sign": "%%%not-base64%%%"}
    assert post_notify(client, params).get_data(as_text=True) == "fail"
    assert intent(app, intent_id).status is IntentStatus.REQUIRES_ACTION


def test_a_changed_field_breaks_the_signature(app, client):
    intent_id, trade_no, _ = pay(app, client, notify="missing")
    params = {**notify_params(app, trade_no), "total_amount": "0.01"}
    assert post_notify(client, params).get_data(as_text=True) == "fail"
    assert intent(app, intent_id).status is IntentStatus.REQUIRES_ACTION


def test_a_sha1_rsa_signature_is_never_accepted(app, client, gateway):
    """sign_type=RSA (SHA-1), correctly signed by the gateway's own key: still refused."""
    intent_id, trade_no, _ = pay(app, client, notify="missing")
    params = notify_params(app, trade_no)
    params["sign_type"] = "RSA"
    message = signatures.canonical_string(params, exclude=("sign", "sign_type"))
    key = signatures.load_private_key(gateway.keys.gateway)
    import base64

    params["sign"] = base64.b64encode(pkcs1_15.new(key).sign(SHA1.new(message.encode()))).decode()
    assert post_notify(client, params).get_data(as_text=True) == "fail"
    assert intent(app, intent_id).status is IntentStatus.REQUIRES_ACTION


def test_a_tampered_amount_changes_nothing_and_flags_the_intent(app, client):
    intent_id, trade_no, _ = pay(app, client, 1230, notify="missing")
    response = post_notify(client, notify_params(app, trade_no, tamper_amount=True))
    # Handled (so Alipay stops retrying), but not counted as paid.
    assert response.get_data(as_text=True) == "success"
    flagged = intent(app, intent_id)
    assert flagged.status is IntentStatus.REQUIRES_ACTION
    assert flagged.amount_received == 0
    assert "amount mismatch" in flagged.review_reason
    with app.app_context():
        note = db.session.scalars(select(ProviderNotification)).one()
        assert note.outcome == "amount_mismatch"


def test_the_tamper_switch_on_the_cashier_sends_a_tampered_notify(app, client):
    intent_id, _trade_no, response = pay(app, client, 1230, tamper_amount="y")
    assert response.status_code == 303  # we do not follow the return: the notify alone
    flagged = intent(app, intent_id)
    assert flagged.status is IntentStatus.REQUIRES_ACTION
    assert flagged.review_reason.startswith("amount mismatch from notify")


def test_a_notify_for_another_app_id_is_refused(app, client):
    intent_id, _trade_no, _ = pay(app, client, wrong_app_id="y")
    assert intent(app, intent_id).status is IntentStatus.REQUIRES_ACTION
    assert _count(app, ProviderNotification) == 0


def test_a_notify_for_another_seller_is_refused(app, client, gateway):
    intent_id, trade_no, _ = pay(app, client, notify="missing")
    params = notify_params(app, trade_no)
    params["seller_id"] = "2088999999999999"
    resigned = signatures.sign_notify(params, signatures.load_private_key(gateway.keys.gateway))
    assert post_notify(client, resigned).get_data(as_text=True) == "fail"
    assert intent(app, intent_id).status is IntentStatus.REQUIRES_ACTION


def test_a_notify_for_an_unknown_trade_answers_fail_and_changes_nothing(app, client, gateway):
    intent_id, trade_no, _ = pay(app, client, notify="missing")
    params = notify_params(app, trade_no)
    params["out_trade_no"] = "pi_doesnotexist000000000000_1"
    resigned = signatures.sign_notify(params, signatures.load_private_key(gateway.keys.gateway))
    assert post_notify(client, resigned).get_data(as_text=True) == "fail"
    assert intent(app, intent_id).status is IntentStatus.REQUIRES_ACTION
    assert _count(app, ProviderNotification) == 0


def test_a_duplicate_notify_is_acted_on_once(app, client):
    intent_id, trade_no, _ = pay(app, client, notify="duplicate")
    assert intent(app, intent_id).status is IntentStatus.SUCCEEDED
    assert _count(app, ProviderNotification) == 1
    assert _events(app, intent_id, "payment_intent.succeeded") == 1
    # Alipay retrying the same notify_id later: still `success`, still once.
    params = notify_params(app, trade_no)
    first = post_notify(client, params)
    second = post_notify(client, params)
    assert first.get_data(as_text=True) == second.get_data(as_text=True) == "success"
    assert _events(app, intent_id, "payment_intent.succeeded") == 1


def test_a_wait_buyer_pay_notify_changes_nothing(app, client):
    intent_id, url = open_intent(app)
    trade_no = open_cashier(client, url)
    response = post_notify(client, notify_params(app, trade_no))
    assert response.get_data(as_text=True) == "success"
    assert intent(app, intent_id).status is IntentStatus.REQUIRES_ACTION


def test_return_before_notify_shows_processing_and_never_fulfils_from_the_return(
    app, client, gateway
):
    intent_id, _trade_no, response = pay(app, client, notify="late")
    # Alipay is slow to answer the query too, so only the notify can settle it.
    gateway.switch(gateway_error="system_error")
    back = client.get(local(response.headers["Location"]))
    assert back.status_code == 303
    assert back.headers["Location"].startswith(RETURN_URL)
    assert "redirect_status=processing" in back.headers["Location"]
    assert intent(app, intent_id).status is IntentStatus.PROCESSING
    # A forged return (valid params, no payment) moves nothing further either.
    assert _events(app, intent_id, "payment_intent.succeeded") == 0
    gateway.switch(gateway_error="")
    # The held notify lands.
    with app.app_context():
        trade = db.session.scalars(select(SandboxTrade)).one()
        held = trade.pending_notify
    assert held is not None
    assert post_notify(client, held).get_data(as_text=True) == "success"
    assert intent(app, intent_id).status is IntentStatus.SUCCEEDED


def test_the_held_notify_can_be_sent_from_the_sandbox_page(app, client):
    intent_id, trade_no, _ = pay(app, client, notify="late")
    assert intent(app, intent_id).status is IntentStatus.REQUIRES_ACTION
    page = client.get(f"/sandbox/alipay/trades/{trade_no}").get_data(as_text=True)
    assert "立即发送延迟的通知" in page
    press(client, trade_no, "send_notify")
    assert intent(app, intent_id).status is IntentStatus.SUCCEEDED


def test_a_return_with_a_query_that_answers_settles_without_the_notify(app, client):
    """Never from the return alone: the return triggers trade.query, which is proof."""
    intent_id, _trade_no, response = pay(app, client, notify="missing")
    back = client.get(local(response.headers["Location"]))
    assert "redirect_status=succeeded" in back.headers["Location"]
    assert intent(app, intent_id).status is IntentStatus.SUCCEEDED
    assert _count(app, ProviderNotification) == 0


def test_a_return_for_an_unpaid_trade_does_not_succeed(app, client):
    intent_id, url = open_intent(app)
    trade_no = open_cashier(client, url)
    with app.app_context():
        trade = db.session.scalars(select(SandboxTrade)).one()
        from market.payments import sandbox

        forged_return = sandbox.return_params(trade)  # what a buyer could replay
    query = "&".join(f"{k}={v}" for k, v in forged_return.items() if k not in ("sign",))
    client.get("/payments/alipay/return?" + query)
    assert intent(app, intent_id).status is IntentStatus.PROCESSING
    assert trade_no


def _age(app, intent_id: str, seconds: int = 120) -> None:
    with app.app_context():
        db.session.execute(
            update(PaymentIntent)
            .where(PaymentIntent.id == intent_id)
            .values(updated_at=utcnow() - timedelta(seconds=seconds))
        )
        db.session.commit()


def test_a_notify_that_never_arrives_is_settled_by_reconciliation(app, client):
    intent_id, _trade_no, _ = pay(app, client, notify="missing")
    assert intent(app, intent_id).status is IntentStatus.REQUIRES_ACTION
    _age(app, intent_id)
    summary = tasks.reconcile()
    assert summary["settled"] == 1
    assert intent(app, intent_id).status is IntentStatus.SUCCEEDED


@pytest.mark.parametrize("error", ["system_error", "http_500", "timeout"])
def test_a_gateway_error_leaves_the_outcome_to_the_next_reconciliation(app, client, gateway, error):
    intent_id, _trade_no, response = pay(app, client, notify="missing")
    gateway.switch(gateway_error=error)
    client.get(local(response.headers["Location"]))  # the return's query fails
    assert intent(app, intent_id).status is IntentStatus.PROCESSING
    _age(app, intent_id)
    assert tasks.reconcile()["unknown"] == 1
    assert intent(app, intent_id).status is IntentStatus.PROCESSING
    gateway.switch(gateway_error="")
    assert tasks.reconcile()["settled"] == 1
    assert intent(app, intent_id).status is IntentStatus.SUCCEEDED


def test_reconciliation_closes_an_expired_unpaid_trade(app, client):
    intent_id, url = open_intent(app)
    trade_no = open_cashier(client, url)
    with app.app_context():
        db.session.execute(
            update(PaymentIntent)
            .where(PaymentIntent.id == intent_id)
            .values(trade_expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    tasks.reconcile()
    closed = intent(app, intent_id)
    assert closed.status is IntentStatus.CANCELED
    assert closed.last_payment_error["code"] in ("payment_expired", "payment_failed")
    with app.app_context():
        trade = db.session.scalars(
            select(SandboxTrade).where(SandboxTrade.trade_no == trade_no)
        ).one()
        assert trade.status == "TRADE_CLOSED"


def test_a_failed_payment_closes_the_trade_and_cancels_the_intent(app, client):
    intent_id, url = open_intent(app)
    trade_no = open_cashier(client, url)
    page = press(client, trade_no, "fail")
    assert "支付失败" in page.get_data(as_text=True)
    canceled = intent(app, intent_id)
    assert canceled.status is IntentStatus.CANCELED
    assert canceled.last_payment_error["code"] == "payment_failed"


def test_the_gateway_refuses_a_redirect_whose_amount_was_changed(app, client):
    _intent_id, url = open_intent(app, 1230)
    tampered = local(url).replace("12.30", "0.01")
    response = client.get(tampered)
    assert response.status_code == 400
    assert "isv.invalid-signature" in response.get_data(as_text=True)
    assert _count(app, SandboxTrade) == 0
