"""GS1 identifiers for trace codes: GTIN, GS1 Digital Link, EPC SGTIN-96, SSCC and SGLN.

A pure module (no Flask, no database). Everything here follows the facts collected in
``shared/standards/gs1.md`` (GS1 General Specifications, GS1 Digital Link, EPC Tag Data
Standard). Invalid input raises :class:`CodeError`, whose ``reason`` is a short stable
machine code that callers may branch on or show translated.

Reasons used by this module:

``charset``         a character outside the allowed set (digits, GS1 82-character set, ...)
``length``          a value that is too short or too long
``check_digit``     a GS1 check digit that does not match
``company_prefix``  a malformed company prefix, or a key that is not under that prefix
``item_ref``        an item or location reference that does not fit the company prefix
``extension``       a bad SSCC extension digit or SGLN extension
``order``           Digital Link key qualifiers out of the order 22, 10, 21
``duplicate``       the same AI (or query parameter) given twice
``missing_gtin``    a Digital Link without the primary key ``/01/``
``unknown_ai``      an AI in a Digital Link path that is not a key qualifier of GTIN, or
                    an unsupported AI in the query string
``query_key``       a primary key or key qualifier in the query string, or a bad
                    non-AI query parameter name
``trailing_slash``  a Digital Link (or base URL) ending in ``/``
``date``            a bad YYMMDD date (AI 17)
``syntax``          a URL or URI that cannot be parsed at all
``serial``          a serial that cannot be encoded in SGTIN-96
``filter``          an EPC filter value outside 0-7
``partition``       a company prefix length or EPC partition value without a partition
``header``          an EPC binary header that is not SGTIN-96 (0x30)
``sequence``        a lot sequence number below 1
``secret``          an HMAC secret that is too short
"""

import base64
import calendar
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "CodeError",
    "DigitalLink",
    "build_digital_link",
    "code_tag",
    "decode_sgtin96",
    "gtin_check_digit",
    "is_valid_ai_value",
    "is_valid_gtin",
    "is_valid_sgtin96_serial",
    "make_gln",
    "make_gtin",
    "make_sscc",
    "new_lot_code",
    "new_serial",
    "parse_digital_link",
    "sgln_uri",
    "sgtin96_hex",
    "sgtin96_tag_uri",
    "sgtin_pure_uri",
    "sscc_uri",
    "to_gtin14",
    "verify_tag",
]


