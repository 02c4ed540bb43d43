"""Carriers a cooperative ships with, and their waybill (运单号) formats.

A pure module (no Flask, no database). :func:`validate_waybill` normalises what a farmer
typed or scanned (full-width characters, spaces, hyphens, lower case) and checks it against
the carrier's format; it raises :class:`WaybillError` with a stable ``code``:

``unknown_carrier``  the carrier code is not one of :data:`CARRIERS`
``empty``            nothing left after normalising
``charset``          a character other than A-Z and 0-9
``format``           the number does not have the carrier's shape
``check_digit``      a UPU S10 number whose check digit does not match

The carriers publish no format specifications, so the patterns are the shapes their
numbers have in practice, kept a little permissive where series differ; they catch typos
and numbers pasted into the wrong carrier, not forgeries (only the S10 form has a check
digit). Formats accepted:

======  ==========================  ==================================================
code    carrier                     waybill numbers
======  ==========================  ==================================================
SF      顺丰速运 SF Express          ``SF`` + 12-13 digits (``SF1234567890123``); legacy
                                    bare 12 digits
JD      京东物流 JD Logistics        ``JD`` + 2 letters/digits (``JDVA``, ``JDVB``,
                                    ``JDX0`` ...) + 9-13 digits, 13-17 characters
EMS     中国邮政 EMS                 13 digits (domestic EMS and 邮政快递包裹), or the UPU
                                    S10 form ``EE123456785CN`` with its check digit
ZTO     中通快递 ZTO Express         12-15 digits (today mostly 14 starting 7)
YTO     圆通速递 YTO Express         ``YT`` + 13 digits
YUNDA   韵达快递 Yunda Express       13-15 digits
DEPPON  德邦快递 Deppon              ``DPK`` + 12 digits; older Deppon freight numbers
                                    of 8-10 digits
COOP    合作社自送 own delivery      the cooperative's own reference, 1-32 letters and
                                    digits (no fixed format)
======  ==========================  ==================================================

UPU S10 check digit (UPU standard S10): weight the 8 serial digits 8, 6, 4, 2, 3, 5, 9, 7;
``check = 11 - sum % 11``, where 10 becomes 0 and 11 becomes 5. E.g. ``RR473124829GB``:
4·8+7·6+3·4+1·2+2·3+4·5+8·9+2·7 = 200, 200 mod 11 = 2, check 9.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from market.errors import DomainError

__all__ = [
    "CARRIERS",
    "OWN_DELIVERY",
    "Carrier",
    "WaybillError",
    "carrier_choices",
    "get_carrier",
    "guess_carriers",
    "normalize_waybill",
    "s10_check_digit",
    "validate_waybill",
]

#: The code of the cooperative's own delivery (no carrier tracking).
OWN_DELIVERY = "COOP"

_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_S10_RE = re.compile(r"[A-Z]{2}\d{9}[A-Z]{2}")
_CHARSET_RE = re.compile(r"[0-9A-Z]+")
_OWN_RE = re.compile(r"[0-9A-Z]{1,32}")
# Separators people type or labels print between digit groups.
_SEPARATORS = re.compile(r"[\s\-]+")


class WaybillError(DomainError):
    """A waybill number is not valid for its carrier; ``code`` is stable (module docstring)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code, field="waybill")


def s10_check_digit(serial8: str) -> int:
    """The UPU S10 check digit of an 8-digit serial number."""
    if len(serial8) != 8 or not serial8.isascii() or not serial8.isdigit():
        raise ValueError("An S10 serial number has 8 digits")
    remainder = sum(int(d) * w for d, w in zip(serial8, _S10_WEIGHTS, strict=True)) % 11
    check = 11 - remainder
    return {10: 0, 11: 5}.get(check, check)


def _s10_ok(number: str) -> bool:
    """True unless ``number`` is in the S10 form with a wrong check digit."""
    if not _S10_RE.fullmatch(number):
        return True
    return s10_check_digit(number[2:10]) == int(number[10])


