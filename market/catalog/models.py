"""Products as cooperatives list them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.extensions import db
from market.types import utcnow

if TYPE_CHECKING:
    from market.auth.models import User
    from market.cooperatives.models import Cooperative


class Category(enum.Enum):
    FRUIT = "fruit"  #: 水果
    VEGETABLE = "vegetable"  #: 蔬菜
    TEA = "tea"  #: 茶叶
    GRAIN_OIL = "grain_oil"  #: 粮油
    POULTRY_EGG = "poultry_egg"  #: 禽畜蛋
    AQUATIC = "aquatic"  #: 水产
    DRIED = "dried"  #: 干货及加工品
    FLOWERS = "flowers"  #: 花卉苗木
    OTHER = "other"  #: 其他


class ProductStatus(enum.Enum):
    DRAFT = "draft"
    ON_SALE = "on_sale"
    SOLD_OUT = "sold_out"
    ARCHIVED = "archived"


#: Statuses the public sees (when the cooperative is approved); the rest are the seller's.
PUBLIC_STATUSES = (ProductStatus.ON_SALE, ProductStatus.SOLD_OUT)

#: Sale units a product's price and stock are counted in.
UNITS = ("斤", "公斤", "克", "箱", "盒", "袋", "包", "瓶", "罐", "只", "条", "份", "个", "束", "株")

#: Certifications a product may carry.
CERTIFICATIONS = ("green_food", "organic", "pollution_free", "compliance_certificate")


class Product(db.Model):
    __tablename__ = "market_products"
    __table_args__ = (
        CheckConstraint("price_fen >= 0", name="price_not_negative"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="CASCADE"), index=True
    )
    #: The farmer who listed it (None when the cooperative admin did).
    farmer_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_users.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(60))
    category: Mapped[Category] = mapped_column(index=True)
    #: One of UNITS; price and stock count in it.
    unit: Mapped[str] = mapped_column(String(8))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    #: Whole sale units left; taken only with a conditional UPDATE.
    stock: Mapped[int] = mapped_column(default=0)
    status: Mapped[ProductStatus] = mapped_column(default=ProductStatus.DRAFT, index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    #: 地理标志 (geographical indication) product, and its registered name, e.g. 新会陈皮.
    is_gi: Mapped[bool] = mapped_column(default=False, index=True)
    gi_name: Mapped[str] = mapped_column(String(40), default="")
    #: Subset of CERTIFICATIONS.
    certifications: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Months (1-12) in season.
    harvest_months: Mapped[list[int]] = mapped_column(JSON, default=list)
    #: GB/T 2260 code of the Guangdong county (or city) it comes from; the cooperative's
    #: own division unless the lister says otherwise. City and county filters use it.
    origin_code: Mapped[str] = mapped_column(String(6), index=True)
    #: Town and village of origin, as people write it (optional).
    origin_detail: Mapped[str] = mapped_column(String(60), default="")
    #: GS1 item reference under the platform's company prefix, and the GTIN-14 it makes.
    item_ref: Mapped[int | None] = mapped_column(unique=True)
    gtin: Mapped[str | None] = mapped_column(String(14), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    cooperative: Mapped[Cooperative] = relationship()
    farmer: Mapped[User | None] = relationship()
    photos: Mapped[list[ProductPhoto]] = relationship(
        back_populates="product",
        order_by="ProductPhoto.position",
        cascade="all, delete-orphan",
    )

    @property
    def cover(self) -> ProductPhoto | None:
        return self.photos[0] if self.photos else None

    @property
    def is_listed(self) -> bool:
        """On sale or sold out: the statuses the public may see (given an approved seller)."""
        return self.status in PUBLIC_STATUSES


class ProductPhoto(db.Model):
    __tablename__ = "market_product_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("market_products.id", ondelete="CASCADE"), index=True
    )
    #: Content-hash key from market.media; files are {key}-1280.webp etc.
    key: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(default=0)
    width: Mapped[int] = mapped_column(default=0)
    height: Mapped[int] = mapped_column(default=0)

    product: Mapped[Product] = relationship(back_populates="photos")
