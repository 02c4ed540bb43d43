"""Reports: dashboards for cooperatives, 供销社 and province staff, and the plan's targets.

Rooms: ``models`` (summary tables), ``rollups`` (building them from raw rows),
``services`` (dashboard figures, scoped to what a user may see), ``views``, ``exports``
(CSV, XLSX and the tables they share with the pages), ``forms``, ``tasks``, ``demo``;
``targets`` holds the quantitative goals of the Guangdong informatization plan
(粤府〔2013〕48号) with progress arithmetic; ``periods`` the Asia/Shanghai calendar
(day / ISO week / month buckets, month-on-month and year-on-year, query-string ranges).
"""

from __future__ import annotations

from typing import Any

from flask import Flask


def init_app(app: Flask) -> None:
    """Follow money: when a payment succeeds or a refund lands, after that commit, the
    summaries of the orders concerned are recomputed (a Celery task)."""
    from market.payments import services as payments
    from market.reports import tasks  # noqa: F401 - registers the tasks

    payments.intent_succeeded.connect(_on_payment_succeeded)
    payments.refund_succeeded.connect(_on_refund_succeeded)


def _after_commit(session: Any, intent_id: str) -> None:
    from market.payments import services as payments
    from market.reports import tasks

    payments.after_commit(session, lambda: tasks.update_rollups_for_payment.delay(intent_id))


def _on_payment_succeeded(intent: Any, *, session: Any, **_: object) -> None:
    _after_commit(session, intent.id)


def _on_refund_succeeded(refund: Any, *, session: Any, **_: object) -> None:
    _after_commit(session, refund.payment_intent_id)
