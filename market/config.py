"""One settings path: embedded defaults, overridden by environment variables."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from celery.schedules import crontab
from flask import Flask

DEV_SECRET_KEY = "dev-only-not-secret"  # noqa: S105 - refused outside debug/testing

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": DEV_SECRET_KEY,
    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{INSTANCE / 'yuenong.sqlite3'}",
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "CELERY": {
        "broker_url": "memory://localhost/",  # eager mode never uses it; a host keeps kombu quiet
        "result_backend": None,
        "task_always_eager": True,
        "task_eager_propagates": True,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        "timezone": "Asia/Shanghai",
        "enable_utc": True,
        "beat_schedule": {
            # Settle payments stuck waiting on the provider; close expired trades.
            "payments-reconcile": {"task": "market.payments.tasks.reconcile", "schedule": 60.0},
            "payments-retry-webhooks": {
                "task": "market.payments.tasks.retry_webhooks",
                "schedule": 300.0,
            },
            # Cancel (and restock) orders left unpaid past their 30 minutes.
            "orders-expire-unpaid": {
                "task": "market.orders.tasks.expire_overdue_orders",
                "schedule": 60.0,
            },
            # Record RFID reads whose task was lost (broker outage, killed worker).
            "logistics-pending-reads": {
                "task": "logistics.tasks.process_all_pending_reads",
                "schedule": 60.0,
            },
            # Report summaries: rebuilt from the raw rows every night at 03:30 (Beijing
            # time, the CELERY timezone); trace and RFID counts of recent days refreshed
            # every 30 minutes (codes are packed and tags read after the payment).
            "reports-rebuild": {
                "task": "market.reports.tasks.rebuild_rollups",
                "schedule": crontab(hour=3, minute=30),
            },
            "reports-informatization": {
                "task": "market.reports.tasks.refresh_informatization",
                "schedule": 1800.0,
            },
        },
    },
    # Payments: "sandbox" (the offline gateway, embedded default) or "alipay".
    "PAYMENT_PROVIDER": "sandbox",
    "ALIPAY_APP_ID": "",
    "ALIPAY_PRIVATE_KEY": "",
    "ALIPAY_PUBLIC_KEY": "",
    "ALIPAY_SELLER_ID": "",
    "ALIPAY_GATEWAY": "https://openapi.alipay.com/gateway.do",
    "PAYMENT_SANDBOX_KEY_DIR": str(INSTANCE / "sandbox-keys"),
    "PAYMENT_SANDBOX_APP_PRIVATE_KEY": "",
    "PAYMENT_SANDBOX_GATEWAY_PRIVATE_KEY": "",
    "PAYMENT_SANDBOX": {
        "app_id": "2021000000000001",
        "seller_id": "2088000000000001",
        "notify": "normal",  # normal | duplicate | late | missing
        "tamper_amount": False,
        "wrong_app_id": False,
        "gateway_error": "",  # "" | system_error | http_500 | timeout
        "deliver": "inprocess",  # inprocess | http (to PUBLIC_BASE_URL)
        "late_seconds": 15,
    },
    "ORDER_PAYMENT_MINUTES": 30,
    "MEDIA_DIR": str(INSTANCE / "media"),
    "SEARCH_INDEX_DIR": str(INSTANCE / "search-index"),
    # Product search: "auto" (PostgreSQL full text on PostgreSQL, else the whoosh index
    # in SEARCH_INDEX_DIR), "whoosh", "postgres" or "like" (plain SQL, no index).
    "SEARCH_BACKEND": "auto",
    # With whoosh on several web nodes: a broadcast queue every node's worker consumes,
    # so each node's own index gets every update (see market/search/__init__.py).
    "SEARCH_BROADCAST_QUEUE": "",
    "SEARCH_LOCK_TIMEOUT": 10.0,
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
    "SEARCH_BACKEND": "SEARCH_BACKEND",
    "SEARCH_BROADCAST_QUEUE": "SEARCH_BROADCAST_QUEUE",
    "PUBLIC_BASE_URL": "PUBLIC_BASE_URL",
    "GS1_COMPANY_PREFIX": "GS1_COMPANY_PREFIX",
    "RATELIMIT_STORAGE_URI": "RATELIMIT_STORAGE_URI",
    "PAYMENT_PROVIDER": "PAYMENT_PROVIDER",
    "ALIPAY_APP_ID": "ALIPAY_APP_ID",
    "ALIPAY_PRIVATE_KEY": "ALIPAY_PRIVATE_KEY",
    "ALIPAY_PUBLIC_KEY": "ALIPAY_PUBLIC_KEY",
    "ALIPAY_SELLER_ID": "ALIPAY_SELLER_ID",
    "ALIPAY_GATEWAY": "ALIPAY_GATEWAY",
    "PAYMENT_SANDBOX_KEY_DIR": "PAYMENT_SANDBOX_KEY_DIR",
    "PAYMENT_SANDBOX_APP_PRIVATE_KEY": "PAYMENT_SANDBOX_APP_PRIVATE_KEY",
    "PAYMENT_SANDBOX_GATEWAY_PRIVATE_KEY": "PAYMENT_SANDBOX_GATEWAY_PRIVATE_KEY",
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
