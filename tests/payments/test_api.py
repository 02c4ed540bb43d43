"""The Stripe-shaped JSON API: keys, intents, refunds, idempotency, errors."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from market.extensions import db
from market.payments import services
from market.payments.models import PaymentIntent, SandboxRefund
from tests.payments.helpers import local, open_cashier, press


@pytest.fixture
def key(app) -> str:
    with app.app_context():
        _key, raw = services.create_api_key(db.session, "shop")
        db.session.commit()
    return raw


@pytest.fixture
def api(client, key):
    """POST/GET with the key as a Bearer token."""

    class Api:
        def post(self, path, data=None, headers=None, **kwargs):
            return client.post(
                "/api/v1" + path,
                data=data,
                headers={"Authorization": f"Bearer {key}", **(headers or {})},
                **kwargs,
            )

        def get(self, path, **kwargs):
            return client.get(
                "/api/v1" + path, headers={"Authorization": f"Bearer {key}"}, **kwargs
            )

    return Api()


def _create(api, amount=1230, **extra):
    response = api.post("/payment_intents", {"amount": str(amount), "currency": "cny", **extra})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_requests_without_a_key_get_401_json(client):
    response = client.get("/api/v1/payment_intents")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "api_key_required"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_or_revoked_key_gets_401(app, client, key):
    bad = client.get("/api/v1/payment_intents", headers={"Authorization": "Bearer sk_test_nope"})
    assert bad.status_code == 401
    assert bad.get_json()["error"]["code"] == "api_key_invalid"
    with app.app_context():
        row = db.session.scalars(select(services.ApiKey)).one()
        services.revoke_api_key(db.session, row.id)
        db.session.commit()
    revoked = client.get("/api/v1/payment_intents", headers={"Authorization": f"Bearer {key}"})
    assert revoked.status_code == 401


def test_only_the_hash_of_a_key_is_stored(app, key):
    with app.app_context():
        row = db.session.scalars(select(services.ApiKey)).one()
        assert key not in (row.key_hash, row.name)
        assert row.last4 == key[-4:]
        assert row.prefix == "sk_test_"


def test_basic_auth_with_the_key_as_user_works_like_curl_u(client, key):
    token = base64.b64encode(f"{key}:".encode()).decode()
    response = client.get("/api/v1/payment_intents", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200
    assert response.get_json()["object"] == "list"


def test_create_a_payment_intent_form_encoded_like_stripe(api):
    body = _create(api, 1230, description="两罐陈皮", **{"metadata[order]": "YN1"})
    assert body["id"].startswith("pi_")
    assert body["object"] == "payment_intent"
    assert body["amount"] == 1230
    assert body["currency"] == "cny"
    assert body["status"] == "requires_payment_method"
    assert body["metadata"] == {"order": "YN1"}
    assert body["amount_received"] == 0
    assert body["livemode"] is False
    assert body["next_action"] is None


def test_create_a_payment_intent_with_json(api):
    response = api.post(
        "/payment_intents", json={"amount": 500, "currency": "cny", "metadata": {"a": "b"}}
    )
    assert response.status_code == 200
    assert response.get_json()["metadata"] == {"a": "b"}


@pytest.mark.parametrize(
    ("data", "code", "param"),
    [
        ({"currency": "cny"}, "parameter_missing", "amount"),
        ({"amount": "12.30", "currency": "cny"}, "parameter_invalid", "amount"),
        ({"amount": "0", "currency": "cny"}, "parameter_invalid", "amount"),
        ({"amount": "100", "currency": "usd"}, "parameter_invalid", "currency"),
        ({"amount": "100", "currency": "cny", "colour": "red"}, "parameter_unknown", "colour"),
        (
            {"amount": "100", "currency": "cny", "confirm": "true"},
            "parameter_missing",
            "return_url",
        ),
    ],
)
def test_bad_parameters_get_400_with_a_stable_code(api, data, code, param):
    response = api.post("/payment_intents", data)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert error["type"] == "invalid_request_error"


def test_a_body_that_is_not_a_json_object_is_a_400(api):
    response = api.post("/payment_intents", data="[1]", content_type="application/json")
    assert response.status_code == 400


def test_no_csrf_token_is_needed(api):
    # The app has CSRF on for forms; the key-authenticated API is exempt.
    assert api.post("/payment_intents", {"amount": "100", "currency": "cny"}).status_code == 200


def test_confirm_pay_and_read_back(api, client):
    created = _create(api)
    confirmed = api.post(
        f"/payment_intents/{created['id']}/confirm", {"return_url": "https://shop.test/done"}
    ).get_json()
    assert confirmed["status"] == "requires_action"
    redirect = confirmed["next_action"]["alipay_handle_redirect"]
    assert confirmed["next_action"]["type"] == "alipay_handle_redirect"
    assert "/sandbox/alipay/gateway.do?" in redirect["url"]
    assert redirect["return_url"] == "https://shop.test/done"
    trade_no = open_cashier(client, redirect["url"])
    back = press(client, trade_no, "pay")
    landing = client.get(local(back.headers["Location"]))
    assert landing.headers["Location"].startswith("https://shop.test/done?payment_intent=")
    body = api.get(f"/payment_intents/{created['id']}").get_json()
    assert body["status"] == "succeeded"
    assert body["amount_received"] == 1230


def test_create_and_confirm_in_one_call_on_desktop_uses_page_pay(api):
    body = _create(api, confirm="true", return_url="https://shop.test/r", device="desktop")
    assert body["status"] == "requires_action"
    assert "alipay.trade.page.pay" in body["next_action"]["alipay_handle_redirect"]["url"]


def test_an_unknown_intent_is_a_404_resource_missing(api):
    response = api.get("/payment_intents/pi_nothing")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "resource_missing"


def test_another_accounts_intents_are_invisible(app, api, client):
    created = _create(api)
    with app.app_context():
        _k, other = services.create_api_key(db.session, "elsewhere", account="partner")
        db.session.commit()
    response = client.get(
        f"/api/v1/payment_intents/{created['id']}", headers={"Authorization": f"Bearer {other}"}
    )
    assert response.status_code == 404
    listed = client.get("/api/v1/payment_intents", headers={"Authorization": f"Bearer {other}"})
    assert listed.get_json()["data"] == []


def test_the_list_pages_newest_first(api):
    ids = [_create(api, 100 + n)["id"] for n in range(5)]
    first = api.get("/payment_intents?limit=2").get_json()
    assert [i["id"] for i in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    second = api.get(f"/payment_intents?limit=2&starting_after={ids[3]}").get_json()
    assert [i["id"] for i in second["data"]] == [ids[2], ids[1]]
    back = api.get(f"/payment_intents?limit=2&ending_before={ids[2]}").get_json()
    assert [i["id"] for i in back["data"]] == [ids[4], ids[3]]
    assert api.get("/payment_intents?limit=0").status_code == 400


def test_cancel_then_cancel_again_is_refused(api):
    created = _create(api)
    canceled = api.post(f"/payment_intents/{created['id']}/cancel").get_json()
    assert canceled["status"] == "canceled"
    assert canceled["cancellation_reason"] == "requested_by_customer"
    again = api.post(f"/payment_intents/{created['id']}/cancel")
    assert again.status_code == 400
    assert again.get_json()["error"]["code"] == "payment_intent_unexpected_state"


def test_cancel_closes_the_alipay_trade_first_and_finds_the_buyer_paid(api, client):
    created = _create(api, confirm="true", return_url="https://shop.test/r")
    trade_no = open_cashier(client, created["next_action"]["alipay_handle_redirect"]["url"])
    press(client, trade_no, "pay", notify="missing")  # paid, but we have not heard yet
    response = api.post(f"/payment_intents/{created['id']}/cancel")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"]["code"] == "payment_intent_unexpected_state"
    assert body["payment_intent"]["status"] == "succeeded"
    assert api.get(f"/payment_intents/{created['id']}").get_json()["status"] == "succeeded"


def test_cancel_while_the_gateway_is_down_changes_nothing(api, client, gateway):
    created = _create(api, confirm="true", return_url="https://shop.test/r")
    open_cashier(client, created["next_action"]["alipay_handle_redirect"]["url"])
    gateway.switch(gateway_error="timeout")
    response = api.post(f"/payment_intents/{created['id']}/cancel")
    assert response.status_code == 503
    assert response.get_json()["error"]["type"] == "api_error"
    assert api.get(f"/payment_intents/{created['id']}").get_json()["status"] == "requires_action"


def _paid(api, client, amount=1000):
    created = _create(api, amount, confirm="true", return_url="https://shop.test/r")
    trade_no = open_cashier(client, created["next_action"]["alipay_handle_redirect"]["url"])
    press(client, trade_no, "pay")
    return created["id"]


def test_partial_refunds_then_an_over_refund_is_refused(app, api, client):
    intent_id = _paid(api, client, 1000)
    first = api.post("/refunds", {"payment_intent": intent_id, "amount": "300"}).get_json()
    assert first["object"] == "refund"
    assert first["status"] == "succeeded"
    assert first["amount"] == 300
    too_much = api.post("/refunds", {"payment_intent": intent_id, "amount": "701"})
    assert too_much.status_code == 400
    assert too_much.get_json()["error"]["code"] == "amount_too_large"
    assert too_much.get_json()["error"]["param"] == "amount"
    rest = api.post("/refunds", {"payment_intent": intent_id}).get_json()
    assert rest["amount"] == 700
    body = api.get(f"/payment_intents/{intent_id}").get_json()
    assert body["amount_refunded"] == 1000
    again = api.post("/refunds", {"payment_intent": intent_id, "amount": "1"})
    assert again.get_json()["error"]["code"] == "charge_already_refunded"
    assert api.get(f"/refunds/{first['id']}").get_json()["amount"] == 300
    with app.app_context():
        assert db.session.scalar(select(func.sum(SandboxRefund.amount_fen))) == 1000


def test_refunding_an_unpaid_intent_is_refused(api):
    created = _create(api)
    response = api.post("/refunds", {"payment_intent": created["id"], "amount": "1"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "charge_not_refundable"


def test_a_refund_during_a_gateway_error_stays_pending_and_is_retried_once(
    app, api, client, gateway
):
    from datetime import timedelta

    from sqlalchemy import update

    from market.payments import tasks
    from market.payments.models import Refund
    from market.types import utcnow

    intent_id = _paid(api, client, 1000)
    gateway.switch(gateway_error="system_error")
    pending = api.post("/refunds", {"payment_intent": intent_id, "amount": "400"}).get_json()
    assert pending["status"] == "pending"
    # While it is pending, the money is spoken for: no second refund beyond the rest.
    over = api.post("/refunds", {"payment_intent": intent_id, "amount": "601"})
    assert over.get_json()["error"]["code"] == "amount_too_large"
    gateway.switch(gateway_error="")
    with app.app_context():
        db.session.execute(update(Refund).values(updated_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
    assert tasks.reconcile()["refunds_retried"] == 1
    assert api.get(f"/refunds/{pending['id']}").get_json()["status"] == "succeeded"
    tasks.reconcile()  # nothing pending any more: no second payout
    with app.app_context():
        assert db.session.scalar(select(func.sum(SandboxRefund.amount_fen))) == 400


def test_an_idempotency_key_replays_the_first_response(app, api):
    headers = {"Idempotency-Key": "order-YN1"}
    first = api.post("/payment_intents", {"amount": "500", "currency": "cny"}, headers=headers)
    second = api.post("/payment_intents", {"amount": "500", "currency": "cny"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PaymentIntent)) == 1


def test_the_same_idempotency_key_with_other_parameters_is_an_error(api):
    headers = {"Idempotency-Key": "k1"}
    api.post("/payment_intents", {"amount": "500", "currency": "cny"}, headers=headers)
    other = api.post("/payment_intents", {"amount": "501", "currency": "cny"}, headers=headers)
    assert other.status_code == 400
    assert other.get_json()["error"]["code"] == "idempotency_error"
    assert other.get_json()["error"]["type"] == "idempotency_error"


def test_an_idempotent_refund_pays_out_once(app, api, client):
    intent_id = _paid(api, client, 1000)
    headers = {"Idempotency-Key": "refund-1"}
    data = {"payment_intent": intent_id, "amount": "250"}
    first = api.post("/refunds", data, headers=headers).get_json()
    second = api.post("/refunds", data, headers=headers).get_json()
    assert first["id"] == second["id"]
    with app.app_context():
        assert db.session.scalar(select(func.sum(SandboxRefund.amount_fen))) == 250


def test_a_stored_error_is_replayed_too(api):
    headers = {"Idempotency-Key": "refund-missing"}
    data = {"payment_intent": "pi_missing", "amount": "1"}
    first = api.post("/refunds", data, headers=headers)
    second = api.post("/refunds", data, headers=headers)
    assert first.status_code == second.status_code == 404
    assert second.headers.get("Idempotent-Replayed") == "true"


def test_events_are_listed_for_the_account(api):
    created = _create(api)
    api.post(f"/payment_intents/{created['id']}/cancel")
    events = api.get("/events").get_json()
    types = [e["type"] for e in events["data"]]
    assert types[:2] == ["payment_intent.canceled", "payment_intent.created"]
    one = api.get(f"/events/{events['data'][0]['id']}").get_json()
    assert one["data"]["object"]["id"] == created["id"]


def test_the_cli_mints_a_key_that_works(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["payments", "create-key", "pos-terminal"])
    assert result.exit_code == 0, result.output
    raw = next(line for line in result.output.splitlines() if line.startswith("sk_test_"))
    response = client.get("/api/v1/payment_intents", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    listed = runner.invoke(args=["payments", "list-keys"])
    assert "pos-terminal" in listed.output
    assert raw not in listed.output


def test_a_refund_recorded_before_a_crash_is_paid_once_by_reconciliation(app, api, client):
    from datetime import timedelta

    from sqlalchemy import update

    from market.payments import tasks
    from market.payments.models import Refund
    from market.types import utcnow

    intent_id = _paid(api, client, 1000)
    with app.app_context():
        refund = services.create_refund(db.session, payment_intent=intent_id, amount=300)
        refund_id = refund.id
        db.session.commit()  # ...and the process dies before Alipay is asked
        db.session.execute(update(Refund).values(updated_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
    tasks.reconcile()
    tasks.reconcile()
    assert api.get(f"/refunds/{refund_id}").get_json()["status"] == "succeeded"
    with app.app_context():
        assert db.session.scalar(select(func.sum(SandboxRefund.amount_fen))) == 300
