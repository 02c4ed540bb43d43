"""Catalog rules: listing, editing, stock, status, bulk import and browsing. No HTTP here.

Services take a session and plain values, raise DomainError subclasses and never commit.
Input problems carry the name of the form field (or import column) they concern.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from flask import current_app, has_app_context
from sqlalchemy import Select, case, func, select, update
from sqlalchemy.orm import Session, selectinload

from market import places
from market.auth.models import Role, User
from market.catalog.models import (
    CERTIFICATIONS,
    PUBLIC_STATUSES,
    UNITS,
    Category,
    Product,
    ProductPhoto,
    ProductStatus,
)
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from market.media import is_valid_key

MAX_PHOTOS = 6
TITLE_MAX = 60
DESCRIPTION_MAX = 2000
GI_NAME_MAX = 40
ORIGIN_DETAIL_MAX = 60
#: ¥1,000,000 per unit: anything above is a typo, not a farm product.
MAX_PRICE_FEN = 100_000_000
MAX_STOCK = 1_000_000
MAX_PER_PAGE = 100


# --- stock kept per batch ---------------------------------------------------------------


class BatchStock(Protocol):
    """How many of a product's units each of its batches still has on sale, and which
    batch an order line's units came from. Traceability keeps this (traceability.stock)
    and registers itself as ``app.extensions["batch_stock"]``: market never imports it.

    Every call comes right after the product's own UPDATE, so the product's row is locked
    first and its batches' rows second, the same order on every path. The batches never
    claim more than the product's stock; units beyond them are not from a recorded batch.
    """

    def take(self, session: Session, product_id: int, quantity: int) -> list[tuple[int, int]]:
        """Take `quantity` units just taken from the product from its batches, oldest
        first; returns [(batch id, units)] (less than `quantity` if the batches run out)."""

    def record(self, session: Session, taken: Mapping[int, Sequence[tuple[int, int]]]) -> None:
        """Remember what `take` gave each order line: {order line id: [(batch id, units)]}."""

    def put_back(self, session: Session, line_ids: Sequence[int]) -> None:
        """The lines' units are back in the product's stock: give them back to their batches."""

    def fit_to_product(self, session: Session, product_id: int) -> None:
        """The product's stock was set by hand: take from the batches what they would claim
        beyond it."""


def batch_stock() -> BatchStock | None:
    """The registered keeper of per-batch stock, or None (no app, or no traceability)."""
    return current_app.extensions.get("batch_stock") if has_app_context() else None


# --- errors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: the field (form field / import column) and a code."""

    field: str
    code: str


class InvalidProductError(DomainError):
    """The product input breaks one or more rules; `problems` lists them all."""

    code = "invalid_product"

    def __init__(self, problems: Sequence[Problem]) -> None:
        first = problems[0]
        super().__init__(
            "invalid product input: " + ", ".join(f"{p.field}={p.code}" for p in problems),
            field=first.field,
            code=first.code,
        )
        self.problems = list(problems)


class GtinRangeExhaustedError(DomainError):
    """The product id no longer fits the item reference digits of the company prefix."""

    code = "gtin_range_exhausted"


class StockChangedError(ConflictError):
    """The stock moved (an order took some) since the seller loaded the page."""

    code = "stock_changed"

    def __init__(self, current: int) -> None:
        super().__init__("stock changed meanwhile", field="stock")
        self.current = current


class NotASellerError(PermissionDeniedError):
    code = "not_a_seller"


# --- input -----------------------------------------------------------------------------


@dataclass
class ProductInput:
    """What a seller says about a product. `origin_code` "" means the cooperative's own."""

    title: str
    category: str
    unit: str
    price_fen: int
    stock: int
    description: str = ""
    is_gi: bool = False
    gi_name: str = ""
    certifications: Sequence[str] = ()
    harvest_months: Sequence[int] = ()
    origin_code: str = ""
    origin_detail: str = ""


@dataclass(frozen=True)
class PhotoRef:
    """A photo already stored by market.media."""

    key: str
    width: int = 0
    height: int = 0


