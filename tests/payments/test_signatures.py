"""RSA2 canonical strings and verification that answers False, never raises."""

from __future__ import annotations

import pytest

from market.money import MoneyError, yuan_to_fen
from market.payments import signatures


def test_the_canonical_string_sorts_and_drops_sign_sign_type_and_empty_values():
    params = {"b": "2", "a": "1", "sign": "x", "sign_type": "RSA2", "empty": "", "c": "中文"}
    assert signatures.canonical_string(params, exclude=("sign", "sign_type")) == "a=1&b=2&c=中文"


def test_a_notify_signed_with_the_key_verifies_and_any_change_does_not(rsa_keys):
    private = signatures.load_private_key(rsa_keys.gateway)
    public = private.public_key()
    signed = signatures.sign_notify({"out_trade_no": "pi_1_1", "total_amount": "12.30"}, private)
    assert signatures.verify_notify(signed, public)
    assert not signatures.verify_notify({**signed, "total_amount": "12.31"}, public)
    assert not signatures.verify_notify({**signed, "sign_type": "RSA"}, public)
    assert not signatures.verify_notify({**signed, "sign": "bm9wZQ=="}, public)
    assert not signatures.verify_notify({**signed, "sign": "***"}, public)
    assert not signatures.verify_notify({k: v for k, v in signed.items() if k != "sign"}, public)
    other = signatures.load_private_key(rsa_keys.forger).public_key()
    assert not signatures.verify_notify(signed, other)


def test_keys_load_from_pem_or_bare_base64(rsa_keys):
    private = signatures.load_private_key(rsa_keys.app)
    body = "".join(line for line in rsa_keys.app.splitlines() if "-----" not in line)
    assert signatures.load_private_key(body).n == private.n
    with pytest.raises(ValueError, match="not an RSA"):
        signatures.load_public_key("not a key at all")


@pytest.mark.parametrize(("text", "fen"), [("12.30", 1230), ("0.01", 1), ("100", 10000)])
def test_provider_amount_strings_convert_exactly(text, fen):
    assert yuan_to_fen(text) == fen


def test_provider_amounts_finer_than_a_fen_are_refused():
    with pytest.raises(MoneyError):
        yuan_to_fen("12.305")
