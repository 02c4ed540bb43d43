"""Settings of the logistics package, with their defaults, and its wiring into the app.

Every key can be set like any other setting: in the app's config overrides, or through a
``YUENONG_<KEY>`` environment variable (JSON for the nested ones, e.g.
``YUENONG_COLD_CHAIN_THRESHOLDS='{"fruit": {"low_c": 2, "high_c": 6}}'``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import Flask, current_app

from logistics import coldchain
from logistics.epc import format_sscc

DEFAULTS: dict[str, Any] = {
    #: Reads of one tag on one antenna within this many seconds count once (a new
    #: reader's default; each reader has its own setting).
    "LOGISTICS_DEDUPE_WINDOW_SECONDS": 30,
    #: Tag reads one reader may push per minute (requests, not reads).
    "LOGISTICS_READS_RATE_LIMIT": "600 per minute",
    #: Category (or "category:profile") -> {"low_c", "high_c"}; merged over
    #: coldchain.DEFAULT_THRESHOLDS entry by entry; null switches monitoring off.
    coldchain.CONFIG_KEY: None,
    #: Out-of-range readings must last this long to count (a spike beyond 2 °C counts at once).
    "LOGISTICS_EXCURSION_MINUTES": 10,
    #: Carrier tracking: "sandbox" (offline, the embedded default). A real adapter
    #: (Kuaidi100 ...) implements logistics.interfaces.CarrierTracking.
    "LOGISTICS_TRACKING_PROVIDER": "sandbox",
    #: Key that signs tracking pushes; derived from SECRET_KEY when unset.
    "LOGISTICS_PUSH_SECRET": None,
    "LOGISTICS_SANDBOX": {
        #: "inprocess" (through the app's own webhook route, no network) or "http" (POST
        #: to PUBLIC_BASE_URL, as the real service would).
        "deliver": "inprocess",
        #: Schedule the pushes with Celery countdowns (only ever with a real broker: in
        #: eager mode `flask logistics sandbox-push` or a test drives them). False: never.
        "auto": None,
        #: Sandbox journeys run this much faster than real ones (120: a day in 12 minutes).
        "speed": 120,
        #: Force an ending: "delivered", "exception" or "returned" (None: random, seeded).
        "outcome": None,
        "seed": 0,
    },
    #: Text messages to cooperatives: "logging" (written to the log; the default).
    "LOGISTICS_SMS_PROVIDER": "logging",
    #: Seconds a unit's journey (scan page) may be served from the per-process cache
    #: (0: render it on every scan).
    "LOGISTICS_JOURNEY_CACHE_SECONDS": 30,
}


def init_app(app: Flask) -> None:
    """Fill in settings, check the cold-chain limits, register blueprints, CLI, hooks."""
    for key, value in DEFAULTS.items():
        if isinstance(value, dict):
            merged = dict(value)
            merged.update(app.config.get(key) or {})
            app.config[key] = merged
        else:
            app.config.setdefault(key, value)
    # Refuse to start with malformed limits rather than fail on the first reading.
    app.extensions["cold_chain_thresholds"] = coldchain.load_thresholds(
        app.config.get(coldchain.CONFIG_KEY)
    )

    from logistics import api, cli, journey, views
    from market.extensions import csrf

    app.register_blueprint(views.bp)
    # Readers and carriers authenticate with bearer tokens and signatures, never cookies.
    csrf.exempt(api.bp)
    app.register_blueprint(api.bp)
    app.cli.add_command(cli.logistics_cli)
    # Traceability's scan page asks for a unit's journey through this hook (it must not
    # import logistics); the buyer's order page through the template global.
    app.extensions["journey_provider"] = journey.scan_journey
    app.jinja_env.filters["sscc"] = format_sscc
    app.jinja_env.globals.update(
        order_journey=journey.order_journey_for_template,
        journey_title=journey.entry_title,
        journey_excursion_text=journey.excursion_text,
        carrier_label=journey.carrier_label,
        shipment_status_label=journey.shipment_status_label,
    )


def thresholds(app: Flask | None = None) -> dict[str, coldchain.Threshold | None]:
    return (app or current_app).extensions["cold_chain_thresholds"]


def push_secret(app: Flask | None = None) -> bytes:
    """The key carrier tracking pushes are signed with."""
    app = app or current_app
    explicit = app.config.get("LOGISTICS_PUSH_SECRET")
    if explicit:
        key = explicit.encode() if isinstance(explicit, str) else bytes(explicit)
        return hashlib.sha256(b"yuenong logistics push|" + key).digest()
    secret = app.config["SECRET_KEY"]
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    return hmac.new(key, b"yuenong logistics|push-v1", hashlib.sha256).digest()
