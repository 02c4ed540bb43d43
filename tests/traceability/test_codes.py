"""Tests for traceability.codes: GS1 keys, Digital Link, SGTIN-96, SSCC, SGLN, tags."""

import base64
import hashlib
import hmac
import random
import re
import string
from datetime import date

import pytest
from epcpy.epc_schemes.sgtin import SGTIN, SGTINFilterValue
from epcpy.utils.common import calculate_checksum
from hypothesis import given, settings
from hypothesis import strategies as st

from traceability.codes import (
    CodeError,
    DigitalLink,
    build_digital_link,
    code_tag,
    decode_sgtin96,
    gtin_check_digit,
    is_valid_ai_value,
    is_valid_gtin,
    is_valid_sgtin96_serial,
    make_gln,
    make_gtin,
    make_sscc,
    new_lot_code,
    new_serial,
    parse_digital_link,
    sgln_uri,
    sgtin96_hex,
    sgtin96_tag_uri,
    sgtin_pure_uri,
    sscc_uri,
    to_gtin14,
    verify_tag,
)

# No example database: property tests must not write a .hypothesis folder into the repo.
PROPERTY = settings(database=None, deadline=None, max_examples=200)

GS1_82 = string.digits + string.ascii_uppercase + string.ascii_lowercase + "!\"%&'()*+,-./:;<=>?_"
EXAMPLE_GTIN = "09506000134352"
TDS_TAG_URI = "urn:epc:tag:sgtin-96:3.0614141.812345.6789"
TDS_HEX = "3074257BF7194E4000001A85"
TDS_GTIN = "80614141123458"
SECRET = b"0123456789abcdef-test-secret"
TODAY = date(2026, 6, 1)


def reason_of(excinfo: pytest.ExceptionInfo[CodeError]) -> str:
    return excinfo.value.reason


# --------------------------------------------------------------------------------------
# Check digits and GTINs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ("0950600013435", "2"),  # gs1.md
        ("0690123456789", "2"),  # gs1.md
        ("8061414112345", "8"),  # TDS GTIN 80614141123458
        ("9638507", "4"),  # GTIN-8 96385074
        ("03600029145", "2"),  # GTIN-12 036000291452
        ("10614141234567890", "8"),  # TDS SSCC 106141412345678908
    ],
)
def test_check_digit_vectors(body: str, check: str) -> None:
    assert gtin_check_digit(body) == check


@PROPERTY
@given(st.text(alphabet=string.digits, min_size=1, max_size=17))
def test_check_digit_agrees_with_epcpy(body: str) -> None:
    assert gtin_check_digit(body) == str(calculate_checksum(body))


def test_check_digit_rejects_non_digits() -> None:
    with pytest.raises(CodeError) as excinfo:
        gtin_check_digit("09506OOO13435")
    assert reason_of(excinfo) == "charset"


@pytest.mark.parametrize("gtin", ["96385074", "036000291452", "0950600013435" + "2", TDS_GTIN])
def test_is_valid_gtin_accepts_all_lengths(gtin: str) -> None:
    assert is_valid_gtin(gtin)


@pytest.mark.parametrize(
    "gtin",
    ["09506000134353", "0950600013435", "950600013435200", "", "0950600013435x", "٠٩٥٠٦٠٠٠١٣٤٣٥٢"],
)
def test_is_valid_gtin_rejects(gtin: str) -> None:
    assert not is_valid_gtin(gtin)


def test_to_gtin14_pads_and_validates() -> None:
    assert to_gtin14("9506000134352") == EXAMPLE_GTIN
    assert to_gtin14("96385074") == "00000096385074"
    assert to_gtin14(EXAMPLE_GTIN) == EXAMPLE_GTIN
    with pytest.raises(CodeError) as excinfo:
        to_gtin14("9506000134353")
    assert reason_of(excinfo) == "check_digit"
    with pytest.raises(CodeError) as excinfo:
        to_gtin14("950600013435")  # 12 digits but a wrong check digit
    assert reason_of(excinfo) == "check_digit"
    with pytest.raises(CodeError) as excinfo:
        to_gtin14("1234567890")
    assert reason_of(excinfo) == "length"
    with pytest.raises(CodeError) as excinfo:
        to_gtin14("95O6000134352")
    assert reason_of(excinfo) == "charset"


