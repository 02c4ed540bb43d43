"""Who may do what with batches, codes, labels and API tokens.

The rules join market.policy's registry (the one place views ask), registered when this
module is imported (by traceability.views). Targets are cooperatives, or anything with
a ``cooperative_id`` (a Batch, a LabelJob's batch, an ApiToken).
"""

from __future__ import annotations

from typing import Any

from market.auth.models import Role, User
from market.cooperatives.models import Cooperative
from market.policy import in_scope, is_platform_admin, rule


def _coop(target: Any) -> Cooperative | None:
    if isinstance(target, Cooperative):
        return target
    return getattr(target, "cooperative", None)


def _member(user: User | None, coop: Cooperative | None) -> bool:
    return (
        user is not None
        and coop is not None
        and user.role in (Role.FARMER, Role.COOP_ADMIN)
        and user.cooperative_id == coop.id
        and coop.is_approved
    )


@rule("trace.list")
def _trace_list(user: User | None, _target: Any) -> bool:
    """The batch list: members of a cooperative, 供销社 staff and the platform."""
    if user is None:
        return False
    if is_platform_admin(user) or user.role is Role.SUPPLY_STAFF:
        return True
    return user.role in (Role.FARMER, Role.COOP_ADMIN) and user.cooperative_id is not None


@rule("trace.manage")
def _trace_manage(user: User | None, target: Any) -> bool:
    """Record batches, inputs, inspections and events; issue codes; print labels: the
    cooperative's farmers and admin, and the platform."""
    return is_platform_admin(user) or _member(user, _coop(target))


@rule("trace.view")
def _trace_view(user: User | None, target: Any) -> bool:
    """Read a batch's records behind the scenes: those who manage it, and 供销社 staff
    whose area holds the cooperative."""
    coop = _coop(target)
    return _trace_manage(user, target) or (coop is not None and in_scope(user, coop.division_code))


@rule("trace.tokens")
def _trace_tokens(user: User | None, target: Any) -> bool:
    """Mint and revoke a cooperative's API tokens: its admin and the platform. With no
    target: platform-wide tokens, the platform only."""
    if is_platform_admin(user):
        return True
    coop = _coop(target)
    return (
        coop is not None
        and user is not None
        and user.role is Role.COOP_ADMIN
        and _member(user, coop)
    )
