"""Small steps shared by the payments tests: open an intent, walk the sandbox cashier."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select

from market.extensions import db
from market.payments import sandbox, services
from market.payments.models import PaymentIntent, SandboxTrade
from tests.conftest import csrf_token

RETURN_URL = "http://shop.test/paid"


def open_intent(app, amount: int = 1230, **kwargs) -> tuple[str, str]:
    """A confirmed intent; returns (intent id, the cashier redirect URL)."""
    with app.app_context():
        intent = services.create_intent(db.session, amount=amount, description="测试订单", **kwargs)
        services.confirm_intent(db.session, intent.id, return_url=RETURN_URL, device="mobile")
        url = services.redirect_url(intent)
        intent_id = intent.id
        db.session.commit()
    return intent_id, url


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def open_cashier(client, url: str) -> str:
    """The buyer follows the redirect to the gateway; returns the sandbox trade_no."""
    response = client.get(local(url))
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def press(client, trade_no: str, action: str = "pay", **switches):
    """Press 支付 / 取消 / 失败 on the cashier (switches as the page's form sends them)."""
    data = {"action": action, "notify": switches.pop("notify", "normal"), **switches}
    data["csrf_token"] = csrf_token(client)
    return client.post(f"/sandbox/alipay/trades/{trade_no}", data=data)


def pay(app, client, amount: int = 1230, **switches) -> tuple[str, str, object]:
    """Open an intent and pay it in the sandbox; returns (intent id, trade_no, response)."""
    intent_id, url = open_intent(app, amount)
    trade_no = open_cashier(client, url)
    return intent_id, trade_no, press(client, trade_no, "pay", **switches)


def intent(app, intent_id: str) -> PaymentIntent:
    with app.app_context():
        found = db.session.get(PaymentIntent, intent_id)
        db.session.expunge(found)
        return found


def notify_params(app, trade_no: str, **kwargs) -> dict[str, str]:
    with app.app_context():
        trade = db.session.scalars(
            select(SandboxTrade).where(SandboxTrade.trade_no == trade_no)
        ).one()
        return sandbox.notify_params(trade, **kwargs)


def post_notify(client, params: dict[str, str]):
    return client.post("/payments/alipay/notify", data=params)