def test_make_gtin_pads_item_reference() -> None:
    gtin = make_gtin("6901234", 5)
    assert gtin == "0690123400005" + gtin_check_digit("0690123400005")
    assert len(gtin) == 14
    assert is_valid_gtin(gtin)
    assert make_gtin("690123456789", 0) == "0690123456789" + "2"
    assert make_gtin("9506000", 13435) == EXAMPLE_GTIN


@pytest.mark.parametrize(
    ("prefix", "item_ref", "reason"),
    [
        ("6901234", 100000, "item_ref"),  # five digits left for the item reference
        ("6901234", -1, "item_ref"),
        ("690123456789", 1, "item_ref"),  # a 12-digit prefix leaves no room
        ("690123", 1, "company_prefix"),
        ("6901234567890", 1, "company_prefix"),
        ("69O1234", 1, "charset"),
    ],
)
def test_make_gtin_rejects(prefix: str, item_ref: int, reason: str) -> None:
    with pytest.raises(CodeError) as excinfo:
        make_gtin(prefix, item_ref)
    assert reason_of(excinfo) == reason


# --------------------------------------------------------------------------------------
# GS1 82-character set
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["QY2611A", "A", "a" * 20, GS1_82[:20], "!\"%&'()*+,-./:;<=>?_"])
def test_ai_value_accepts_82_set(value: str) -> None:
    assert is_valid_ai_value(value)


def test_82_set_has_82_characters() -> None:
    assert len(set(GS1_82)) == 82
    assert all(is_valid_ai_value(c) for c in GS1_82)


@pytest.mark.parametrize(
    "value", ["", "A" * 21, "清远2611", "QY 2611", "QY~1", "QY#1", "QY\n", "QY2611A\n", "ＱＹ"]
)
def test_ai_value_rejects(value: str) -> None:
    assert not is_valid_ai_value(value)


# --------------------------------------------------------------------------------------
# Digital Link: parsing
# --------------------------------------------------------------------------------------


def test_parse_gs1_example() -> None:
    link = parse_digital_link("https://id.gs1.org/01/09506000134352/10/ABC123/21/12345")
    assert link == DigitalLink(gtin=EXAMPLE_GTIN, lot="ABC123", serial="12345")
    assert link.cpv is None
    assert link.expiry is None
    assert link.query == {}


def test_parse_path_only_and_stems() -> None:
    expected = DigitalLink(gtin=EXAMPLE_GTIN, lot="ABC123")
    assert parse_digital_link("/01/09506000134352/10/ABC123") == expected
    assert parse_digital_link("https://trace.example.cn/q/r/01/09506000134352/10/ABC123") == (
        expected
    )
    # A stem that itself has a "01" segment is not taken for the primary key.
    assert parse_digital_link("https://example.cn/2026/01/01/09506000134352/10/ABC123") == (
        expected
    )
    assert parse_digital_link("https://example.cn/01/09506000134352/10/01/21/01") == DigitalLink(
        gtin=EXAMPLE_GTIN, lot="01", serial="01"
    )


def test_parse_all_qualifiers_expiry_and_query() -> None:
    link = parse_digital_link(
        "https://id.gs1.org/01/09506000134352/22/2A/10/ABC/21/9?17=261130&s=abcd2345"
    )
    assert link == DigitalLink(
        gtin=EXAMPLE_GTIN,
        lot="ABC",
        serial="9",
        cpv="2A",
        expiry=date(2026, 11, 30),
        query={"s": "abcd2345"},
    )
    hash(link)  # frozen and hashable despite the query dict


@pytest.mark.parametrize(
    ("yymmdd", "expected"),
    [
        ("261100", date(2026, 11, 30)),  # DD=00 is the last day of the month
        ("280200", date(2028, 2, 29)),  # leap year
        ("270200", date(2027, 2, 28)),
        ("261231", date(2026, 12, 31)),
        ("760101", date(2076, 1, 1)),  # GS1 sliding window: up to 50 years ahead
        ("770101", date(1977, 1, 1)),  # ... and 49 years back
    ],
)
def test_parse_expiry_dates(yymmdd: str, expected: date) -> None:
    link = parse_digital_link(f"/01/09506000134352?17={yymmdd}", today=TODAY)
    assert link.expiry == expected