class CodeError(ValueError):
    """An identifier, link or code is invalid.

    ``reason`` is a short stable machine code (see the module docstring); the message
    is a plain English explanation.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------------------
# Check digits and GTINs
# --------------------------------------------------------------------------------------

_DIGITS_RE = re.compile(r"[0-9]+")
_GTIN_LENGTHS = (8, 12, 13, 14)


def _require_digits(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string of digits, not {type(value).__name__}")
    if not _DIGITS_RE.fullmatch(value):
        raise CodeError("charset", f"{what} must contain only the digits 0-9: {value!r}")
    return value


def gtin_check_digit(body: str) -> str:
    """Return the GS1 check digit for ``body`` (all digits of the key except the last).

    Digits are weighted 3, 1, 3, 1, ... starting from the right, and the check digit is
    ``(10 - sum mod 10) mod 10``. Works for GTIN, GLN and SSCC bodies alike.
    """
    _require_digits(body, "The key body")
    if len(body) > 17:
        raise CodeError("length", f"A GS1 key body has at most 17 digits, got {len(body)}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def _has_good_check_digit(key: str) -> bool:
    return gtin_check_digit(key[:-1]) == key[-1]


def is_valid_gtin(gtin: str) -> bool:
    """True if ``gtin`` is an 8, 12, 13 or 14 digit GTIN with a correct check digit."""
    if not isinstance(gtin, str) or not _DIGITS_RE.fullmatch(gtin):
        return False
    return len(gtin) in _GTIN_LENGTHS and _has_good_check_digit(gtin)


def to_gtin14(gtin: str) -> str:
    """Validate a GTIN-8/12/13/14 and return it as 14 digits (left-padded with 0)."""
    _require_digits(gtin, "The GTIN")
    if len(gtin) not in _GTIN_LENGTHS:
        raise CodeError("length", f"A GTIN has 8, 12, 13 or 14 digits, got {len(gtin)}")
    if not _has_good_check_digit(gtin):
        raise CodeError("check_digit", f"The GTIN {gtin} has a wrong check digit")
    return gtin.zfill(14)


def _company_prefix(company_prefix: str, low: int = 6, high: int = 12) -> str:
    _require_digits(company_prefix, "The company prefix")
    if not low <= len(company_prefix) <= high:
        raise CodeError(
            "company_prefix",
            f"A company prefix here has {low} to {high} digits, got {len(company_prefix)}",
        )
    return company_prefix


def _reference(value: int, width: int, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an integer")
    if not 0 <= value < 10**width:
        raise CodeError(
            "item_ref", f"{what} {value} does not fit in {width} digits for this company prefix"
        )
    return str(value).zfill(width) if width else ""


def make_gtin(company_prefix: str, item_ref: int) -> str:
    """Make a GTIN-13 from a 7-12 digit company prefix and an item reference number.

    The item reference is zero-padded to fill the 12 digits before the check digit. The
    result is returned as 14 digits (indicator digit 0), ready for a Digital Link.
    """
    prefix = _company_prefix(company_prefix, 7, 12)
    body = prefix + _reference(item_ref, 12 - len(prefix), "The item reference")
    return "0" + body + gtin_check_digit(body)


def make_gln(company_prefix: str, location_ref: int) -> str:
    """Make a 13-digit GLN from a 7-12 digit company prefix and a location reference."""
    prefix = _company_prefix(company_prefix, 7, 12)
    body = prefix + _reference(location_ref, 12 - len(prefix), "The location reference")
    return body + gtin_check_digit(body)


def make_sscc(company_prefix: str, extension: int, serial_ref: int) -> str:
    """Make an 18-digit SSCC: extension digit, company prefix, serial reference, check.

    The serial reference is zero-padded to fill the 17 digits before the check digit.
    """
    prefix = _company_prefix(company_prefix)
    if isinstance(extension, bool) or not isinstance(extension, int):
        raise TypeError("The SSCC extension digit must be an integer")
    if not 0 <= extension <= 9:
        raise CodeError("extension", f"The SSCC extension digit must be 0-9, got {extension}")
    width = 16 - len(prefix)
    if isinstance(serial_ref, bool) or not isinstance(serial_ref, int):
        raise TypeError("The SSCC serial reference must be an integer")
    if not 0 <= serial_ref < 10**width:
        raise CodeError(
            "serial", f"The SSCC serial reference {serial_ref} does not fit in {width} digits"
        )
    body = str(extension) + prefix + str(serial_ref).zfill(width)
    return body + gtin_check_digit(body)


# --------------------------------------------------------------------------------------
# GS1 82-character set (AI 10 lot, AI 21 serial, AI 22 CPV)
# --------------------------------------------------------------------------------------

_AI82_CHAR = r"0-9A-Za-z!\"%&'()*+,\-./:;<=>?_"
_AI82_RE = re.compile(f"[{_AI82_CHAR}]+")
_MAX_AI_LENGTH = 20


def is_valid_ai_value(value: str) -> bool:
    """True if ``value`` is 1-20 characters of the GS1 82-character set.

    That set is ``0-9 A-Z a-z ! " % & ' ( ) * + , - . / : ; < = > ? _``: no space, no
    ``~`` or ``#``, nothing outside ASCII (so no Chinese).
    """
    return (
        isinstance(value, str)
        and 1 <= len(value) <= _MAX_AI_LENGTH
        and _AI82_RE.fullmatch(value) is not None
    )


def _check_ai_value(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"The {what} must be a string, not {type(value).__name__}")
    if not 1 <= len(value) <= _MAX_AI_LENGTH:
        raise CodeError(
            "length", f"The {what} must be 1 to {_MAX_AI_LENGTH} characters, got {len(value)}"
        )
    if not _AI82_RE.fullmatch(value):
        raise CodeError(
            "charset",
            f"The {what} {value!r} has characters outside the GS1 82-character set "
            "(letters, digits and ! \" % & ' ( ) * + , - . / : ; < = > ? _ only)",
        )
    return value


# --------------------------------------------------------------------------------------
# GS1 Digital Link
# --------------------------------------------------------------------------------------

# Key qualifiers of GTIN, in the order they must appear in the path.
_QUALIFIERS = {"22": "cpv", "10": "lot", "21": "serial"}
_QUALIFIER_ORDER = ("22", "10", "21")
_QUALIFIER_NAMES = {"22": "CPV (AI 22)", "10": "lot (AI 10)", "21": "serial (AI 21)"}
_EXPIRY_AI = "17"
# A path segment as RFC 3986 allows it (pchar): unreserved, sub-delims, ':', '@', %HH.
_PCHAR_RE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*")
_QUERY_KEY_RE = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
# Printable ASCII without space: anything else must be percent-encoded in a URL.
_URL_CHARS_RE = re.compile(r"[!-~]+")


@dataclass(frozen=True)
class DigitalLink:
    """The parts of a GS1 Digital Link URI that this platform uses.

    ``gtin`` is always 14 digits. ``query`` holds the query parameters that are not GS1
    application identifiers, such as the HMAC tag ``s``.
    """

    gtin: str
    lot: str | None = None
    serial: str | None = None
    cpv: str | None = None
    expiry: date | None = None
    query: dict[str, str] = field(default_factory=dict, hash=False)

    def to_url(self, base_url: str) -> str:
        """Build this link again under ``base_url`` (see :func:`build_digital_link`)."""
        return build_digital_link(
            base_url,
            self.gtin,
            self.lot,
            self.serial,
            cpv=self.cpv,
            expiry=self.expiry,
            extra_query=self.query,
        )


def _encode_path_value(value: str) -> str:
    # quote() keeps only A-Z a-z 0-9 - . _ ~ literal with safe=""; "~" cannot occur
    # because values are checked against the 82-character set first.
    return quote(value, safe="")


def _check_query_key(key: object) -> str:
    if not isinstance(key, str) or not _QUERY_KEY_RE.fullmatch(key):
        raise CodeError(
            "query_key",
            f"The query parameter name {key!r} must be 1-32 letters, digits, '_', '.' or '-'",
        )
    if key.isdigit():
        raise CodeError(
            "query_key",
            f"The query parameter {key!r} looks like a GS1 AI; pass AIs as named arguments",
        )
    return key


def build_digital_link(
    base_url: str,
    gtin: str,
    lot: str | None = None,
    serial: str | None = None,
    *,
    cpv: str | None = None,
    expiry: date | None = None,
    extra_query: dict[str, str] | None = None,
) -> str:
    """Build ``{base}/01/{gtin14}[/22/{cpv}][/10/{lot}][/21/{serial}][?17=YYMMDD&...]``.

    ``base_url`` is ``http(s)://host`` with an optional path stem and no trailing slash;
    the stem must not contain a ``01`` segment. Lot, serial and CPV must be 1-20
    characters of the GS1 82-character set and are percent-encoded in the path. Other
    query parameters (``extra_query``, e.g. the tag ``s``) follow the expiry date in the
    order given; their names must not be numeric (AIs only go in as named arguments).
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CodeError("syntax", f"The base URL must start with http:// or https://: {base_url!r}")
    if parts.query or parts.fragment or "?" in base_url or "#" in base_url:
        raise CodeError("syntax", "The base URL must not have a query string or fragment")
    if not _URL_CHARS_RE.fullmatch(base_url):
        raise CodeError("charset", "The base URL must be printable ASCII without spaces")
    if base_url.endswith("/"):
        raise CodeError("trailing_slash", f"The base URL must not end with '/': {base_url!r}")
    if "01" in parts.path.split("/"):
        raise CodeError("syntax", "The base URL path stem must not contain a '01' segment")

    path = f"{base_url}/01/{to_gtin14(gtin)}"
    for ai, value in (("22", cpv), ("10", lot), ("21", serial)):
        if value is not None:
            _check_ai_value(value, _QUALIFIER_NAMES[ai])
            path += f"/{ai}/{_encode_path_value(value)}"

    query: list[str] = []
    if expiry is not None:
        if not isinstance(expiry, date):
            raise TypeError("The expiry must be a datetime.date")
        query.append(f"{_EXPIRY_AI}={expiry:%y%m%d}")
    for key, value in (extra_query or {}).items():
        _check_query_key(key)
        if not isinstance(value, str):
            raise TypeError(f"The query parameter {key!r} must have a string value")
        query.append(f"{quote(key, safe='')}={quote(value, safe='')}")
    return path + ("?" + "&".join(query) if query else "")