_SPACES = re.compile(r"\s+")


def _one_line(value: str) -> str:
    return _SPACES.sub(" ", value or "").strip()


def check_input(data: ProductInput, default_origin: str) -> tuple[dict, list[Problem]]:
    """Normalise `data` into model values and list every problem (empty when fine)."""
    problems: list[Problem] = []
    title = _one_line(data.title)
    if not title:
        problems.append(Problem("title", "required"))
    elif len(title) > TITLE_MAX:
        problems.append(Problem("title", "too_long"))

    category = None
    try:
        category = Category(data.category)
    except ValueError:
        problems.append(Problem("category", "invalid_category"))

    if data.unit not in UNITS:
        problems.append(Problem("unit", "invalid_unit"))

    price = data.price_fen
    if isinstance(price, bool) or not isinstance(price, int) or price <= 0:
        problems.append(Problem("price", "invalid_price"))
    elif price > MAX_PRICE_FEN:
        problems.append(Problem("price", "price_too_high"))

    stock = data.stock
    if isinstance(stock, bool) or not isinstance(stock, int) or not 0 <= stock <= MAX_STOCK:
        problems.append(Problem("stock", "invalid_stock"))

    description = (data.description or "").strip().replace("\r\n", "\n")
    if len(description) > DESCRIPTION_MAX:
        problems.append(Problem("description", "too_long"))

    gi_name = _one_line(data.gi_name)
    is_gi = bool(data.is_gi)
    if is_gi and not gi_name:
        problems.append(Problem("gi_name", "gi_name_required"))
    elif len(gi_name) > GI_NAME_MAX:
        problems.append(Problem("gi_name", "too_long"))
    if not is_gi:
        gi_name = ""

    certifications = list(dict.fromkeys(data.certifications or ()))
    if any(c not in CERTIFICATIONS for c in certifications):
        problems.append(Problem("certifications", "invalid_certification"))
    # Stored in the canonical order so equal sets compare equal.
    certifications = [c for c in CERTIFICATIONS if c in certifications]

    months: list[int] = []
    for month in data.harvest_months or ():
        if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
            problems.append(Problem("harvest_months", "invalid_month"))
            break
        months.append(month)
    months = sorted(set(months))

    origin_code = (data.origin_code or "").strip() or default_origin
    if not places.is_valid_guangdong_code(origin_code):
        problems.append(Problem("origin_code", "invalid_division"))

    origin_detail = _one_line(data.origin_detail)
    if len(origin_detail) > ORIGIN_DETAIL_MAX:
        problems.append(Problem("origin_detail", "too_long"))

    values = {
        "title": title,
        "category": category,
        "unit": data.unit,
        "price_fen": price,
        "stock": stock,
        "description": description,
        "is_gi": is_gi,
        "gi_name": gi_name,
        "certifications": certifications,
        "harvest_months": months,
        "origin_code": origin_code,
        "origin_detail": origin_detail,
    }
    return values, problems


def _photo_problems(photos: Sequence[PhotoRef]) -> list[Problem]:
    if len(photos) > MAX_PHOTOS:
        return [Problem("photo", "too_many_photos")]
    if any(not is_valid_key(p.key) for p in photos):
        return [Problem("photo", "invalid_photo")]
    return []


# --- who sells -------------------------------------------------------------------------


