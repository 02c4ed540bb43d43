"""The two signature schemes payments speak.

- Alipay RSA2 (SHA256withRSA, PKCS#1 v1.5) over a canonical string: what signs our
  requests, Alipay's notifies and returns, and (in the sandbox) the gateway's answers.
- Stripe's `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` on
  the webhooks we send to integrators.

Verification never raises on bad input: it answers False.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

from Cryptodome.Hash import SHA256
from Cryptodome.PublicKey import RSA
from Cryptodome.Signature import pkcs1_15

#: Stripe's default tolerance for the signed timestamp of a webhook.
WEBHOOK_TOLERANCE_SECONDS = 300


# --- RSA keys ----------------------------------------------------------------------


def load_private_key(text: str) -> RSA.RsaKey:
    """Import an RSA private key given as PEM or as the bare base64 Alipay's tools print."""
    return _import(text, "PRIVATE KEY")


def load_public_key(text: str) -> RSA.RsaKey:
    """Import an RSA public key given as PEM or as bare base64."""
    return _import(text, "PUBLIC KEY")


def _import(text: str, kind: str) -> RSA.RsaKey:
    text = (text or "").strip()
    if not text:
        raise ValueError(f"no {kind.lower()} given")
    if "-----BEGIN" not in text:
        body = "".join(text.split())
        try:
            return RSA.import_key(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"not an RSA {kind.lower()}") from exc
    return RSA.import_key(text)


def generate_private_key_pem(bits: int = 2048) -> str:
    return RSA.generate(bits).export_key(format="PEM", pkcs=8).decode()


def public_pem(private: RSA.RsaKey) -> str:
    return private.public_key().export_key(format="PEM").decode()


# --- RSA2 --------------------------------------------------------------------------


def canonical_string(params: Mapping[str, str], *, exclude: Iterable[str]) -> str:
    """Sort by key, drop `exclude` and empty values, and join `k=v` with `&`.

    For notifies and returns Alipay excludes `sign` and `sign_type`; for requests to the
    gateway only `sign`.
    """
    skip = set(exclude)
    items = sorted(
        (key, str(value))
        for key, value in params.items()
        if key not in skip and value is not None and str(value) != ""
    )
    return "&".join(f"{key}={value}" for key, value in items)


def rsa2_sign(message: str, private: RSA.RsaKey) -> str:
    digest = SHA256.new(message.encode("utf-8"))
    return base64.b64encode(pkcs1_15.new(private).sign(digest)).decode()


def rsa2_verify(message: str, signature: str, public: RSA.RsaKey) -> bool:
    """True only for a valid SHA256withRSA signature; anything malformed is False."""
    try:
        raw = base64.b64decode("".join((signature or "").split()), validate=True)
        pkcs1_15.new(public).verify(SHA256.new(message.encode("utf-8")), raw)
    except (ValueError, TypeError, binascii.Error):
        return False
    return True


def verify_notify(params: Mapping[str, str], public: RSA.RsaKey) -> bool:
    """Check an Alipay notify or return: RSA2 only, never SHA-1 ("RSA")."""
    if params.get("sign_type") != "RSA2":
        return False
    message = canonical_string(params, exclude=("sign", "sign_type"))
    return rsa2_verify(message, params.get("sign", ""), public)


def sign_notify(params: Mapping[str, str], private: RSA.RsaKey) -> dict[str, str]:
    """Return `params` with sign_type=RSA2 and its signature (what Alipay's side does)."""
    signed = {key: str(value) for key, value in params.items() if key not in ("sign",)}
    signed["sign_type"] = "RSA2"
    signed["sign"] = rsa2_sign(canonical_string(signed, exclude=("sign", "sign_type")), private)
    return signed


def verify_request(params: Mapping[str, str], public: RSA.RsaKey) -> bool:
    """Check a request to the gateway; here sign_type is part of the signed string."""
    if params.get("sign_type") != "RSA2":
        return False
    return rsa2_verify(canonical_string(params, exclude=("sign",)), params.get("sign", ""), public)


# --- Stripe-Signature --------------------------------------------------------------


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header value for `payload` sent now (or at `timestamp`)."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify_stripe_signature(
    payload: bytes,
    header: str,
    secret: str,
    *,
    tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
    now: int | None = None,
) -> bool:
    """What an integrator runs on our webhooks: any v1 matches and t is fresh enough."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
