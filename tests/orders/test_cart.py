"""The cart: for visitors in the session, for accounts in the database, merged on sign-in,
never more than the stock."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from market.catalog.models import Product, ProductStatus
from market.extensions import db
from market.orders.models import CartItem
from tests.conftest import login, post_form
from tests.orders.helpers import make_shop


@pytest.fixture
def shop(app):
    return make_shop(app)


def _add(client, product_id, quantity=1, next_path="/cart"):
    return post_form(
        client,
        "/cart/items",
        {"product_id": str(product_id), "quantity": str(quantity), "next": next_path},
    )


def _cart_rows(app, user_id):
    with app.app_context():
        rows = db.session.scalars(select(CartItem).where(CartItem.user_id == user_id))
        return {row.product_id: row.quantity for row in rows}


def test_a_visitor_fills_a_cart_kept_in_the_session(client, shop):
    response = _add(client, shop.peel, 2, next_path=f"/products/{shop.peel}")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/products/{shop.peel}")
    _add(client, shop.lychee, 1)
    page = client.get("/cart").get_data(as_text=True)
    assert "新会区会城陈皮专业合作社" in page
    assert "增城区荔枝专业合作社" in page
    assert "¥256.00" in page  # 2 × ¥128.00
    assert "¥315.00" in page  # total
    assert "结算时每家合作社生成一个订单" in page


def test_adding_more_than_the_stock_fills_the_cart_with_what_is_left(client, shop):
    _add(client, shop.tea, 4)
    _add(client, shop.tea, 4)
    page = client.get("/cart").get_data(as_text=True)
    assert "库存只有 5 盒，已全部加入购物车。" in page
    assert 'name="quantity" value="5"' in page


@pytest.mark.parametrize("quantity", ["0", "-1", "1000", "two"])
def test_a_bad_quantity_changes_nothing(client, shop, quantity):
    _add(client, shop.peel, quantity)
    page = client.get("/cart").get_data(as_text=True)
    assert "购物车是空的。" in page


def test_a_product_not_on_sale_cannot_be_added(app, client, shop):
    with app.app_context():
        db.session.get(Product, shop.tea).status = ProductStatus.DRAFT
        db.session.commit()
    _add(client, shop.tea)
    page = client.get("/cart").get_data(as_text=True)
    assert "该商品暂时无法购买。" in page
    assert "购物车是空的。" in page


def test_an_unknown_product_is_a_404(client):
    assert _add(client, 999999).status_code == 404


def test_the_cart_merges_into_the_account_on_sign_in(app, client, shop):
    with app.app_context():
        db.session.add(CartItem(user_id=shop.buyer, product_id=shop.tea, quantity=3))
        db.session.commit()
    _add(client, shop.tea, 4)  # 3 + 4 > 5 in stock
    _add(client, shop.lychee, 2)
    login(client, shop.phones["buyer"])
    assert _cart_rows(app, shop.buyer) == {shop.tea: 5, shop.lychee: 2}
    page = client.get("/cart").get_data(as_text=True)
    assert "增城挂绿荔枝" in page
    # Signed out again, the visitor's cart is empty: it now lives in the account.
    post_form(client, "/auth/logout", {})
    assert "购物车是空的。" in client.get("/cart").get_data(as_text=True)


def test_changing_and_removing_lines(app, client, shop):
    login(client, shop.phones["buyer"])
    _add(client, shop.peel, 1)
    _add(client, shop.lychee, 1)
    post_form(client, f"/cart/items/{shop.peel}", {"quantity": "3"})
    assert _cart_rows(app, shop.buyer) == {shop.peel: 3, shop.lychee: 1}
    post_form(client, f"/cart/items/{shop.peel}", {"quantity": "0"})
    assert _cart_rows(app, shop.buyer) == {shop.lychee: 1}
    post_form(client, f"/cart/items/{shop.lychee}/remove", {})
    assert _cart_rows(app, shop.buyer) == {}


def test_a_line_that_outgrew_the_stock_blocks_checkout_until_fixed(app, client, shop):
    login(client, shop.phones["buyer"])
    _add(client, shop.peel, 4)
    with app.app_context():
        db.session.get(Product, shop.peel).stock = 2
        db.session.commit()
    page = client.get("/cart").get_data(as_text=True)
    assert "只剩 2 件，请减少数量。" in page
    assert "去结算" not in page
    checkout = client.get("/checkout")
    assert checkout.status_code == 303
    assert checkout.headers["Location"].endswith("/cart")


def test_the_nav_shows_how_many_units_are_in_the_cart(client, shop):
    _add(client, shop.lychee, 3)
    page = client.get("/").get_data(as_text=True)
    assert '购物车 <span class="badge">3</span>' in page
