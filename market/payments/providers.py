"""Pick the payment provider from the configuration (PAYMENT_PROVIDER)."""

from __future__ import annotations

from flask import current_app, has_request_context, request, url_for

from market.config import ConfigError
from market.payments.alipay_provider import ALIPAY_GATEWAY, AlipayProvider, AlipaySettings
from market.payments.interfaces import Provider

PROVIDERS = ("sandbox", "alipay")


def get_provider(name: str | None = None) -> Provider:
    """The provider called `name` (an intent's own), or the configured one."""
    name = name or current_app.config["PAYMENT_PROVIDER"]
    if name == "alipay":
        return _alipay()
    if name == "sandbox":
        from market.payments import sandbox

        return sandbox.provider()
    raise ConfigError(f"PAYMENT_PROVIDER must be one of {PROVIDERS}, not {name!r}")


def _alipay() -> AlipayProvider:
    config = current_app.config
    missing = [
        key
        for key in ("ALIPAY_APP_ID", "ALIPAY_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY", "ALIPAY_SELLER_ID")
        if not config.get(key)
    ]
    if missing:
        raise ConfigError("PAYMENT_PROVIDER=alipay needs " + ", ".join(missing))
    settings = AlipaySettings(
        app_id=config["ALIPAY_APP_ID"],
        seller_id=config["ALIPAY_SELLER_ID"],
        private_key=config["ALIPAY_PRIVATE_KEY"],
        alipay_public_key=config["ALIPAY_PUBLIC_KEY"],
        gateway=config.get("ALIPAY_GATEWAY") or ALIPAY_GATEWAY,
        timeout=float(config.get("ALIPAY_TIMEOUT", 15)),
    )
    cache = current_app.extensions.setdefault("payments.alipay", {})
    if cache.get("settings") != settings:
        cache.update(settings=settings, provider=AlipayProvider(settings))
    return cache["provider"]


def external_url(endpoint: str, **values) -> str:
    """An absolute URL for the buyer's browser: this request's host, else PUBLIC_BASE_URL."""
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    return public_url(endpoint, **values)


def public_url(endpoint: str, **values) -> str:
    """An absolute URL on PUBLIC_BASE_URL, for servers to call us (notify_url)."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return base + path


def request_is_mobile() -> bool:
    agent = (request.user_agent.string or "").lower() if has_request_context() else ""
    return any(word in agent for word in ("mobile", "android", "iphone", "micromessenger"))
