import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market import uscc

# Codes published on the companies' own licences and in public registries.
PUBLISHED_VALID = [
    "91350100M000100Y43",  # example code widely used to illustrate GB 32100-2015
    "91440300708461136T",  # 深圳市腾讯计算机系统有限公司
    "914403001922038216",  # 华为技术有限公司 (numeric check character)
    "91110108551385082Q",  # 小米科技有限责任公司
    "91110000802100433B",  # 北京百度网讯科技有限公司
    "91330100716105852F",  # 阿里巴巴(中国)有限公司
]

settings_no_db = settings(database=None, max_examples=300, deadline=None)


def test_alphabet_and_weights_follow_the_standard():
    assert len(uscc.ALPHABET) == 31
    assert not set("IOZSV") & set(uscc.ALPHABET)
    assert len(uscc.WEIGHTS) == 17
    # Each weight is 3**i mod 31.
    assert list(uscc.WEIGHTS) == [pow(3, i, 31) for i in range(17)]


@pytest.mark.parametrize("code", PUBLISHED_VALID)
def test_published_codes_are_valid(code):
    assert uscc.is_valid(code)
    assert uscc.explain(code) is None
    assert uscc.check_char(code[:17]) == code[17]


@pytest.mark.parametrize(
    ("first17", "expected"),
    [
        ("91350100M000100Y4", "3"),
        ("91440300708461136", "T"),
        ("91110108551385082", "Q"),
        # Sum is a multiple of 31, so the check value 31 wraps round to "0".
        ("00000000000000000", "0"),
        ("10000000000000000", "Y"),  # 1 * 1 -> 31 - 1 = 30 -> "Y"
        ("Y0000000000000000", "1"),  # 30 * 1 -> 31 - 30 = 1
    ],
)
def test_check_char(first17, expected):
    assert uscc.check_char(first17) == expected


def test_cooperative_codes_computed_with_check_char():
    # Shape of farmers' cooperatives registered in Guangdong: 93 + division + org code.
    bodies = ["93440705MA4W1234X", "93441881MA53QK7L0", "93440825MA4UHR2P1"]
    for body in bodies:
        code = body + uscc.check_char(body)
        assert uscc.is_valid(code), code
        assert uscc.is_farmers_cooperative(code)
        assert uscc.division_code(code) == body[2:8]
    assert uscc.check_char("93440705MA4W1234X") == "E"


def test_company_is_not_a_cooperative():
    assert not uscc.is_farmers_cooperative("91440300708461136T")
    assert uscc.division_code("91440300708461136T") == "440300"


def test_invalid_check_character():
    assert not uscc.is_valid("91350100M000100Y44")
    assert uscc.explain("91350100M000100Y44") == "check"
    assert uscc.explain("91440300708461136U") == "check"
    assert not uscc.is_farmers_cooperative("93440705MA4W1234XQ")
    assert uscc.division_code("91350100M000100Y44") is None


def test_transposed_characters_are_rejected():
    assert uscc.explain("91440300708461163T") == "check"


@pytest.mark.parametrize(
    "code",
    [
        "91350100m000100y43",
        " 91350100M000100Y43 ",
        "9135 0100 M000 100Y 43",
        "91440300708461136t",
        "９１３５０１００Ｍ０００１００Ｙ４３",  # full-width, as pasted from documents
    ],
)
def test_lowercase_spaces_and_full_width_are_accepted(code):
    assert uscc.is_valid(code)
    assert uscc.explain(code) is None


def test_normalize():
    assert uscc.normalize(" 9135\t0100m000100y43\n") == "91350100M000100Y43"
    assert uscc.normalize("") == ""


@pytest.mark.parametrize(
    "code",
    ["", "9135010", "91350100M000100Y4", "91350100M000100Y433", "91350100M000100Y43" * 2],
)
def test_wrong_length(code):
    assert not uscc.is_valid(code)
    assert uscc.explain(code) == "length"


@pytest.mark.parametrize("letter", list("IOZSV"))
def test_forbidden_letters(letter):
    code = "91350100M000100" + letter + "43"
    assert not uscc.is_valid(code)
    assert uscc.explain(code) == "charset"


@pytest.mark.parametrize(
    "code", ["91350100M000100-43", "91350100M000100Y4!", "９1350100M000100中43"]
)
def test_other_foreign_characters(code):
    assert uscc.explain(code) == "charset"


def test_check_char_rejects_bad_input():
    with pytest.raises(ValueError, match="Expected 17 characters"):
        uscc.check_char("9135")
    with pytest.raises(ValueError, match="not allowed"):
        uscc.check_char("91350100M000100O4")


def test_non_string_input_is_invalid_not_an_error():
    assert uscc.is_valid(None) is False  # type: ignore[arg-type]
    assert uscc.is_valid(913501001234567890) is False  # type: ignore[arg-type]


@settings_no_db
@given(st.text())
def test_is_valid_never_raises(text):
    result = uscc.is_valid(text)
    assert isinstance(result, bool)
    assert (uscc.explain(text) is None) is result


@settings_no_db
@given(
    body=st.text(alphabet=uscc.ALPHABET, min_size=17, max_size=17),
    position=st.integers(min_value=0, max_value=17),
    replacement=st.sampled_from(uscc.ALPHABET),
)
def test_any_single_character_change_is_detected(body, position, replacement):
    code = body + uscc.check_char(body)
    assert uscc.is_valid(code)
    changed = code[:position] + replacement + code[position + 1 :]
    assert uscc.is_valid(changed) is (changed == code)
