"""Payments tests run against the sandbox with RSA 2048 keys generated in the test run."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SAVED_KEYS = (
    "PAYMENT_PROVIDER",
    "PAYMENT_SANDBOX",
    "PAYMENT_SANDBOX_APP_PRIVATE_KEY",
    "PAYMENT_SANDBOX_GATEWAY_PRIVATE_KEY",
)


def _private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="session")
def rsa_keys() -> SimpleNamespace:
    """The app's key, the gateway's key, and a stranger's key for forgeries."""
    return SimpleNamespace(app=_private_pem(), gateway=_private_pem(), forger=_private_pem())


@pytest.fixture(autouse=True)
def gateway(app, rsa_keys):
    """The sandbox gateway with this run's keys; `gateway.switch(...)` flips its switches.
    Everything is put back after the test."""
    saved = {key: copy.deepcopy(app.config[key]) for key in SAVED_KEYS}
    app.config["PAYMENT_SANDBOX_APP_PRIVATE_KEY"] = rsa_keys.app
    app.config["PAYMENT_SANDBOX_GATEWAY_PRIVATE_KEY"] = rsa_keys.gateway

    def switch(**values) -> None:
        app.config["PAYMENT_SANDBOX"].update(values)

    yield SimpleNamespace(switch=switch, keys=rsa_keys)
    for key, value in saved.items():
        app.config[key] = value
