import re
from collections import Counter

import pytest

from market import places
from market.places import Division

SIX_DIGITS = re.compile(r"\d{6}")


def _guangdong_counties() -> list[Division]:
    return [county for city in places.guangdong_cities() for county in places.children(city.code)]


def _all_divisions() -> list[Division]:
    found: list[Division] = []
    pending = places.provinces()
    while pending:
        division = pending.pop()
        found.append(division)
        pending.extend(places.children(division.code))
    return found


# --- provinces ---------------------------------------------------------------------------


def test_there_are_34_provincial_level_divisions_with_guangdong_first():
    provinces = places.provinces()
    assert len(provinces) == 34
    assert provinces[0].code == "440000"
    rest = [p.code for p in provinces[1:]]
    assert rest == sorted(rest)
    assert "440000" not in rest
    assert all(p.level == "province" and p.parent_code is None for p in provinces)
    assert all(p.code.endswith("0000") for p in provinces)


@pytest.mark.parametrize(
    ("code", "name", "name_en"),
    [
        ("110000", "北京市", "Beijing"),
        ("440000", "广东省", "Guangdong"),
        ("450000", "广西壮族自治区", "Guangxi"),
        ("500000", "重庆市", "Chongqing"),
        ("610000", "陕西省", "Shaanxi"),
        ("650000", "新疆维吾尔自治区", "Xinjiang"),
        ("710000", "台湾省", "Taiwan"),
        ("810000", "香港特别行政区", "Hong Kong"),
        ("820000", "澳门特别行政区", "Macao"),
    ],
)
def test_known_provinces(code, name, name_en):
    division = places.get(code)
    assert division == Division(code, name, name_en, "province", None)


def test_choices_without_parent_lists_provinces_in_display_order():
    options = places.choices()
    assert options[0] == ("440000", "广东省")
    assert options == [(p.code, p.name) for p in places.provinces()]
    assert ("810000", "香港特别行政区") in options


# --- Guangdong cities and counties -------------------------------------------------------


def test_guangdong_has_21_prefecture_level_cities_in_code_order():
    cities = places.guangdong_cities()
    assert len(cities) == 21
    codes = [c.code for c in cities]
    assert codes == sorted(codes)
    assert codes[0] == "440100"
    assert codes[-1] == "445300"
    assert [c.name for c in cities] == [
        "广州市", "韶关市", "深圳市", "珠海市", "汕头市", "佛山市", "江门市",
        "湛江市", "茂名市", "肇庆市", "惠州市", "梅州市", "汕尾市", "河源市",
        "阳江市", "清远市", "东莞市", "中山市", "潮州市", "揭阳市", "云浮市",
    ]  # fmt: skip
    assert all(c.level == "city" and c.parent_code == "440000" for c in cities)


def test_guangdong_has_122_county_level_divisions_by_type():
    counties = _guangdong_counties()
    assert len(counties) == 122
    assert len({c.code for c in counties}) == 122

    def kind(name: str) -> str:
        if name.endswith("自治县"):
            return "autonomous county"
        return {"区": "district", "市": "county-level city", "县": "county"}[name[-1]]

    assert Counter(kind(c.name) for c in counties) == {
        "district": 65,
        "county-level city": 20,
        "county": 34,
        "autonomous county": 3,
    }


def test_dongguan_and_zhongshan_have_no_county_level_divisions():
    assert places.children("441900") == []
    assert places.children("442000") == []
    assert places.is_valid_guangdong_code("441900")


@pytest.mark.parametrize(
    ("code", "name", "name_en", "level", "parent_code"),
    [
        ("440100", "广州市", "Guangzhou", "city", "440000"),
        ("441700", "阳江市", "Yangjiang", "city", "440000"),
        ("445300", "云浮市", "Yunfu", "city", "440000"),
        ("440705", "新会区", "Xinhui District", "county", "440700"),
        ("441881", "英德市", "Yingde", "county", "441800"),
        ("440825", "徐闻县", "Xuwen County", "county", "440800"),
        ("440982", "化州市", "Huazhou", "county", "440900"),
        ("440118", "增城区", "Zengcheng District", "county", "440100"),
        ("441402", "梅江区", "Meijiang District", "county", "441400"),
        ("441403", "梅县区", "Meixian District", "county", "441400"),
        ("441422", "大埔县", "Dabu County", "county", "441400"),
        ("441502", "城区", "Chengqu District", "county", "441500"),
        ("440311", "光明区", "Guangming District", "county", "440300"),
        ("440232", "乳源瑶族自治县", "Ruyuan Yao Autonomous County", "county", "440200"),
        (
            "441825",
            "连山壮族瑶族自治县",
            "Lianshan Zhuang and Yao Autonomous County",
            "county",
            "441800",
        ),
        ("441826", "连南瑶族自治县", "Liannan Yao Autonomous County", "county", "441800"),
    ],
)
def test_known_guangdong_divisions(code, name, name_en, level, parent_code):
    assert places.get(code) == Division(code, name, name_en, level, parent_code)
    assert places.name_of(code) == name