def _yy_to_year(yy: int, today: date) -> int:
    """GS1 General Specifications 7.12: a two-digit year within -49..+50 of this year."""
    century = today.year - today.year % 100
    difference = yy - today.year % 100
    if difference >= 51:
        century -= 100
    elif difference <= -50:
        century += 100
    return century + yy


def _parse_yymmdd(value: str, today: date) -> date:
    if len(value) != 6 or not _DIGITS_RE.fullmatch(value):
        raise CodeError("date", f"A GS1 date is six digits YYMMDD, got {value!r}")
    year = _yy_to_year(int(value[:2]), today)
    month, day = int(value[2:4]), int(value[4:])
    if not 1 <= month <= 12:
        raise CodeError("date", f"The date {value} has month {month}, which does not exist")
    last_day = calendar.monthrange(year, month)[1]
    if day > last_day:
        raise CodeError("date", f"The date {value} has day {day}, which does not exist")
    # DD = 00 means the last day of the month.
    return date(year, month, day or last_day)


def _decode_component(raw: str, what: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise CodeError(
            "charset", f"The {what} {raw!r} has percent-escapes that are not valid UTF-8"
        ) from None


def _find_primary_key(segments: list[str]) -> int:
    """Index of the ``01`` segment that starts the key/qualifier pairs after the stem."""
    count = len(segments)
    candidates = [i for i, seg in enumerate(segments) if seg == "01" and (count - i) % 2 == 0]
    if not candidates:
        if "01" in segments:
            raise CodeError("syntax", "The Digital Link path has an AI without a value")
        raise CodeError("missing_gtin", "The Digital Link has no primary key /01/{GTIN}")
    for i in candidates:
        following = segments[i + 1]
        if len(following) == 14 and _DIGITS_RE.fullmatch(following):
            return i
    return candidates[0]


def parse_digital_link(url_or_path: str, *, today: date | None = None) -> DigitalLink:
    """Strictly parse a GS1 Digital Link URI (a full http(s) URL, or just its path).

    A path stem before ``/01/`` is allowed. Rejected with :class:`CodeError`: a GTIN
    that is not 14 digits or has a bad check digit, key qualifiers out of the order 22,
    10, 21, duplicate AIs, AIs in the path other than 01/22/10/21, a key or qualifier in
    the query string, a trailing slash, values that are empty, longer than 20 characters
    or outside the GS1 82-character set, a missing ``/01/``, and a bad expiry date (AI
    17, YYMMDD, where DD=00 is the last day of the month). Numeric query parameters other
    than 17 are rejected; non-numeric ones end up in ``DigitalLink.query``.

    ``today`` sets the reference year for two-digit years (GS1 sliding window of -49 to
    +50 years); it defaults to the current UTC date.
    """
    if not isinstance(url_or_path, str):
        raise TypeError("The Digital Link must be a string")
    if not _URL_CHARS_RE.fullmatch(url_or_path):
        raise CodeError(
            "charset", "A Digital Link must be printable ASCII without spaces; escape the rest"
        )
    parts = urlsplit(url_or_path)
    if parts.scheme and (parts.scheme.lower() not in ("http", "https") or not parts.netloc):
        raise CodeError("syntax", f"A Digital Link must be an http(s) URL: {url_or_path!r}")
    if parts.fragment or "#" in url_or_path:
        raise CodeError("syntax", "A Digital Link must not have a fragment ('#')")
    path = parts.path
    if path.endswith("/"):
        raise CodeError("trailing_slash", "A Digital Link path must not end with '/'")

    segments = path.split("/")
    start = _find_primary_key(segments)
    for raw in segments[:start]:
        if not _PCHAR_RE.fullmatch(raw):
            raise CodeError("charset", f"The path stem segment {raw!r} is not valid in a URL")

    raw_gtin = segments[start + 1]
    if raw_gtin:
        _require_digits(raw_gtin, "The GTIN")
    if len(raw_gtin) != 14:
        raise CodeError(
            "length", f"A Digital Link carries a 14-digit GTIN, got {len(raw_gtin)} digits"
        )
    gtin = to_gtin14(raw_gtin)

    values: dict[str, str] = {}
    last_position = -1
    for i in range(start + 2, len(segments), 2):
        ai, raw = segments[i], segments[i + 1]
        if ai == "01" or ai in values:
            raise CodeError("duplicate", f"AI {ai} appears more than once in the Digital Link")
        if ai not in _QUALIFIERS:
            raise CodeError(
                "unknown_ai",
                f"{ai!r} is not a key qualifier of GTIN (22, 10 or 21) and cannot be in the path",
            )
        position = _QUALIFIER_ORDER.index(ai)
        if position < last_position:
            raise CodeError(
                "order", "Key qualifiers must come in the order 22, 10, 21 in the Digital Link"
            )
        last_position = position
        if not _PCHAR_RE.fullmatch(raw):
            raise CodeError("charset", f"The value {raw!r} of AI {ai} is not valid in a URL path")
        values[ai] = _check_ai_value(
            _decode_component(raw, _QUALIFIER_NAMES[ai]), _QUALIFIER_NAMES[ai]
        )

    expiry: date | None = None
    query: dict[str, str] = {}
    seen: set[str] = set()
    for pair in parts.query.split("&") if parts.query else []:
        raw_key, sep, raw_value = pair.partition("=")
        if not sep or not raw_key:
            raise CodeError("syntax", f"The query parameter {pair!r} is not of the form key=value")
        key = _decode_component(raw_key, "query parameter name")
        value = _decode_component(raw_value, f"query parameter {key!r}")
        if key in seen:
            raise CodeError("duplicate", f"The query parameter {key!r} appears more than once")
        seen.add(key)
        if key == "01" or key in _QUALIFIERS:
            raise CodeError(
                "query_key",
                f"AI {key} is a primary key or key qualifier and must be in the path, "
                "not the query string",
            )
        if key == _EXPIRY_AI:
            expiry = _parse_yymmdd(value, today or datetime.now(UTC).date())
        elif key.isdigit():
            raise CodeError("unknown_ai", f"AI {key} is not supported in the query string")
        else:
            query[_check_query_key(key)] = value

    return DigitalLink(
        gtin=gtin,
        lot=values.get("10"),
        serial=values.get("21"),
        cpv=values.get("22"),
        expiry=expiry,
        query=query,
    )


# --------------------------------------------------------------------------------------
# Serials and lot codes
# --------------------------------------------------------------------------------------

_SGTIN96_SERIAL_BITS = 38
_SGTIN96_SERIAL_LIMIT = 2**_SGTIN96_SERIAL_BITS
_NEW_SERIAL_LOW = 10**10
_SERIAL96_RE = re.compile(r"0|[1-9][0-9]*")


class _RandBelow(Protocol):
    def randbelow(self, exclusive_upper_bound: int, /) -> int: ...


class _RandRange(Protocol):
    def randrange(self, stop: int, /) -> int: ...


def new_serial(rng: _RandBelow | _RandRange = secrets) -> str:
    """A new random serial, uniform in [10**10, 2**38): 11-12 digits, no leading zero.

    It fits SGTIN-96 (below 2**38) and, with about 38 bits of randomness, cannot be
    guessed from neighbouring serials. ``rng`` is anything with ``randbelow(n)`` (the
    default :mod:`secrets`) or ``randrange(n)`` (e.g. a seeded ``random.Random`` in tests).
    """
    span = _SGTIN96_SERIAL_LIMIT - _NEW_SERIAL_LOW
    below = getattr(rng, "randbelow", None) or getattr(rng, "randrange", None)
    if below is None:
        raise TypeError("rng must have a randbelow(n) or randrange(n) method")
    draw = below(span)
    if not 0 <= draw < span:
        raise ValueError(f"rng returned {draw}, outside 0..{span - 1}")
    return str(_NEW_SERIAL_LOW + draw)


def is_valid_sgtin96_serial(s: str) -> bool:
    """True if ``s`` can be an SGTIN-96 serial: decimal digits, no leading zero, < 2**38.

    ``"0"`` itself is allowed (it has no leading zero), as in the Tag Data Standard.
    """
    return (
        isinstance(s, str)
        and _SERIAL96_RE.fullmatch(s) is not None
        and len(s) <= 12
        and int(s) < _SGTIN96_SERIAL_LIMIT
    )


_LOT_PREFIX_RE = re.compile(r"[A-Z]{1,8}")


def _sequence_letters(seq: int) -> str:
    letters = ""
    while seq:
        seq, rest = divmod(seq - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def new_lot_code(prefix: str, harvest: date, seq: int) -> str:
    """Make a lot code (AI 10): ``{prefix}{YYMM}{letters}``, e.g. ``QY2611A``.

    Scheme: ``prefix`` is 1-8 upper-case ASCII letters identifying the cooperative or
    product line; ``YYMM`` is the harvest (or catch) year and month; the letters count
    the lots of that prefix and month, 1 -> ``A`` ... 26 -> ``Z``, 27 -> ``AA``, 28 ->
    ``AB``, ... (like spreadsheet columns). Because the prefix is letters only, a code
    splits back into its parts unambiguously. The result is within the GS1
    82-character set and at most 20 characters; the Chinese batch name is kept elsewhere.
    """
    if not isinstance(prefix, str) or not _LOT_PREFIX_RE.fullmatch(prefix):
        raise CodeError(
            "charset", f"A lot prefix is 1 to 8 upper-case ASCII letters A-Z, got {prefix!r}"
        )
    if not isinstance(harvest, date):
        raise TypeError("The harvest date must be a datetime.date")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise TypeError("The lot sequence number must be an integer")
    if seq < 1:
        raise CodeError("sequence", f"The lot sequence number starts at 1, got {seq}")
    code = f"{prefix}{harvest:%y%m}{_sequence_letters(seq)}"
    if len(code) > _MAX_AI_LENGTH:
        raise CodeError("length", f"The lot code {code} is longer than {_MAX_AI_LENGTH} characters")
    return code


# --------------------------------------------------------------------------------------
# HMAC tag (query parameter "s")
# --------------------------------------------------------------------------------------

_MIN_SECRET_BYTES = 16
_MIN_TAG_LENGTH = 6
_MAX_TAG_LENGTH = 52  # base32 of a 32-byte digest, without padding


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes | bytearray):
        raise TypeError("The tag secret must be bytes")
    if len(secret) < _MIN_SECRET_BYTES:
        raise CodeError("secret", f"The tag secret must be at least {_MIN_SECRET_BYTES} bytes long")


def _check_tag_length(length: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int):
        raise TypeError("The tag length must be an integer")
    if not _MIN_TAG_LENGTH <= length <= _MAX_TAG_LENGTH:
        raise CodeError(
            "length",
            f"The tag length must be {_MIN_TAG_LENGTH} to {_MAX_TAG_LENGTH} characters, "
            f"got {length}",
        )


def _canonical(gtin14: str, lot: str | None, serial: str | None) -> bytes:
    # Lot and serial are in the GS1 82-character set, which has no "|", so this string
    # is unambiguous; "01"/"10"/"21" labels keep a lot from passing as a serial.
    parts = [f"01={to_gtin14(gtin14)}"]
    if lot is not None:
        parts.append(f"10={_check_ai_value(lot, 'lot')}")
    if serial is not None:
        parts.append(f"21={_check_ai_value(serial, 'serial')}")
    return ("yuenong-tag-v1|" + "|".join(parts)).encode("ascii")


def code_tag(
    secret: bytes, gtin14: str, lot: str | None, serial: str | None, length: int = 8
) -> str:
    """A short tag proving a code was issued by us: HMAC-SHA256, lowercase base32.

    The MAC covers ``yuenong-tag-v1|01={gtin14}[|10={lot}][|21={serial}]``. ``length``
    characters (6-52) of the unpadded lowercase base32 digest are returned; 8 characters
    carry 40 bits. The alphabet ``a-z2-7`` needs no escaping in a URL.
    """
    _check_secret(secret)
    _check_tag_length(length)
    digest = hmac.new(bytes(secret), _canonical(gtin14, lot, serial), hashlib.sha256).digest()
    # Base32 turns each 5 bytes into 8 characters, so only the bytes behind the
    # characters kept need encoding (the result is the same; encoding all 32 is slow).
    needed = -(-length // 8) * 5
    return base64.b32encode(digest[:needed]).decode("ascii").rstrip("=").lower()[:length]


def verify_tag(
    secret: bytes,
    gtin14: str,
    lot: str | None,
    serial: str | None,
    tag: str | None,
    *,
    length: int = 8,
) -> bool:
    """True if ``tag`` is the tag of this code; compared in constant time.

    The tag must have exactly ``length`` characters (case-insensitive), so a shortened
    tag never passes. An invalid GTIN, lot or serial gives ``False``.
    """
    _check_secret(secret)
    _check_tag_length(length)
    if not isinstance(tag, str) or len(tag) != length or not tag.isascii():
        return False
    try:
        expected = code_tag(secret, gtin14, lot, serial, length)
    except CodeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), tag.lower().encode("ascii"))


