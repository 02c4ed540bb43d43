"""The cart: in the session cookie for visitors, in the database once signed in.

Both stores hold only product id -> quantity; prices are always read fresh, and checked
again inside the checkout transaction. Quantities are capped by stock when added.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from market.catalog.models import Product, ProductStatus
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.errors import DomainError, NotFoundError
from market.orders.models import CartItem

#: No line may ask for more than this, whatever the stock.
MAX_LINE_QUANTITY = 999
#: Different products in one cart.
MAX_LINES = 50
SESSION_KEY = "cart"


class UnavailableError(DomainError):
    """The product cannot be bought now (not on sale, no stock, seller not approved)."""

    code = "unavailable"


class CartFullError(DomainError):
    code = "cart_full"


class Cart(Protocol):
    def quantities(self) -> dict[int, int]: ...

    def put(self, product_id: int, quantity: int) -> None: ...

    def remove(self, product_id: int) -> None: ...


class SessionCart:
    """A visitor's cart inside the (signed) session cookie: {"<product id>": quantity}."""

    def __init__(self, store: MutableMapping):
        self.store = store

    def quantities(self) -> dict[int, int]:
        raw = self.store.get(SESSION_KEY) or {}
        clean: dict[int, int] = {}
        for key, value in raw.items():
            if str(key).isdigit() and isinstance(value, int) and value > 0:
                clean[int(key)] = value
        return clean

    def _save(self, quantities: dict[int, int]) -> None:
        # Reassign (never mutate in place) so the session knows it changed.
        self.store[SESSION_KEY] = {str(k): v for k, v in quantities.items()}

    def put(self, product_id: int, quantity: int) -> None:
        quantities = self.quantities()
        quantities[product_id] = quantity
        self._save(quantities)

    def remove(self, product_id: int) -> None:
        quantities = self.quantities()
        quantities.pop(product_id, None)
        self._save(quantities)

    def clear(self) -> None:
        self.store.pop(SESSION_KEY, None)


class DbCart:
    """A signed-in buyer's cart, kept across devices."""

    def __init__(self, session: Session, user_id: int):
        self.session = session
        self.user_id = user_id

    def _rows(self) -> dict[int, CartItem]:
        rows = self.session.scalars(select(CartItem).where(CartItem.user_id == self.user_id))
        return {row.product_id: row for row in rows}

    def quantities(self) -> dict[int, int]:
        return {pid: row.quantity for pid, row in self._rows().items()}

    def put(self, product_id: int, quantity: int) -> None:
        row = self._rows().get(product_id)
        if row is None:
            self.session.add(
                CartItem(user_id=self.user_id, product_id=product_id, quantity=quantity)
            )
        else:
            row.quantity = quantity
        self.session.flush()

    def remove(self, product_id: int) -> None:
        self.session.execute(
            delete(CartItem).where(
                CartItem.user_id == self.user_id, CartItem.product_id == product_id
            )
        )


@dataclass
class CartLine:
    product: Product
    quantity: int

    @property
    def buyable(self) -> bool:
        return is_buyable(self.product) and self.quantity <= self.product.stock

    @property
    def total_fen(self) -> int:
        return self.product.price_fen * self.quantity


def is_buyable(product: Product) -> bool:
    return (
        product.status is ProductStatus.ON_SALE
        and product.stock > 0
        and product.cooperative is not None
        and product.cooperative.status is CooperativeStatus.APPROVED
    )


def line_limit(product: Product) -> int:
    return max(0, min(product.stock, MAX_LINE_QUANTITY))


def _product(session: Session, product_id: int) -> Product:
    product = session.scalars(
        select(Product).options(joinedload(Product.cooperative)).where(Product.id == product_id)
    ).first()
    if product is None:
        raise NotFoundError("no such product", field="product_id")
    return product


@dataclass(frozen=True)
class Added:
    quantity: int
    #: True when the buyer asked for more than is in stock and got the most there is.
    capped: bool
    product: Product


def add(session: Session, cart: Cart, product_id: int, quantity: int) -> Added:
    """Add `quantity` more of a product, never beyond its stock."""
    if quantity < 1:
        raise DomainError("quantity must be at least 1", field="quantity", code="quantity")
    product = _product(session, product_id)
    if not is_buyable(product):
        raise UnavailableError("product cannot be bought now", field="product_id")
    quantities = cart.quantities()
    if product_id not in quantities and len(quantities) >= MAX_LINES:
        raise CartFullError("too many different products", field="product_id")
    wanted = quantities.get(product_id, 0) + quantity
    limit = line_limit(product)
    cart.put(product_id, min(wanted, limit))
    return Added(quantity=min(wanted, limit), capped=wanted > limit, product=product)


def set_quantity(session: Session, cart: Cart, product_id: int, quantity: int) -> Added | None:
    """Set a line's quantity (0 removes it), capped by stock."""
    if quantity <= 0:
        cart.remove(product_id)
        return None
    product = _product(session, product_id)
    limit = line_limit(product)
    if limit == 0:
        cart.remove(product_id)
        raise UnavailableError("sold out", field="quantity")
    cart.put(product_id, min(quantity, limit))
    return Added(quantity=min(quantity, limit), capped=quantity > limit, product=product)


def lines(session: Session, cart: Cart) -> list[CartLine]:
    """The cart's lines with current products, grouped by cooperative then product."""
    quantities = cart.quantities()
    if not quantities:
        return []
    products = session.scalars(
        select(Product)
        .options(joinedload(Product.cooperative))
        .where(Product.id.in_(quantities))
        .order_by(Product.cooperative_id, Product.id)
    ).all()
    return [CartLine(product=p, quantity=quantities[p.id]) for p in products]


def grouped(cart_lines: list[CartLine]) -> list[tuple[Cooperative, list[CartLine]]]:
    """One group per cooperative: each becomes its own order at checkout."""
    groups: dict[int, tuple[Cooperative, list[CartLine]]] = {}
    for line in cart_lines:
        groups.setdefault(line.product.cooperative_id, (line.product.cooperative, []))[1].append(
            line
        )
    return list(groups.values())


def count(cart: Cart) -> int:
    return sum(cart.quantities().values())


def merge(session: Session, user_id: int, visitor: dict[int, int]) -> int:
    """Fold a visitor's cart into the account's on sign-in; returns lines merged.

    Quantities add up, capped by stock; products no longer buyable are dropped.
    """
    if not visitor:
        return 0
    account = DbCart(session, user_id)
    have = account.quantities()
    merged = 0
    products = session.scalars(
        select(Product).options(joinedload(Product.cooperative)).where(Product.id.in_(visitor))
    ).all()
    for product in products:
        if not is_buyable(product):
            continue
        if product.id not in have and len(have) >= MAX_LINES:
            break
        quantity = min(have.get(product.id, 0) + visitor[product.id], line_limit(product))
        account.put(product.id, quantity)
        have[product.id] = quantity
        merged += 1
    return merged
