"""The one place that answers "may this user do this to that?".

Views and APIs call `can()` (or `authorize()` in market.web); they never test roles
inline. Each action is a small function of (user, target) so the rules read as a table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from market.auth.models import Role, User
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
