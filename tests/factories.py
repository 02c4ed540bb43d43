"""Test factories (factory_boy). Call them inside an app context; they flush, the test commits."""

from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory

from market.auth.models import Role, User
from market.auth.services import hash_password
from market.catalog.models import Category, Product, ProductPhoto, ProductStatus
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.extensions import db

PASSWORD = "password123"
_PASSWORD_HASH = hash_password(PASSWORD)


class Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class CooperativeFactory(Base):
    class Meta:
        model = Cooperative

    name = factory.Sequence(lambda n: f"测试专业合作社{n}")
    division_code = "440705"
    village = "茶坑村"
    intro = "测试合作社"
    status = CooperativeStatus.APPROVED


class UserFactory(Base):
    class Meta:
        model = User

    phone = factory.Sequence(lambda n: f"135{n:08d}")
    password_hash = _PASSWORD_HASH
    name = factory.Sequence(lambda n: f"用户{n}")
    role = Role.BUYER


def buyer(**kw) -> User:
    return UserFactory(role=Role.BUYER, **kw)


def farmer(coop: Cooperative, **kw) -> User:
    return UserFactory(role=Role.FARMER, cooperative=coop, **kw)


def coop_admin(coop: Cooperative, **kw) -> User:
    return UserFactory(role=Role.COOP_ADMIN, cooperative=coop, **kw)


def staff(division_code: str, **kw) -> User:
    return UserFactory(role=Role.SUPPLY_STAFF, division_code=division_code, **kw)


def platform_admin(**kw) -> User:
    return UserFactory(role=Role.PLATFORM_ADMIN, **kw)


class ProductFactory(Base):
    """A product on sale (no photo, no GTIN) of `cooperative`; pass farmer= to own it."""

    class Meta:
        model = Product

    cooperative = factory.SubFactory(CooperativeFactory)
    title = factory.Sequence(lambda n: f"新会陈皮 {n}号")
    category = Category.DRIED
    unit = "罐"
    price_fen = 12800
    stock = 10
    status = ProductStatus.ON_SALE
    origin_code = factory.LazyAttribute(lambda p: p.cooperative.division_code)


class ProductPhotoFactory(Base):
    class Meta:
        model = ProductPhoto

    product = factory.SubFactory(ProductFactory)
    key = factory.Sequence(lambda n: f"{n:032x}")
    width = 1280
    height = 960
