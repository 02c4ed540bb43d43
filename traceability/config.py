"""Settings of the traceability package, with their defaults, and its wiring into the app.

Every key can be set like any other setting: in the app's config overrides, or through a
``YUENONG_<KEY>`` environment variable. ``TRACE_CODE_SECRET`` is also read from the plain
``TRACE_CODE_SECRET`` environment variable, as the deployment guide names it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from market.config import INSTANCE

PACKAGE_DIR = Path(__file__).resolve().parent

DEFAULTS: dict[str, Any] = {
    #: Key of the short HMAC tag in every trace code URL. When unset, a key is derived
    #: from SECRET_KEY; set it in production so that rotating SECRET_KEY does not turn
    #: every printed label into a "tag does not match" warning.
    "TRACE_CODE_SECRET": None,
    #: Characters of the tag (8 base32 characters carry 40 bits).
    "TRACE_CODE_TAG_LENGTH": 8,
    #: Most unit codes one request may issue.
    "TRACE_MAX_CODES_PER_ISSUE": 20000,
    #: A unit code scanned by this many visitor-days is flagged as possibly copied.
    "TRACE_SCAN_ALERT_VISITORS": 10,
    #: ... and so is one scanned in this many different cities.
    "TRACE_SCAN_ALERT_CITIES": 3,
    #: Request header the reverse proxy sets to the scanner's approximate city (a GB/T
    #: 2260 code, or a percent-encoded UTF-8 city name). Empty: cities are not recorded.
    #: The proxy must overwrite any value the client sends.
    "TRACE_GEO_HEADER": "X-Geo-City",
    #: Seconds between writes of the scans a process has counted (see scanlog.py); 0
    #: writes every scan at once. The default is 1 (0 when the app is under test).
    "TRACE_SCAN_WRITE_BEHIND": None,
    #: Seconds a rendered scan page body may be served from the per-process cache; any
    #: change to the batch invalidates it at once, this only bounds catalogue edits.
    "TRACE_SCAN_CACHE_SECONDS": 60,
    #: Anonymous scans are answered by a WSGI fast path in front of Flask (fastscan.py).
    "TRACE_SCAN_FAST_PATH": True,
    #: CJK font embedded in label PDFs (a TTC: the first face is used).
    "LABEL_FONT_PATH": "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    #: Where finished label PDFs are kept.
    "LABEL_DIR": str(INSTANCE / "labels"),
    #: Where inspection reports (PDF) are kept.
    "TRACE_REPORT_DIR": str(INSTANCE / "reports"),
    #: The EPCIS 2.0 JSON schema and JSON-LD context (copied unchanged into the package).
    "EPCIS_SCHEMA_DIR": str(PACKAGE_DIR / "schemas"),
    #: Largest number of events one capture request may carry.
    "EPCIS_MAX_CAPTURE_EVENTS": 5000,
    #: Default and largest page size of GET /epcis/events.
    "EPCIS_DEFAULT_PER_PAGE": 100,
    "EPCIS_MAX_PER_PAGE": 1000,
}


def init_app(app: Flask) -> None:
    """Fill in missing settings, register the blueprints, the CLI and the CSRF exemption."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    if app.config["TRACE_SCAN_WRITE_BEHIND"] is None:
        app.config["TRACE_SCAN_WRITE_BEHIND"] = 0.0 if app.testing else 1.0
    env_secret = os.environ.get("TRACE_CODE_SECRET")
    if env_secret and not app.config.get("TRACE_CODE_SECRET"):
        app.config["TRACE_CODE_SECRET"] = env_secret

    from market.extensions import csrf
    from traceability import api, cli, fastscan, scanlog, views

    scanlog.init_app(app)
    fastscan.install(app)

    app.register_blueprint(views.bp)
    # The EPCIS binding authenticates with bearer tokens and never reads cookies.
    csrf.exempt(api.bp)
    app.register_blueprint(api.bp)
    app.cli.add_command(cli.trace_cli)
    from traceability import stock

    stock.init_app(app)
    if app.config.get("BENCH"):
        views.register_bench_routes(app)


def _derive(app: Flask, purpose: bytes) -> bytes:
    secret = app.config["SECRET_KEY"]
    return _derived(secret.encode("utf-8") if isinstance(secret, str) else bytes(secret), purpose)


@lru_cache(maxsize=32)
def _derived(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"yuenong traceability|" + purpose, hashlib.sha256).digest()


def tag_secret(app: Flask | None = None) -> bytes:
    """The HMAC key of trace code tags: TRACE_CODE_SECRET, or one derived from SECRET_KEY."""
    app = app or current_app
    explicit = app.config.get("TRACE_CODE_SECRET")
    if explicit:
        key = explicit.encode("utf-8") if isinstance(explicit, str) else bytes(explicit)
        # Stretch short settings to the 16 bytes codes.code_tag requires.
        return hashlib.sha256(b"yuenong trace-code tag|" + key).digest()
    return _derive(app, b"code-tag-v1")


def visitor_secret(app: Flask | None = None) -> bytes:
    """The HMAC key that turns a scanner's IP address into an unlinkable daily visitor key."""
    return _derive(app or current_app, b"scan-visitor-v1")


def page_token_secret(app: Flask | None = None) -> bytes:
    """The key that signs EPCIS query nextPageTokens."""
    return _derive(app or current_app, b"epcis-page-token-v1")
