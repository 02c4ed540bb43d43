"""Notification delivery, run by Celery after the triggering commit."""

from __future__ import annotations

from celery import shared_task
from flask_babel import force_locale, gettext

from market.auth.models import User
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.extensions import db
from market.notifications import services


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def notify_cooperative_reviewed(cooperative_id: int, user_ids: list[int]) -> int:
    """Tell the applicants that their cooperative was reviewed. Idempotent."""
    coop = db.session.get(Cooperative, cooperative_id)
    if coop is None or coop.status is CooperativeStatus.PENDING:
        return 0
    sent = 0
    recipients = db.session.scalars(db.select(User).where(User.id.in_(user_ids)))
    for user in recipients:
        with force_locale(user.locale or "zh_Hans_CN"):
            if coop.status is CooperativeStatus.APPROVED:
                title = gettext("%(name)s has been approved", name=coop.name)
                body = gettext("You can now add farmers and list products.")
            else:
                title = gettext("%(name)s was not approved", name=coop.name)
                body = gettext("Check the details and apply again.")
        services.notify(
            db.session,
            user.id,
            f"cooperative.{coop.status.value}",
            title,
            body,
            link=f"/cooperatives/{coop.id}",
            dedupe_key=f"coop-review:{coop.id}:{coop.status.value}:{user.id}",
        )
        sent += 1
    db.session.commit()
    return sent
