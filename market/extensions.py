"""Flask extensions, created unbound and initialised by the app factory."""

from __future__ import annotations

import enum
import functools
import logging
import math
import time
from datetime import datetime

from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from limits import RateLimitItem
from limits import parse as parse_limit
from sqlalchemy import Enum, MetaData
from sqlalchemy.orm import DeclarativeBase, registry
from werkzeug.exceptions import TooManyRequests

from market.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base: stable constraint names, aware datetimes, enums stored by value."""

    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={
            datetime: UTCDateTime,
            # Enums are stored as their string values in a VARCHAR with a CHECK.
            enum.Enum: Enum(
                enum.Enum,
                native_enum=False,
                length=32,
                values_callable=lambda cls: [member.value for member in cls],
                validate_strings=True,
                create_constraint=True,
            ),
        },
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


def _client_key() -> str:
    # Behind the reverse proxy ProxyFix has already put the client address here.
    return get_remote_address() or request.remote_addr or "unknown"


limiter = Limiter(key_func=_client_key, default_limits=[])


@functools.lru_cache(maxsize=64)
def _parsed_limit(value: str) -> RateLimitItem:
    return parse_limit(value)


def hit_rate_limit(value: str, scope: str, key: str | None = None) -> None:
    """Count this request against ``value`` (e.g. "120 per minute") for the client's
    address under ``scope``; answer 429 with Retry-After once it is spent.

    The same storage and strategy as ``@limiter.limit`` (RATELIMIT_STORAGE_URI,
    RATELIMIT_STRATEGY), without Flask-Limiter's per-request bookkeeping, which costs the
    busiest public pages (the trace code resolver) about a third of their CPU. Use it on
    views marked ``@limiter.exempt``; ``key`` is the client's address when there is no
    request context (the scan page's fast path). If the storage is unreachable the request goes
    through and the failure is logged: a public page stays up without its limit.
    """
    item = _parsed_limit(value)
    key = key or _client_key()
    try:
        allowed = limiter.limiter.hit(item, scope, key)
        if allowed:
            return
        reset_at = limiter.limiter.get_window_stats(item, scope, key).reset_time
    except Exception:  # the storage's own errors vary by backend
        logging.getLogger(__name__).warning("rate limit storage unreachable", exc_info=True)
        return
    raise TooManyRequests(retry_after=max(1, math.ceil(reset_at - time.time())))