def test_parse_accepts_lowercase_percent_hex() -> None:
    link = parse_digital_link("/01/09506000134352/10/A%2fB%2a/21/x%3a1")
    assert link.lot == "A/B*"
    assert link.serial == "x:1"
    assert parse_digital_link("/01/09506000134352/10/A%2FB%2A").lot == "A/B*"


def test_parse_accepts_literal_sub_delims() -> None:
    # Not required to be escaped by RFC 3986, and inside the 82-character set.
    assert parse_digital_link("/01/09506000134352/10/A!(1)*'").lot == "A!(1)*'"


INVALID_LINKS = [
    # (description, link, reason)
    ("month 13", "/01/09506000134352?17=261301", "date"),
    ("31 November", "/01/09506000134352?17=261131", "date"),
    ("short date", "/01/09506000134352?17=2611", "date"),
    ("letters in date", "/01/09506000134352?17=26A101", "date"),
    ("21 before 10", "/01/09506000134352/21/12345/10/ABC", "order"),
    ("10 before 22", "/01/09506000134352/10/ABC/22/A", "order"),
    ("duplicate lot", "/01/09506000134352/10/ABC/10/DEF", "duplicate"),
    ("duplicate 01", "/01/09506000134352/01/09506000134352", "duplicate"),
    ("duplicate query", "/01/09506000134352?s=a&s=b", "duplicate"),
    ("duplicate 17", "/01/09506000134352?17=261130&17=261130", "duplicate"),
    ("trailing slash", "https://id.gs1.org/01/09506000134352/", "trailing_slash"),
    ("trailing slash after lot", "https://id.gs1.org/01/09506000134352/10/A/", "trailing_slash"),
    ("21-char lot", "/01/09506000134352/10/" + "A" * 21, "length"),
    ("21-char serial", "/01/09506000134352/21/" + "1" * 21, "length"),
    ("empty lot", "/01/09506000134352/10//21/1", "length"),
    ("raw Chinese lot", "/01/09506000134352/10/清远2611", "charset"),
    ("escaped Chinese lot", "/01/09506000134352/10/%E6%B8%85%E8%BF%9C", "charset"),
    ("raw space", "/01/09506000134352/10/QY 2611", "charset"),
    ("escaped space", "/01/09506000134352/10/QY%202611", "charset"),
    ("raw tilde", "/01/09506000134352/10/QY~1", "charset"),
    ("escaped tilde", "/01/09506000134352/10/QY%7E1", "charset"),
    ("escaped hash", "/01/09506000134352/10/QY%231", "charset"),
    ("bad escape", "/01/09506000134352/10/QY%ZZ", "charset"),
    ("not UTF-8", "/01/09506000134352/10/QY%FF", "charset"),
    ("bad check digit", "https://id.gs1.org/01/09506000134353/10/ABC123", "check_digit"),
    ("13-digit GTIN", "https://id.gs1.org/01/9506000134352/10/ABC123", "length"),
    ("letters in GTIN", "https://id.gs1.org/01/0950600013435X/10/ABC", "charset"),
    ("missing 01", "https://id.gs1.org/10/ABC123/21/12345", "missing_gtin"),
    ("no path", "https://id.gs1.org", "missing_gtin"),
    ("10 in query", "https://id.gs1.org/01/09506000134352?10=ABC123", "query_key"),
    ("21 in query", "https://id.gs1.org/01/09506000134352/10/A?21=1", "query_key"),
    ("01 in query", "https://id.gs1.org/01/09506000134352?01=09506000134352", "query_key"),
    ("17 in the path", "/01/09506000134352/17/261130", "unknown_ai"),
    ("unknown AI in path", "/01/09506000134352/99/X", "unknown_ai"),
    ("unsupported query AI", "/01/09506000134352?15=261130", "unknown_ai"),
    ("unescaped slash in lot", "/01/09506000134352/10/A/B", "syntax"),
    ("fragment", "/01/09506000134352/10/A#B", "syntax"),
    ("other scheme", "ftp://id.gs1.org/01/09506000134352", "syntax"),
    ("query without =", "/01/09506000134352?s", "syntax"),
]


