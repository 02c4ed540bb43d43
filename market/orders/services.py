"""Order rules: checkout, stock, order numbers, state moves, refunds. No HTTP here.

Stock is only ever taken with one conditional UPDATE per product
(`SET stock = stock - :n WHERE id = :id AND stock >= :n AND ...`), in product-id order
so two carts naming the same products can never deadlock. The price the buyer saw is
part of the same WHERE, so a price change between the checkout page and the click is
refused, not charged.

With the product's row locked by that UPDATE, the units are taken from the product's
batches, oldest harvest first, and each line remembers which batches they came from
(catalog.services.BatchStock, kept by traceability). Putting stock back returns the units
to the same batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from market import places
from market.auth.models import Role, User
from market.auth.services import InvalidPhoneError, normalize_phone
from market.catalog.models import Product, ProductStatus
from market.catalog.services import batch_stock
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.errors import ConflictError, DomainError, NotFoundError
from market.orders.cart import MAX_LINE_QUANTITY
from market.orders.models import (
    NOT_SHIPPED,
    TRANSITIONS,
    CartItem,
    Order,
    OrderEvent,
    OrderLine,
    OrderNumberCounter,
    OrderStatus,
)
from market.payments import services as payments
from market.payments.models import IntentStatus, PaymentIntent, Refund, RefundStatus
from market.types import utcnow

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")


# --- errors -------------------------------------------------------------------------


class EmptyCartError(DomainError):
    code = "empty_cart"


class InvalidAddressError(DomainError):
    code = "invalid_address"


class OutOfStockError(ConflictError):
    code = "out_of_stock"

    def __init__(self, product_id: int, title: str, left: int):
        super().__init__(f"only {left} left of product {product_id}", field="quantity")
        self.product_id, self.title, self.left = product_id, title, left


class PriceChangedError(ConflictError):
    code = "price_changed"

    def __init__(self, product_id: int, title: str, price_fen: int):
        super().__init__(f"price of product {product_id} is now {price_fen}")
        self.product_id, self.title, self.price_fen = product_id, title, price_fen


class ProductUnavailableError(ConflictError):
    code = "unavailable"

    def __init__(self, product_id: int, title: str):
        super().__init__(f"product {product_id} cannot be bought now")
        self.product_id, self.title = product_id, title


class IllegalTransitionError(ConflictError):
    code = "illegal_transition"

    def __init__(self, action: str, status: OrderStatus):
        super().__init__(f"cannot {action} an order that is {status.value}")
        self.action, self.status = action, status


class OrderExpiredError(ConflictError):
    code = "order_expired"


class RefundAmountError(DomainError):
    code = "refund_amount"


# --- checkout -----------------------------------------------------------------------


@dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int
    #: The unit price the buyer was shown; the order is refused if it changed.
    unit_price_fen: int


@dataclass(frozen=True)
class Address:
    recipient: str
    phone: str
    province_code: str
    city_code: str = ""
    county_code: str = ""
    address: str = ""
    note: str = ""


def clean_address(data: Address) -> tuple[str, dict[str, str]]:
    """Validate an address; return the deepest division code and the cleaned fields.

    The city is required where the province has cities in the data, the county where
    the city has counties (all of Guangdong). Outside Guangdong the data stops at cities.
    """
    recipient = (data.recipient or "").strip()
    if not recipient or len(recipient) > 40:
        raise InvalidAddressError("recipient is required", field="recipient")
    try:
        phone = normalize_phone(data.phone)
    except InvalidPhoneError as exc:
        raise InvalidAddressError("not a mainland mobile number", field="phone") from exc
    province = places.get(data.province_code or "")
    if province is None or province.level != "province":
        raise InvalidAddressError("choose a province", field="province_code")
    code = province.code
    cities = places.children(province.code)
    if cities:
        city = places.get(data.city_code or "")
        if city is None or city.parent_code != province.code:
            raise InvalidAddressError("choose a city in the province", field="city_code")
        code = city.code
        counties = places.children(city.code)
        if counties:
            county = places.get(data.county_code or "")
            if county is None or county.parent_code != city.code:
                raise InvalidAddressError("choose a county in the city", field="county_code")
            code = county.code
    street = " ".join((data.address or "").split())
    if len(street) < 4 or len(street) > 120:
        raise InvalidAddressError("street address is 4-120 characters", field="address")
    note = (data.note or "").strip()[:200]
    return code, {"recipient": recipient, "phone": phone, "address": street, "note": note}


def _merge_lines(requests: Iterable[LineRequest]) -> list[LineRequest]:
    merged: dict[int, LineRequest] = {}
    for req in requests:
        if req.quantity < 1 or req.quantity > MAX_LINE_QUANTITY:
            raise DomainError("quantity out of range", field="quantity", code="quantity")
        if req.product_id in merged:
            prev = merged[req.product_id]
            req = LineRequest(req.product_id, prev.quantity + req.quantity, req.unit_price_fen)
        merged[req.product_id] = req
    return [merged[pid] for pid in sorted(merged)]


@dataclass(frozen=True)
class Taken:
    """What the stock UPDATE hands back about the product, so no second read is needed."""

    product_id: int
    cooperative_id: int
    farmer_id: int | None
    title: str
    unit: str


def take_stock(session: Session, product_id: int, quantity: int, unit_price_fen: int) -> Taken:
    """Take `quantity` units with one conditional UPDATE; refuse (and say why) otherwise."""
    approved = select(Cooperative.id).where(
        Cooperative.id == Product.cooperative_id,
        Cooperative.status == CooperativeStatus.APPROVED,
    )
    row = session.execute(
        update(Product)
        .where(
            Product.id == product_id,
            Product.stock >= quantity,
            Product.status == ProductStatus.ON_SALE,
            Product.price_fen == unit_price_fen,
            exists(approved),
        )
        .values(stock=Product.stock - quantity)
        .returning(Product.cooperative_id, Product.farmer_id, Product.title, Product.unit)
        .execution_options(synchronize_session=False)
    ).first()
    if row is not None:
        return Taken(product_id, *row)
    product = session.scalars(
        select(Product).where(Product.id == product_id).execution_options(populate_existing=True)
    ).first()
    if product is None:
        raise ProductUnavailableError(product_id, "")
    if product.status is not ProductStatus.ON_SALE or not product.cooperative.is_approved:
        raise ProductUnavailableError(product_id, product.title)
    if product.price_fen != unit_price_fen:
        raise PriceChangedError(product_id, product.title, product.price_fen)
    raise OutOfStockError(product_id, product.title, product.stock)


def put_back_stock(session: Session, order: Order) -> None:
    """Return the order's units to its products' stock, and to the batches they came from."""
    for line in order.lines:
        if line.product_id is not None:
            session.execute(
                update(Product)
                .where(Product.id == line.product_id)
                .values(stock=Product.stock + line.quantity)
                .execution_options(synchronize_session=False)
            )
    keeper = batch_stock()
    if keeper is not None:
        keeper.put_back(session, [line.id for line in order.lines if line.product_id is not None])


def allocate_numbers(session: Session, count: int, now: datetime | None = None) -> list[str]:
    """`count` consecutive order numbers for today: YN + YYYYMMDD + six digits.

    One UPDATE ... RETURNING on the day's counter row (created on first use with
    INSERT ... ON CONFLICT DO NOTHING), so two checkouts never get the same number.
    """
    day = (now or utcnow()).astimezone(SHANGHAI).strftime("%Y%m%d")
    bump = (
        update(OrderNumberCounter)
        .where(OrderNumberCounter.day == day)
        .values(last=OrderNumberCounter.last + count)
        .returning(OrderNumberCounter.last)
    )
    last = session.execute(bump).scalar()
    if last is None:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(OrderNumberCounter)
            .values(day=day, last=0)
            .on_conflict_do_nothing(index_elements=["day"])
        )
        last = session.execute(bump).scalar_one()
    return [f"YN{day}{n:06d}" for n in range(last - count + 1, last + 1)]


def _payment_minutes() -> int:
    try:
        return int(current_app.config.get("ORDER_PAYMENT_MINUTES", 30))
    except RuntimeError:  # outside an app context (scripts)
        return 30


def place_orders(
    session: Session,
    buyer_id: int,
    requests: Iterable[LineRequest],
    address: Address,
    *,
    now: datetime | None = None,
) -> list[Order]:
    """Check out: take the stock, split into one order per cooperative, and open one
    PaymentIntent for them all. The caller commits (and the expiry tasks go after).

    The day's order-number counter is a single hot row, so it is taken last, just before
    the orders are written: every checkout holds its lock only for those few statements
    and the commit.
    """
    now = now or utcnow()
    division_code, fields = clean_address(address)
    wanted = _merge_lines(requests)
    if not wanted:
        raise EmptyCartError("nothing to order")
    # Product-id order (from _merge_lines): two carts can never deadlock on their rows.
    keeper = batch_stock()
    taken: dict[int, Taken] = {}
    from_batches: dict[int, list[tuple[int, int]]] = {}
    for req in wanted:
        taken[req.product_id] = take_stock(session, *astuple(req))
        if keeper is not None:
            # The product's row is locked now, so its batches are counted by us alone.
            from_batches[req.product_id] = keeper.take(session, req.product_id, req.quantity)
    by_coop: dict[int, list[LineRequest]] = {}
    for req in wanted:
        by_coop.setdefault(taken[req.product_id].cooperative_id, []).append(req)
    expires_at = now + timedelta(minutes=_payment_minutes())
    titles = [taken[req.product_id].title for req in wanted]
    intent = payments.create_intent(
        session,
        amount=sum(r.unit_price_fen * r.quantity for r in wanted),
        description=_subject(titles),
        metadata={"buyer": str(buyer_id)},
        expires_at=expires_at,
    )
    session.execute(
        delete(CartItem).where(
            CartItem.user_id == buyer_id, CartItem.product_id.in_([r.product_id for r in wanted])
        )
    )
    numbers = allocate_numbers(session, len(by_coop), now)
    orders: list[Order] = []
    for number, (coop_id, reqs) in zip(numbers, sorted(by_coop.items()), strict=True):
        order = Order(
            number=number,
            buyer_id=buyer_id,
            cooperative_id=coop_id,
            status=OrderStatus.PENDING_PAYMENT,
            total_fen=sum(r.unit_price_fen * r.quantity for r in reqs),
            refunded_fen=0,
            payment_intent_id=intent.id,
            division_code=division_code,
            expires_at=expires_at,
            created_at=now,
            **fields,
        )
        for req in reqs:
            product = taken[req.product_id]
            order.lines.append(
                OrderLine(
                    product_id=product.product_id,
                    farmer_id=product.farmer_id,
                    title=product.title,
                    unit=product.unit,
                    unit_price_fen=req.unit_price_fen,
                    quantity=req.quantity,
                )
            )
        order.events.append(
            OrderEvent(
                action="place",
                from_status=OrderStatus.PENDING_PAYMENT,
                to_status=OrderStatus.PENDING_PAYMENT,
                actor_id=buyer_id,
                created_at=now,
            )
        )
        session.add(order)
        orders.append(order)
    intent.metadata_ = {**intent.metadata_, "orders": ",".join(numbers)}
    session.flush()
    if keeper is not None:
        keeper.record(
            session,
            {
                line.id: from_batches[line.product_id]
                for order in orders
                for line in order.lines
                if from_batches.get(line.product_id)
            },
        )
    _schedule_expiry(session, [o.id for o in orders], expires_at)
    return orders


def _schedule_expiry(session: Session, order_ids: list[int], expires_at: datetime) -> None:
    from market.orders import tasks

    delay = max(0, int((expires_at - utcnow()).total_seconds()) + 5)
    for order_id in order_ids:
        payments.after_commit(
            session,
            lambda order_id=order_id: tasks.expire_unpaid_order.apply_async(
                (order_id,), countdown=delay
            ),
        )


def _subject(titles: list[str]) -> str:
    """The payment's subject as the buyer sees it in Alipay, e.g. 粤农优品 新会陈皮 等2件商品."""
    text = f"粤农优品 {titles[0]}" + (f" 等{len(titles)}件商品" if len(titles) > 1 else "")
    return text[:120]


