"""`flask trace verify` (check the event hash chains) and `flask trace create-token`."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from market.auth import services as accounts
from market.cooperatives.models import Cooperative
from market.errors import DomainError
from market.extensions import db
from traceability import services

trace_cli = AppGroup("trace", help="Traceability: event chains and API tokens.")


@trace_cli.command("verify")
def verify() -> None:
    """Check every event chain; exit 1 if any event was changed or deleted."""
    checked, problems = services.verify_chains(db.session)
    db.session.rollback()
    chains = len({p.chain_key for p in problems})
    for problem in problems:
        click.echo(f"PROBLEM {problem}", err=True)
    if problems:
        click.echo(
            f"{len(problems)} problem(s) in {chains} chain(s); {checked} events checked.",
            err=True,
        )
        sys.exit(1)
    click.echo(f"All event chains intact: {checked} events checked.")


@trace_cli.command("create-token")
@click.option("--name", required=True, help="What the token is for, e.g. the reader's place.")
@click.option(
    "--cooperative",
    "cooperative",
    help="Cooperative id or exact name the token acts for; omit for a platform-wide token.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(services.TOKEN_SCOPES),
    default=("capture", "query"),
    show_default=True,
    help="Repeat for several scopes.",
)
@click.option("--user", "phone", help="Phone number of the person responsible (optional).")
def create_token(name: str, cooperative: str | None, scopes: tuple[str, ...], phone: str | None):
    """Mint an EPCIS API token and print it (it is shown only this once)."""
    coop = None
    if cooperative:
        query = select(Cooperative).where(
            Cooperative.id == int(cooperative)
            if cooperative.isdigit()
            else Cooperative.name == cooperative
        )
        coop = db.session.scalars(query).first()
        if coop is None:
            raise click.UsageError(f"No cooperative {cooperative!r}")
    user_id = None
    if phone:
        user = accounts.find_by_phone(db.session, phone)
        if user is None:
            raise click.UsageError(f"No user with phone {phone}")
        user_id = user.id
    try:
        token, plain = services.create_token(
            db.session,
            name=name,
            scopes=list(scopes),
            cooperative_id=coop.id if coop else None,
            user_id=user_id,
        )
    except DomainError as exc:
        raise click.UsageError(str(exc)) from exc
    db.session.commit()
    owner = coop.name if coop else "the whole platform"
    click.echo(f"Token {token.id} for {owner}, scopes {', '.join(token.scopes)}:")
    click.echo(plain)