def test_autonomous_counties_are_the_three_expected():
    autonomous = {c.code for c in _guangdong_counties() if c.name.endswith("自治县")}
    assert autonomous == {"440232", "441825", "441826"}


def test_counties_of_a_city_are_complete_and_ordered():
    assert places.choices("440700") == [
        ("440703", "蓬江区"),
        ("440704", "江海区"),
        ("440705", "新会区"),
        ("440781", "台山市"),
        ("440783", "开平市"),
        ("440784", "鹤山市"),
        ("440785", "恩平市"),
    ]


# --- tree consistency --------------------------------------------------------------------


def test_every_division_is_reachable_once_and_well_formed():
    divisions = _all_divisions()
    codes = [d.code for d in divisions]
    assert len(codes) == len(set(codes))
    for d in divisions:
        assert SIX_DIGITS.fullmatch(d.code), d
        assert d.name, d
        assert d.name_en, d
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in d.name_en), d
        assert places.get(d.code) is d


def test_parent_child_codes_are_consistent():
    for d in _all_divisions():
        if d.level == "province":
            assert d.parent_code is None
            continue
        parent = places.get(d.parent_code)
        assert parent is not None, d
        assert d in places.children(parent.code)
        if d.level == "city":
            assert parent.level == "province", d
            assert d.code.startswith(parent.code[:2]), d
            assert d.code.endswith("00"), d
            assert not d.code.endswith("0000"), d
        else:
            assert parent.level == "city", d
            assert d.code.startswith(parent.code[:4]), d
            assert not d.code.endswith("00"), d


def test_every_guangdong_county_has_an_existing_guangdong_city_as_parent():
    city_codes = {c.code for c in places.guangdong_cities()}
    for county in _guangdong_counties():
        assert county.parent_code in city_codes
        assert places.city_of(county.code).code == county.parent_code


def test_other_provinces_have_prefecture_level_cities_where_present():
    assert [c.name for c in places.children("450000")][:3] == ["南宁市", "柳州市", "桂林市"]
    assert places.get("222400").name == "延边朝鲜族自治州"
    # Municipalities and the special administrative regions have no subdivisions here.
    for code in ("110000", "310000", "500000", "810000", "820000", "710000"):
        assert places.children(code) == []
    # Outside Guangdong only the prefecture level is present.
    assert places.children("450100") == []


# --- navigation --------------------------------------------------------------------------


def test_city_of():
    assert places.city_of("440705").code == "440700"
    assert places.city_of("440700").code == "440700"
    assert places.city_of("440000") is None
    assert places.city_of("999999") is None


def test_province_of():
    assert places.province_of("441881").code == "440000"
    assert places.province_of("441800").code == "440000"
    assert places.province_of("440000").code == "440000"
    assert places.province_of("350200").code == "350000"
    assert places.province_of("999999") is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("440705", "广东省江门市新会区"),
        ("441881", "广东省清远市英德市"),
        ("441900", "广东省东莞市"),
        ("440000", "广东省"),
        ("320500", "江苏省苏州市"),
        ("110000", "北京市"),
        ("440799", "440799"),
    ],
)
def test_full_name(code, expected):
    assert places.full_name(code) == expected


def test_is_guangdong():
    assert places.is_guangdong("440000")
    assert places.is_guangdong("445381")
    assert not places.is_guangdong("450100")
    assert not places.is_guangdong("440799")  # right prefix but no such division


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("440100", True),
        ("440705", True),
        ("445381", True),
        ("440000", False),  # the province itself is not a place inside Guangdong
        ("440101", False),  # 市辖区 placeholder, not a real division
        ("440116", False),  # retired code (former 萝岗区)
        ("450100", False),
        ("44070", False),
        ("", False),
    ],
)
def test_is_valid_guangdong_code(code, expected):
    assert places.is_valid_guangdong_code(code) is expected


# --- unknown codes -----------------------------------------------------------------------


@pytest.mark.parametrize("code", ["", "000000", "440799", "44", "abcdef", " 440705"])
def test_unknown_codes_are_handled_without_errors(code):
    assert places.get(code) is None
    assert places.name_of(code) == code
    assert places.children(code) == []
    assert places.choices(code) == []
    assert places.city_of(code) is None
    assert places.province_of(code) is None
    assert places.full_name(code) == code
    assert not places.is_guangdong(code)
    assert not places.is_valid_guangdong_code(code)


def test_returned_lists_are_copies():
    cities = places.guangdong_cities()
    cities.clear()
    assert len(places.guangdong_cities()) == 21
    provinces = places.provinces()
    provinces.pop(0)
    assert places.provinces()[0].code == "440000"
