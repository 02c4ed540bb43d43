"""How much of the buyer's contact a viewer sees (the rule itself is in market.policy)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_login import current_user

from market import places, policy
from market.auth.services import mask_phone
from market.orders.models import Order


@dataclass(frozen=True)
class Contact:
    recipient: str
    phone: str
    region: str
    address: str
    full: bool


def mask_name(name: str) -> str:
    """陈小姐 -> 陈**: the family name only."""
    return (name[:1] + "*" * max(1, len(name) - 1)) if name else ""


def contact_for(order: Order) -> Contact:
    """Full to the buyer and to those who ship the order; masked for everyone else."""
    region = places.full_name(order.division_code)
    if policy.can(current_user, "order.view_contact", order):
        return Contact(order.recipient, order.phone, region, order.address, True)
    # The province and city are enough for the platform to see where orders go.
    city = places.city_of(order.division_code)
    province = places.province_of(order.division_code)
    coarse = "".join(d.name for d in (province, city) if d is not None)
    return Contact(mask_name(order.recipient), mask_phone(order.phone), coarse, "****", False)