# --- reading -------------------------------------------------------------------------


def get_order(session: Session, order_id: int, *, lock: bool = False) -> Order:
    query = select(Order).where(Order.id == order_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    order = session.scalars(query).first()
    if order is None:
        raise NotFoundError("no such order")
    return order


def orders_of_buyer(session: Session, buyer_id: int, *, limit: int = 50) -> list[Order]:
    return list(
        session.scalars(
            select(Order)
            .options(selectinload(Order.lines), selectinload(Order.cooperative))
            .where(Order.buyer_id == buyer_id)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
        )
    )


def orders_of_payment(session: Session, intent_id: str) -> list[Order]:
    return list(
        session.scalars(
            select(Order)
            .options(selectinload(Order.lines), selectinload(Order.cooperative))
            .where(Order.payment_intent_id == intent_id)
            .order_by(Order.id)
        )
    )


#: What the packing page shows, by tab.
PACKING_TABS: dict[str, tuple[OrderStatus, ...]] = {
    "to_pack": (OrderStatus.PAID,),
    "to_ship": (OrderStatus.PACKED,),
    "refunds": (OrderStatus.REFUND_REQUESTED,),
    "shipped": (OrderStatus.SHIPPED, OrderStatus.DELIVERED),
    "done": (OrderStatus.COMPLETED, OrderStatus.REFUNDED, OrderStatus.CANCELLED),
}


def _handled_by(query, user: User):
    """Limit an Order query to what this seller handles (the admin: the whole cooperative;
    a farmer: orders with a line of their products)."""
    query = query.where(Order.cooperative_id == user.cooperative_id)
    if user.role is not Role.COOP_ADMIN:
        query = query.where(
            exists(
                select(OrderLine.id).where(
                    OrderLine.order_id == Order.id, OrderLine.farmer_id == user.id
                )
            )
        )
    return query


def orders_to_handle(
    session: Session, user: User, tab: str = "to_pack", *, limit: int = 100
) -> list[Order]:
    """A cooperative admin: the cooperative's orders. A farmer: orders with their lines."""
    statuses = PACKING_TABS.get(tab, PACKING_TABS["to_pack"])
    oldest_first = tab in ("to_pack", "to_ship")  # the longest-waiting parcel goes first
    query = _handled_by(
        select(Order)
        .options(selectinload(Order.lines), selectinload(Order.buyer))
        .where(Order.status.in_(statuses))
        .order_by(
            Order.paid_at.asc() if oldest_first else Order.created_at.desc(),
            Order.id,
        )
        .limit(limit),
        user,
    )
    return list(session.scalars(query))


def counts_to_handle(session: Session, user: User) -> dict[str, int]:
    """How many orders wait in each tab, in one grouped query."""
    query = _handled_by(select(Order.status, func.count()).group_by(Order.status), user)
    by_status = dict(session.execute(query).all())
    return {
        tab: sum(by_status.get(status, 0) for status in statuses)
        for tab, statuses in PACKING_TABS.items()
    }


# --- state moves ---------------------------------------------------------------------


def transition(
    session: Session, order: Order, action: str, *, actor_id: int | None = None, note: str = ""
) -> Order:
    """Apply one move from TRANSITIONS, or refuse it."""
    move = TRANSITIONS[action]
    if order.status not in move.sources:
        raise IllegalTransitionError(action, order.status)
    before = order.status
    if move.target is None:
        target = order.status_before_refund or OrderStatus.PAID
        order.status_before_refund = None
    else:
        target = move.target
    if action == "request_refund":
        order.status_before_refund = before
    order.status = target
    now = utcnow()
    if move.stamp:
        setattr(order, move.stamp, now)
    order.events.append(
        OrderEvent(
            action=action,
            from_status=before,
            to_status=target,
            actor_id=actor_id,
            note=note[:200],
            created_at=now,
        )
    )
    session.flush()
    return order


def lock_checkout(session: Session, order_id: int) -> tuple[Order, PaymentIntent | None]:
    """Lock the order's payment, then the order: the order the notify handler locks in,
    so a buyer's click and Alipay's notify can never deadlock."""
    for _ in range(3):
        intent_id = get_order(session, order_id).payment_intent_id
        intent = payments.get_intent(session, intent_id, lock=True) if intent_id else None
        order = get_order(session, order_id, lock=True)
        if order.payment_intent_id == intent_id:
            return order, intent
    raise ConflictError("the order's payment keeps changing; try again")


def _group(session: Session, order: Order) -> list[Order]:
    """The unpaid orders that share this order's payment (one checkout)."""
    if order.payment_intent_id is None:
        return [order]
    return list(
        session.scalars(
            select(Order)
            .where(
                Order.payment_intent_id == order.payment_intent_id,
                Order.status == OrderStatus.PENDING_PAYMENT,
            )
            .order_by(Order.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def _cancel(session: Session, order: Order, *, actor_id: int | None, reason: str) -> None:
    transition(session, order, "cancel", actor_id=actor_id, note=reason)
    order.cancel_reason = reason
    put_back_stock(session, order)


def cancel_order(session: Session, order_id: int, *, actor_id: int | None) -> Order:
    """The buyer cancels before paying. The payment is shrunk (its open Alipay trade
    closed first) or cancelled. If the buyer turns out to have paid, the order comes back
    paid instead; the caller must look at the status."""
    order, intent = lock_checkout(session, order_id)
    if order.status is not OrderStatus.PENDING_PAYMENT:
        raise IllegalTransitionError("cancel", order.status)
    if intent is not None:
        rest = sum(o.total_fen for o in _group(session, order) if o.id != order.id)
        if not intent.status.is_final:
            if rest > 0:
                intent = payments.update_amount(session, intent.id, rest)
            else:
                intent = payments.cancel_intent(session, intent.id, reason="requested_by_customer")
        if intent.status is IntentStatus.SUCCEEDED:
            session.refresh(order)
            return order
    _cancel(session, order, actor_id=actor_id, reason="buyer")
    return order


def expire_unpaid(session: Session, order_id: int, *, now: datetime | None = None) -> list[Order]:
    """Cancel an unpaid checkout past its time and put the stock back. Idempotent: does
    nothing if the order is paid, cancelled, or not yet due. Closes the Alipay trade
    first; if the buyer paid after all, the orders end up paid."""
    now = now or utcnow()
    order = get_order(session, order_id)
    if order.status is not OrderStatus.PENDING_PAYMENT or order.expires_at > now:
        return []
    order, intent = lock_checkout(session, order_id)
    if order.status is not OrderStatus.PENDING_PAYMENT:
        return []
    if intent is not None:
        if not intent.status.is_final:
            intent = payments.cancel_intent(session, intent.id, reason="abandoned")
        if intent.status is IntentStatus.SUCCEEDED:
            return []
    expired = [o for o in _group(session, order) if o.expires_at <= now]
    for item in expired:
        _cancel(session, item, actor_id=None, reason="expired")
    return expired


def overdue_order_ids(session: Session, *, now: datetime | None = None, limit: int = 500):
    now = now or utcnow()
    return list(
        session.scalars(
            select(Order.id)
            .where(Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at <= now)
            .order_by(Order.expires_at)
            .limit(limit)
        )
    )


def prepare_payment(session: Session, order_id: int) -> PaymentIntent:
    """The intent to pay this order and the other unpaid orders of its checkout with:
    the current one (its amount brought up to date), or a new one if that was cancelled.
    The caller confirms it. An intent already processing or paid is returned as it is."""
    order, intent = lock_checkout(session, order_id)
    if order.status is not OrderStatus.PENDING_PAYMENT:
        raise IllegalTransitionError("pay", order.status)
    if order.expires_at <= utcnow() + timedelta(minutes=1):
        raise OrderExpiredError("the order is past its payment time")
    group = _group(session, order)
    amount = sum(o.total_fen for o in group)
    if intent is not None and intent.status is IntentStatus.PROCESSING:
        return intent
    usable = intent is not None and intent.status in (
        IntentStatus.REQUIRES_PAYMENT_METHOD,
        IntentStatus.REQUIRES_ACTION,
    )
    if usable:
        if intent.amount != amount:
            intent = payments.update_amount(session, intent.id, amount)
        return intent
    intent = payments.create_intent(
        session,
        amount=amount,
        description=_subject([line.title for o in group for line in o.lines]),
        metadata={"orders": ",".join(o.number for o in group), "buyer": str(order.buyer_id)},
        expires_at=min(o.expires_at for o in group),
    )
    for item in group:
        item.payment_intent_id = intent.id
    session.flush()
    return intent


def _lines_of(order: Order, farmer_id: int) -> list[OrderLine]:
    return [line for line in order.lines if line.farmer_id == farmer_id]


def pack(session: Session, order_id: int, actor: User) -> Order:
    """A farmer marks their lines packed; the admin (or the last farmer) packs the order."""
    order = get_order(session, order_id, lock=True)
    if order.status is not OrderStatus.PAID:
        raise IllegalTransitionError("pack", order.status)
    now = utcnow()
    mine = order.lines if actor.role is Role.COOP_ADMIN else _lines_of(order, actor.id)
    for line in mine:
        line.packed_at = line.packed_at or now
    if all(line.packed_at for line in order.lines):
        transition(session, order, "pack", actor_id=actor.id)
    session.flush()
    return order


def ship(session: Session, order_id: int, actor_id: int) -> Order:
    order = get_order(session, order_id, lock=True)
    return transition(session, order, "ship", actor_id=actor_id)


def deliver(session: Session, order_id: int, actor_id: int | None) -> Order:
    order = get_order(session, order_id, lock=True)
    return transition(session, order, "deliver", actor_id=actor_id)


def confirm_receipt(session: Session, order_id: int, buyer_id: int) -> Order:
    """The buyer has the parcel: shipped/delivered -> completed."""
    order = get_order(session, order_id, lock=True)
    if order.status is OrderStatus.SHIPPED:
        transition(session, order, "deliver", actor_id=buyer_id, note="buyer confirmed receipt")
    return transition(session, order, "complete", actor_id=buyer_id)


def request_refund(
    session: Session, order_id: int, buyer_id: int, amount_fen: int, reason: str
) -> Order:
    order = get_order(session, order_id, lock=True)
    left = order.total_fen - order.refunded_fen
    if amount_fen < 1 or amount_fen > left:
        raise RefundAmountError(f"refund must be 1..{left} fen", field="amount")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("a reason is required", field="reason", code="required")
    transition(session, order, "request_refund", actor_id=buyer_id, note=reason)
    order.refund_requested_fen = amount_fen
    order.refund_reason = reason[:200]
    return order


def decide_refund(
    session: Session, order_id: int, actor_id: int, *, approve: bool, amount_fen: int | None = None
) -> Refund | None:
    """The cooperative declines a request, or approves it: a pending refund is recorded
    against the payment. The caller commits, then has it paid (`payments.attempt_refund`);
    the order moves when the money has gone back. Returns the refund to pay, if any."""
    order, _intent = lock_checkout(session, order_id)
    if order.status is not OrderStatus.REFUND_REQUESTED:
        raise IllegalTransitionError("refund" if approve else "resume", order.status)
    if not approve:
        transition(session, order, "resume", actor_id=actor_id, note="refund declined")
        order.refund_requested_fen = None
        return None
    if _pending_refund(session, order) is not None:
        return None  # already refunding; the outcome arrives on its own
    amount = amount_fen or order.refund_requested_fen or 0
    left = order.total_fen - order.refunded_fen
    if amount < 1 or amount > left:
        raise RefundAmountError(f"refund must be 1..{left} fen", field="amount")
    return payments.create_refund(
        session,
        payment_intent=order.payment_intent_id,
        amount=amount,
        reason=order.refund_reason or "",
        metadata={"order_id": str(order.id), "order": order.number, "by": str(actor_id)},
    )


def _pending_refund(session: Session, order: Order) -> Refund | None:
    if order.payment_intent_id is None:
        return None
    for refund in session.scalars(
        select(Refund).where(
            Refund.payment_intent_id == order.payment_intent_id,
            Refund.status == RefundStatus.PENDING,
        )
    ):
        if refund.metadata_.get("order_id") == str(order.id):
            return refund
    return None


def refund_in_progress(session: Session, order: Order) -> bool:
    return _pending_refund(session, order) is not None


# --- what payments tell us ------------------------------------------------------------


def on_intent_succeeded(intent: PaymentIntent, *, session: Session, **_: object) -> None:
    """Payment arrived: the checkout's unpaid orders are paid (same transaction)."""
    from market.orders import tasks

    paid: list[int] = []
    for order in session.scalars(
        select(Order)
        .where(Order.payment_intent_id == intent.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ):
        if order.status is OrderStatus.PENDING_PAYMENT:
            transition(session, order, "pay", note=f"payment {intent.id}")
            paid.append(order.id)
        else:
            log.error(
                "payment %s arrived for order %s in %s", intent.id, order.number, order.status.value
            )
    for order_id in paid:
        payments.after_commit(
            session, lambda order_id=order_id: tasks.notify_order.delay(order_id, "paid")
        )


def on_refund_succeeded(refund: Refund, *, session: Session, **_: object) -> None:
    from market.orders import tasks

    order_id = (refund.metadata_ or {}).get("order_id")
    if not order_id or not str(order_id).isdigit():
        return
    order = get_order(session, int(order_id), lock=True)
    order.refunded_fen += refund.amount
    order.refund_requested_fen = None
    if order.status is OrderStatus.REFUND_REQUESTED:
        if order.refunded_fen >= order.total_fen:
            restock = order.status_before_refund in NOT_SHIPPED
            transition(session, order, "refund", note=f"refund {refund.id}")
            if restock:
                put_back_stock(session, order)
        else:
            transition(session, order, "resume", note=f"partial refund {refund.id}")
    payments.after_commit(session, lambda: tasks.notify_order.delay(order.id, "refunded"))


def on_refund_failed(refund: Refund, *, session: Session, **_: object) -> None:
    order_id = (refund.metadata_ or {}).get("order_id")
    if not order_id or not str(order_id).isdigit():
        return
    order = get_order(session, int(order_id), lock=True)
    if order.status is OrderStatus.REFUND_REQUESTED:
        transition(session, order, "resume", note=f"refund failed: {refund.failure_reason}")


def connect_payment_signals() -> None:
    payments.intent_succeeded.connect(on_intent_succeeded)
    payments.refund_succeeded.connect(on_refund_succeeded)
    payments.refund_failed.connect(on_refund_failed)
