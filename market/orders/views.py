"""Cart, checkout, my orders, the payment result page, and the packing pages."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from market import places
from market.errors import DomainError
from market.extensions import db
from market.money import format_fen
from market.orders import cart as carts
from market.orders import services
from market.orders.forms import (
    AddToCartForm,
    CartLineForm,
    CheckoutForm,
    EmptyForm,
    RefundDecisionForm,
    RefundRequestForm,
)
from market.orders.models import Order, OrderStatus
from market.payments import services as payments
from market.payments.interfaces import ProviderError, ProviderUnavailableError
from market.payments.models import IntentStatus, PaymentIntent
from market.payments.providers import request_is_mobile
from market.views import safe_next
from market.web import authorize

bp = Blueprint("orders", __name__)

STATUS_LABELS = {
    OrderStatus.PENDING_PAYMENT: _l("Awaiting payment"),
    OrderStatus.PAID: _l("Paid"),
    OrderStatus.PACKED: _l("Ready to ship"),
    OrderStatus.SHIPPED: _l("Shipped"),
    OrderStatus.DELIVERED: _l("Delivered"),
    OrderStatus.COMPLETED: _l("Completed"),
    OrderStatus.CANCELLED: _l("Cancelled"),
    OrderStatus.REFUND_REQUESTED: _l("Refund requested"),
    OrderStatus.REFUNDED: _l("Refunded"),
}

TAB_LABELS = {
    "to_pack": _l("To pack"),
    "to_ship": _l("To ship"),
    "refunds": _l("Refund requests"),
    "shipped": _l("Shipped"),
    "done": _l("Finished"),
}


def status_label(status: OrderStatus) -> str:
    return str(STATUS_LABELS.get(status, status.value))


def event_note(event) -> str:
    """What to tell people about a history entry (notes are stored as codes)."""
    if event.action == "cancel":
        notes = {"buyer": _("cancelled by the buyer"), "expired": _("not paid in time")}
        return notes.get(event.note, "")
    if event.action == "request_refund":
        return event.note
    if event.action == "resume":
        if event.note.startswith("partial refund"):
            return _("part of the money was refunded")
        if event.note.startswith("refund failed"):
            return _("the refund failed")
        return _("the refund request was declined")
    if event.action == "deliver" and event.note:
        return _("confirmed by the buyer")
    return ""


def current_cart() -> carts.Cart:
    if current_user.is_authenticated:
        return carts.DbCart(db.session, current_user.id)
    return carts.SessionCart(session)


def _order_or_404(order_id: int) -> Order:
    return db.get_or_404(Order, order_id)


def _illegal(exc: services.IllegalTransitionError) -> str:
    return _(
        "This order is now “%(status)s”, so that step is not possible.",
        status=status_label(exc.status),
    )


def _stock_message(exc: DomainError) -> str:
    if isinstance(exc, services.OutOfStockError):
        if exc.left:
            return _("Only %(n)d left of %(name)s.", n=exc.left, name=exc.title)
        return _("%(name)s is sold out.", name=exc.title)
    if isinstance(exc, services.PriceChangedError):
        return _(
            "The price of %(name)s has changed to %(price)s. Please check and submit again.",
            name=exc.title,
            price=format_fen(exc.price_fen),
        )
    if isinstance(exc, services.ProductUnavailableError | carts.UnavailableError):
        return _("%(name)s cannot be bought at the moment.", name=getattr(exc, "title", "") or "")
    return _("Something in your cart has changed. Please check it again.")


# --- cart --------------------------------------------------------------------------------


@bp.get("/cart")
def cart():
    the_cart = current_cart()
    lines = carts.lines(db.session, the_cart)
    return render_template(
        "orders/cart.html",
        groups=carts.grouped(lines),
        total_fen=sum(line.total_fen for line in lines if line.buyable),
        all_buyable=bool(lines) and all(line.buyable for line in lines),
        line_form=CartLineForm(formdata=None),
        remove_form=EmptyForm(),
    )


@bp.post("/cart/items")
def add_to_cart():
    form = AddToCartForm()
    back = safe_next(form.next.data, url_for("orders.cart"))
    if not form.validate_on_submit() or not (form.product_id.data or "").isdigit():
        flash(_("Choose a quantity between 1 and 999."), "error")
        return redirect(back, 303)
    try:
        added = carts.add(db.session, current_cart(), int(form.product_id.data), form.quantity.data)
    except DomainError as exc:
        db.session.rollback()
        if exc.code == "cart_full":
            flash(_("Your cart is full. Check out or remove something first."), "error")
        elif exc.code == "not_found":
            abort(404)
        else:
            flash(_("This product cannot be bought at the moment."), "error")
        return redirect(back, 303)
    db.session.commit()
    if added.capped:
        flash(
            _(
                "Only %(n)d %(unit)s in stock: your cart now has all of them.",
                n=added.quantity,
                unit=added.product.unit,
            ),
            "info",
        )
    else:
        flash(_("Added to your cart."), "success")
    return redirect(back, 303)


@bp.post("/cart/items/<int:product_id>")
def update_cart_item(product_id: int):
    form = CartLineForm()
    if not form.validate_on_submit():
        flash(_("Choose a quantity between 1 and 999."), "error")
        return redirect(url_for("orders.cart"), 303)
    try:
        changed = carts.set_quantity(db.session, current_cart(), product_id, form.quantity.data)
    except DomainError:
        db.session.commit()  # a sold-out line was removed
        flash(_("This product is sold out and was removed from your cart."), "error")
        return redirect(url_for("orders.cart"), 303)
    db.session.commit()
    if changed is not None and changed.capped:
        flash(_("Only %(n)d in stock.", n=changed.quantity), "info")
    return redirect(url_for("orders.cart"), 303)


@bp.post("/cart/items/<int:product_id>/remove")
def remove_cart_item(product_id: int):
    if EmptyForm().validate_on_submit():
        current_cart().remove(product_id)
        db.session.commit()
    return redirect(url_for("orders.cart"), 303)


# --- checkout ----------------------------------------------------------------------------


def _quote(lines: list[carts.CartLine]) -> str:
    return ";".join(f"{ln.product.id}:{ln.quantity}:{ln.product.price_fen}" for ln in lines)


def _parse_quote(text: str) -> list[services.LineRequest]:
    requests = []
    for part in (text or "").split(";"):
        bits = part.split(":")
        if len(bits) != 3 or not all(bit.isdigit() for bit in bits):
            return []
        requests.append(services.LineRequest(int(bits[0]), int(bits[1]), int(bits[2])))
    return requests


def _fill_places(form: CheckoutForm) -> None:
    """Options for the three selects, for the values chosen so far (Guangdong first)."""
    form.province_code.choices = [("", _("Choose a province")), *places.choices()]
    province = form.province_code.data or ""
    form.city_code.choices = [("", _("Choose a city"))] + (
        places.choices(province) if places.get(province) else []
    )
    city = form.city_code.data or ""
    counties = places.choices(city) if places.get(city) else []
    form.county_code.choices = [("", _("Choose a county or district")), *counties]


def _prefill(form: CheckoutForm) -> None:
    last = db.session.scalars(
        db.select(Order)
        .where(Order.buyer_id == current_user.id)
        .order_by(Order.created_at.desc())
        .limit(1)
    ).first()
    form.province_code.data = places.GUANGDONG
    if last is None:
        form.recipient.data = current_user.name
        form.phone.data = current_user.phone
        return
    chain = [places.get(last.division_code)]
    while chain[-1] is not None and chain[-1].parent_code:
        chain.append(places.get(chain[-1].parent_code))
    codes = {d.level: d.code for d in chain if d is not None}
    form.recipient.data = last.recipient
    form.phone.data = last.phone
    form.province_code.data = codes.get("province", places.GUANGDONG)
    form.city_code.data = codes.get("city", "")
    form.county_code.data = codes.get("county", "")
    form.address.data = last.address


ADDRESS_MESSAGES = {
    "recipient": _l("Enter the recipient's name."),
    "phone": _l("Enter an 11-digit mainland mobile number."),
    "province_code": _l("Choose a province."),
    "city_code": _l("Choose a city."),
    "county_code": _l("Choose a county or district."),
    "address": _l("Enter the street, building and room (4-120 characters)."),
}


@bp.route("/checkout", methods=["GET", "POST"])
@login_required
def checkout():
    authorize("order.place")
    the_cart = current_cart()
    lines = carts.lines(db.session, the_cart)
    if not lines:
        flash(_("Your cart is empty."), "info")
        return redirect(url_for("orders.cart"), 303)
    if not all(line.buyable for line in lines):
        flash(
            _("Some items in your cart are sold out or unavailable. Please adjust them."), "error"
        )
        return redirect(url_for("orders.cart"), 303)
    form = CheckoutForm()
    quote = _quote(lines)
    status = 200
    if request.method == "GET":
        _prefill(form)
        form.quote.data = quote
    elif "update_places" in request.form:
        # Without JavaScript: refill the city and county lists, check nothing yet.
        form.quote.data = quote
    elif form.validate_on_submit():
        if form.quote.data != quote:
            flash(_("Prices or quantities have changed. Please check and submit again."), "error")
            form.quote.data = quote
            status = 409
        else:
            response = _place(form)
            if response is not None:
                return response
            form.quote.data = _quote(carts.lines(db.session, current_cart()))
            status = 409 if not form.errors else 400
    else:
        status = 400
    _fill_places(form)
    lines = carts.lines(db.session, current_cart())
    return render_template(
        "orders/checkout.html",
        form=form,
        groups=carts.grouped(lines),
        total_fen=sum(line.total_fen for line in lines),
    ), status


def _place(form: CheckoutForm):
    address = services.Address(
        recipient=form.recipient.data or "",
        phone=form.phone.data or "",
        province_code=form.province_code.data or "",
        city_code=form.city_code.data or "",
        county_code=form.county_code.data or "",
        address=form.address.data or "",
        note=form.note.data or "",
    )
    try:
        orders = services.place_orders(
            db.session, current_user.id, _parse_quote(form.quote.data), address
        )
        intent = payments.confirm_intent(
            db.session,
            orders[0].payment_intent_id,
            return_url=url_for(
                "orders.payment_status", intent_id=orders[0].payment_intent_id, _external=True
            ),
            device="mobile" if request_is_mobile() else "desktop",
        )
    except services.InvalidAddressError as exc:
        db.session.rollback()
        field = getattr(form, exc.field or "", None)
        if field is not None:
            field.errors = [*list(field.errors), str(ADDRESS_MESSAGES.get(exc.field, ""))]
        return None
    except DomainError as exc:
        db.session.rollback()
        flash(_stock_message(exc), "error")
        return None
    target = payments.redirect_url(intent)
    db.session.commit()
    return redirect(target, 303)


@bp.get("/places/<code>")
def place_children(code: str):
    """Child divisions for the address selects: [{"code", "name"}]."""
    if code != "root" and places.get(code) is None:
        abort(404)
    parent = None if code == "root" else code
    return jsonify([{"code": c, "name": n} for c, n in places.choices(parent)])


# --- my orders ----------------------------------------------------------------------------


@bp.get("/orders")
@login_required
def my_orders():
    orders = services.orders_of_buyer(db.session, current_user.id)
    return render_template("orders/list.html", orders=orders)


@bp.get("/orders/<int:order_id>")
@login_required
def order_detail(order_id: int):
    order = _order_or_404(order_id)
    authorize("order.view", order)
    intent = (
        db.session.get(PaymentIntent, order.payment_intent_id) if order.payment_intent_id else None
    )
    return render_template(
        "orders/detail.html",
        order=order,
        intent=intent,
        refunding=services.refund_in_progress(db.session, order),
        action_form=EmptyForm(),
        decision_form=RefundDecisionForm(formdata=None),
    )


def _act(order_id: int, permission: str, run, done: str):
    order = _order_or_404(order_id)
    authorize(permission, order)
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(url_for("orders.order_detail", order_id=order_id), 303)
    try:
        run(order)
    except services.IllegalTransitionError as exc:
        db.session.rollback()
        flash(_illegal(exc), "error")
        return redirect(url_for("orders.order_detail", order_id=order_id), 303)
    except ProviderError:
        db.session.rollback()
        flash(_("The payment service is not answering. Please try again in a minute."), "error")
        return redirect(url_for("orders.order_detail", order_id=order_id), 303)
    db.session.commit()
    if done:
        flash(done, "success")
    return None


@bp.post("/orders/<int:order_id>/pay")
@login_required
def pay(order_id: int):
    order = _order_or_404(order_id)
    authorize("order.pay", order)
    back = redirect(url_for("orders.order_detail", order_id=order_id), 303)
    if not EmptyForm().validate_on_submit():
        return back
    try:
        intent = services.prepare_payment(db.session, order_id)
        if intent.status in (IntentStatus.REQUIRES_PAYMENT_METHOD, IntentStatus.REQUIRES_ACTION):
            intent = payments.confirm_intent(
                db.session,
                intent.id,
                return_url=url_for("orders.payment_status", intent_id=intent.id, _external=True),
                device="mobile" if request_is_mobile() else "desktop",
            )
    except services.IllegalTransitionError as exc:
        db.session.rollback()
        flash(_illegal(exc), "error")
        return back
    except (services.OrderExpiredError, payments.IntentExpiredError):
        db.session.rollback()
        flash(_("This order was not paid in time and can no longer be paid."), "error")
        return back
    except ProviderError:
        db.session.rollback()
        flash(_("The payment service is not answering. Please try again in a minute."), "error")
        return back
    intent_id, status, target = intent.id, intent.status, payments.redirect_url(intent)
    db.session.commit()
    if status is IntentStatus.REQUIRES_ACTION and target:
        return redirect(target, 303)
    return redirect(url_for("orders.payment_status", intent_id=intent_id), 303)


@bp.post("/orders/<int:order_id>/cancel")
@login_required
def cancel(order_id: int):
    outcome = {}

    def run(order: Order) -> None:
        outcome["order"] = services.cancel_order(db.session, order.id, actor_id=current_user.id)

    response = _act(order_id, "order.cancel", run, "")
    if response is not None:
        return response
    order = outcome["order"]
    if order.status is OrderStatus.CANCELLED:
        flash(_("The order has been cancelled."), "success")
    else:
        flash(_("Your payment has already arrived, so the order was not cancelled."), "info")
    return redirect(url_for("orders.order_detail", order_id=order_id), 303)


@bp.post("/orders/<int:order_id>/receive")
@login_required
def confirm_receipt(order_id: int):
    response = _act(
        order_id,
        "order.confirm_receipt",
        lambda order: services.confirm_receipt(db.session, order.id, current_user.id),
        _("Thank you! The order is complete."),
    )
    return response or redirect(url_for("orders.order_detail", order_id=order_id), 303)


@bp.post("/orders/<int:order_id>/pack")
@login_required
def pack(order_id: int):
    response = _act(
        order_id,
        "order.pack",
        lambda order: services.pack(db.session, order.id, current_user),
        _("Marked as packed."),
    )
    return response or redirect(_back_to_packing(), 303)


@bp.post("/orders/<int:order_id>/ship")
@login_required
def ship(order_id: int):
    from market.orders import tasks

    response = _act(
        order_id,
        "order.ship",
        lambda order: services.ship(db.session, order.id, current_user.id),
        _("Marked as shipped. The buyer has been told."),
    )
    if response is None:
        tasks.notify_order.delay(order_id, "shipped")
    return response or redirect(_back_to_packing(), 303)


@bp.post("/orders/<int:order_id>/deliver")
@login_required
def deliver(order_id: int):
    response = _act(
        order_id,
        "order.deliver",
        lambda order: services.deliver(db.session, order.id, current_user.id),
        _("Marked as delivered."),
    )
    return response or redirect(url_for("orders.order_detail", order_id=order_id), 303)


def _back_to_packing() -> str:
    return safe_next(request.form.get("next"), url_for("orders.to_pack"))


@bp.route("/orders/<int:order_id>/refund", methods=["GET", "POST"])
@login_required
def request_refund(order_id: int):
    from market.orders import tasks

    order = _order_or_404(order_id)
    authorize("order.request_refund", order)
    form = RefundRequestForm()
    if request.method == "GET":
        form.amount.data = (
            format_fen(order.total_fen - order.refunded_fen).lstrip("¥").replace(",", "")
        )
    elif form.validate_on_submit():
        try:
            services.request_refund(
                db.session, order.id, current_user.id, form.amount.fen, form.reason.data
            )
        except services.IllegalTransitionError as exc:
            db.session.rollback()
            flash(_illegal(exc), "error")
            return redirect(url_for("orders.order_detail", order_id=order_id), 303)
        except services.RefundAmountError:
            db.session.rollback()
            form.amount.errors = [
                _(
                    "You can ask for at most %(amount)s.",
                    amount=format_fen(order.total_fen - order.refunded_fen),
                )
            ]
        else:
            db.session.commit()
            tasks.notify_order.delay(order_id, "refund_requested")
            flash(_("Your refund request has been sent to the cooperative."), "success")
            return redirect(url_for("orders.order_detail", order_id=order_id), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("orders/refund.html", order=order, form=form), status


@bp.post("/orders/<int:order_id>/refund/decide")
@login_required
def decide_refund(order_id: int):
    order = _order_or_404(order_id)
    authorize("order.decide_refund", order)
    form = RefundDecisionForm()
    back = redirect(url_for("orders.order_detail", order_id=order_id), 303)
    if not form.validate_on_submit() or form.decision.data not in ("approve", "decline"):
        flash(_("Enter an amount in yuan, e.g. 12.30."), "error")
        return back
    approve = form.decision.data == "approve"
    try:
        refund = services.decide_refund(
            db.session,
            order.id,
            current_user.id,
            approve=approve,
            amount_fen=getattr(form.amount, "fen", None) if form.amount.data else None,
        )
        if refund is not None:
            # On our books first (see payments.create_refund), then paid.
            refund_id = refund.id
            db.session.commit()
            payments.attempt_refund(db.session, refund_id)
    except services.IllegalTransitionError as exc:
        db.session.rollback()
        flash(_illegal(exc), "error")
        return back
    except services.RefundAmountError:
        db.session.rollback()
        flash(
            _(
                "The refund must be between ¥0.01 and %(amount)s.",
                amount=format_fen(order.total_fen - order.refunded_fen),
            ),
            "error",
        )
        return back
    except (ProviderUnavailableError, ProviderError):
        db.session.rollback()
        flash(_("The payment service is not answering. Please try again in a minute."), "error")
        return back
    except DomainError:
        db.session.rollback()
        flash(_("The refund could not be made."), "error")
        return back
    db.session.commit()
    if not approve:
        flash(_("The refund request was declined."), "success")
    else:
        flash(_("The refund has been sent."), "success")
    return back


# --- the payment result page ----------------------------------------------------------------


@bp.get("/orders/payments/<intent_id>")
@login_required
def payment_status(intent_id: str):
    """Where the buyer lands after the cashier: "processing" until the notify (or our
    query) says the money arrived; never decided from the return alone."""
    intent = db.get_or_404(PaymentIntent, intent_id)
    orders = services.orders_of_payment(db.session, intent_id)
    if not orders:
        abort(404)
    for order in orders:
        authorize("order.view", order)
    if not any(order.buyer_id == current_user.id for order in orders):
        abort(403)
    return render_template(
        "orders/payment.html", intent=intent, orders=orders, action_form=EmptyForm()
    )


# --- orders to pack -------------------------------------------------------------------------


@bp.get("/orders/to-pack")
@login_required
def to_pack():
    authorize("orders.handle")
    tab = request.args.get("tab", "to_pack")
    if tab not in services.PACKING_TABS:
        tab = "to_pack"
    orders = services.orders_to_handle(db.session, current_user, tab)
    return render_template(
        "orders/to_pack.html",
        orders=orders,
        tab=tab,
        tabs=TAB_LABELS,
        counts=services.counts_to_handle(db.session, current_user),
        action_form=EmptyForm(),
    )
