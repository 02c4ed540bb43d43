"""Carriers and their waybill numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logistics.carriers import (
    CARRIERS,
    OWN_DELIVERY,
    WaybillError,
    carrier_choices,
    get_carrier,
    guess_carriers,
    normalize_waybill,
    s10_check_digit,
    validate_waybill,
)
from market.errors import DomainError

PROPERTY = settings(database=None, deadline=None, max_examples=200)


@pytest.mark.parametrize(
    ("code", "number"),
    [
        ("SF", "SF1311029837165"),
        ("SF", "SF131102983716"),
        ("SF", "131102983716"),
        ("JD", "JDVA20481563207"),
        ("JD", "JDX018402137894"),
        ("JD", "JDVB0552345678"),
        ("EMS", "1173540826901"),
        ("EMS", "9812345678901"),
        ("EMS", "RR473124829GB"),
        ("EMS", "EA123456785CN"),
        ("ZTO", "75431290165842"),
        ("ZTO", "731234567890"),
        ("ZTO", "543123456789012"),
        ("YTO", "YT7523618490215"),
        ("YUNDA", "4620318577094"),
        ("YUNDA", "462031857709431"),
        ("DEPPON", "DPK360612345678"),
        ("DEPPON", "5012345678"),
        ("COOP", "QY2611-0007"),
    ],
)
def test_valid_waybills_are_accepted_and_normalised(code, number):
    assert validate_waybill(code, number) == number.replace("-", "")


@pytest.mark.parametrize(
    ("code", "number", "error"),
    [
        ("SF", "SF13110298371", "format"),  # 11 digits
        ("SF", "SF13110298371655", "format"),  # 14 digits
        ("SF", "YT7523618490215", "format"),  # a YTO number under SF
        ("JD", "JD12", "format"),
        ("JD", "SF1311029837165", "format"),
        ("EMS", "117354082690", "format"),  # 12 digits
        ("EMS", "RR473124828GB", "check_digit"),
        ("EMS", "EA123456784CN", "check_digit"),
        ("EMS", "R4731248290GB", "format"),
        ("ZTO", "75431290", "format"),
        ("ZTO", "7543129016584211", "format"),
        ("YTO", "YT752361849021", "format"),  # 12 digits
        ("YTO", "7523618490215", "format"),  # prefix missing
        ("YUNDA", "462031857709", "format"),
        ("DEPPON", "DPK36061234567", "format"),
        ("DEPPON", "DPC360612345678", "format"),
        ("SF", "", "empty"),
        ("SF", " - ", "empty"),
        ("SF", "SF1311029837165!", "charset"),
        ("SF", "顺丰1311029837165", "charset"),
        ("COOP", "X" * 33, "format"),
        ("UPS", "1Z999AA10123456784", "unknown_carrier"),
    ],
)
def test_invalid_waybills_raise_with_a_stable_code(code, number, error):
    with pytest.raises(WaybillError) as info:
        validate_waybill(code, number)

    assert info.value.code == error
    assert info.value.field == "waybill"
    assert isinstance(info.value, DomainError)


def test_waybills_are_normalised_from_what_people_type():
    assert validate_waybill("sf", " sf 1311 0298 3716 5 ") == "SF1311029837165"
    assert validate_waybill("SF", "ＳＦ１３１１０２９８３７１６５") == "SF1311029837165"
    assert validate_waybill("ems", "rr-473-124-829-gb") == "RR473124829GB"
    assert validate_waybill("YTO", "yt7523618490215\u3000") == "YT7523618490215"
    assert normalize_waybill("dpk 3606 1234 5678") == "DPK360612345678"


def test_s10_check_digit_follows_the_upu_weights():
    # RR473124829GB: 4*8+7*6+3*4+1*2+2*3+4*5+8*9+2*7 = 200; 200 % 11 = 2; 11 - 2 = 9.
    assert s10_check_digit("47312482") == 9
    assert s10_check_digit("12345678") == 5
    # 1*8 + 2*7 = 22, 22 % 11 = 0, 11 - 0 = 11 -> 5.
    assert s10_check_digit("10000002") == 5
    # 1*8 + 1*9 + 4*7 = 45, 45 % 11 = 1, 11 - 1 = 10 -> 0.
    assert s10_check_digit("10000014") == 0
    assert validate_waybill("EMS", "EE100000025CN") == "EE100000025CN"
    assert validate_waybill("EMS", "EE100000140CN") == "EE100000140CN"
    with pytest.raises(ValueError, match="8 digits"):
        s10_check_digit("1234567")


@PROPERTY
@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_exactly_one_s10_check_digit_validates(serial):
    outcomes = {}
    for digit in "0123456789":
        try:
            validate_waybill("EMS", f"EA{serial}{digit}CN")
        except WaybillError as exc:
            outcomes[int(digit)] = exc.code
        else:
            outcomes[int(digit)] = "ok"

    expected = s10_check_digit(serial)
    assert outcomes == {d: "ok" if d == expected else "check_digit" for d in range(10)}


@PROPERTY
@given(st.text(max_size=30))
def test_validate_waybill_never_fails_with_anything_but_a_waybill_error(text):
    for code in CARRIERS:
        try:
            number = validate_waybill(code, text)
        except WaybillError as exc:
            error = exc.code
        else:
            error = None
            assert number == validate_waybill(code, number)
        assert error in {None, "empty", "charset", "format", "check_digit"}


def test_every_carrier_example_is_valid_for_it():
    for carrier in CARRIERS.values():
        if carrier.example:
            assert validate_waybill(carrier.code, carrier.example) == carrier.example


def test_the_carriers_cover_the_main_chinese_networks_and_own_delivery():
    assert list(CARRIERS) == ["SF", "JD", "EMS", "ZTO", "YTO", "YUNDA", "DEPPON", OWN_DELIVERY]
    assert get_carrier("sf").name_zh == "顺丰速运"
    assert get_carrier(OWN_DELIVERY).waybill_pattern is None
    assert not get_carrier(OWN_DELIVERY).tracked
    assert all(c.tracked for c in CARRIERS.values() if c.code != OWN_DELIVERY)


def test_carrier_choices_in_chinese_and_english():
    zh = carrier_choices()
    en = carrier_choices("en")

    assert zh[0] == ("SF", "顺丰速运")
    assert en[0] == ("SF", "SF Express")
    assert [code for code, _ in zh] == [code for code, _ in en] == list(CARRIERS)
    assert dict(carrier_choices("zh_Hans_CN"))["COOP"] == "合作社自送"


def test_guess_carriers_from_a_number():
    assert [c.code for c in guess_carriers("sf1311029837165")] == ["SF"]
    assert [c.code for c in guess_carriers("RR473124829GB")] == ["EMS"]
    assert [c.code for c in guess_carriers("75431290165842")] == ["ZTO", "YUNDA"]
    assert guess_carriers("RR473124828GB") == []
    assert guess_carriers("hello") == []