@pytest.mark.parametrize(
    ("link", "reason"),
    [pytest.param(link, reason, id=name) for name, link, reason in INVALID_LINKS],
)
def test_parse_rejects(link: str, reason: str) -> None:
    with pytest.raises(CodeError) as excinfo:
        parse_digital_link(link, today=TODAY)
    assert reason_of(excinfo) == reason
    assert str(excinfo.value)  # a plain English message, never empty
    assert isinstance(excinfo.value, ValueError)


# --------------------------------------------------------------------------------------
# Digital Link: building
# --------------------------------------------------------------------------------------


def test_build_shape() -> None:
    url = build_digital_link(
        "https://trace.example.cn/q",
        "9506000134352",
        "QY2611A",
        "12345",
        expiry=date(2026, 11, 30),
        extra_query={"s": "abcd2345"},
    )
    assert url == (
        "https://trace.example.cn/q/01/09506000134352/10/QY2611A/21/12345?17=261130&s=abcd2345"
    )
    assert build_digital_link("https://id.gs1.org", EXAMPLE_GTIN) == (
        "https://id.gs1.org/01/09506000134352"
    )
    assert build_digital_link("https://id.gs1.org", EXAMPLE_GTIN, serial="7", cpv="2A") == (
        "https://id.gs1.org/01/09506000134352/22/2A/21/7"
    )


def test_build_percent_encodes_specials() -> None:
    special = "!\"%&'()*+,/:;<=>?"
    url = build_digital_link("https://id.gs1.org", EXAMPLE_GTIN, special, "a-b.c_d")
    assert url == (
        "https://id.gs1.org/01/09506000134352"
        "/10/%21%22%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3C%3D%3E%3F/21/a-b.c_d"
    )
    link = parse_digital_link(url)
    assert link.lot == special
    assert link.serial == "a-b.c_d"


def test_build_encodes_query_values() -> None:
    url = build_digital_link("https://id.gs1.org", EXAMPLE_GTIN, extra_query={"s": "a&b=c d"})
    assert url.endswith("?s=a%26b%3Dc%20d")
    assert parse_digital_link(url).query == {"s": "a&b=c d"}


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"lot": "A" * 21}, "length"),
        ({"lot": ""}, "length"),
        ({"lot": "清远2611"}, "charset"),
        ({"serial": "1 2"}, "charset"),
        ({"serial": "1~2"}, "charset"),
        ({"cpv": "A#"}, "charset"),
        ({"gtin": "09506000134353"}, "check_digit"),
        ({"gtin": "0950600013"}, "length"),
        ({"base_url": "https://id.gs1.org/"}, "trailing_slash"),
        ({"base_url": "id.gs1.org"}, "syntax"),
        ({"base_url": "https://id.gs1.org/01"}, "syntax"),
        ({"base_url": "https://id.gs1.org?x=1"}, "syntax"),
        ({"extra_query": {"10": "ABC"}}, "query_key"),
        ({"extra_query": {"17": "261130"}}, "query_key"),
        ({"extra_query": {"": "x"}}, "query_key"),
        ({"extra_query": {"a b": "x"}}, "query_key"),
    ],
)
def test_build_rejects(kwargs: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {"base_url": "https://id.gs1.org", "gtin": EXAMPLE_GTIN}
    args.update(kwargs)
    with pytest.raises(CodeError) as excinfo:
        build_digital_link(**args)  # type: ignore[arg-type]
    assert reason_of(excinfo) == reason


ai_values = st.text(alphabet=GS1_82, min_size=1, max_size=20)
gtin13_bodies = st.text(alphabet=string.digits, min_size=13, max_size=13)
query_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,10}", fullmatch=True)
query_values = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)