# --------------------------------------------------------------------------------------
# EPC: SGTIN-96, SSCC, SGLN
# --------------------------------------------------------------------------------------

_SGTIN96_HEADER = 0x30
# Partition value -> (company prefix bits, company prefix digits); item reference takes
# the rest of the 44 bits and 13 - digits digits (indicator digit included).
_PARTITIONS = {
    0: (40, 12),
    1: (37, 11),
    2: (34, 10),
    3: (30, 9),
    4: (27, 8),
    5: (24, 7),
    6: (20, 6),
}
_PARTITION_BY_DIGITS = {digits: p for p, (_bits, digits) in _PARTITIONS.items()}
_CP_IR_BITS = 44
_HEX96_RE = re.compile(r"[0-9A-Fa-f]+")
# TDS: in EPC URIs these characters of a GS3A3 component are written as %HH.
_EPC_URI_ESCAPES = {c: f"%{ord(c):02X}" for c in '"%&/<>?'}


def _epc_escape(value: str) -> str:
    return "".join(_EPC_URI_ESCAPES.get(c, c) for c in value)


def _epc_prefix(company_prefix: str) -> str:
    _require_digits(company_prefix, "The company prefix")
    if len(company_prefix) not in _PARTITION_BY_DIGITS:
        raise CodeError(
            "partition",
            f"EPC company prefixes have 6 to 12 digits, got {len(company_prefix)}",
        )
    return company_prefix


