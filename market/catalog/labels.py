"""What people read for the catalog's stored values: categories, units, certifications.

The database stores stable codes (``fruit``, ``斤``, ``green_food``); pages and imports
show and accept the words below, in the user's language.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from market.catalog.models import CERTIFICATIONS, UNITS, Category, ProductStatus

CATEGORY_LABELS = {
    Category.FRUIT: _l("Fruit"),
    Category.VEGETABLE: _l("Vegetables"),
    Category.TEA: _l("Tea"),
    Category.GRAIN_OIL: _l("Grain and oil"),
    Category.POULTRY_EGG: _l("Poultry, meat and eggs"),
    Category.AQUATIC: _l("Fish and seafood"),
    Category.DRIED: _l("Dried and processed goods"),
    Category.FLOWERS: _l("Flowers and seedlings"),
    Category.OTHER: _l("Other"),
}

#: The Chinese names, accepted in imports whatever the user's language.
CATEGORY_NAMES_ZH = {
    Category.FRUIT: "水果",
    Category.VEGETABLE: "蔬菜",
    Category.TEA: "茶叶",
    Category.GRAIN_OIL: "粮油",
    Category.POULTRY_EGG: "禽畜蛋",
    Category.AQUATIC: "水产",
    Category.DRIED: "干货及加工品",
    Category.FLOWERS: "花卉苗木",
    Category.OTHER: "其他",
}

UNIT_LABELS = {
    "斤": _l("jin (500 g)"),
    "公斤": _l("kg"),
    "克": _l("g"),
    "箱": _l("case"),
    "盒": _l("box"),
    "袋": _l("bag"),
    "包": _l("pack"),
    "瓶": _l("bottle"),
    "罐": _l("jar"),
    "只": _l("piece (animal)"),
    "条": _l("piece (fish)"),
    "份": _l("portion"),
    "个": _l("piece"),
    "束": _l("bunch"),
    "株": _l("plant"),
}

CERTIFICATION_LABELS = {
    "green_food": _l("Green Food"),
    "organic": _l("Organic"),
    "pollution_free": _l("Pollution-free"),
    "compliance_certificate": _l("Compliance certificate"),
}

CERTIFICATION_NAMES_ZH = {
    "green_food": "绿色食品",
    "organic": "有机",
    "pollution_free": "无公害",
    "compliance_certificate": "承诺达标合格证",
}

STATUS_LABELS = {
    ProductStatus.DRAFT: _l("Draft"),
    ProductStatus.ON_SALE: _l("On sale"),
    ProductStatus.SOLD_OUT: _l("Sold out"),
    ProductStatus.ARCHIVED: _l("Archived"),
}

MONTH_LABELS = {
    1: _l("January"),
    2: _l("February"),
    3: _l("March"),
    4: _l("April"),
    5: _l("May"),
    6: _l("June"),
    7: _l("July"),
    8: _l("August"),
    9: _l("September"),
    10: _l("October"),
    11: _l("November"),
    12: _l("December"),
}


def category_label(value: Category | str) -> str:
    category = value if isinstance(value, Category) else Category(value)
    return str(CATEGORY_LABELS[category])


def unit_label(unit: str) -> str:
    """The unit in the user's language (斤 stays 斤 in Chinese)."""
    label = UNIT_LABELS.get(unit)
    return str(label) if label is not None else unit


def month_ranges(months: list[int]) -> list[tuple[int, int]]:
    """Group months into runs, wrapping over the new year: [11, 12, 1, 5] -> [(11, 1), (5, 5)]."""
    chosen = sorted(set(months))
    if not chosen:
        return []
    if len(chosen) == 12:
        return [(1, 12)]
    runs: list[list[int]] = []
    for month in chosen:
        if runs and month == runs[-1][1] + 1:
            runs[-1][1] = month
        else:
            runs.append([month, month])
    # December running into January is one season.
    if len(runs) > 1 and runs[0][0] == 1 and runs[-1][1] == 12:
        first = runs.pop(0)
        runs[-1][1] = first[1]
    return [(start, end) for start, end in runs]


def english(label) -> str:
    """The English text of a lazy label (its msgid), e.g. to accept it in imports."""
    return label._args[0]


if set(UNIT_LABELS) != set(UNITS) or set(CERTIFICATION_LABELS) != set(CERTIFICATIONS):
    raise RuntimeError("catalog labels are out of step with catalog.models")
