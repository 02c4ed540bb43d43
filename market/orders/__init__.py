"""Cart and orders: a cart that never oversells, one order per cooperative.

Rooms: models.py (orders, lines, the transition table, cart items), cart.py (session
and account carts), services.py (checkout, stock, state moves, refunds), views.py,
forms.py, tasks.py.
"""

from __future__ import annotations

import logging

from flask import Flask

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Merge a visitor's cart on sign-in, follow payments, and give templates helpers."""
    from flask_login import user_logged_in

    from market.orders import services, tasks  # noqa: F401 - registers the tasks

    services.connect_payment_signals()
    user_logged_in.connect(_merge_cart_on_login, app)

    @app.context_processor
    def _cart_count() -> dict:
        from flask import session
        from flask_login import current_user

        from market.extensions import db
        from market.orders import cart

        if current_user.is_authenticated:
            store: cart.Cart = cart.DbCart(db.session, current_user.id)
        else:
            store = cart.SessionCart(session)
        return {"cart_count": cart.count(store)}

    from market.orders.views import event_note, status_label
    from market.orders.visibility import contact_for

    app.jinja_env.globals["order_status_label"] = status_label
    app.jinja_env.globals["order_event_note"] = event_note
    app.jinja_env.globals["order_contact"] = contact_for


def _merge_cart_on_login(sender: Flask, user, **_: object) -> None:
    """Fold the visitor's cart into the account's. Sign-in has committed already, so
    this commits its own work; a failure keeps the visitor's cart and signs in anyway."""
    from flask import session

    from market.extensions import db
    from market.orders import cart

    visitor = cart.SessionCart(session)
    quantities = visitor.quantities()
    if not quantities:
        return
    try:
        cart.merge(db.session, user.id, quantities)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("could not merge the cart of user %s", user.id)
        return
    visitor.clear()
