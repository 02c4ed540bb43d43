"""Checkout: one order per cooperative, stock taken with one conditional UPDATE, prices
re-checked, readable order numbers, a full Chinese address."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from market.catalog.models import Product, ProductStatus
from market.extensions import db
from market.orders import services
from market.orders.models import CartItem, Order, OrderStatus
from market.payments.models import IntentStatus, PaymentIntent
from tests.orders.helpers import ADDRESS, make_shop, place, stock


@pytest.fixture
def shop(app):
    return make_shop(app)


def test_a_cart_from_two_cooperatives_becomes_two_orders_with_one_payment(app, shop):
    ids = place(app, shop.buyer, [(shop.peel, 2), (shop.lychee, 3), (shop.tea, 1)])
    assert len(ids) == 2
    with app.app_context():
        orders = db.session.scalars(select(Order).order_by(Order.id)).all()
        by_coop = {o.cooperative_id: o for o in orders}
        assert by_coop[shop.xinhui].total_fen == 2 * 12800 + 3600
        assert by_coop[shop.zengcheng].total_fen == 3 * 5900
        assert {len(o.lines) for o in orders} == {1, 2}
        assert all(o.status is OrderStatus.PENDING_PAYMENT for o in orders)
        intent_ids = {o.payment_intent_id for o in orders}
        assert len(intent_ids) == 1
        intent = db.session.get(PaymentIntent, intent_ids.pop())
        assert intent.amount == sum(o.total_fen for o in orders)
        assert intent.status is IntentStatus.REQUIRES_PAYMENT_METHOD
        assert intent.metadata_["orders"] == ",".join(o.number for o in orders)
        # Lines remember who packs them, and what the buyer paid.
        peel_line = next(
            line for line in by_coop[shop.xinhui].lines if line.product_id == shop.peel
        )
        assert (peel_line.farmer_id, peel_line.unit_price_fen, peel_line.unit) == (
            shop.chen,
            12800,
            "罐",
        )
    assert (stock(app, shop.peel), stock(app, shop.lychee), stock(app, shop.tea)) == (8, 17, 4)


def test_order_numbers_are_yn_date_and_a_daily_sequence(app, shop):
    first = place(app, shop.buyer, [(shop.peel, 1), (shop.lychee, 1)])
    second = place(app, shop.buyer, [(shop.tea, 1)])
    with app.app_context():
        numbers = [db.session.get(Order, i).number for i in first + second]
    assert all(re.fullmatch(r"YN20\d{6}\d{6}", n) for n in numbers)
    assert [int(n[-6:]) for n in numbers] == [1, 2, 3]
    assert len(set(numbers)) == 3


def test_numbers_restart_each_day_in_shanghai_time(app):
    from datetime import UTC, datetime

    with app.app_context():
        late = datetime(2026, 11, 27, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
        early = datetime(2026, 11, 27, 16, 1, tzinfo=UTC)  # 00:01 the next day
        assert services.allocate_numbers(db.session, 2, late) == [
            "YN20261127000001",
            "YN20261127000002",
        ]
        assert services.allocate_numbers(db.session, 1, early) == ["YN20261128000001"]
        assert services.allocate_numbers(db.session, 1, late) == ["YN20261127000003"]
        db.session.rollback()


def test_a_price_change_since_the_checkout_page_refuses_the_order(app, shop):
    with app.app_context():
        db.session.get(Product, shop.peel).price_fen = 13800
        db.session.commit()
        with pytest.raises(services.PriceChangedError) as caught:
            services.place_orders(
                db.session, shop.buyer, [services.LineRequest(shop.peel, 1, 12800)], ADDRESS
            )
        db.session.rollback()
        assert caught.value.price_fen == 13800
        assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    assert stock(app, shop.peel) == 10


def test_asking_for_more_than_is_left_takes_nothing(app, shop):
    with app.app_context():
        with pytest.raises(services.OutOfStockError) as caught:
            services.place_orders(
                db.session,
                shop.buyer,
                [
                    services.LineRequest(shop.peel, 1, 12800),
                    services.LineRequest(shop.tea, 6, 3600),
                ],
                ADDRESS,
            )
        db.session.rollback()
        assert caught.value.left == 5
    # The peel was taken first in the same transaction, and rolled back with it.
    assert (stock(app, shop.peel), stock(app, shop.tea)) == (10, 5)


def test_a_product_taken_off_sale_cannot_be_ordered(app, shop):
    with app.app_context():
        db.session.get(Product, shop.tea).status = ProductStatus.ARCHIVED
        db.session.commit()
        with pytest.raises(services.ProductUnavailableError):
            services.place_orders(
                db.session, shop.buyer, [services.LineRequest(shop.tea, 1, 3600)], ADDRESS
            )
        db.session.rollback()


def test_the_same_product_twice_is_one_line(app, shop):
    with app.app_context():
        orders = services.place_orders(
            db.session,
            shop.buyer,
            [services.LineRequest(shop.tea, 1, 3600), services.LineRequest(shop.tea, 2, 3600)],
            ADDRESS,
        )
        assert [(line.quantity, line.total_fen) for line in orders[0].lines] == [(3, 10800)]
        db.session.rollback()


def test_bought_items_leave_the_cart_and_others_stay(app, shop):
    with app.app_context():
        db.session.add_all(
            [
                CartItem(user_id=shop.buyer, product_id=shop.peel, quantity=1),
                CartItem(user_id=shop.buyer, product_id=shop.tea, quantity=1),
            ]
        )
        db.session.commit()
    place(app, shop.buyer, [(shop.peel, 1)])
    with app.app_context():
        left = db.session.scalars(select(CartItem.product_id)).all()
    assert left == [shop.tea]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"recipient": " "}, "recipient"),
        ({"phone": "12345"}, "phone"),
        ({"province_code": "999999"}, "province_code"),
        ({"city_code": ""}, "city_code"),
        ({"city_code": "450100"}, "city_code"),  # Nanning is not in Guangdong
        ({"county_code": ""}, "county_code"),  # Guangdong has full county data
        ({"county_code": "440705"}, "county_code"),  # Xinhui is not in Guangzhou
        ({"address": "1号"}, "address"),
    ],
)
def test_an_incomplete_address_is_refused_on_its_field(changes, field):
    data = {**ADDRESS.__dict__, **changes}
    with pytest.raises(services.InvalidAddressError) as caught:
        services.clean_address(services.Address(**data))
    assert caught.value.field == field


def test_other_provinces_stop_at_the_city_and_municipalities_at_the_province():
    guangxi = services.Address(
        **{**ADDRESS.__dict__, "province_code": "450000", "city_code": "450100", "county_code": ""}
    )
    assert services.clean_address(guangxi)[0] == "450100"
    beijing = services.Address(
        **{**ADDRESS.__dict__, "province_code": "110000", "city_code": "", "county_code": ""}
    )
    assert services.clean_address(beijing)[0] == "110000"
    code, fields = services.clean_address(ADDRESS)
    assert code == "440106"
    assert fields["phone"] == "13800138000"
