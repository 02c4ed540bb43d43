"""A small shop for the orders tests: two cooperatives, their farmers, products, a buyer."""

from __future__ import annotations

from types import SimpleNamespace

from market.catalog.models import Product
from market.extensions import db
from market.orders import services
from market.orders.models import Order
from tests.factories import CooperativeFactory, ProductFactory, buyer, coop_admin, farmer

ADDRESS = services.Address(
    recipient="陈小姐",
    phone="13800138000",
    province_code="440000",
    city_code="440100",
    county_code="440106",
    address="天河路 100 号 2 栋 301",
)

FORM_ADDRESS = {
    "recipient": "陈小姐",
    "phone": "13800138000",
    "province_code": "440000",
    "city_code": "440100",
    "county_code": "440106",
    "address": "天河路 100 号 2 栋 301",
}


def make_shop(app) -> SimpleNamespace:
    with app.app_context():
        xinhui = CooperativeFactory(name="新会区会城陈皮专业合作社", division_code="440705")
        zengcheng = CooperativeFactory(name="增城区荔枝专业合作社", division_code="440118")
        chen = farmer(xinhui, phone="13600136001", name="陈伯")
        li = farmer(xinhui, phone="13600136002", name="李姨")
        he = farmer(zengcheng, phone="13600136003", name="何丽娟")
        admin_x = coop_admin(xinhui, phone="13700137001", name="钟社长")
        admin_z = coop_admin(zengcheng, phone="13700137002", name="何社长")
        peel = ProductFactory(
            cooperative=xinhui,
            farmer=chen,
            title="新会陈皮 十年",
            unit="罐",
            price_fen=12800,
            stock=10,
        )
        tea = ProductFactory(
            cooperative=xinhui, farmer=li, title="柑普茶", unit="盒", price_fen=3600, stock=5
        )
        lychee = ProductFactory(
            cooperative=zengcheng,
            farmer=he,
            title="增城挂绿荔枝",
            unit="斤",
            price_fen=5900,
            stock=20,
        )
        someone = buyer(phone="13800138000", name="陈小姐")
        db.session.commit()
        return SimpleNamespace(
            xinhui=xinhui.id,
            zengcheng=zengcheng.id,
            chen=chen.id,
            li=li.id,
            he=he.id,
            admin_x=admin_x.id,
            admin_z=admin_z.id,
            peel=peel.id,
            tea=tea.id,
            lychee=lychee.id,
            buyer=someone.id,
            phones={
                "chen": chen.phone,
                "li": li.phone,
                "he": he.phone,
                "admin_x": admin_x.phone,
                "admin_z": admin_z.phone,
                "buyer": someone.phone,
            },
        )


def place(app, buyer_id: int, wanted: list[tuple[int, int]], address=ADDRESS) -> list[int]:
    """Check out `wanted` [(product id, quantity)] at today's prices; returns order ids."""
    with app.app_context():
        prices = {p.id: p.price_fen for p in db.session.scalars(db.select(Product))}
        orders = services.place_orders(
            db.session,
            buyer_id,
            [services.LineRequest(pid, qty, prices[pid]) for pid, qty in wanted],
            address,
        )
        ids = [o.id for o in orders]
        db.session.commit()
        return ids


def stock(app, product_id: int) -> int:
    with app.app_context():
        return db.session.get(Product, product_id).stock


def order(app, order_id: int) -> Order:
    with app.app_context():
        found = db.session.get(Order, order_id)
        _ = found.lines, found.events
        db.session.expunge_all()
        return found


def orders_world(buyer_id: int, product_id: int) -> dict[str, object]:
    """An unpaid order of one unit, for the permission matrix (inside an app context)."""
    price = db.session.get(Product, product_id).price_fen
    [placed] = services.place_orders(
        db.session, buyer_id, [services.LineRequest(product_id, 1, price)], ADDRESS
    )
    db.session.commit()
    return {"order": placed.id, "intent": placed.payment_intent_id}
