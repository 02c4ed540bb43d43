"""Cooperative rules: registration, approval, profile, members. No HTTP here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from market import places, uscc
from market.auth import services as accounts
from market.auth.models import Role, User
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.errors import ConflictError, DomainError, NotFoundError
from market.types import utcnow


class InvalidDivisionError(DomainError):
    code = "invalid_division"


class InvalidUSCCError(DomainError):
    code = "invalid_uscc"


class NameTakenError(ConflictError):
    code = "name_taken"


class AlreadyMemberError(ConflictError):
    code = "already_member"


class NotReviewableError(ConflictError):
    code = "not_pending"


@dataclass
class CooperativeInput:
    name: str
    division_code: str
    village: str = ""
    intro: str = ""
    uscc: str = ""
    contact_phone: str = ""


def _clean(session: Session, data: CooperativeInput, current: Cooperative | None) -> dict:
    name = data.name.strip()
    if not name:
        raise DomainError("name is required", field="name", code="required")
    clash = session.scalars(
        select(Cooperative.id).where(func.lower(Cooperative.name) == name.lower())
    ).first()
    if clash is not None and (current is None or clash != current.id):
        raise NameTakenError("a cooperative with this name exists", field="name")
    if not places.is_valid_guangdong_code(data.division_code or ""):
        raise InvalidDivisionError("not a Guangdong city or county code", field="division_code")
    code = uscc.normalize(data.uscc or "")
    if code:
        reason = uscc.explain(code)
        if reason:
            raise InvalidUSCCError(f"USCC invalid: {reason}", field="uscc", code=f"uscc_{reason}")
        clash = session.scalars(select(Cooperative.id).where(Cooperative.uscc == code)).first()
        if clash is not None and (current is None or clash != current.id):
            raise ConflictError("USCC already registered", field="uscc", code="uscc_taken")
    phone = None
    if data.contact_phone and data.contact_phone.strip():
        phone = accounts.normalize_phone(data.contact_phone)
    return {
        "name": name,
        "division_code": data.division_code,
        "village": data.village.strip(),
        "intro": data.intro.strip(),
        "uscc": code or None,
        "contact_phone": phone,
    }


def apply(session: Session, applicant_id: int, data: CooperativeInput) -> Cooperative:
    """A user applies to register a cooperative; it waits for a platform admin."""
    applicant = session.get(User, applicant_id)
    if applicant is None:
        raise NotFoundError("no such user")
    if applicant.cooperative_id is not None:
        raise AlreadyMemberError("already belongs to a cooperative")
    coop = Cooperative(**_clean(session, data, None), status=CooperativeStatus.PENDING)
    session.add(coop)
    session.flush()
    applicant.cooperative_id = coop.id
    return coop


def create(
    session: Session, data: CooperativeInput, *, admin_phone: str, admin_name: str = ""
) -> tuple[Cooperative, str | None]:
    """A platform admin creates an approved cooperative and names its admin by phone.

    Returns the cooperative and, when a new account had to be made for the admin, its
    one-time initial password (else None).
    """
    coop = Cooperative(
        **_clean(session, data, None), status=CooperativeStatus.APPROVED, approved_at=utcnow()
    )
    session.add(coop)
    session.flush()
    _, password = _attach(session, coop, admin_phone, admin_name, Role.COOP_ADMIN)
    return coop, password


def approve(session: Session, cooperative_id: int) -> Cooperative:
    coop = session.get(Cooperative, cooperative_id)
    if coop is None:
        raise NotFoundError("no such cooperative")
    if coop.status is not CooperativeStatus.PENDING:
        raise NotReviewableError("cooperative is not pending")
    coop.status = CooperativeStatus.APPROVED
    coop.approved_at = utcnow()
    for member in coop.members:
        if member.role is Role.BUYER:
            member.role = Role.COOP_ADMIN
    return coop


def reject(session: Session, cooperative_id: int) -> Cooperative:
    coop = session.get(Cooperative, cooperative_id)
    if coop is None:
        raise NotFoundError("no such cooperative")
    if coop.status is not CooperativeStatus.PENDING:
        raise NotReviewableError("cooperative is not pending")
    coop.status = CooperativeStatus.REJECTED
    # Release the applicant so they may apply again.
    for member in list(coop.members):
        if member.role is Role.BUYER:
            member.cooperative_id = None
    return coop


def update_profile(session: Session, cooperative_id: int, data: CooperativeInput) -> Cooperative:
    coop = session.get(Cooperative, cooperative_id)
    if coop is None:
        raise NotFoundError("no such cooperative")
    for key, value in _clean(session, data, coop).items():
        setattr(coop, key, value)
    return coop


def set_photo(session: Session, cooperative_id: int, photo_key: str | None) -> Cooperative:
    coop = session.get(Cooperative, cooperative_id)
    if coop is None:
        raise NotFoundError("no such cooperative")
    coop.photo_key = photo_key
    return coop


def add_farmer(
    session: Session, cooperative_id: int, phone: str, name: str = ""
) -> tuple[User, str | None]:
    """Add a farmer by phone. An existing buyer joins; a new phone gets an account with a
    one-time password (returned) that must be changed at first sign-in."""
    coop = session.get(Cooperative, cooperative_id)
    if coop is None:
        raise NotFoundError("no such cooperative")
    return _attach(session, coop, phone, name, Role.FARMER)


def _attach(
    session: Session, coop: Cooperative, phone: str, name: str, role: Role
) -> tuple[User, str | None]:
    phone = accounts.normalize_phone(phone)
    user = accounts.find_by_phone(session, phone)
    password = None
    if user is None:
        password = accounts.initial_password()
        user = accounts.register(session, phone, password, name=name, role=role)
        user.must_change_password = True
    elif user.cooperative_id == coop.id and user.role in (Role.FARMER, Role.COOP_ADMIN):
        raise AlreadyMemberError("already a member", field="phone")
    elif user.cooperative_id is not None or user.role is not Role.BUYER:
        raise AlreadyMemberError(
            "belongs elsewhere or has another role", field="phone", code="member_elsewhere"
        )
    else:
        user.role = role
        if name.strip() and not user.name:
            user.name = name.strip()
    user.cooperative_id = coop.id
    session.flush()
    return user, password


def remove_farmer(session: Session, cooperative_id: int, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.cooperative_id != cooperative_id or user.role is not Role.FARMER:
        raise NotFoundError("not a farmer of this cooperative")
    user.cooperative_id = None
    user.role = Role.BUYER
    return user


def approved(session: Session, division_prefix: str | None = None) -> list[Cooperative]:
    query = select(Cooperative).where(Cooperative.status == CooperativeStatus.APPROVED)
    if division_prefix:
        query = query.where(Cooperative.division_code.startswith(division_prefix))
    return list(session.scalars(query.order_by(Cooperative.division_code, Cooperative.id)))


def pending(session: Session) -> list[Cooperative]:
    return list(
        session.scalars(
            select(Cooperative)
            .where(Cooperative.status == CooperativeStatus.PENDING)
            .order_by(Cooperative.created_at)
        )
    )


def create_staff(
    session: Session, phone: str, name: str, division_code: str
) -> tuple[User, str | None]:
    """Create (or promote a buyer to) 供销社 staff scoped to a Guangdong city or county."""
    if not places.is_valid_guangdong_code(division_code):
        raise InvalidDivisionError("not a Guangdong city or county code", field="division_code")
    phone = accounts.normalize_phone(phone)
    user = accounts.find_by_phone(session, phone)
    password = None
    if user is None:
        password = accounts.initial_password()
        user = accounts.register(session, phone, password, name=name)
        user.must_change_password = True
    elif user.role is not Role.BUYER or user.cooperative_id is not None:
        raise ConflictError("account has another role", field="phone", code="has_role")
    user.role = Role.SUPPLY_STAFF
    user.division_code = division_code
    session.flush()
    return user, password
