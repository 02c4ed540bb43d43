"""Raw sales for the reports tests: cooperatives in three cities, products, paid orders.

Orders are written directly as history (paid at a given instant, maybe refunded), the
way the rollups read them; the payment flow itself is covered by test_hooks.py.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from types import SimpleNamespace

from market.catalog.models import Category
from market.extensions import db
from market.orders.models import Order, OrderLine, OrderStatus
from tests.factories import (
    CooperativeFactory,
    ProductFactory,
    buyer,
    coop_admin,
    farmer,
    platform_admin,
    staff,
)

_numbers = itertools.count(1)


def make_world(app) -> SimpleNamespace:
    """Two cooperatives in Jiangmen (新会区, 台山市), one in Qingyuan (英德市), one in
    Guangzhou (增城区); their admins, 供销社 staff of each level, buyers."""
    with app.app_context():
        xinhui = CooperativeFactory(name="新会陈皮合作社", division_code="440705")
        taishan = CooperativeFactory(name="台山大米合作社", division_code="440781")
        yingde = CooperativeFactory(name="英德红茶合作社", division_code="441881")
        zengcheng = CooperativeFactory(name="增城荔枝合作社", division_code="440118")
        peel = ProductFactory(
            cooperative=xinhui,
            title="新会陈皮",
            category=Category.DRIED,
            is_gi=True,
            price_fen=12800,
        )
        tea = ProductFactory(
            cooperative=xinhui, title="柑普茶", category=Category.TEA, price_fen=3600
        )
        rice = ProductFactory(
            cooperative=taishan, title="台山丝苗米", category=Category.GRAIN_OIL, price_fen=5000
        )
        black_tea = ProductFactory(
            cooperative=yingde, title="英德红茶", category=Category.TEA, is_gi=True, price_fen=9900
        )
        lychee = ProductFactory(
            cooperative=zengcheng, title="增城荔枝", category=Category.FRUIT, price_fen=5900
        )
        people = {
            "platform": platform_admin(phone="13900009001"),
            "staff_jiangmen": staff("440700", phone="13900009002"),
            "staff_xinhui": staff("440705", phone="13900009003"),
            "staff_qingyuan": staff("441800", phone="13900009004"),
            "staff_province": staff("440000", phone="13900009005"),
            "admin_xinhui": coop_admin(xinhui, phone="13700009001"),
            "admin_yingde": coop_admin(yingde, phone="13700009002"),
            "farmer_xinhui": farmer(xinhui, phone="13600009001"),
            "buyer_a": buyer(phone="13500009001"),
            "buyer_b": buyer(phone="13500009002"),
            "buyer_c": buyer(phone="13500009003"),
        }
        db.session.commit()
        return SimpleNamespace(
            coops={
                "xinhui": xinhui.id,
                "taishan": taishan.id,
                "yingde": yingde.id,
                "zengcheng": zengcheng.id,
            },
            products={
                "peel": (peel.id, xinhui.id, 12800),
                "tea": (tea.id, xinhui.id, 3600),
                "rice": (rice.id, taishan.id, 5000),
                "black_tea": (black_tea.id, yingde.id, 9900),
                "lychee": (lychee.id, zengcheng.id, 5900),
            },
            users={k: v.id for k, v in people.items()},
            phones={k: v.phone for k, v in people.items()},
        )


def add_order(
    session,
    buyer_id: int,
    lines: list[tuple[tuple[int, int, int], int]],
    paid_at: datetime | None,
    *,
    address: str = "440106",
    refunded_fen: int = 0,
) -> Order:
    """A paid (or, with paid_at None, unpaid) order of [(product, quantity)] lines."""
    coop_ids = {product[1] for product, _qty in lines}
    assert len(coop_ids) == 1, "an order belongs to one cooperative"
    total = sum(product[2] * qty for product, qty in lines)
    created = (paid_at or datetime.fromisoformat("2026-01-01T00:00:00+00:00")) - timedelta(
        minutes=5
    )
    full = refunded_fen and refunded_fen >= total
    order = Order(
        number=f"YT{next(_numbers):014d}",
        buyer_id=buyer_id,
        cooperative_id=coop_ids.pop(),
        status=(
            OrderStatus.PENDING_PAYMENT
            if paid_at is None
            else OrderStatus.REFUNDED
            if full
            else OrderStatus.PAID
        ),
        total_fen=total,
        refunded_fen=refunded_fen,
        recipient="测试",
        phone="13800138000",
        division_code=address,
        address="测试路 1 号",
        expires_at=created + timedelta(minutes=30),
        created_at=created,
        paid_at=paid_at,
        lines=[
            OrderLine(
                product_id=product[0],
                title="商品",
                unit="件",
                unit_price_fen=product[2],
                quantity=qty,
            )
            for product, qty in lines
        ],
    )
    session.add(order)
    session.flush()
    return order