def _split_gtin(company_prefix: str, gtin14: str) -> tuple[str, str]:
    """(company prefix, indicator digit + item reference) of a GTIN."""
    prefix = _epc_prefix(company_prefix)
    gtin = to_gtin14(gtin14)
    if gtin[1 : 1 + len(prefix)] != prefix:
        raise CodeError(
            "company_prefix", f"The GTIN {gtin} does not start with company prefix {prefix}"
        )
    return prefix, gtin[0] + gtin[1 + len(prefix) : 13]


def _check_serial96(serial: str) -> str:
    if not is_valid_sgtin96_serial(serial):
        raise CodeError(
            "serial",
            f"An SGTIN-96 serial is a number below 2**38 without leading zeros, got {serial!r}",
        )
    return serial


def _check_filter(filter_value: int) -> int:
    if isinstance(filter_value, bool) or not isinstance(filter_value, int):
        raise TypeError("The EPC filter value must be an integer")
    if not 0 <= filter_value <= 7:
        raise CodeError("filter", f"The EPC filter value must be 0-7, got {filter_value}")
    return filter_value


def _gtin_from_parts(prefix: str, indicator_item: str) -> str:
    body = indicator_item[0] + prefix + indicator_item[1:]
    return body + gtin_check_digit(body)


def sgtin96_hex(company_prefix: str, gtin14: str, serial: str, filter_value: int = 1) -> str:
    """Encode an SGTIN-96 EPC as 24 upper-case hex characters (Tag Data Standard).

    Layout: header 0x30 (8 bits), filter (3), partition (3, from the company prefix
    length), company prefix and indicator + item reference (44 together), serial (38).
    The serial is checked first: decimal, no leading zero, below 2**38.
    """
    serial = _check_serial96(serial)
    filter_value = _check_filter(filter_value)
    prefix, indicator_item = _split_gtin(company_prefix, gtin14)
    partition = _PARTITION_BY_DIGITS[len(prefix)]
    prefix_bits = _PARTITIONS[partition][0]
    item_bits = _CP_IR_BITS - prefix_bits
    value = (
        _SGTIN96_HEADER << 88
        | filter_value << 85
        | partition << 82
        | int(prefix) << (38 + item_bits)
        | int(indicator_item) << 38
        | int(serial)
    )
    return f"{value:024X}"


