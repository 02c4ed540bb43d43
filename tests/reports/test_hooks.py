"""The summaries follow money: a payment or a refund landing updates them at once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from market.extensions import db
from market.orders import services as orders
from market.payments import services as payments
from market.reports.models import BuyerSet, DailyBuyers, DailyOrders, DailySales
from tests.orders.helpers import make_shop, place
from tests.payments.helpers import open_cashier, press


@pytest.fixture
def shop(app):
    return make_shop(app)


def pay(app, client, order_id: int, **switches) -> None:
    with app.app_context():
        intent = orders.prepare_payment(db.session, order_id)
        intent = payments.confirm_intent(
            db.session, intent.id, return_url="http://yuenong.test/paid", device="mobile"
        )
        url = payments.redirect_url(intent)
        db.session.commit()
    press(client, open_cashier(client, url), "pay", **switches)


def order_rows(app):
    with app.app_context():
        return [
            (r.cooperative_id, r.gmv_fen, r.refunds_fen, r.orders, r.units, r.paid_orders)
            for r in db.session.scalars(select(DailyOrders).order_by(DailyOrders.cooperative_id))
        ]


def test_a_payment_puts_its_orders_in_the_summaries(app, client, shop):
    ids = place(app, shop.buyer, [(shop.peel, 2), (shop.lychee, 1)])
    assert order_rows(app) == []
    pay(app, client, ids[0])
    assert order_rows(app) == [
        (shop.xinhui, 25600, 0, 1, 2, 1),
        (shop.zengcheng, 5900, 0, 1, 1, 1),
    ]
    with app.app_context():
        assert (
            db.session.scalar(
                select(BuyerSet.buyers).where(
                    BuyerSet.kind == "month", BuyerSet.level == "province"
                )
            )
            == 1
        )
        assert {r.product_id for r in db.session.scalars(select(DailySales))} == {
            shop.peel,
            shop.lychee,
        }


def test_a_duplicated_notify_counts_once(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 2)])
    pay(app, client, order_id, notify="duplicate")
    assert order_rows(app) == [(shop.xinhui, 7200, 0, 1, 2, 1)]


def test_refunds_landing_are_netted_and_a_full_refund_leaves_no_sale(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 2)])
    pay(app, client, order_id)
    with app.app_context():
        orders.request_refund(db.session, order_id, shop.buyer, 3600, "少了一盒")
        refund = orders.decide_refund(db.session, order_id, shop.admin_x, approve=True)
        refund_id = refund.id
        db.session.commit()
        payments.attempt_refund(db.session, refund_id)
        db.session.commit()
    assert order_rows(app) == [(shop.xinhui, 7200, 3600, 1, 2, 1)]
    with app.app_context():
        orders.request_refund(db.session, order_id, shop.buyer, 3600, "都不要了")
        refund = orders.decide_refund(db.session, order_id, shop.admin_x, approve=True)
        refund_id = refund.id
        db.session.commit()
        payments.attempt_refund(db.session, refund_id)
        db.session.commit()
    assert order_rows(app) == [(shop.xinhui, 7200, 7200, 0, 0, 1)]
    with app.app_context():
        assert db.session.scalars(select(DailyBuyers)).all() == []
