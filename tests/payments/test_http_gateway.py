"""The same flows with the sandbox reached over real HTTP, as Alipay would be: the SDK's
own transport (urlopen to the gateway) and the notify POSTed to our public URL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from market.extensions import db
from market.payments import services
from market.payments.models import IntentStatus, SandboxTrade
from tests.payments.helpers import intent, open_cashier, open_intent, press


@pytest.fixture
def served(app, gateway):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    saved = app.config["PUBLIC_BASE_URL"]
    app.config["PUBLIC_BASE_URL"] = base
    gateway.switch(deliver="http")
    yield base
    app.config["PUBLIC_BASE_URL"] = saved
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_the_notify_is_posted_over_http_to_our_public_url(app, client, served):
    intent_id, url = open_intent(app)
    assert url.startswith(served + "/sandbox/alipay/gateway.do?")
    press(client, open_cashier(client, url), "pay")
    assert intent(app, intent_id).status is IntentStatus.SUCCEEDED


def test_trade_query_and_close_go_through_the_sdk_over_http(app, client, served):
    paid_id, url = open_intent(app)
    press(client, open_cashier(client, url), "pay", notify="missing")
    unpaid_id, other = open_intent(app, 990)
    trade_no = open_cashier(client, other)
    with app.app_context():
        assert services.refresh_intent(db.session, paid_id).status is IntentStatus.SUCCEEDED
        db.session.commit()
        canceled = services.cancel_intent(db.session, unpaid_id)
        assert canceled.status is IntentStatus.CANCELED
        db.session.commit()
    assert intent(app, paid_id).amount_received == 1230
    with app.app_context():
        trade = db.session.scalars(select(SandboxTrade).where(SandboxTrade.trade_no == trade_no))
        assert trade.one().status == "TRADE_CLOSED"


def test_a_gateway_that_answers_500_over_http_is_an_unknown_outcome(app, client, served, gateway):
    from market.payments.interfaces import ProviderUnavailableError

    intent_id, url = open_intent(app)
    open_cashier(client, url)
    gateway.switch(gateway_error="http_500")
    with app.app_context(), pytest.raises(ProviderUnavailableError):
        services.refresh_intent(db.session, intent_id)