def sgtin_pure_uri(company_prefix: str, gtin14: str, serial: str) -> str:
    """``urn:epc:id:sgtin:{CompanyPrefix}.{Indicator+ItemRef}.{serial}``.

    The serial may be any 1-20 characters of the GS1 82-character set (SGTIN-198 and
    Digital Link serials too); ``" % & / < > ?`` are escaped as the TDS requires.
    """
    prefix, indicator_item = _split_gtin(company_prefix, gtin14)
    serial = _check_ai_value(serial, "serial (AI 21)")
    return f"urn:epc:id:sgtin:{prefix}.{indicator_item}.{_epc_escape(serial)}"


def sgtin96_tag_uri(company_prefix: str, gtin14: str, serial: str, filter_value: int = 1) -> str:
    """``urn:epc:tag:sgtin-96:{filter}.{CompanyPrefix}.{Indicator+ItemRef}.{serial}``."""
    serial = _check_serial96(serial)
    filter_value = _check_filter(filter_value)
    prefix, indicator_item = _split_gtin(company_prefix, gtin14)
    return f"urn:epc:tag:sgtin-96:{filter_value}.{prefix}.{indicator_item}.{serial}"


_PURE_PREFIX = "urn:epc:id:sgtin:"
_TAG_PREFIX = "urn:epc:tag:sgtin-96:"