def seller_cooperative(session: Session, user_id: int) -> tuple[User, Cooperative]:
    """The user and the approved cooperative they list products for."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError("no such user")
    if user.role not in (Role.FARMER, Role.COOP_ADMIN) or user.cooperative_id is None:
        raise NotASellerError("only farmers and cooperative admins list products")
    coop = session.get(Cooperative, user.cooperative_id)
    if coop is None or coop.status is not CooperativeStatus.APPROVED:
        raise NotASellerError("the cooperative is not approved")
    return user, coop


def assign_gtin(product: Product, company_prefix: str) -> str:
    """Give a flushed product its GTIN: item reference = product id, under the prefix."""
    # traceability depends on market, never the other way at import time.
    from traceability.codes import CodeError, make_gtin

    if product.id is None:
        raise ValueError("flush the product before assigning its GTIN")
    try:
        gtin = make_gtin(company_prefix, product.id)
    except CodeError as exc:
        if exc.reason == "item_ref":
            raise GtinRangeExhaustedError(
                f"product id {product.id} does not fit the item reference digits of "
                f"GS1 company prefix {company_prefix}"
            ) from exc
        raise
    product.item_ref = product.id
    product.gtin = gtin
    return gtin


# --- listing and editing ---------------------------------------------------------------


def create_product(
    session: Session,
    actor_id: int,
    data: ProductInput,
    *,
    company_prefix: str,
    photos: Sequence[PhotoRef] = (),
    publish: bool = False,
) -> Product:
    """A farmer or cooperative admin lists a product, as a draft or straight on sale."""
    user, coop = seller_cooperative(session, actor_id)
    values, problems = check_input(data, coop.division_code)
    problems += _photo_problems(photos)
    if publish and not problems:
        if not photos:
            problems.append(Problem("photo", "photo_required"))
        if values["stock"] == 0:
            problems.append(Problem("stock", "stock_required"))
    if problems:
        raise InvalidProductError(problems)
    product = Product(
        cooperative_id=coop.id,
        farmer_id=user.id if user.role is Role.FARMER else None,
        status=ProductStatus.ON_SALE if publish else ProductStatus.DRAFT,
        **values,
    )
    product.photos = [
        ProductPhoto(key=p.key, position=i, width=p.width, height=p.height)
        for i, p in enumerate(photos)
    ]
    session.add(product)
    session.flush()
    assign_gtin(product, company_prefix)
    session.flush()
    return product


def get_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFoundError("no such product")
    return product


def update_product(
    session: Session, product_id: int, data: ProductInput, *, stock_seen: int | None = None
) -> Product:
    """Change a product's details.

    `stock_seen` is the stock the seller's form showed: when the stock in `data` equals
    it the stock is left alone (orders may have taken some since), otherwise it is set
    with the same check as set_stock.
    """
    product = get_product(session, product_id)
    values, problems = check_input(data, product.cooperative.division_code)
    if problems:
        raise InvalidProductError(problems)
    stock = values.pop("stock")
    for key, value in values.items():
        setattr(product, key, value)
    session.flush()
    if stock_seen is None or stock != stock_seen:
        set_stock(session, product_id, stock, expected=stock_seen)
    return product


def set_photos(session: Session, product_id: int, photos: Sequence[PhotoRef]) -> Product:
    """Replace the product's photos by `photos`, in that order (the first is the cover).

    Files are never deleted here: the same content-hash file may serve other products.
    """
    product = get_product(session, product_id)
    unique: dict[str, PhotoRef] = {}
    for ref in photos:
        unique.setdefault(ref.key, ref)
    photos = list(unique.values())
    problems = _photo_problems(photos)
    if not problems and not photos and product.is_listed:
        problems.append(Problem("photo", "photo_required"))
    if problems:
        raise InvalidProductError(problems)
    existing = {photo.key: photo for photo in product.photos}
    ordered: list[ProductPhoto] = []
    for position, ref in enumerate(photos):
        photo = existing.get(ref.key) or ProductPhoto(
            key=ref.key, width=ref.width, height=ref.height
        )
        photo.position = position
        ordered.append(photo)
    product.photos = ordered
    session.flush()
    return product


def set_stock(
    session: Session, product_id: int, stock: int, *, expected: int | None = None
) -> Product:
    """Set the stock in one conditional UPDATE; with `expected`, only if it still is that.

    A product on sale whose stock reaches zero is sold out; a sold-out product that gets
    stock is on sale again.

    Units added by hand are not from a recorded batch. A decrease takes those first; only
    what the product's batches would then claim beyond the new stock is taken from the
    batches, newest first (see traceability.stock.fit_to_product), so the stock a batch
    shows on sale is always really there.
    """
    if isinstance(stock, bool) or not isinstance(stock, int) or not 0 <= stock <= MAX_STOCK:
        raise InvalidProductError([Problem("stock", "invalid_stock")])
    statement = update(Product).where(Product.id == product_id)
    if expected is not None:
        statement = statement.where(Product.stock == expected)
    result = session.execute(
        statement.values(stock=stock), execution_options={"synchronize_session": False}
    )
    if result.rowcount == 0:
        current = session.scalar(select(Product.stock).where(Product.id == product_id))
        if current is None:
            raise NotFoundError("no such product")
        raise StockChangedError(current)
    keeper = batch_stock()
    if keeper is not None:
        keeper.fit_to_product(session, product_id)
    refresh_availability(session, product_id)
    return get_product(session, product_id)


def refresh_availability(session: Session, product_id: int) -> None:
    """Flip on sale <-> sold out to match the stock now in the database (no read first)."""
    session.execute(
        update(Product)
        .where(
            Product.id == product_id,
            Product.status == ProductStatus.ON_SALE,
            Product.stock == 0,
        )
        .values(status=ProductStatus.SOLD_OUT),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        update(Product)
        .where(
            Product.id == product_id,
            Product.status == ProductStatus.SOLD_OUT,
            Product.stock > 0,
        )
        .values(status=ProductStatus.ON_SALE),
        execution_options={"synchronize_session": False},
    )
    product = session.get(Product, product_id)
    if product is not None:
        session.refresh(product, attribute_names=["stock", "status", "updated_at"])


class StatusChangeError(ConflictError):
    code = "status_change"


def publish(session: Session, product_id: int) -> Product:
    """Put a draft or archived product on sale: it needs a photo and some stock."""
    product = get_product(session, product_id)
    if product.is_listed:
        return product
    problems = []
    if not product.photos:
        problems.append(Problem("photo", "photo_required"))
    if product.stock == 0:
        problems.append(Problem("stock", "stock_required"))
    if not product.cooperative.is_approved:
        raise StatusChangeError("the cooperative is not approved", code="cooperative_not_approved")
    if problems:
        raise InvalidProductError(problems)
    product.status = ProductStatus.ON_SALE
    session.flush()
    refresh_availability(session, product_id)
    return product


def archive(session: Session, product_id: int) -> Product:
    """Take a product off the shelves; it stays in the seller's list and can come back."""
    product = get_product(session, product_id)
    product.status = ProductStatus.ARCHIVED
    session.flush()
    return product