@dataclass(frozen=True)
class Carrier:
    """A carrier; ``waybill_pattern`` is None where numbers have no fixed format."""

    code: str
    name_zh: str
    name_en: str
    waybill_pattern: re.Pattern[str] | None
    example: str
    #: The carrier's code at Kuaidi100 (快递100), for a tracking-push adapter.
    kuaidi100_code: str | None = None
    #: An extra check beyond the pattern (the S10 check digit for EMS).
    check: Callable[[str], bool] | None = field(default=None, repr=False, compare=False)

    @property
    def tracked(self) -> bool:
        """Whether a carrier tracking service can follow this carrier's waybills."""
        return self.kuaidi100_code is not None

    def label(self, lang: str = "zh") -> str:
        """The carrier's name in Chinese (``lang`` starting "zh") or English."""
        return self.name_zh if lang.lower().startswith("zh") else self.name_en


CARRIERS: dict[str, Carrier] = {
    c.code: c
    for c in (
        Carrier(
            "SF",
            "顺丰速运",
            "SF Express",
            re.compile(r"SF\d{12,13}|\d{12}"),
            "SF1311029837165",
            "shunfeng",
        ),
        Carrier(
            "JD",
            "京东物流",
            "JD Logistics",
            re.compile(r"JD[0-9A-Z]{2}\d{9,13}"),
            "JDVA20481563207",
            "jd",
        ),
        Carrier(
            "EMS",
            "中国邮政 EMS",
            "China Post EMS",
            re.compile(r"\d{13}|[A-Z]{2}\d{9}[A-Z]{2}"),
            "1173540826901",
            "ems",
            check=_s10_ok,
        ),
        Carrier(
            "ZTO",
            "中通快递",
            "ZTO Express",
            re.compile(r"\d{12,15}"),
            "75431290165842",
            "zhongtong",
        ),
        Carrier(
            "YTO",
            "圆通速递",
            "YTO Express",
            re.compile(r"YT\d{13}"),
            "YT7523618490215",
            "yuantong",
        ),
        Carrier(
            "YUNDA",
            "韵达快递",
            "Yunda Express",
            re.compile(r"\d{13,15}"),
            "462031857709431",
            "yunda",
        ),
        Carrier(
            "DEPPON",
            "德邦快递",
            "Deppon Express",
            re.compile(r"DPK\d{12}|\d{8,10}"),
            "DPK360612345678",
            "debangkuaidi",
        ),
        Carrier(OWN_DELIVERY, "合作社自送", "Cooperative delivery", None, "", None),
    )
}


def get_carrier(code: str) -> Carrier:
    """The carrier with ``code`` (case-insensitive); raises ``WaybillError("unknown_carrier")``."""
    carrier = CARRIERS.get(str(code).strip().upper())
    if carrier is None:
        raise WaybillError("unknown_carrier", f"Unknown carrier {str(code)[:20]!r}")
    return carrier


def normalize_waybill(number: str) -> str:
    """Fold full-width characters (NFKC), drop spaces and separators, upper-case."""
    if not isinstance(number, str):
        raise WaybillError("charset", "A waybill number must be text")
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", number)).upper()


def validate_waybill(carrier_code: str, number: str) -> str:
    """Return ``number`` normalised if it is a valid waybill of the carrier, else raise."""
    carrier = get_carrier(carrier_code)
    normalized = normalize_waybill(number)
    if not normalized:
        raise WaybillError("empty", "Enter the waybill number")
    if not normalized.isascii() or not _CHARSET_RE.fullmatch(normalized):
        raise WaybillError("charset", "A waybill number has only letters A-Z and digits")
    pattern = carrier.waybill_pattern or _OWN_RE
    if not pattern.fullmatch(normalized):
        raise WaybillError(
            "format",
            f"{normalized} is not a {carrier.name_en} waybill number"
            + (f" (like {carrier.example})" if carrier.example else ""),
        )
    if carrier.check is not None and not carrier.check(normalized):
        raise WaybillError("check_digit", f"The check digit of {normalized} does not match")
    return normalized


def guess_carriers(number: str) -> list[Carrier]:
    """The carriers whose format ``number`` fits (bare digits often fit several)."""
    try:
        normalized = normalize_waybill(number)
    except WaybillError:
        return []
    fits = []
    for carrier in CARRIERS.values():
        if carrier.waybill_pattern is None:
            continue
        try:
            validate_waybill(carrier.code, normalized)
        except WaybillError:
            continue
        fits.append(carrier)
    return fits


def carrier_choices(lang: str = "zh") -> list[tuple[str, str]]:
    """``(code, name)`` pairs for a select field, in the order of :data:`CARRIERS`."""
    return [(c.code, c.label(lang)) for c in CARRIERS.values()]