def _decode_sgtin_fields(prefix: str, indicator_item: str, serial: str) -> tuple[str, str, str]:
    _epc_prefix(prefix)
    _require_digits(indicator_item, "The indicator digit and item reference")
    if len(prefix) + len(indicator_item) != 13:
        raise CodeError(
            "length", "The company prefix and item reference of an SGTIN must have 13 digits"
        )
    return _gtin_from_parts(prefix, indicator_item), _check_serial96(serial), prefix


def decode_sgtin96(hex_or_urn: str) -> tuple[str, str, str]:
    """Decode an SGTIN-96 EPC into ``(gtin14, serial, company_prefix)``.

    Accepts 24 hex characters (any case), a pure identity URI
    ``urn:epc:id:sgtin:CP.IIR.serial`` or a tag URI ``urn:epc:tag:sgtin-96:F.CP.IIR.serial``.
    The serial must be one SGTIN-96 can carry (decimal, no leading zero, below 2**38).
    """
    if not isinstance(hex_or_urn, str):
        raise TypeError("The EPC must be a string")
    lowered = hex_or_urn.lower()
    if lowered.startswith(_PURE_PREFIX):
        fields = hex_or_urn[len(_PURE_PREFIX) :].split(".")
        if len(fields) != 3:
            raise CodeError("syntax", f"An SGTIN pure identity URI has three fields: {hex_or_urn}")
        return _decode_sgtin_fields(*fields)
    if lowered.startswith(_TAG_PREFIX):
        fields = hex_or_urn[len(_TAG_PREFIX) :].split(".")
        if len(fields) != 4:
            raise CodeError("syntax", f"An SGTIN-96 tag URI has four fields: {hex_or_urn}")
        if len(fields[0]) != 1 or not fields[0].isdigit():
            raise CodeError("filter", f"The EPC filter value must be 0-7, got {fields[0]!r}")
        _check_filter(int(fields[0]))
        return _decode_sgtin_fields(*fields[1:])
    if lowered.startswith("urn:"):
        raise CodeError("header", f"Not an SGTIN URI: {hex_or_urn}")
    if not _HEX96_RE.fullmatch(hex_or_urn):
        raise CodeError("charset", f"An SGTIN-96 EPC is 24 hex characters or a URI: {hex_or_urn!r}")
    if len(hex_or_urn) != 24:
        raise CodeError("length", f"An SGTIN-96 EPC is 24 hex characters, got {len(hex_or_urn)}")

    value = int(hex_or_urn, 16)
    header = value >> 88
    if header != _SGTIN96_HEADER:
        raise CodeError("header", f"The EPC header is 0x{header:02X}, not SGTIN-96 (0x30)")
    partition = (value >> 82) & 0b111
    if partition not in _PARTITIONS:
        raise CodeError("partition", f"The SGTIN-96 partition value {partition} is not defined")
    prefix_bits, prefix_digits = _PARTITIONS[partition]
    item_bits, item_digits = _CP_IR_BITS - prefix_bits, 13 - prefix_digits
    prefix_value = (value >> (38 + item_bits)) & ((1 << prefix_bits) - 1)
    item_value = (value >> 38) & ((1 << item_bits) - 1)
    if prefix_value >= 10**prefix_digits or item_value >= 10**item_digits:
        raise CodeError(
            "partition",
            "The SGTIN-96 company prefix or item reference is too large for its partition",
        )
    prefix = str(prefix_value).zfill(prefix_digits)
    indicator_item = str(item_value).zfill(item_digits)
    serial = str(value & (_SGTIN96_SERIAL_LIMIT - 1))
    return _gtin_from_parts(prefix, indicator_item), serial, prefix


