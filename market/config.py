"""One settings path: embedded defaults, overridden by environment variables."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from flask import Flask

DEV_SECRET_KEY = "dev-only-not-secret"  # noqa: S105 - refused outside debug/testing

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": DEV_SECRET_KEY,
    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{INSTANCE / 'yuenong.sqlite3'}",
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "CELERY": {
        "broker_url": "memory://",
        "result_backend": None,
        "task_always_eager": True,
        "task_eager_propagates": True,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        "timezone": "Asia/Shanghai",
        "enable_utc": True,
    },
    "MEDIA_DIR": str(INSTANCE / "media"),
    "SEARCH_INDEX_DIR": str(INSTANCE / "search-index"),
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    "GS1_COMPANY_PREFIX": "6970000",  # demo prefix in China's 690-699 range
    "BABEL_DEFAULT_LOCALE": "zh_Hans_CN",
    "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
    "LANGUAGES": {"zh_Hans_CN": "简体中文", "en": "English"},
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_HEADERS_ENABLED": True,
    "LOGIN_RATE_LIMIT": "10 per minute;60 per hour",
    "REGISTER_RATE_LIMIT": "10 per hour",
    "PUBLIC_RATE_LIMIT": "120 per minute",
    "MAX_CONTENT_LENGTH": 12 * 1024 * 1024,
    "WTF_CSRF_TIME_LIMIT": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "SEND_FILE_MAX_AGE_DEFAULT": 3600,
}

# Environment variables that are read, with the config key each one sets.
ENV_KEYS: dict[str, str] = {
    "SECRET_KEY": "SECRET_KEY",
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "MEDIA_DIR": "MEDIA_DIR",
    "SEARCH_INDEX_DIR": "SEARCH_INDEX_DIR",
    "PUBLIC_BASE_URL": "PUBLIC_BASE_URL",
    "GS1_COMPANY_PREFIX": "GS1_COMPANY_PREFIX",
    "RATELIMIT_STORAGE_URI": "RATELIMIT_STORAGE_URI",
}


class ConfigError(RuntimeError):
    """The configuration cannot be used to start the application."""


def normalize_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgres:// URLs (as Heroku-style hosts give)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load(app: Flask, overrides: dict[str, Any] | None = None) -> None:
    """Fill app.config from defaults, then the environment, then explicit overrides."""
    app.config.update(copy.deepcopy(DEFAULTS))
    for env_name, key in ENV_KEYS.items():
        value = os.environ.get(env_name)
        if value:
            app.config[key] = value
    broker = os.environ.get("CELERY_BROKER_URL")
    if broker:
        app.config["CELERY"].update(
            broker_url=broker,
            task_always_eager=False,
            result_backend=os.environ.get("CELERY_RESULT_BACKEND") or None,
        )
    # YUENONG_* variables set any other key, e.g. YUENONG_LOGIN_RATE_LIMIT.
    app.config.from_prefixed_env("YUENONG")
    if overrides:
        app.config.update(overrides)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # SQLite has no server-side pool to ping.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"].pop("pool_pre_ping", None)


def check(app: Flask) -> None:
    """Refuse to run a non-debug, non-testing app with the development secret key."""
    if app.config["SECRET_KEY"] == DEV_SECRET_KEY and not (app.debug or app.testing):
        raise ConfigError(
            "SECRET_KEY is the development default; set the SECRET_KEY environment "
            "variable (or run with --debug for local development)."
        )