@PROPERTY
@given(
    base=st.sampled_from(
        ["https://id.gs1.org", "https://trace.example.cn/q", "http://localhost:5000/a/b"]
    ),
    body=gtin13_bodies,
    lot=st.none() | ai_values,
    serial=st.none() | ai_values,
    cpv=st.none() | ai_values,
    expiry=st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2076, 12, 31)),
    extra=st.dictionaries(query_keys.filter(lambda k: not k.isdigit()), query_values, max_size=3),
)
def test_build_parse_round_trip(
    base: str,
    body: str,
    lot: str | None,
    serial: str | None,
    cpv: str | None,
    expiry: date | None,
    extra: dict[str, str],
) -> None:
    gtin = body + gtin_check_digit(body)
    url = build_digital_link(base, gtin, lot, serial, cpv=cpv, expiry=expiry, extra_query=extra)
    assert url.isascii()
    assert " " not in url
    link = parse_digital_link(url, today=TODAY)
    assert link == DigitalLink(
        gtin=gtin, lot=lot, serial=serial, cpv=cpv, expiry=expiry, query=extra
    )
    assert link.to_url(base) == url
    # The path alone parses the same.
    assert parse_digital_link(url[url.index("/01/") :], today=TODAY) == link


# --------------------------------------------------------------------------------------
# Serials and lot codes
# --------------------------------------------------------------------------------------


def test_new_serial_default_rng() -> None:
    serials = {new_serial() for _ in range(2000)}
    assert len(serials) == 2000  # about 38 bits each: no collisions expected
    for serial in serials:
        assert serial[0] != "0"
        assert serial.isdigit()
        assert 10**10 <= int(serial) < 2**38
        assert len(serial) >= 9
        assert is_valid_sgtin96_serial(serial)


class _FixedRandBelow:
    def __init__(self, pick_last: bool) -> None:
        self.pick_last = pick_last

    def randbelow(self, n: int) -> int:
        return n - 1 if self.pick_last else 0


def test_new_serial_bounds() -> None:
    assert new_serial(_FixedRandBelow(pick_last=False)) == "10000000000"
    assert new_serial(_FixedRandBelow(pick_last=True)) == str(2**38 - 1)


def test_new_serial_seeded_rng_is_repeatable() -> None:
    first = new_serial(random.Random(7))
    assert first == new_serial(random.Random(7))
    assert is_valid_sgtin96_serial(first)


@pytest.mark.parametrize(
    ("serial", "valid"),
    [
        ("6789", True),
        ("0", True),
        (str(2**38 - 1), True),
        (str(2**38), False),
        ("06789", False),
        ("00", False),
        ("", False),
        ("12a", False),
        ("-1", False),
        ("١٢٣", False),
        ("1" * 40, False),
        (6789, False),
    ],
)
def test_is_valid_sgtin96_serial(serial: str, valid: bool) -> None:
    assert is_valid_sgtin96_serial(serial) is valid


@pytest.mark.parametrize(
    ("seq", "letters"),
    [(1, "A"), (2, "B"), (26, "Z"), (27, "AA"), (28, "AB"), (702, "ZZ"), (703, "AAA")],
)
def test_new_lot_code(seq: int, letters: str) -> None:
    code = new_lot_code("QY", date(2026, 11, 3), seq)
    assert code == "QY2611" + letters
    assert is_valid_ai_value(code)


def test_new_lot_code_example_and_limits() -> None:
    assert new_lot_code("QY", date(2026, 11, 20), 1) == "QY2611A"
    assert new_lot_code("ZJYC", date(2027, 1, 1), 3) == "ZJYC2701C"
    with pytest.raises(CodeError) as excinfo:
        new_lot_code("qy", date(2026, 11, 1), 1)
    assert reason_of(excinfo) == "charset"
    with pytest.raises(CodeError) as excinfo:
        new_lot_code("清远", date(2026, 11, 1), 1)
    assert reason_of(excinfo) == "charset"
    with pytest.raises(CodeError) as excinfo:
        new_lot_code("QY", date(2026, 11, 1), 0)
    assert reason_of(excinfo) == "sequence"
    with pytest.raises(CodeError) as excinfo:
        new_lot_code("ABCDEFGH", date(2026, 11, 1), 26**9)
    assert reason_of(excinfo) == "length"


# --------------------------------------------------------------------------------------
# HMAC tag
# --------------------------------------------------------------------------------------


def test_tag_known_answer() -> None:
    message = b"yuenong-tag-v1|01=09506000134352|10=QY2611A|21=12345"
    digest = hmac.new(SECRET, message, hashlib.sha256).digest()
    expected = base64.b32encode(digest).decode().lower()[:8]
    assert code_tag(SECRET, EXAMPLE_GTIN, "QY2611A", "12345") == expected


