"""Demo products for the demo cooperatives (called from market.demo; idempotent).

Each product is found again by cooperative and title, so loading twice adds nothing.
Photos are simple pictures drawn with Pillow and stored through market.media like any
upload, when a media folder is given.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select
from sqlalchemy.orm import Session

from market import media
from market.catalog.models import Category, Product, ProductPhoto, ProductStatus
from market.catalog.services import assign_gtin
from market.cooperatives.models import Cooperative


@dataclass(frozen=True)
class DemoProduct:
    coop_key: str
    title: str
    category: Category
    unit: str
    price_fen: int
    stock: int
    gi_name: str = ""
    certifications: tuple[str, ...] = ()
    harvest_months: tuple[int, ...] = ()
    description: str = ""
    origin_detail: str = ""
    on_sale: bool = True


PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct(
        "xinhui",
        "新会陈皮 十年陈 250克",
        Category.DRIED,
        "罐",
        28800,
        60,
        "新会陈皮",
        ("compliance_certificate",),
        (11, 12),
        "选用新会茶坑村大红柑皮，自然晾晒、陈化十年以上。皮薄油室饱满，陈香醇厚，"
        "可泡茶、煲汤、入菜。",
        "会城街道茶坑村",
    ),
    DemoProduct(
        "xinhui",
        "新会柑普茶 小青柑 500克",
        Category.TEA,
        "盒",
        16800,
        80,
        "",
        ("compliance_certificate",),
        (7, 8, 9),
        "新会小青柑配云南宫廷普洱，生晒工艺，柑香清新，茶汤红浓。",
        "会城街道茶坑村",
    ),
    DemoProduct(
        "xinhui",
        "新会陈皮 五年陈 500克",
        Category.DRIED,
        "袋",
        19800,
        30,
        "新会陈皮",
        (),
        (11, 12),
        "草稿：等拍好照片再上架。",
        "会城街道茶坑村",
        on_sale=False,
    ),
    DemoProduct(
        "yingde",
        "英德红茶 英红九号 礼盒 250克",
        Category.TEA,
        "盒",
        19800,
        50,
        "英德红茶",
        ("green_food",),
        (4, 5, 6, 7, 8, 9, 10),
        "英红九号一芽二叶手工采摘，金毫显露，汤色红艳，甜香浓郁。礼盒装，适合送礼。",
        "横石塘镇",
    ),
    DemoProduct(
        "yingde",
        "英红九号 金毫 散装 1斤",
        Category.TEA,
        "斤",
        36000,
        30,
        "英德红茶",
        ("organic",),
        (4, 5, 6),
        "有机茶园头春金毫，耐冲泡。",
        "横石塘镇",
    ),
    DemoProduct(
        "meizhou",
        "梅州金柚 沙田柚 5斤装",
        Category.FRUIT,
        "箱",
        4990,
        200,
        "梅州金柚",
        ("pollution_free",),
        (9, 10, 11),
        "梅县松口山地金柚，果肉晶莹，清甜化渣，耐储存。每箱 2-3 个。",
        "松口镇",
    ),
    DemoProduct(
        "meizhou",
        "客家梅干菜 500克",
        Category.DRIED,
        "袋",
        2580,
        150,
        "",
        (),
        (1, 2, 3),
        "传统日晒梅菜，梅菜扣肉的好搭档。",
        "松口镇",
    ),
    DemoProduct(
        "zhanjiang",
        "湛江对虾 鲜活 2斤",
        Category.AQUATIC,
        "份",
        8800,
        40,
        "",
        ("compliance_certificate",),
        (5, 6, 7, 8, 9, 10),
        "高位池生态养殖南美白对虾，当天捕捞，冰鲜冷链发货。",
        "湖光镇",
    ),
    DemoProduct(
        "xuwen",
        "徐闻菠萝 香水菠萝 10斤",
        Category.FRUIT,
        "箱",
        5980,
        300,
        "徐闻菠萝",
        ("green_food",),
        (2, 3, 4, 5),
        "“菠萝的海”火山红土种植，香水菠萝果香浓郁，免削皮手撕即食。",
        "曲界镇",
    ),
    DemoProduct(
        "huazhou",
        "化州橘红 毛橘红片 250克",
        Category.DRIED,
        "罐",
        16800,
        80,
        "化州橘红",
        (),
        (4, 5),
        "化州正毛橘红切片，道地药材，泡水煲汤皆宜。",
        "平定镇",
    ),
    DemoProduct(
        "zengcheng",
        "增城荔枝 挂绿 5斤",
        Category.FRUIT,
        "箱",
        39800,
        20,
        "增城荔枝",
        ("green_food",),
        (6, 7),
        "增城挂绿，荔枝中的珍品，果肉爽脆清甜。当天采摘，顺丰冷链直达。",
        "仙村镇",
    ),
    DemoProduct(
        "zengcheng",
        "增城荔枝 仙进奉 5斤",
        Category.FRUIT,
        "箱",
        16800,
        60,
        "增城荔枝",
        (),
        (6, 7),
        "仙进奉果大核小，香甜多汁。",
        "仙村镇",
    ),
    DemoProduct(
        "zengcheng",
        "增城迟菜心 2斤",
        Category.VEGETABLE,
        "份",
        2600,
        100,
        "增城迟菜心",
        ("pollution_free",),
        (11, 12, 1, 2),
        "冬季限定，菜心爽甜，白灼最佳。",
        "小楼镇",
    ),
    DemoProduct(
        "yangjiang",
        "阳江 虾干 500克",
        Category.DRIED,
        "袋",
        12800,
        70,
        "",
        ("compliance_certificate",),
        (4, 5, 6, 10, 11),
        "沙扒渔港海捕虾，当日晒制，无添加。",
        "沙扒镇",
    ),
    DemoProduct(
        "yangjiang",
        "程村蚝 鲜蚝 5斤",
        Category.AQUATIC,
        "份",
        9800,
        50,
        "程村蚝",
        (),
        (11, 12, 1, 2, 3),
        "程村蚝肥美爽滑，带壳鲜活发货，可生蚝炭烤。",
        "程村镇",
    ),
)

#: Background and accent colours per category for the drawn demo photos.
_COLOURS = {
    Category.FRUIT: ((252, 220, 150), (232, 120, 30)),
    Category.VEGETABLE: ((214, 240, 200), (60, 140, 60)),
    Category.TEA: ((226, 214, 190), (120, 70, 30)),
    Category.DRIED: ((240, 214, 180), (170, 80, 30)),
    Category.AQUATIC: ((200, 228, 245), (230, 110, 90)),
}
_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)


def _font(size: int):
    for path in _FONTS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return None


def demo_photo(spec: DemoProduct) -> bytes:
    """A simple, deterministic 640x640 JPEG: a still life of circles and the name."""
    background, accent = _COLOURS.get(spec.category, ((235, 235, 225), (90, 120, 90)))
    img = Image.new("RGB", (640, 640), background)
    draw = ImageDraw.Draw(img)
    seed = sum(spec.title.encode("utf-8"))
    for i in range(5):
        radius = 70 + (seed * (i + 3)) % 50
        x = 140 + (seed * (i + 7)) % 360
        y = 150 + (seed * (i + 11)) % 260
        shade = tuple(max(0, c - 18 * (i % 3)) for c in accent)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=shade)
    font = _font(44)
    if font is not None:
        label = spec.gi_name or spec.title.split()[0]
        draw.rounded_rectangle((40, 500, 600, 600), radius=18, fill=(255, 255, 255))
        draw.text((320, 550), label, fill=(40, 40, 40), font=font, anchor="mm")
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def load_products(
    session: Session,
    coop: Cooperative,
    coop_key: str,
    farmer_id: int | None,
    *,
    company_prefix: str,
    media_dir: Path | None,
) -> list[str]:
    """Add the cooperative's demo products that are missing; returns what was added."""
    added: list[str] = []
    existing = set(session.scalars(select(Product.title).where(Product.cooperative_id == coop.id)))
    for spec in PRODUCTS:
        if spec.coop_key != coop_key or spec.title in existing:
            continue
        product = Product(
            cooperative_id=coop.id,
            farmer_id=farmer_id,
            title=spec.title,
            category=spec.category,
            unit=spec.unit,
            price_fen=spec.price_fen,
            stock=spec.stock,
            status=ProductStatus.DRAFT,
            description=spec.description,
            is_gi=bool(spec.gi_name),
            gi_name=spec.gi_name,
            certifications=list(spec.certifications),
            harvest_months=sorted(spec.harvest_months),
            origin_code=coop.division_code,
            origin_detail=spec.origin_detail,
        )
        if spec.on_sale and media_dir is not None:
            stored = media.process_photo(demo_photo(spec), media_dir)
            product.photos = [
                ProductPhoto(key=stored.key, position=0, width=stored.width, height=stored.height)
            ]
            product.status = ProductStatus.ON_SALE
        session.add(product)
        session.flush()
        assign_gtin(product, company_prefix)
        added.append(f"product {spec.title}")
    session.flush()
    return added
