"""Demo products: every demo cooperative sells something real, loading is idempotent."""

from __future__ import annotations

from sqlalchemy import select

from market import demo
from market.catalog.demo import PRODUCTS
from market.catalog.models import Product, ProductStatus
from market.cooperatives.models import Cooperative
from market.extensions import db
from traceability.codes import is_valid_gtin


def test_demo_products_have_gtins_photos_and_load_only_once(app, media_dir):
    with app.app_context():
        demo.load(db.session)
        db.session.commit()
        first = {(p.cooperative_id, p.title, p.gtin) for p in db.session.scalars(select(Product))}
        assert demo.load(db.session).created == []
        db.session.commit()
        products = db.session.scalars(select(Product)).all()
        assert {(p.cooperative_id, p.title, p.gtin) for p in products} == first
        assert len(products) == len(PRODUCTS)
        coops = db.session.scalars(select(Cooperative)).all()
        assert all(any(p.cooperative_id == c.id for p in products) for c in coops)
        assert all(is_valid_gtin(p.gtin) and p.item_ref == p.id for p in products)
        on_sale = [p for p in products if p.status is ProductStatus.ON_SALE]
        assert len(on_sale) == len([s for s in PRODUCTS if s.on_sale])
        assert all(
            p.photos and (media_dir / f"{p.photos[0].key}-320.webp").is_file() for p in on_sale
        )
        titles = {p.title for p in products if p.is_gi}
        assert {
            "新会陈皮 十年陈 250克",
            "英德红茶 英红九号 礼盒 250克",
            "增城荔枝 挂绿 5斤",
        } <= titles
