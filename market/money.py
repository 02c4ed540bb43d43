"""Money at the edges: yuan strings in, integer fen inside, ¥1,234.56 out."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


class MoneyError(ValueError):
    """A money amount that cannot be represented in whole fen."""


def yuan_to_fen(value: str | int | Decimal) -> int:
    """Convert a yuan amount such as "12.30" to integer fen, refusing sub-fen precision."""
    if isinstance(value, float):
        raise MoneyError("floats are not accepted for money")
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation as exc:
        raise MoneyError(f"not a number: {value!r}") from exc
    if not amount.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise MoneyError(f"finer than one fen: {value!r}")
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    """Render fen as a plain yuan string with two decimals, e.g. 1230 -> "12.30"."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}"


def format_fen(fen: int | None) -> str:
    """Render fen for people: 123456 -> "¥1,234.56"."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{part:02d}"