def _check_key(key: str, length: int, what: str) -> str:
    _require_digits(key, f"The {what}")
    if len(key) != length:
        raise CodeError("length", f"A {what} has {length} digits, got {len(key)}")
    if not _has_good_check_digit(key):
        raise CodeError("check_digit", f"The {what} {key} has a wrong check digit")
    return key


def sscc_uri(company_prefix: str, sscc: str) -> str:
    """``urn:epc:id:sscc:{CompanyPrefix}.{SerialRef}`` for an 18-digit SSCC.

    As in the TDS, the serial reference starts with the SSCC's extension digit.
    """
    prefix = _epc_prefix(company_prefix)
    sscc = _check_key(sscc, 18, "SSCC")
    if sscc[1 : 1 + len(prefix)] != prefix:
        raise CodeError("company_prefix", f"The SSCC {sscc} does not carry company prefix {prefix}")
    return f"urn:epc:id:sscc:{prefix}.{sscc[0]}{sscc[1 + len(prefix) : 17]}"


def sgln_uri(company_prefix: str, gln13: str, extension: str = "0") -> str:
    """``urn:epc:id:sgln:{CompanyPrefix}.{LocationRef}.{extension}`` for a 13-digit GLN.

    ``extension`` "0" means the location itself; otherwise it is the GLN extension (AI
    254), 1-20 characters of the GS1 82-character set, escaped as the TDS requires.
    """
    prefix = _epc_prefix(company_prefix)
    gln = _check_key(gln13, 13, "GLN")
    if not gln.startswith(prefix):
        raise CodeError(
            "company_prefix", f"The GLN {gln} does not start with company prefix {prefix}"
        )
    if not is_valid_ai_value(extension):
        raise CodeError(
            "extension",
            f"A GLN extension is 1-20 characters of the GS1 82-character set, got {extension!r}",
        )
    return f"urn:epc:id:sgln:{prefix}.{gln[len(prefix) : 12]}.{_epc_escape(extension)}"
