"""Payments, Stripe-shaped, with Alipay (or the offline sandbox) behind them.

Rooms: models.py, services.py, interfaces.py (the Provider protocol), alipay_provider.py,
sandbox.py (the offline gateway), signatures.py, webhooks.py, api.py (JSON API),
views.py (notify / return), tasks.py, cli.py.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Hook payments into the app: the after-commit outbox and the `flask payments` CLI."""
    from market.payments import cli, services, tasks  # noqa: F401 - registers the tasks

    services.install_outbox()
    app.cli.add_command(cli.payments_cli)
