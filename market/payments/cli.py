"""`flask payments ...`: API keys, webhook endpoints, a reconciliation run."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from market.extensions import db
from market.payments.models import MARKET_ACCOUNT, ApiKey

payments_cli = AppGroup("payments", help="Payments: API keys, webhooks, reconciliation.")


@payments_cli.command("create-key")
@click.argument("name")
@click.option("--account", default=MARKET_ACCOUNT, show_default=True, help="Whose objects it sees.")
@click.option("--live/--test", default=None, help="sk_live_ / sk_test_ (default: by provider).")
def create_key(name: str, account: str, live: bool | None) -> None:
    """Mint a secret API key. It is shown once; only its hash is stored."""
    from market.payments import services

    key, raw = services.create_api_key(db.session, name, account=account, live=live)
    db.session.commit()
    click.echo(f"API key {key.id} ({key.name}, account {key.account}):")
    click.echo(raw)
    click.echo("Store it now; it cannot be shown again.")


@payments_cli.command("list-keys")
def list_keys() -> None:
    """List API keys (never the keys themselves)."""
    for key in db.session.scalars(select(ApiKey).order_by(ApiKey.id)):
        state = "revoked" if key.revoked_at else "active"
        click.echo(f"{key.id}\t{key.prefix}...{key.last4}\t{key.account}\t{key.name}\t{state}")


@payments_cli.command("revoke-key")
@click.argument("key_id", type=int)
def revoke_key(key_id: int) -> None:
    """Revoke an API key by its id (see list-keys)."""
    from market.payments import services

    services.revoke_api_key(db.session, key_id)
    db.session.commit()
    click.echo(f"API key {key_id} revoked")


@payments_cli.command("add-webhook")
@click.argument("url")
@click.option("--account", default=MARKET_ACCOUNT, show_default=True)
@click.option("--event", "events", multiple=True, help="Event type to send (default: all).")
def add_webhook(url: str, account: str, events: tuple[str, ...]) -> None:
    """Register an integrator's webhook endpoint and print its signing secret."""
    from market.payments import services

    endpoint = services.create_webhook_endpoint(
        db.session, url, account=account, events=list(events) or None
    )
    db.session.commit()
    click.echo(f"{endpoint.id} -> {endpoint.url}")
    click.echo(f"signing secret: {endpoint.secret}")


@payments_cli.command("reconcile")
def reconcile() -> None:
    """Run one reconciliation pass now (the beat runs it every minute)."""
    from market.payments import tasks

    click.echo(tasks.reconcile.run())
