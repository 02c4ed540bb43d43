"""Cooperatives: the sellers on the platform."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.extensions import db
from market.types import utcnow

if TYPE_CHECKING:
    from market.auth.models import User


class CooperativeStatus(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Cooperative(db.Model):
    __tablename__ = "market_cooperatives"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    #: 统一社会信用代码 (GB 32100), checked with its check character; optional.
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    #: GB/T 2260 county (or city) code in Guangdong.
    division_code: Mapped[str] = mapped_column(String(6), index=True)
    village: Mapped[str] = mapped_column(String(60), default="")
    intro: Mapped[str] = mapped_column(Text, default="")
    #: Content-hash key of the profile photo (see market.media).
    photo_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[CooperativeStatus] = mapped_column(default=CooperativeStatus.PENDING, index=True)
    contact_phone: Mapped[str | None] = mapped_column(String(11))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]

    members: Mapped[list[User]] = relationship(back_populates="cooperative")

    @property
    def is_approved(self) -> bool:
        return self.status is CooperativeStatus.APPROVED

    def __repr__(self) -> str:
        return f"<Cooperative {self.id} {self.name}>"