def test_tag_shape_and_verify() -> None:
    tag = code_tag(SECRET, EXAMPLE_GTIN, "QY2611A", "12345")
    assert re.fullmatch(r"[a-z2-7]{8}", tag)
    assert len(code_tag(SECRET, EXAMPLE_GTIN, "QY2611A", "12345", length=12)) == 12
    assert verify_tag(SECRET, EXAMPLE_GTIN, "QY2611A", "12345", tag)
    assert verify_tag(SECRET, EXAMPLE_GTIN, "QY2611A", "12345", tag.upper())
    # The 13-digit form of the same GTIN is the same code.
    assert verify_tag(SECRET, "9506000134352", "QY2611A", "12345", tag)


def test_tag_verify_fails_on_any_change() -> None:
    tag = code_tag(SECRET, EXAMPLE_GTIN, "QY2611A", "12345")
    assert not verify_tag(SECRET, EXAMPLE_GTIN, "QY2611A", "12346", tag)
    assert not verify_tag(SECRET, EXAMPLE_GTIN, "QY2611B", "12345", tag)
    assert not verify_tag(SECRET, EXAMPLE_GTIN, None, "12345", tag)
    assert not verify_tag(SECRET, "06901234567892", "QY2611A", "12345", tag)
    assert not verify_tag(SECRET + b"x", EXAMPLE_GTIN, "QY2611A", "12345", tag)
    assert not verify_tag(SECRET, EXAMPLE_GTIN, "QY2611A", "12345", tag[:6])
    assert not verify_tag(SECRET, EXAMPLE_GTIN, "QY2611A", "12345", None)
    assert not verify_tag(SECRET, EXAMPLE_GTIN, "QY2611A", "12345", "中" * 8)
    assert not verify_tag(SECRET, EXAMPLE_GTIN, "QY 2611", "12345", tag)


def test_tag_lot_and_serial_are_not_interchangeable() -> None:
    assert code_tag(SECRET, EXAMPLE_GTIN, "123", None) != code_tag(
        SECRET, EXAMPLE_GTIN, None, "123"
    )


def test_tag_rejects_short_secret_and_bad_length() -> None:
    with pytest.raises(CodeError) as excinfo:
        code_tag(b"short", EXAMPLE_GTIN, None, "1")
    assert reason_of(excinfo) == "secret"
    with pytest.raises(CodeError) as excinfo:
        verify_tag(b"short", EXAMPLE_GTIN, None, "1", "abcdefgh")
    assert reason_of(excinfo) == "secret"
    with pytest.raises(CodeError) as excinfo:
        code_tag(SECRET, EXAMPLE_GTIN, None, "1", length=4)
    assert reason_of(excinfo) == "length"


# --------------------------------------------------------------------------------------
# EPC SGTIN-96
# --------------------------------------------------------------------------------------


def test_tds_example_encode() -> None:
    assert sgtin96_hex("0614141", TDS_GTIN, "6789", filter_value=3) == TDS_HEX
    assert sgtin96_tag_uri("0614141", TDS_GTIN, "6789", filter_value=3) == TDS_TAG_URI
    assert sgtin_pure_uri("0614141", TDS_GTIN, "6789") == "urn:epc:id:sgtin:0614141.812345.6789"


@pytest.mark.parametrize(
    "epc",
    [TDS_HEX, TDS_HEX.lower(), TDS_TAG_URI, "urn:epc:id:sgtin:0614141.812345.6789"],
)
def test_tds_example_decode(epc: str) -> None:
    assert decode_sgtin96(epc) == (TDS_GTIN, "6789", "0614141")


def test_pure_uri_escapes_alphanumeric_serials() -> None:
    uri = sgtin_pure_uri("0614141", TDS_GTIN, "A/B%1?<>\"&'!")
    assert uri == "urn:epc:id:sgtin:0614141.812345.A%2FB%251%3F%3C%3E%22%26'!"


def _sgtin_case(draw: st.DrawFn) -> tuple[str, str, str, int]:
    prefix_len = draw(st.integers(6, 12))
    prefix = draw(st.text(alphabet=string.digits, min_size=prefix_len, max_size=prefix_len))
    rest = draw(st.text(alphabet=string.digits, min_size=13 - prefix_len, max_size=13 - prefix_len))
    body = rest[0] + prefix + rest[1:]
    serial = str(draw(st.integers(0, 2**38 - 1)))
    return prefix, body + gtin_check_digit(body), serial, draw(st.integers(0, 7))


