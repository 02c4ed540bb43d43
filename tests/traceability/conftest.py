"""Shared set-up for the traceability tests: a cooperative, its people, a product, a batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from flask import Flask

from market.catalog.models import Category, Product, ProductStatus
from market.cooperatives.models import Cooperative
from market.extensions import db
from market.types import utcnow
from tests.factories import CooperativeFactory, buyer, coop_admin, farmer, platform_admin, staff
from traceability import codes, services
from traceability.models import Batch, OriginKind

ADMIN_PHONE = "13700001001"
FARMER_PHONE = "13600001001"
OTHER_ADMIN_PHONE = "13700001002"
BUYER_PHONE = "13500001001"
STAFF_IN_PHONE = "13900001001"
STAFF_OUT_PHONE = "13900001002"
PLATFORM_PHONE = "13900001003"


def make_product(app: Flask, coop: Cooperative, **kw) -> Product:
    """A product of `coop` with its GTIN under the platform's company prefix."""
    values = {
        "cooperative_id": coop.id,
        "title": "新会陈皮（三年陈）",
        "category": Category.DRIED,
        "unit": "盒",
        "price_fen": 12800,
        "stock": 0,
        "status": ProductStatus.ON_SALE,
        "is_gi": True,
        "gi_name": "新会陈皮",
        "certifications": ["green_food"],
    }
    if hasattr(Product, "origin_code"):
        values["origin_code"] = coop.division_code
    values.update(kw)
    product = Product(**values)
    db.session.add(product)
    db.session.flush()
    product.item_ref = product.id
    product.gtin = codes.make_gtin(app.config["GS1_COMPANY_PREFIX"], product.id)
    db.session.flush()
    return product


def batch_data(product_id: int, **kw) -> services.BatchData:
    values = {
        "product_id": product_id,
        "name": "2026年大红柑第一批",
        "harvest_date": services.today_shanghai() - timedelta(days=10),
        "quantity": 500,
        "unit": "公斤",
        "origin_code": "440705",
        "origin_kind": OriginKind.ORCHARD,
        "origin_village": "会城街道茶坑村",
        "origin_site": "3号果园",
        "variety": "大红柑",
        "method": "自然晒制",
        "cert_basis": ["self_test", "internal_control"],
    }
    values.update(kw)
    return services.BatchData(**values)


def make_batch(app: Flask, coop_id: int, product_id: int, user_id=None, **kw) -> Batch:
    return services.create_batch(
        db.session,
        coop_id,
        batch_data(product_id, **kw),
        user_id=user_id,
        company_prefix=app.config["GS1_COMPANY_PREFIX"],
    )


@dataclass
class World:
    coop: int
    other_coop: int
    product: int
    other_product: int
    batch: int
    admin: int
    farmer: int
    lot: str
    gtin: str


@pytest.fixture
def world(app: Flask) -> World:
    """Two cooperatives (江门新会 and 湛江), people of every role, a product each and one
    batch of the first cooperative's product."""
    with app.app_context():
        coop = CooperativeFactory(
            name="新会区会城陈皮专业合作社",
            division_code="440705",
            village="会城街道茶坑村",
            contact_phone="13700001001",
        )
        other = CooperativeFactory(name="湛江市对虾养殖专业合作社", division_code="440811")
        admin = coop_admin(coop, phone=ADMIN_PHONE, name="陈志强")
        member = farmer(coop, phone=FARMER_PHONE, name="李秀英")
        coop_admin(other, phone=OTHER_ADMIN_PHONE)
        buyer(phone=BUYER_PHONE)
        staff("440700", phone=STAFF_IN_PHONE)
        staff("440800", phone=STAFF_OUT_PHONE)
        platform_admin(phone=PLATFORM_PHONE)
        product = make_product(app, coop)
        other_product = make_product(
            app, other, title="湛江对虾", category=Category.AQUATIC, unit="公斤", is_gi=False
        )
        batch = make_batch(app, coop.id, product.id, user_id=admin.id)
        db.session.commit()
        return World(
            coop=coop.id,
            other_coop=other.id,
            product=product.id,
            other_product=other_product.id,
            batch=batch.id,
            admin=admin.id,
            farmer=member.id,
            lot=batch.lot_code,
            gtin=product.gtin,
        )


def days_ago(n: int) -> date:
    return services.today_shanghai() - timedelta(days=n)


def now():
    return utcnow()
