"""The carrier tracking service and text-message provider chosen by configuration."""

from __future__ import annotations

from flask import Flask, current_app

from logistics import config
from logistics.interfaces import CarrierTracking, LoggingSms, SandboxCarrier, SmsSender


class ProviderConfigError(RuntimeError):
    """A provider name in the settings that this installation does not know."""


def tracking_provider(app: Flask | None = None) -> CarrierTracking:
    """The CarrierTracking adapter named by LOGISTICS_TRACKING_PROVIDER (one per app)."""
    app = app or current_app
    found = app.extensions.get("logistics_tracking")
    if found is not None:
        return found
    name = app.config["LOGISTICS_TRACKING_PROVIDER"]
    if name == "sandbox":
        settings = app.config["LOGISTICS_SANDBOX"]
        found = SandboxCarrier(config.push_secret(app), seed=settings.get("seed") or 0)
    else:
        raise ProviderConfigError(f"Unknown LOGISTICS_TRACKING_PROVIDER {name!r}")
    app.extensions["logistics_tracking"] = found
    return found


def sms_sender(app: Flask | None = None) -> SmsSender:
    """The SmsSender named by LOGISTICS_SMS_PROVIDER (one per app)."""
    app = app or current_app
    found = app.extensions.get("logistics_sms")
    if found is not None:
        return found
    name = app.config["LOGISTICS_SMS_PROVIDER"]
    if name == "logging":
        found = LoggingSms()
    else:
        raise ProviderConfigError(f"Unknown LOGISTICS_SMS_PROVIDER {name!r}")
    app.extensions["logistics_sms"] = found
    return found