sgtin_cases = st.composite(_sgtin_case)()


@PROPERTY
@given(sgtin_cases)
def test_sgtin96_round_trip_and_epcpy(case: tuple[str, str, str, int]) -> None:
    prefix, gtin, serial, filter_value = case
    hex_epc = sgtin96_hex(prefix, gtin, serial, filter_value)
    tag_uri = sgtin96_tag_uri(prefix, gtin, serial, filter_value)
    pure_uri = sgtin_pure_uri(prefix, gtin, serial)
    assert re.fullmatch(r"[0-9A-F]{24}", hex_epc)
    for epc in (hex_epc, hex_epc.lower(), tag_uri, pure_uri):
        assert decode_sgtin96(epc) == (gtin, serial, prefix)
    # epcpy (an independent implementation) agrees on every representation.
    reference = SGTIN(pure_uri)
    assert reference.gtin() == gtin
    filter_enum = list(SGTINFilterValue)[filter_value]
    scheme = SGTIN.BinaryCodingScheme.SGTIN_96
    assert reference.hex(binary_coding_scheme=scheme, filter_value=filter_enum) == hex_epc
    assert reference.tag_uri(binary_coding_scheme=scheme, filter_value=filter_enum) == tag_uri


@PROPERTY
@given(st.integers(0, 2**88 - 1))
def test_sgtin96_decode_encode_round_trip(low_bits: int) -> None:
    value = 0x30 << 88 | low_bits
    hex_epc = f"{value:024X}"
    error: CodeError | None = None
    try:
        gtin, serial, prefix = decode_sgtin96(hex_epc)
    except CodeError as exc:
        error = exc
    if error is not None:
        # Only a partition value of 7 or a field too large for its digits can fail.
        assert error.reason == "partition"
    else:
        assert sgtin96_hex(prefix, gtin, serial, (value >> 85) & 7) == hex_epc


def _hex96(filter_value: int, partition: int, prefix_and_item: int, serial: int) -> str:
    return (
        f"{0x30 << 88 | filter_value << 85 | partition << 82 | prefix_and_item << 38 | serial:024X}"
    )


@pytest.mark.parametrize(
    ("epc", "reason"),
    [
        ("3174257BF7194E4000001A85", "header"),  # 0x31 is not SGTIN-96
        ("3674257BF7194E4000001A85", "header"),  # SGTIN-198 header
        (_hex96(3, 7, 0, 1), "partition"),
        (_hex96(1, 5, (2**24 - 1) << 20, 1), "partition"),  # prefix over 7 digits
        (_hex96(1, 5, 2**20 - 1, 1), "partition"),  # item reference over 6 digits
        ("3074257BF7194E4000001A8", "length"),
        ("3074257BF7194E4000001A850", "length"),
        ("3074257BF7194E4000001A8G", "charset"),
        ("", "charset"),
        ("urn:epc:tag:sgtin-96:3.0614141.812345.06789", "serial"),
        ("urn:epc:id:sgtin:0614141.812345.ABC", "serial"),
        (f"urn:epc:id:sgtin:0614141.812345.{2**38}", "serial"),
        ("urn:epc:tag:sgtin-96:8.0614141.812345.6789", "filter"),
        ("urn:epc:tag:sgtin-96:3.0614141.81234.6789", "length"),
        ("urn:epc:id:sgtin:0614141.812345", "syntax"),
        ("urn:epc:id:sgtin:06141.81234567.1", "partition"),
        ("urn:epc:id:sscc:0614141.1234567890", "header"),
    ],
)
def test_decode_sgtin96_rejects(epc: str, reason: str) -> None:
    with pytest.raises(CodeError) as excinfo:
        decode_sgtin96(epc)
    assert reason_of(excinfo) == reason