# --- browsing --------------------------------------------------------------------------


@dataclass
class ProductPage:
    items: list[Product]
    total: int
    page: int
    per_page: int
    highlights: dict[int, str] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def public_query() -> Select:
    """Products anyone may see: on sale or sold out, of an approved cooperative."""
    return (
        select(Product)
        .join(Cooperative, Cooperative.id == Product.cooperative_id)
        .where(
            Product.status.in_(PUBLIC_STATUSES),
            Cooperative.status == CooperativeStatus.APPROVED,
        )
    )


def filter_places(query: Select, city_code: str | None, county_code: str | None) -> Select:
    """Narrow to products whose origin lies in the city and/or is the county."""
    if county_code:
        query = query.where(Product.origin_code == county_code)
    if city_code:
        query = query.where(Product.origin_code.startswith(city_code[:4]))
    return query


def public_products(
    session: Session,
    *,
    category: Category | None = None,
    city_code: str | None = None,
    county_code: str | None = None,
    cooperative_id: int | None = None,
    gi_only: bool = False,
    page: int = 1,
    per_page: int = 20,
) -> ProductPage:
    """One page of public products, on sale first, newest first."""
    page = max(1, page)
    per_page = min(max(1, per_page), MAX_PER_PAGE)
    query = filter_places(public_query(), city_code, county_code)
    if category is not None:
        query = query.where(Product.category == category)
    if cooperative_id is not None:
        query = query.where(Product.cooperative_id == cooperative_id)
    if gi_only:
        query = query.where(Product.is_gi.is_(True))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.options(selectinload(Product.photos), selectinload(Product.cooperative))
        .order_by(case((Product.status == ProductStatus.SOLD_OUT, 1), else_=0), Product.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return ProductPage(list(items), total, page, per_page)


def public_product(session: Session, product_id: int) -> Product | None:
    """The product if the public may see it, else None."""
    return session.scalars(
        public_query()
        .where(Product.id == product_id)
        .options(selectinload(Product.photos), selectinload(Product.cooperative))
    ).first()


def category_counts(session: Session) -> dict[Category, int]:
    """How many public products each category has (categories with none are left out)."""
    query = (
        public_query().with_only_columns(Product.category, func.count()).group_by(Product.category)
    )
    return {category: count for category, count in session.execute(query)}


def seller_products(
    session: Session, user_id: int, status: ProductStatus | None = None
) -> list[Product]:
    """The products a seller manages: a farmer's own, or all of a cooperative admin's
    cooperative."""
    user = session.get(User, user_id)
    if user is None or user.cooperative_id is None:
        return []
    query = select(Product).where(Product.cooperative_id == user.cooperative_id)
    if user.role is Role.FARMER:
        query = query.where(Product.farmer_id == user.id)
    elif user.role is not Role.COOP_ADMIN:
        return []
    if status is not None:
        query = query.where(Product.status == status)
    order = case(
        (Product.status == ProductStatus.ON_SALE, 0),
        (Product.status == ProductStatus.SOLD_OUT, 1),
        (Product.status == ProductStatus.DRAFT, 2),
        else_=3,
    )
    return list(
        session.scalars(
            query.options(selectinload(Product.photos)).order_by(order, Product.id.desc())
        )
    )


# --- bulk import -----------------------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    line: int
    field: str
    code: str


class ImportRejectedError(DomainError):
    """Some rows are bad; nothing was imported. `problems` lists every one."""

    code = "import_rejected"

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the import")
        self.problems = list(problems)


def import_products(
    session: Session,
    actor_id: int,
    cooperative_id: int,
    rows: Sequence[tuple[int, ProductInput, Sequence[Problem]]],
    *,
    company_prefix: str,
) -> list[Product]:
    """Create every row as a draft of the cooperative, or none of them.

    `rows` are (line, input, problems already found reading the cells). Imported products
    are drafts: each needs a photo before it can go on sale.
    """
    user, coop = seller_cooperative(session, actor_id)
    if user.role is not Role.COOP_ADMIN or coop.id != cooperative_id:
        raise NotASellerError("only the cooperative's admin imports products")
    problems: list[RowProblem] = []
    checked: list[dict] = []
    for line, data, found in rows:
        values, more = check_input(data, coop.division_code)
        fields = {p.field for p in found}
        problems += [RowProblem(line, p.field, p.code) for p in found]
        problems += [RowProblem(line, p.field, p.code) for p in more if p.field not in fields]
        checked.append(values)
    if problems:
        raise ImportRejectedError(problems)
    products = [
        Product(cooperative_id=coop.id, farmer_id=None, status=ProductStatus.DRAFT, **values)
        for values in checked
    ]
    session.add_all(products)
    session.flush()
    for product in products:
        assign_gtin(product, company_prefix)
    session.flush()
    return products


def featured_gi(session: Session, limit: int = 8) -> list[Product]:
    """地理标志 products on sale for the home page: the newest of each cooperative, so
    one busy seller does not fill the shelf."""
    candidates = session.scalars(
        public_query()
        .where(Product.is_gi.is_(True), Product.status == ProductStatus.ON_SALE)
        .options(selectinload(Product.photos), selectinload(Product.cooperative))
        .order_by(Product.id.desc())
        .limit(limit * 20)
    )
    chosen: dict[int, Product] = {}
    for product in candidates:
        chosen.setdefault(product.cooperative_id, product)
        if len(chosen) == limit:
            break
    return list(chosen.values())
