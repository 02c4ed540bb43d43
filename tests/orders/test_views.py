"""The buyer's and the sellers' pages: checkout, my orders, who sees what, packing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from market.extensions import db
from market.orders.models import CartItem, Order, OrderStatus
from market.payments.models import IntentStatus, PaymentIntent
from tests.conftest import csrf_token, login, post_form
from tests.factories import coop_admin, farmer, platform_admin
from tests.orders.helpers import FORM_ADDRESS, make_shop, order, place
from tests.payments.helpers import local, open_cashier, press

PHONE_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 7) Mobile Safari/537.36"


def on_a_phone(client):
    """Sessions are bound to the browser (strong session protection): set it first."""
    client.environ_base["HTTP_USER_AGENT"] = PHONE_UA
    return client


@pytest.fixture
def shop(app):
    return make_shop(app)


def _fill_cart(app, shop, wanted):
    with app.app_context():
        for product_id, quantity in wanted:
            db.session.add(CartItem(user_id=shop.buyer, product_id=product_id, quantity=quantity))
        db.session.commit()


def _quote(client) -> str:
    page = client.get("/checkout").get_data(as_text=True)
    return page.split('name="quote" type="hidden" value="')[1].split('"')[0]


def test_checkout_page_prefills_guangdong_and_lists_one_order_per_cooperative(app, client, shop):
    _fill_cart(app, shop, [(shop.peel, 1), (shop.lychee, 2)])
    login(client, shop.phones["buyer"])
    page = client.get("/checkout").get_data(as_text=True)
    assert "共 2 个订单，每家合作社一个，分别发货。" in page
    assert '<option selected value="440000">广东省</option>' in page
    assert "提交订单并支付 ¥246.00" in page
    assert 'value="13800138000"' in page


def test_checking_out_goes_straight_to_the_cashier(app, client, shop):
    _fill_cart(app, shop, [(shop.peel, 1), (shop.lychee, 2)])
    login(on_a_phone(client), shop.phones["buyer"])
    data = {**FORM_ADDRESS, "note": "请用纸箱", "quote": _quote(client)}
    response = post_form(client, "/checkout", data)
    assert response.status_code == 303
    target = response.headers["Location"]
    assert "/sandbox/alipay/gateway.do?" in target
    assert "alipay.trade.wap.pay" in target
    assert "QUICK_WAP_WAY" in target
    with app.app_context():
        orders = db.session.scalars(select(Order)).all()
        assert len(orders) == 2
        assert {o.note for o in orders} == {"请用纸箱"}
        assert db.session.scalars(select(CartItem)).all() == []
    # Pay in the sandbox and come back: the result page says paid, both orders are paid.
    trade_no = open_cashier(client, target)
    back = press(client, trade_no, "pay")
    landing = client.get(local(back.headers["Location"]))
    result = client.get(local(landing.headers["Location"])).get_data(as_text=True)
    assert "支付成功" in result
    assert result.count("已付款") == 2


def test_a_stale_quote_re_renders_the_checkout_with_the_new_prices(app, client, shop):
    from market.catalog.models import Product

    _fill_cart(app, shop, [(shop.tea, 1)])
    login(client, shop.phones["buyer"])
    quote = _quote(client)
    with app.app_context():
        db.session.get(Product, shop.tea).price_fen = 4000
        db.session.commit()
    response = post_form(client, "/checkout", {**FORM_ADDRESS, "quote": quote})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "价格或数量有变化，请核对后重新提交。" in page
    assert "¥40.00" in page
    with app.app_context():
        assert db.session.scalars(select(Order)).all() == []


def test_a_missing_county_marks_the_field_and_orders_nothing(app, client, shop):
    _fill_cart(app, shop, [(shop.tea, 1)])
    login(client, shop.phones["buyer"])
    data = {**FORM_ADDRESS, "county_code": "", "quote": _quote(client)}
    response = post_form(client, "/checkout", data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "请选择区县。" in page
    assert 'id="county_code"' in page
    assert 'aria-invalid="true"' in page
    with app.app_context():
        assert db.session.scalars(select(Order)).all() == []


def test_the_last_unit_gone_between_page_and_click_is_explained(app, client, shop):
    _fill_cart(app, shop, [(shop.tea, 5)])
    login(client, shop.phones["buyer"])
    quote = _quote(client)
    place(app, shop.buyer, [(shop.tea, 1)])  # someone else was faster
    response = post_form(client, "/checkout", {**FORM_ADDRESS, "quote": quote})
    assert response.status_code == 303  # back to the cart: the cart no longer fits the stock
    assert response.headers["Location"].endswith("/cart")


def test_visitors_are_sent_to_sign_in_before_checkout(client, shop):
    response = client.get("/checkout")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_the_places_endpoint_gives_guangdong_first_and_its_cities(client):
    provinces = client.get("/places/root").get_json()
    assert provinces[0] == {"code": "440000", "name": "广东省"}
    assert len(provinces) == 34
    assert len(client.get("/places/440000").get_json()) == 21
    assert client.get("/places/110000").get_json() == []
    assert client.get("/places/999999").status_code == 404


def _paid(app, client, shop, wanted):
    ids = place(app, shop.buyer, wanted)
    with app.app_context():
        from market.orders import services as order_services
        from market.payments import services as payments

        intent = order_services.prepare_payment(db.session, ids[0])
        payments.confirm_intent(db.session, intent.id, return_url="http://x.test/", device="mobile")
        url = payments.redirect_url(intent)
        db.session.commit()
    press(app.test_client(), open_cashier(app.test_client(), url), "pay")
    return ids


def test_my_orders_lists_the_buyers_orders(app, client, shop):
    ids = place(app, shop.buyer, [(shop.peel, 1), (shop.lychee, 1)])
    login(client, shop.phones["buyer"])
    page = client.get("/orders").get_data(as_text=True)
    for order_id in ids:
        assert order(app, order_id).number in page
    assert page.count("待付款") == 2


@pytest.mark.parametrize(
    ("who", "status", "full"),
    [
        ("buyer", 200, True),
        ("admin_x", 200, True),
        ("chen", 200, True),  # a farmer with a line in it
        ("li", 403, False),  # a farmer of the same cooperative without one
        ("admin_z", 403, False),  # another cooperative's admin
        ("he", 403, False),
    ],
)
def test_who_sees_an_order_and_the_buyers_phone(app, client, shop, who, status, full):
    [order_id] = place(app, shop.buyer, [(shop.peel, 1)])
    login(client, shop.phones[who])
    response = client.get(f"/orders/{order_id}")
    assert response.status_code == status
    if status == 200:
        page = response.get_data(as_text=True)
        assert ("13800138000" in page) is full
        assert ("天河路 100 号 2 栋 301" in page) is full


def test_the_platform_sees_the_order_but_a_masked_contact(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.peel, 1)])
    with app.app_context():
        platform_admin(phone="13900139000")
        db.session.commit()
    login(client, "13900139000")
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "138****8000" in page
    assert "13800138000" not in page
    assert "天河路" not in page
    assert "广东省广州市" in page
    assert "陈**" in page


def test_a_farmer_packs_from_the_to_pack_page_and_sees_only_their_lines(app, client, shop):
    [xinhui] = _paid(app, client, shop, [(shop.peel, 1), (shop.tea, 2)])
    login(client, shop.phones["chen"])
    page = client.get("/orders/to-pack").get_data(as_text=True)
    assert "新会陈皮 十年" in page
    assert "柑普茶" not in page
    assert "其他社员负责另外 1 项商品。" in page
    assert "13800138000" in page  # those who ship see the phone
    response = post_form(client, f"/orders/{xinhui}/pack", {"next": "/orders/to-pack"})
    assert response.status_code == 303
    assert order(app, xinhui).status is OrderStatus.PAID  # 李姨 still has to pack the tea
    # Not the whole parcel, so this farmer may not ship it.
    assert post_form(client, f"/orders/{xinhui}/ship", {}).status_code == 403


def test_the_admin_packs_and_ships_and_illegal_moves_are_explained(app, client, shop):
    [xinhui] = _paid(app, client, shop, [(shop.peel, 1), (shop.tea, 2)])
    login(client, shop.phones["admin_x"])
    refused = post_form(client, f"/orders/{xinhui}/ship", {}, follow_redirects=True)
    assert "订单当前状态为“已付款”，无法进行此操作。" in refused.get_data(as_text=True)
    post_form(client, f"/orders/{xinhui}/pack", {})
    assert order(app, xinhui).status is OrderStatus.PACKED
    page = client.get("/orders/to-pack?tab=to_ship").get_data(as_text=True)
    assert order(app, xinhui).number in page
    post_form(client, f"/orders/{xinhui}/ship", {})
    assert order(app, xinhui).status is OrderStatus.SHIPPED


def test_the_to_pack_page_is_for_sellers(app, client, shop):
    login(client, shop.phones["buyer"])
    assert client.get("/orders/to-pack").status_code == 403


def test_the_buyer_cancels_before_paying(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 2)])
    login(client, shop.phones["buyer"])
    page = post_form(client, f"/orders/{order_id}/cancel", {}, follow_redirects=True)
    assert "订单已取消。" in page.get_data(as_text=True)
    assert order(app, order_id).status is OrderStatus.CANCELLED


def test_someone_else_cannot_cancel_or_pay(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 2)])
    login(client, shop.phones["admin_x"])
    assert post_form(client, f"/orders/{order_id}/cancel", {}).status_code == 403
    assert post_form(client, f"/orders/{order_id}/pay", {}).status_code == 403


def test_pay_now_on_the_order_page_goes_to_the_cashier(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 2)])
    login(on_a_phone(client), shop.phones["buyer"])
    response = post_form(client, f"/orders/{order_id}/pay", {})
    assert response.status_code == 303
    assert "/sandbox/alipay/gateway.do?" in response.headers["Location"]
    assert "alipay.trade.wap.pay" in response.headers["Location"]
    desktop = app.test_client()
    login(desktop, shop.phones["buyer"])
    again = post_form(desktop, f"/orders/{order_id}/pay", {})
    # Desktop is Alipay's page pay: a new try with its own out_trade_no.
    assert again.status_code == 303
    assert "alipay.trade.page.pay" in again.headers["Location"]
    assert f"{order(app, order_id).payment_intent_id}_2" in again.headers["Location"]


def test_the_result_page_says_processing_and_refreshes_until_the_money_is_known(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 2)])
    intent_id = order(app, order_id).payment_intent_id
    with app.app_context():
        intent = db.session.get(PaymentIntent, intent_id)
        intent.status = IntentStatus.PROCESSING
        db.session.commit()
    login(client, shop.phones["buyer"])
    page = client.get(f"/orders/payments/{intent_id}").get_data(as_text=True)
    assert "正在确认支付结果" in page
    assert '<meta http-equiv="refresh" content="3">' in page
    assert order(app, order_id).status is OrderStatus.PENDING_PAYMENT


def test_the_result_page_is_the_buyers_own(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.tea, 2)])
    intent_id = order(app, order_id).payment_intent_id
    login(client, shop.phones["admin_x"])
    assert client.get(f"/orders/payments/{intent_id}").status_code == 403


def test_a_refund_is_asked_for_and_granted_through_the_pages(app, client, shop):
    [order_id] = _paid(app, client, shop, [(shop.tea, 2)])
    login(client, shop.phones["buyer"])
    form = client.get(f"/orders/{order_id}/refund").get_data(as_text=True)
    assert 'value="72.00"' in form
    too_much = post_form(client, f"/orders/{order_id}/refund", {"amount": "80", "reason": "x"})
    assert too_much.status_code == 400
    assert "最多可申请退款 ¥72.00。" in too_much.get_data(as_text=True)
    bad = post_form(client, f"/orders/{order_id}/refund", {"amount": "1.234", "reason": "x"})
    assert bad.status_code == 400
    post_form(client, f"/orders/{order_id}/refund", {"amount": "36.00", "reason": "压坏一盒"})
    assert order(app, order_id).status is OrderStatus.REFUND_REQUESTED
    # Only the cooperative decides.
    assert (
        post_form(client, f"/orders/{order_id}/refund/decide", {"decision": "approve"}).status_code
        == 403
    )
    post_form(client, "/auth/logout", {})
    login(client, shop.phones["admin_x"])
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "申请退款 ¥36.00：压坏一盒" in page
    post_form(
        client, f"/orders/{order_id}/refund/decide", {"decision": "approve", "amount": "36.00"}
    )
    done = order(app, order_id)
    assert (done.status, done.refunded_fen) == (OrderStatus.PAID, 3600)


def test_a_new_cooperative_member_sees_nothing_of_other_orders(app, client, shop):
    [order_id] = place(app, shop.buyer, [(shop.lychee, 1)])
    with app.app_context():
        from market.cooperatives.models import Cooperative

        coop = db.session.get(Cooperative, shop.xinhui)
        farmer(coop, phone="13600136099")
        coop_admin(coop, phone="13700137099")
        db.session.commit()
    login(client, "13700137099")
    assert client.get(f"/orders/{order_id}").status_code == 403
    assert csrf_token(client)


def test_without_javascript_the_city_list_is_refilled_on_request(app, client, shop):
    _fill_cart(app, shop, [(shop.tea, 1)])
    login(client, shop.phones["buyer"])
    data = {**FORM_ADDRESS, "province_code": "450000", "city_code": "", "county_code": ""}
    response = post_form(client, "/checkout", {**data, "update_places": "1", "quote": ""})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "南宁市" in page
    assert 'aria-invalid="true"' not in page
    with app.app_context():
        assert db.session.scalars(select(Order)).all() == []
