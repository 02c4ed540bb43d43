"""Accounts: registration, sign-in, passwords. No HTTP here."""

from __future__ import annotations

import re
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from market.auth.models import Role, User
from market.errors import ConflictError, DomainError
from market.types import utcnow

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()
# A real hash to verify against when the phone is unknown, so timing does not tell.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class InvalidPhoneError(DomainError):
    code = "invalid_phone"


class WeakPasswordError(DomainError):
    code = "weak_password"


class PhoneTakenError(ConflictError):
    code = "phone_taken"


def normalize_phone(raw: str) -> str:
    """Strip spaces, dashes and a +86 / 86 prefix; validate a mainland mobile number."""
    phone = re.sub(r"[\s\-]", "", raw or "")
    if phone.startswith("+86"):
        phone = phone[3:]
    elif len(phone) == 13 and phone.startswith("86"):
        phone = phone[2:]
    if not PHONE_RE.match(phone):
        raise InvalidPhoneError("not a mainland mobile number", field="phone")
    return phone


def mask_phone(phone: str | None) -> str:
    """138****1234: what everyone but the owner (and those who must ship) sees."""
    if not phone:
        return ""
    if len(phone) != 11:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError("password too short", field="password")
    if password.isdigit() and len(set(password)) <= 2:
        raise WeakPasswordError("password too simple", field="password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def find_by_phone(session: Session, phone: str) -> User | None:
    return session.scalars(select(User).where(User.phone == phone)).first()


def register(
    session: Session,
    phone: str,
    password: str,
    *,
    name: str = "",
    role: Role = Role.BUYER,
    locale: str | None = None,
) -> User:
    """Create an account; the phone must be new."""
    phone = normalize_phone(phone)
    check_password_strength(password)
    if find_by_phone(session, phone) is not None:
        raise PhoneTakenError("phone already registered", field="phone")
    user = User(
        phone=phone,
        password_hash=hash_password(password),
        name=name.strip(),
        role=role,
        locale=locale,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, phone: str, password: str) -> User | None:
    """Return the user when the phone and password match an active account."""
    try:
        phone = normalize_phone(phone)
    except InvalidPhoneError:
        return None
    user = find_by_phone(session, phone)
    if user is None:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password) or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def change_password(session: Session, user_id: int, current: str, new: str) -> User:
    user = session.get(User, user_id)
    if user is None or not _verify(user.password_hash, current):
        raise DomainError(
            "current password is wrong", field="current_password", code="wrong_password"
        )
    check_password_strength(new)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    return user


def initial_password() -> str:
    """A readable one-time password for accounts created on someone's behalf."""
    alphabet = "".join(c for c in string.ascii_lowercase + string.digits if c not in "l1o0")
    return "".join(secrets.choice(alphabet) for _ in range(10))