@pytest.mark.parametrize(
    ("prefix", "gtin", "serial", "filter_value", "reason"),
    [
        ("0614141", TDS_GTIN, "06789", 1, "serial"),  # epcpy would silently drop the 0
        ("0614141", TDS_GTIN, str(2**38), 1, "serial"),
        ("0614141", TDS_GTIN, "12a", 1, "serial"),
        ("0614141", TDS_GTIN, "", 1, "serial"),
        ("0614141", TDS_GTIN, "6789", 8, "filter"),
        ("0614141", TDS_GTIN, "6789", -1, "filter"),
        ("06141", TDS_GTIN, "6789", 1, "partition"),
        ("0614142", TDS_GTIN, "6789", 1, "company_prefix"),
        ("0614141", "80614141123459", "6789", 1, "check_digit"),
    ],
)
def test_sgtin96_hex_rejects(
    prefix: str, gtin: str, serial: str, filter_value: int, reason: str
) -> None:
    with pytest.raises(CodeError) as excinfo:
        sgtin96_hex(prefix, gtin, serial, filter_value)
    assert reason_of(excinfo) == reason


def test_tag_uri_validates_serial_too() -> None:
    with pytest.raises(CodeError) as excinfo:
        sgtin96_tag_uri("0614141", TDS_GTIN, "06789")
    assert reason_of(excinfo) == "serial"


# --------------------------------------------------------------------------------------
# SSCC, GLN, SGLN
# --------------------------------------------------------------------------------------


def test_sscc_tds_example() -> None:
    sscc = make_sscc("0614141", 1, 234567890)
    assert sscc == "106141412345678908"
    assert sscc_uri("0614141", sscc) == "urn:epc:id:sscc:0614141.1234567890"
    # A 12-digit prefix leaves four digits for the serial reference.
    assert make_sscc("690123456789", 0, 7) == "06901234567890007" + gtin_check_digit(
        "06901234567890007"
    )


def test_make_sscc_structure() -> None:
    sscc = make_sscc("6901234", 3, 42)
    assert len(sscc) == 18
    assert sscc.startswith("36901234")
    assert sscc[8:17] == "000000042"
    assert sscc[-1] == gtin_check_digit(sscc[:-1])
    assert sscc_uri("6901234", sscc) == "urn:epc:id:sscc:6901234.3000000042"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("0614141", 10, 1), "extension"),
        (("0614141", -1, 1), "extension"),
        (("0614141", 1, 10**9), "serial"),
        (("06141", 1, 1), "company_prefix"),
    ],
)
def test_make_sscc_rejects(args: tuple[str, int, int], reason: str) -> None:
    with pytest.raises(CodeError) as excinfo:
        make_sscc(*args)
    assert reason_of(excinfo) == reason


@pytest.mark.parametrize(
    ("prefix", "sscc", "reason"),
    [
        ("0614141", "106141412345678909", "check_digit"),
        ("0614141", "10614141234567890", "length"),
        ("0614142", "106141412345678908", "company_prefix"),
    ],
)
def test_sscc_uri_rejects(prefix: str, sscc: str, reason: str) -> None:
    with pytest.raises(CodeError) as excinfo:
        sscc_uri(prefix, sscc)
    assert reason_of(excinfo) == reason


def test_gln_and_sgln_tds_example() -> None:
    gln = make_gln("0614141", 12345)
    assert gln == "0614141123452"
    assert sgln_uri("0614141", gln, "400") == "urn:epc:id:sgln:0614141.12345.400"
    assert sgln_uri("0614141", gln) == "urn:epc:id:sgln:0614141.12345.0"
    assert sgln_uri("0614141", gln, "A/1") == "urn:epc:id:sgln:0614141.12345.A%2F1"
    assert make_gln("690123456789", 0) == "6901234567892"
    assert sgln_uri("690123456789", "6901234567892") == "urn:epc:id:sgln:690123456789..0"


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: make_gln("0614141", 100000), "item_ref"),
        (lambda: make_gln("061414", 1), "company_prefix"),
        (lambda: sgln_uri("0614141", "0614141123453"), "check_digit"),
        (lambda: sgln_uri("0614142", "0614141123452"), "company_prefix"),
        (lambda: sgln_uri("0614141", "0614141123452", "货架1"), "extension"),
        (lambda: sgln_uri("0614141", "0614141123452", ""), "extension"),
    ],
)
def test_gln_rejects(call: object, reason: str) -> None:
    with pytest.raises(CodeError) as excinfo:
        call()  # type: ignore[operator]
    assert reason_of(excinfo) == reason
