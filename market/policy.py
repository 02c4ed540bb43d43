"""The one place that answers "may this user do this to that?".

Views and APIs call `can()` (or `authorize()` in market.web); they never test roles
inline. Each action is a small function of (user, target) so the rules read as a table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from market.auth.models import Role, User
from market.catalog.models import Product
from market.cooperatives.models import Cooperative, CooperativeStatus

Rule = Callable[[User | None, Any], bool]
RULES: dict[str, Rule] = {}


def rule(action: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES[action] = fn
        return fn

    return register


def can(user: Any, action: str, target: Any = None) -> bool:
    """True when `user` (None or anonymous for visitors) may do `action` to `target`."""
    if action not in RULES:
        raise KeyError(f"unknown policy action {action!r}")
    if user is not None and (not getattr(user, "is_authenticated", False) or not user.active):
        user = None
    return RULES[action](user, target)


def _is(user: User | None, *roles: Role) -> bool:
    return user is not None and user.role in roles


def is_platform_admin(user: User | None) -> bool:
    return _is(user, Role.PLATFORM_ADMIN)


def in_scope(user: User | None, division_code: str | None) -> bool:
    """Whether a 供销社 staff member's division contains `division_code`."""
    if user is None or user.role is not Role.SUPPLY_STAFF or not user.division_code:
        return False
    if not division_code:
        return False
    scope = user.division_code
    if scope.endswith("0000"):  # a province
        return division_code[:2] == scope[:2]
    if scope.endswith("00"):  # a prefecture-level city
        return division_code[:4] == scope[:4]
    return division_code == scope


# --- accounts ---------------------------------------------------------------


@rule("account.manage_own")
def _account_manage_own(user: User | None, _target: Any) -> bool:
    return user is not None


@rule("user.view_phone")
def _user_view_phone(user: User | None, target: User) -> bool:
    """Full phone numbers: the owner, a platform admin, and the admin of the owner's
    cooperative (who manages that member)."""
    if user is None or target is None:
        return False
    if user.id == target.id or is_platform_admin(user):
        return True
    return (
        user.role is Role.COOP_ADMIN
        and user.cooperative_id is not None
        and user.cooperative_id == target.cooperative_id
    )


@rule("staff.manage")
def _staff_manage(user: User | None, _target: Any) -> bool:
    return is_platform_admin(user)


@rule("admin.access")
def _admin_access(user: User | None, _target: Any) -> bool:
    return is_platform_admin(user)


# --- cooperatives -----------------------------------------------------------


@rule("cooperative.view")
def _coop_view(user: User | None, coop: Cooperative) -> bool:
    if coop.status is CooperativeStatus.APPROVED:
        return True
    if user is None:
        return False
    return (
        is_platform_admin(user)
        or user.cooperative_id == coop.id
        or in_scope(user, coop.division_code)
    )


@rule("cooperative.apply")
def _coop_apply(user: User | None, _target: Any) -> bool:
    """A buyer who belongs to no cooperative may apply to register one."""
    return _is(user, Role.BUYER) and user.cooperative_id is None


@rule("cooperative.create")
def _coop_create(user: User | None, _target: Any) -> bool:
    return is_platform_admin(user)


@rule("cooperative.review")
def _coop_review(user: User | None, _target: Any) -> bool:
    return is_platform_admin(user)


@rule("cooperative.manage")
def _coop_manage(user: User | None, coop: Cooperative) -> bool:
    """Edit the profile and manage members: that cooperative's admin, or the platform."""
    if is_platform_admin(user):
        return True
    return (
        _is(user, Role.COOP_ADMIN)
        and coop is not None
        and user.cooperative_id == coop.id
        and coop.status is CooperativeStatus.APPROVED
    )


@rule("cooperative.oversee")
def _coop_oversee(user: User | None, coop: Cooperative) -> bool:
    """Read a cooperative's members and figures: its admin, 供销社 staff in scope, the
    platform."""
    if coop is None:
        return False
    return _coop_manage(user, coop) or in_scope(user, coop.division_code)


# --- catalog ----------------------------------------------------------------


def _seller(user: User | None) -> bool:
    """A farmer or cooperative admin of an approved cooperative."""
    return (
        _is(user, Role.FARMER, Role.COOP_ADMIN)
        and user.cooperative is not None
        and user.cooperative.status is CooperativeStatus.APPROVED
    )


@rule("product.create")
def _product_create(user: User | None, _target: Any) -> bool:
    return _seller(user)


@rule("product.list_own")
def _product_list_own(user: User | None, _target: Any) -> bool:
    return _seller(user)


@rule("product.edit")
def _product_edit(user: User | None, product: Product) -> bool:
    """A farmer edits the products they listed; a cooperative admin all of the
    cooperative's. Nobody else, the platform included."""
    if product is None or not _seller(user) or user.cooperative_id != product.cooperative_id:
        return False
    return user.role is Role.COOP_ADMIN or product.farmer_id == user.id


@rule("product.view")
def _product_view(user: User | None, product: Product) -> bool:
    """On-sale and sold-out products of approved cooperatives are public; drafts and
    archived ones only for those who may edit them."""
    if product is None:
        return False
    if product.is_listed and product.cooperative.status is CooperativeStatus.APPROVED:
        return True
    return _product_edit(user, product)


@rule("product.import")
def _product_import(user: User | None, coop: Cooperative) -> bool:
    return (
        coop is not None
        and _is(user, Role.COOP_ADMIN)
        and user.cooperative_id == coop.id
        and coop.status is CooperativeStatus.APPROVED
    )


# --- orders -----------------------------------------------------------------
# Targets are market.orders.models.Order (duck-typed here: buyer_id, cooperative_id,
# lines[].farmer_id), so this module does not import the orders package.


