"""`flask search rebuild` and `flask search status`."""

from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import AppGroup

from market.extensions import db
from market.search import services
from market.search_engine import SearchIndexError

search_cli = AppGroup("search", help="Product search index.")

BACKEND_CHOICE = click.Choice(["configured", "whoosh", "postgres"])


def _where(name: str) -> str:
    if name == "whoosh":
        return f"whoosh index at {current_app.config['SEARCH_INDEX_DIR']}"
    if name == "postgres":
        return "PostgreSQL table market_search_documents"
    return "no index (SQL LIKE)"


def _resolve(name: str) -> str:
    try:
        return services.backend_name() if name == "configured" else name
    except services.SearchConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@search_cli.command("rebuild")
@click.option(
    "--backend",
    "name",
    type=BACKEND_CHOICE,
    default="configured",
    show_default=True,
    help="Which index to rebuild (on several whoosh nodes: run it on each node).",
)
@click.option(
    "--procs",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="whoosh: build in this many processes (one index segment each).",
)
def rebuild_command(name: str, procs: int) -> None:
    """Rebuild the search index from the database (searches keep working meanwhile)."""
    name = _resolve(name)
    if name == "like":
        click.echo("SEARCH_BACKEND is like: there is no index to rebuild.")
        return
    if name == "postgres" and db.engine.dialect.name != "postgresql":
        raise click.ClickException("The postgres backend needs a PostgreSQL database.")
    started = time.perf_counter()
    try:
        count = services.rebuild(db.session, name, procs=procs)
        db.session.commit()
    except SearchIndexError as exc:
        db.session.rollback()
        raise click.ClickException(f"Rebuild failed: {exc}") from exc
    click.echo(
        f"Rebuilt the {_where(name)}: {count} products searchable "
        f"({time.perf_counter() - started:.1f} s)."
    )


@search_cli.command("status")
def status_command() -> None:
    """Show which backend answers searches and how many products it holds."""
    name = _resolve("configured")
    click.echo(f"backend: {name} ({_where(name)})")
    if name == "like":
        return
    try:
        count = services.backend(name).count(db.session)
    except SearchIndexError as exc:
        click.echo(f"index: unusable ({exc}); searches use SQL LIKE. Run `flask search rebuild`.")
        raise SystemExit(1) from exc
    public = services.count_public(db.session)
    click.echo(f"index: {count} products; public products in the database: {public}")
    if count != public:
        click.echo("The index is out of step with the database: run `flask search rebuild`.")
