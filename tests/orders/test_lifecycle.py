"""Order states: the transition table, payment, expiry, packing, refunds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from market.auth.models import User
from market.extensions import db
from market.orders import services, tasks
from market.orders.models import TRANSITIONS, Order, OrderStatus
from market.payments import services as payments
from market.payments import tasks as payment_tasks
from market.payments.models import IntentStatus, PaymentIntent, SandboxTrade
from market.types import utcnow
from tests.orders.helpers import make_shop, order, place, stock
from tests.payments.helpers import open_cashier, press

ALL_ACTIONS = sorted(TRANSITIONS)


@pytest.fixture
def shop(app):
    return make_shop(app)


def _confirm(app, order_id: int) -> str:
    with app.app_context():
        intent = services.prepare_payment(db.session, order_id)
        intent = payments.confirm_intent(
            db.session, intent.id, return_url="http://yuenong.test/paid", device="mobile"
        )
        url = payments.redirect_url(intent)
        db.session.commit()
    return url


def _pay(app, client, order_id: int, **switches) -> str:
    trade_no = open_cashier(client, _confirm(app, order_id))
    press(client, trade_no, "pay", **switches)
    return trade_no


def _as(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def _overdue(app, order_ids) -> None:
    with app.app_context():
        past = utcnow() - timedelta(minutes=1)
        db.session.execute(update(Order).where(Order.id.in_(order_ids)).values(expires_at=past))
        db.session.commit()


@pytest.mark.parametrize("status", list(OrderStatus))
@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_every_move_outside_the_table_is_refused(app, shop, status, action):
    [order_id] = place(app, shop.buyer, [(shop.tea, 1)])
    with app.app_context():
        item = db.session.get(Order, order_id)
        item.status = status
        item.status_before_refund = OrderStatus.PAID
        if action in TRANSITIONS and status in TRANSITIONS[action].sources:
            services.transition(db.session, item, action)
            expected = TRANSITIONS[action].target or OrderStatus.PAID
            assert item.status is expected
        else:
            with pytest.raises(services.IllegalTransitionError) as caught:
                services.transition(db.session, item, action)
            assert caught.value.status is status
            assert item.status is status
        db.session.rollback()


def test_paying_marks_every_order_of_the_checkout_paid(app, client, shop):
    ids = place(app, shop.buyer, [(shop.peel, 1), (shop.lychee, 2)])
    _pay(app, client, ids[0])
    for order_id in ids:
        paid = order(app, order_id)
        assert paid.status is OrderStatus.PAID
        assert paid.paid_at is not None
        assert [e.action for e in paid.events] == ["place", "pay"]


def test_farmers_pack_their_own_lines_and_the_last_one_packs_the_order(app, client, shop):
    [xinhui, _zengcheng] = place(app, shop.buyer, [(shop.peel, 1), (shop.tea, 1), (shop.lychee, 1)])
    _pay(app, client, xinhui)
    with app.app_context():
        services.pack(db.session, xinhui, _as(app, shop.chen))
        db.session.commit()
    half = order(app, xinhui)
    assert half.status is OrderStatus.PAID
    assert [bool(line.packed_at) for line in half.lines] == [True, False]
    with app.app_context():
        services.pack(db.session, xinhui, _as(app, shop.li))
        services.ship(db.session, xinhui, shop.admin_x)
        services.confirm_receipt(db.session, xinhui, shop.buyer)
        db.session.commit()
    done = order(app, xinhui)
    assert done.status is OrderStatus.COMPLETED
    assert [e.action for e in done.events] == [
        "place",
        "pay",
        "pack",
        "ship",
        "deliver",
        "complete",
    ]


def test_an_unpaid_checkout_expires_puts_the_stock_back_and_closes_the_trade(app, client, shop):
    ids = place(app, shop.buyer, [(shop.peel, 3), (shop.lychee, 4)])
    trade_no = open_cashier(client, _confirm(app, ids[0]))
    assert (stock(app, shop.peel), stock(app, shop.lychee)) == (7, 16)
    # Not due yet (eager mode ran the scheduled task at once): nothing happens.
    assert tasks.expire_unpaid_order(ids[0]) == 0
    _overdue(app, ids)
    assert tasks.expire_unpaid_order(ids[0]) == 2
    assert tasks.expire_unpaid_order(ids[0]) == 0  # idempotent
    assert tasks.expire_overdue_orders() == 0
    assert (stock(app, shop.peel), stock(app, shop.lychee)) == (10, 20)
    for order_id in ids:
        cancelled = order(app, order_id)
        assert cancelled.status is OrderStatus.CANCELLED
        assert cancelled.cancel_reason == "expired"
    with app.app_context():
        intent = db.session.get(PaymentIntent, order(app, ids[0]).payment_intent_id)
        assert intent.status is IntentStatus.CANCELED
        trade = db.session.scalars(select(SandboxTrade).where(SandboxTrade.trade_no == trade_no))
        assert trade.one().status == "TRADE_CLOSED"


def test_expiry_finds_a_payment_whose_notify_never_came(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 2)])
    _pay(app, client, order_id, notify="missing")
    assert order(app, order_id).status is OrderStatus.PENDING_PAYMENT
    _overdue(app, [order_id])
    assert tasks.expire_overdue_orders() == 0
    assert order(app, order_id).status is OrderStatus.PAID
    assert stock(app, shop.tea) == 3


def test_expiry_waits_while_the_gateway_cannot_say(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 2)])
    open_cashier(client, _confirm(app, order_id))
    _overdue(app, [order_id])
    app.config["PAYMENT_SANDBOX"]["gateway_error"] = "system_error"
    try:
        assert tasks.expire_overdue_orders() == 0
        assert order(app, order_id).status is OrderStatus.PENDING_PAYMENT
    finally:
        app.config["PAYMENT_SANDBOX"]["gateway_error"] = ""
    assert tasks.expire_overdue_orders() == 1
    assert order(app, order_id).status is OrderStatus.CANCELLED
    assert stock(app, shop.tea) == 5


def test_cancelling_one_order_of_two_shrinks_the_payment(app, client, shop):
    ids = place(app, shop.buyer, [(shop.peel, 1), (shop.lychee, 1)])
    first_trade = open_cashier(client, _confirm(app, ids[0]))
    with app.app_context():
        services.cancel_order(db.session, ids[1], actor_id=shop.buyer)
        db.session.commit()
        intent = db.session.get(PaymentIntent, order(app, ids[0]).payment_intent_id)
        assert intent.amount == 12800
        assert intent.status is IntentStatus.REQUIRES_PAYMENT_METHOD
        closed = db.session.scalars(
            select(SandboxTrade).where(SandboxTrade.trade_no == first_trade)
        ).one()
        assert closed.status == "TRADE_CLOSED"
    assert stock(app, shop.lychee) == 20
    _pay(app, client, ids[0])  # a new try, a new out_trade_no, the new amount
    assert order(app, ids[0]).status is OrderStatus.PAID
    assert order(app, ids[1]).status is OrderStatus.CANCELLED
    with app.app_context():
        intent = db.session.get(PaymentIntent, order(app, ids[0]).payment_intent_id)
        assert (intent.attempt, intent.amount_received) == (2, 12800)


def test_cancelling_after_paying_unbeknownst_keeps_the_order(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 1)])
    _pay(app, client, order_id, notify="missing")
    with app.app_context():
        result = services.cancel_order(db.session, order_id, actor_id=shop.buyer)
        db.session.commit()
        assert result.status is OrderStatus.PAID
    assert stock(app, shop.tea) == 4


def test_after_a_failed_payment_the_buyer_pays_with_a_new_intent(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 1)])
    trade_no = open_cashier(client, _confirm(app, order_id))
    press(client, trade_no, "fail")
    first_intent = order(app, order_id).payment_intent_id
    _pay(app, client, order_id)
    paid = order(app, order_id)
    assert paid.status is OrderStatus.PAID
    assert paid.payment_intent_id != first_intent


def _approve(order_id: int, admin_id: int) -> None:
    """What the refund page does: record the refund, commit, then pay it."""
    refund = services.decide_refund(db.session, order_id, admin_id, approve=True)
    refund_id = refund.id
    db.session.commit()
    payments.attempt_refund(db.session, refund_id)
    db.session.commit()


def _paid_order(app, client, shop, wanted) -> int:
    [order_id] = place(app, shop.buyer, wanted)
    _pay(app, client, order_id)
    return order_id


def test_a_declined_refund_request_goes_back_where_it_was(app, client, shop):
    order_id = _paid_order(app, client, shop, [(shop.tea, 2)])
    with app.app_context():
        services.pack(db.session, order_id, _as(app, shop.admin_x))
        services.request_refund(db.session, order_id, shop.buyer, 3600, "压坏了一盒")
        db.session.commit()
        assert db.session.get(Order, order_id).status is OrderStatus.REFUND_REQUESTED
        services.decide_refund(db.session, order_id, shop.admin_x, approve=False)
        db.session.commit()
    assert order(app, order_id).status is OrderStatus.PACKED


def test_a_partial_refund_returns_the_money_and_the_order_carries_on(app, client, shop):
    order_id = _paid_order(app, client, shop, [(shop.tea, 2)])
    with app.app_context():
        services.request_refund(db.session, order_id, shop.buyer, 3600, "少了一盒")
        _approve(order_id, shop.admin_x)
    partly = order(app, order_id)
    assert partly.status is OrderStatus.PAID
    assert partly.refunded_fen == 3600
    with app.app_context():
        intent = db.session.get(PaymentIntent, partly.payment_intent_id)
        assert intent.amount_refunded == 3600
        with pytest.raises(services.RefundAmountError):
            services.request_refund(db.session, order_id, shop.buyer, 3601, "还要")
        db.session.rollback()
    assert stock(app, shop.tea) == 3  # goods still going out: no restock


def test_a_full_refund_before_shipping_puts_the_stock_back(app, client, shop):
    order_id = _paid_order(app, client, shop, [(shop.tea, 2)])
    with app.app_context():
        services.request_refund(db.session, order_id, shop.buyer, 7200, "不要了")
        _approve(order_id, shop.admin_x)
    refunded = order(app, order_id)
    assert refunded.status is OrderStatus.REFUNDED
    assert refunded.refunded_fen == 7200
    assert stock(app, shop.tea) == 5


def test_a_refund_the_gateway_cannot_confirm_finishes_at_reconciliation(app, client, shop):
    from market.payments.models import Refund

    order_id = _paid_order(app, client, shop, [(shop.tea, 1)])
    app.config["PAYMENT_SANDBOX"]["gateway_error"] = "timeout"
    try:
        with app.app_context():
            services.request_refund(db.session, order_id, shop.buyer, 3600, "不要了")
            _approve(order_id, shop.admin_x)
            assert services.refund_in_progress(db.session, db.session.get(Order, order_id))
    finally:
        app.config["PAYMENT_SANDBOX"]["gateway_error"] = ""
    assert order(app, order_id).status is OrderStatus.REFUND_REQUESTED
    with app.app_context():
        db.session.execute(update(Refund).values(updated_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
    payment_tasks.reconcile()
    assert order(app, order_id).status is OrderStatus.REFUNDED


def test_paying_an_expired_order_is_refused(app, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 1)])
    _overdue(app, [order_id])
    with app.app_context(), pytest.raises(services.OrderExpiredError):
        services.prepare_payment(db.session, order_id)


def test_sellers_are_told_about_a_paid_order_and_the_buyer_about_shipping(app, client, shop):
    from market.notifications.models import Notification

    [xinhui] = place(app, shop.buyer, [(shop.peel, 1)])
    _pay(app, client, xinhui)
    with app.app_context():
        told = set(db.session.scalars(select(Notification.user_id)))
        # The admin and the farmer whose product it is; not the other farmer.
        assert told == {shop.admin_x, shop.chen}
