"""The application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, request, session
from flask_login import current_user
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from market import config
from market.celery_app import celery_init_app
from market.config import ROOT
from market.extensions import babel, csrf, db, limiter, login_manager, migrate


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        "market",
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(config.INSTANCE),
        instance_relative_config=True,
    )
    config.load(app, overrides)
    config.check(app)
    if not app.testing:
        logging.basicConfig(level=logging.INFO)

    import_models()
    _init_extensions(app)
    _register_blueprints(app)

    from market import cli, search, web

    web.init_app(app)
    cli.init_app(app)
    search.init_app(app)
    # Outermost, so every middleware a package added (traceability's scan fast path)
    # sees the client's address and scheme as the reverse proxy reported them.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    return app


def select_locale() -> str:
    from flask import current_app

    languages = current_app.config["LANGUAGES"]
    chosen = request.cookies.get("lang") or session.get("lang")
    if chosen in languages:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def _init_extensions(app: Flask) -> None:
    from pathlib import Path

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(ROOT / "translations"),
    )
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    celery_init_app(app)

    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            _tune_sqlite(engine)

    @login_manager.user_loader
    def load_user(user_id: str):
        from market.auth.models import User

        try:
            return db.session.get(User, int(user_id))
        except ValueError:
            return None

    @app.before_request
    def _remember_start() -> None:
        g.locale = select_locale()


def _tune_sqlite(engine) -> None:
    """Foreign keys on, WAL for concurrent readers, and a busy timeout for writers."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        # SQLite's recommended pairing with WAL: no fsync per commit, never corrupt; a
        # power cut may lose the last moments (scan counts), not the database.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def import_models() -> None:
    """Import every package's models so the metadata (and migrations) see all tables."""
    import logistics.models  # noqa: F401
    import market.auth.models
    import market.catalog.models
    import market.cooperatives.models
    import market.notifications.models
    import market.orders.models
    import market.payments.models
    import market.reports.models
    import market.search.models  # noqa: F401
    import traceability.models  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    # The core reaches up into the other packages only here, inside the factory.
    from market.auth.views import bp as auth_bp
    from market.catalog.api import bp as catalog_api_bp
    from market.catalog.views import bp as catalog_bp
    from market.cooperatives.views import admin_bp
    from market.cooperatives.views import bp as coop_bp
    from market.notifications.views import bp as notifications_bp
    from market.openapi import bp as openapi_bp
    from market.views import bp as core_bp

    for bp in (core_bp, auth_bp, coop_bp, admin_bp, notifications_bp):
        app.register_blueprint(bp)
    for bp in (catalog_bp, catalog_api_bp, openapi_bp):
        app.register_blueprint(bp)

    from market import orders, payments
    from market.orders.views import bp as orders_bp
    from market.payments import sandbox
    from market.payments.api import bp as payments_api_bp
    from market.payments.views import bp as payments_bp

    for bp in (orders_bp, payments_bp, payments_api_bp):
        app.register_blueprint(bp)
    if app.config["PAYMENT_PROVIDER"] == "sandbox":
        app.register_blueprint(sandbox.bp)  # the offline gateway, never beside real Alipay
    payments.init_app(app)
    orders.init_app(app)

    from market import reports
    from market.reports.views import bp as reports_bp

    app.register_blueprint(reports_bp)
    reports.init_app(app)

    from traceability.config import init_app as init_traceability

    init_traceability(app)

    from logistics.config import init_app as init_logistics

    init_logistics(app)
