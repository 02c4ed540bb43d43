"""Command-line tools: `flask demo load`, `flask users ...`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from market.extensions import db

demo_cli = AppGroup("demo", help="Demo data.")
users_cli = AppGroup("users", help="Accounts.")


@demo_cli.command("load")
def demo_load() -> None:
    """Load the demo data (running it again changes nothing)."""
    from market import demo

    summary = demo.load(db.session)
    db.session.commit()
    click.echo(summary.describe())


@users_cli.command("create-admin")
@click.argument("phone")
@click.password_option()
def create_admin(phone: str, password: str) -> None:
    """Create a platform admin account."""
    from market.auth import services
    from market.auth.models import Role

    user = services.register(db.session, phone, password, role=Role.PLATFORM_ADMIN)
    db.session.commit()
    click.echo(f"platform admin {user.phone} created")


def init_app(app: Flask) -> None:
    app.cli.add_command(demo_cli)
    app.cli.add_command(users_cli)