def _buys(user: User | None, order: Any) -> bool:
    return user is not None and order is not None and order.buyer_id == user.id


def _ships(user: User | None, order: Any) -> bool:
    """Those who must ship it: the cooperative's admin and the farmers with lines in it."""
    if user is None or order is None or user.cooperative_id != order.cooperative_id:
        return False
    if user.role is Role.COOP_ADMIN:
        return True
    return user.role is Role.FARMER and any(line.farmer_id == user.id for line in order.lines)


@rule("order.place")
def _order_place(user: User | None, _target: Any) -> bool:
    return user is not None


@rule("order.view")
def _order_view(user: User | None, order: Any) -> bool:
    return _buys(user, order) or _ships(user, order) or is_platform_admin(user)


@rule("order.view_contact")
def _order_view_contact(user: User | None, order: Any) -> bool:
    """The buyer's phone and address: the buyer, and only those who must ship."""
    return _buys(user, order) or _ships(user, order)


@rule("order.pay")
def _order_pay(user: User | None, order: Any) -> bool:
    return _buys(user, order)


@rule("order.cancel")
def _order_cancel(user: User | None, order: Any) -> bool:
    return _buys(user, order)


@rule("order.confirm_receipt")
def _order_confirm_receipt(user: User | None, order: Any) -> bool:
    return _buys(user, order)


@rule("order.request_refund")
def _order_request_refund(user: User | None, order: Any) -> bool:
    return _buys(user, order)


@rule("order.pack")
def _order_pack(user: User | None, order: Any) -> bool:
    return _ships(user, order)


@rule("order.ship")
def _order_ship(user: User | None, order: Any) -> bool:
    """The admin, or a farmer whose products are the whole parcel."""
    if not _ships(user, order):
        return False
    return user.role is Role.COOP_ADMIN or all(line.farmer_id == user.id for line in order.lines)


@rule("order.deliver")
def _order_deliver(user: User | None, order: Any) -> bool:
    return _ships(user, order) and user.role is Role.COOP_ADMIN


@rule("order.decide_refund")
def _order_decide_refund(user: User | None, order: Any) -> bool:
    if order is None:
        return False
    return is_platform_admin(user) or (
        _is(user, Role.COOP_ADMIN) and user.cooperative_id == order.cooperative_id
    )


@rule("orders.handle")
def _orders_handle(user: User | None, _target: Any) -> bool:
    """The "orders to pack" pages: farmers and cooperative admins of a cooperative."""
    return _is(user, Role.FARMER, Role.COOP_ADMIN) and user.cooperative_id is not None


# --- reports ----------------------------------------------------------------
# Targets are market.reports.services.Node (duck-typed: level, division_code,
# cooperative_id), so this module does not import the reports package.


@rule("reports.access")
def _reports_access(user: User | None, _target: Any) -> bool:
    """Opening the dashboards at all: the platform, 供销社 staff, and the admin of an
    approved cooperative."""
    if is_platform_admin(user):
        return True
    if _is(user, Role.SUPPLY_STAFF):
        return bool(user.division_code)
    return (
        _is(user, Role.COOP_ADMIN)
        and user.cooperative is not None
        and user.cooperative.status is CooperativeStatus.APPROVED
    )


@rule("report.view")
def _report_view(user: User | None, node: Any) -> bool:
    """One place's figures: the platform sees all; 供销社 staff the places in their city
    or county and the cooperatives there; a cooperative admin their own cooperative."""
    if node is None or not _reports_access(user, None):
        return False
    if is_platform_admin(user):
        return True
    if user.role is Role.COOP_ADMIN:
        return node.level == "cooperative" and user.cooperative_id == node.cooperative_id
    return in_scope(user, node.division_code)


# --- logistics --------------------------------------------------------------
# Targets are orders (as above), logistics.models.Shipment (duck-typed: .order), and
# cooperatives, or None for the platform's own read points and readers (a 供销社 hub).


@rule("logistics.view")
def _logistics_view(user: User | None, _target: Any) -> bool:
    """The logistics pages: members of an approved cooperative, and the platform."""
    return _seller(user) or is_platform_admin(user)


@rule("logistics.pack")
def _logistics_pack(user: User | None, order: Any) -> bool:
    """Pack an order with trace codes: those who pack it (see order.pack)."""
    return _order_pack(user, order)


@rule("shipment.create")
def _shipment_create(user: User | None, order: Any) -> bool:
    """Hand an order to a carrier: those who may mark it shipped."""
    return _order_ship(user, order)


@rule("shipment.manage")
def _shipment_manage(user: User | None, shipment: Any) -> bool:
    """Record checkpoints, exceptions and temperatures by hand: those who ship the order,
    and the platform."""
    if shipment is None:
        return False
    return is_platform_admin(user) or _ships(user, shipment.order)


@rule("shipment.view")
def _shipment_view(user: User | None, shipment: Any) -> bool:
    """A shipment's page and EPCIS export: those who manage it, the buyer, and 供销社
    staff whose area holds the cooperative."""
    if shipment is None:
        return False
    return (
        _shipment_manage(user, shipment)
        or _buys(user, shipment.order)
        or in_scope(user, shipment.order.cooperative.division_code)
    )


@rule("reader.manage")
def _reader_manage(user: User | None, coop: Cooperative | None) -> bool:
    """Read points, RFID readers and their quarantine list: the cooperative's admin, and
    the platform (which alone runs platform-wide ones: target None)."""
    if is_platform_admin(user):
        return True
    return (
        coop is not None
        and _is(user, Role.COOP_ADMIN)
        and user.cooperative_id == coop.id
        and coop.status is CooperativeStatus.APPROVED
    )
