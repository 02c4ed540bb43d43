"""Notifications: written by tasks, read by their owners."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from market.notifications.models import Notification
from market.types import utcnow


def notify(
    session: Session,
    user_id: int,
    kind: str,
    title: str,
    body: str = "",
    link: str | None = None,
    dedupe_key: str | None = None,
) -> Notification:
    """Store a notification; with a dedupe_key the same one is never stored twice."""
    if dedupe_key:
        existing = session.scalars(
            select(Notification).where(Notification.dedupe_key == dedupe_key)
        ).first()
        if existing is not None:
            return existing
    note = Notification(
        user_id=user_id, kind=kind, title=title, body=body, link=link, dedupe_key=dedupe_key
    )
    session.add(note)
    session.flush()
    return note


def for_user(session: Session, user_id: int, limit: int = 50) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )


def unread_count(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def mark_all_read(session: Session, user_id: int) -> None:
    session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
