"""Demo batches, inputs, tests, events and codes for the catalog's demo products.

Called from market.demo.load (inside the function: market never imports traceability
at module level). Idempotent: a batch is found again by product and name, and nothing
is added for a product that already has it. Dates are relative to today, so the
timelines look current whenever the demo is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from market.catalog.models import Product
from traceability import services
from traceability.models import Batch, InputKind, InspectionKind, InspectionResult, OriginKind

SHANGHAI = services.SHANGHAI


@dataclass(frozen=True)
class DemoBatch:
    product_title: str
    name: str
    days_ago: int
    quantity: int
    unit: str
    origin_kind: OriginKind
    origin_site: str = ""
    variety: str = ""
    method: str = ""
    basis: tuple[str, ...] = ("self_test",)
    #: (kind, name, amount, days before harvest, safety days)
    inputs: tuple[tuple[InputKind, str, str, int, int | None], ...] = ()
    #: (kind, items, agency, days ago)
    tests: tuple[tuple[InspectionKind, str, str, int], ...] = ()
    #: (kind, hours ago, extra arguments)
    events: tuple[tuple[str, int, dict[str, Any]], ...] = ()
    codes: int = 0
    #: Name of a batch (of the same cooperative) this one was made from.
    made_from: str = ""
    on_sale: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


BATCHES: tuple[DemoBatch, ...] = (
    DemoBatch(
        "新会陈皮 十年陈 250克",
        "大红柑鲜果（陈皮原料）",
        days_ago=3660,
        quantity=3000,
        unit="公斤",
        origin_kind=OriginKind.ORCHARD,
        origin_site="茶坑村 3号果园",
        variety="茶枝柑（大红柑）",
        inputs=(
            (InputKind.FERTILISER, "腐熟花生麸", "每株 2 公斤", 120, None),
            (InputKind.PESTICIDE, "矿物油乳剂（防治红蜘蛛）", "200 倍液", 60, 14),
        ),
        on_sale=False,
    ),
    DemoBatch(
        "新会陈皮 十年陈 250克",
        "2016年大红柑皮 晒制陈化",
        days_ago=3640,
        quantity=380,
        unit="公斤",
        origin_kind=OriginKind.WORKSHOP,
        origin_site="会城陈皮晒场",
        method="三刀法开皮，自然晒制，陈化十年",
        basis=("commissioned_test", "internal_control"),
        tests=(
            (
                InspectionKind.LAB,
                "农药残留 62 项、二氧化硫、黄曲霉毒素",
                "江门市农产品质量安全检测中心",
                12,
            ),
        ),
        events=(
            ("storing", 240, {"temperature_c": 22.0, "humidity_pct": 55.0, "note": "陈化仓复检"}),
            ("packing", 72, {"note": "250 克罐装"}),
            ("shipping", 20, {"place_code": "440100", "note": "顺丰发往广州"}),
        ),
        codes=8,
        made_from="大红柑鲜果（陈皮原料）",
    ),
    DemoBatch(
        "英德红茶 英红九号 礼盒 250克",
        "2026年春茶 头采",
        days_ago=230,
        quantity=120,
        unit="公斤",
        origin_kind=OriginKind.TEA_GARDEN,
        origin_site="横石塘镇 5号茶园",
        variety="英红九号",
        method="一芽二叶手工采摘，传统工夫红茶工艺",
        inputs=((InputKind.FERTILISER, "有机肥（菜籽饼）", "每亩 150 公斤", 90, None),),
        tests=(
            (InspectionKind.SELF_TEST, "农药残留速测（有机磷和氨基甲酸酯类）", "合作社检测室", 228),
        ),
        events=(
            ("packing", 24 * 200, {"note": "礼盒包装"}),
            ("storing", 24 * 30, {"temperature_c": 18.0, "humidity_pct": 50.0}),
        ),
        codes=10,
    ),
    DemoBatch(
        "湛江对虾 鲜活 2斤",
        "11月 3号高位池 南美白对虾",
        days_ago=1,
        quantity=800,
        unit="斤",
        origin_kind=OriginKind.POND,
        origin_site="湖光镇 3号高位池",
        variety="南美白对虾",
        method="高位池生态养殖",
        inputs=(
            (InputKind.FEED, "对虾配合饲料（2号料）", "日投 4 次", 90, None),
            (InputKind.VET_DRUG, "聚维酮碘溶液（水体消毒）", "每亩 300 毫升", 40, 15),
        ),
        tests=((InspectionKind.SELF_TEST, "孔雀石绿、硝基呋喃类速测", "合作社检测室", 1),),
        events=(
            ("storing", 20, {"temperature_c": 2.0, "note": "冰鲜预冷"}),
            (
                "shipping",
                12,
                {"temperature_c": 3.5, "place_code": "440300", "note": "冷链发往深圳"},
            ),
        ),
        codes=6,
    ),
)


def _noon(days: int) -> datetime:
    day = services.today_shanghai() - timedelta(days=days)
    return datetime.combine(day, time(12), SHANGHAI).astimezone(UTC)


def load(session: Session, *, company_prefix: str, media_dir: Path | None = None) -> list[str]:
    """Add the demo batches that are missing; returns what was added."""
    added: list[str] = []
    for spec in BATCHES:
        product = session.scalars(
            select(Product).where(Product.title == spec.product_title)
        ).first()
        if product is None or not product.gtin:
            continue
        if session.scalars(
            select(Batch.id).where(Batch.product_id == product.id, Batch.name == spec.name)
        ).first():
            continue
        harvest = services.today_shanghai() - timedelta(days=spec.days_ago)
        batch = services.create_batch(
            session,
            product.cooperative_id,
            services.BatchData(
                product_id=product.id,
                name=spec.name,
                harvest_date=harvest,
                quantity=spec.quantity,
                unit=spec.unit,
                origin_code=product.cooperative.division_code,
                origin_kind=spec.origin_kind,
                origin_village=product.cooperative.village,
                origin_site=spec.origin_site,
                variety=spec.variety,
                method=spec.method,
                cert_basis=spec.basis,
            ),
            user_id=None,
            company_prefix=company_prefix,
        )
        for kind, name, amount, before, safety in spec.inputs:
            services.add_input(
                session,
                batch.id,
                kind=kind,
                name=name,
                amount=amount,
                used_on=harvest - timedelta(days=before),
                safety_days=safety,
            )
        if spec.made_from:
            source = session.scalars(
                select(Batch).where(
                    Batch.cooperative_id == product.cooperative_id, Batch.name == spec.made_from
                )
            ).first()
            if source is not None:
                services.record_ui_event(
                    session,
                    batch.id,
                    "processing",
                    when=_noon(spec.days_ago) + timedelta(hours=2),
                    user_id=None,
                    company_prefix=company_prefix,
                    source_batch_id=source.id,
                    source_quantity=source.quantity,
                    note="开皮、晾晒",
                )
        for kind, items, agency, days in spec.tests:
            services.add_inspection(
                session,
                batch.id,
                kind=kind,
                tested_on=services.today_shanghai() - timedelta(days=days),
                items=items,
                result=InspectionResult.PASS,
                agency=agency,
                company_prefix=company_prefix,
            )
        if spec.codes:
            services.issue_codes(
                session, batch.id, spec.codes, company_prefix=company_prefix, max_count=spec.codes
            )
        now = services.utcnow()
        for kind, hours, extra in spec.events:
            services.record_ui_event(
                session,
                batch.id,
                kind,
                when=now - timedelta(hours=hours),
                user_id=None,
                company_prefix=company_prefix,
                pack_units=spec.codes if kind == "packing" and spec.codes else None,
                **extra,
            )
        if spec.on_sale:
            # The catalog's demo stock is this batch's stock, all of it still on sale.
            batch.stock_added = product.stock
            batch.stock_left = product.stock
        session.flush()
        added.append(f"batch {batch.lot_code} {spec.name}")
    return added
