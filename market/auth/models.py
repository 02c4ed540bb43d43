"""Users and their roles."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.extensions import db
from market.types import utcnow

if TYPE_CHECKING:
    from market.cooperatives.models import Cooperative


class Role(enum.Enum):
    """What a user is on the platform; one role per account."""

    BUYER = "buyer"
    FARMER = "farmer"
    COOP_ADMIN = "coop_admin"
    SUPPLY_STAFF = "supply_staff"  #: 供销社 staff, scoped to one division
    PLATFORM_ADMIN = "platform_admin"


class User(db.Model):
    __tablename__ = "market_users"
    __table_args__ = (
        CheckConstraint("length(phone) = 11", name="phone_length"),
        CheckConstraint(
            "role != 'supply_staff' OR division_code IS NOT NULL", name="staff_has_division"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Mainland mobile number, 11 digits, the login name.
    phone: Mapped[str] = mapped_column(String(11), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(40), default="")
    role: Mapped[Role] = mapped_column(default=Role.BUYER, index=True)
    cooperative_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_cooperatives.id", ondelete="SET NULL"), index=True
    )
    #: GB/T 2260 code of the city or county a 供销社 staff member oversees.
    division_code: Mapped[str | None] = mapped_column(String(6))
    locale: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    #: Set for accounts created by someone else with an initial password.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    cooperative: Mapped[Cooperative | None] = relationship(back_populates="members")

    # The attributes Flask-Login expects, without importing Flask into the model.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def display_name(self) -> str:
        return self.name or self.phone[:3] + "****" + self.phone[-4:]

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value}>"
