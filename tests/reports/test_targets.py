import json
import re
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from market.reports import targets
from market.reports.targets import Progress, UnknownTargetError

ROOT = Path(__file__).resolve().parents[2]
#: /work/shared beside the repository on a developer's machine; CI lays a copy of shared/
#: beside its clone the same way.
SEED_DIR = ROOT.parent / "shared" / "seed"
NUMERALS = "一二三四五六七八九十"
TOP_HEADING = re.compile(rf"^([{NUMERALS}]+)、")
SUB_HEADING = re.compile(rf"^[（(]([{NUMERALS}]+)[）)]")
CITATION = re.compile(rf"^([{NUMERALS}]+)(?:\(([{NUMERALS}]+)\))?$")
YEAR_OPENING = re.compile(r"到\s*(\d{4})\s*年，")


def _raw_targets() -> dict:
    text = resources.files("market.reports").joinpath("data/plan_targets.json").read_text("utf-8")
    return json.loads(text)


def _seed_text() -> str:
    files = sorted(SEED_DIR.glob("*.txt")) if SEED_DIR.is_dir() else []
    if not files:
        pytest.skip(f"the plan's text is not here ({SEED_DIR}/*.txt); cannot check quotations")
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def _join_page_breaks(text: str) -> str:
    """Undo the source's page breaks: a line break inside a sentence is not in the plan."""
    return re.sub(r"(?<=[^。：；\s])[ \t]*\n\s*", "", text)


@dataclass
class Section:
    citation: str
    body: str


def _sections(text: str) -> dict[str, Section]:
    """Split the plan into its numbered parts (一, 二 …) and items (二(三) …)."""
    sections: dict[str, list[str]] = {}
    top = sub = None
    for line in text.splitlines():
        stripped = line.strip()
        if m := TOP_HEADING.match(stripped):
            top, sub = m.group(1), None
        elif top and (m := SUB_HEADING.match(stripped)):
            sub = m.group(1)
        for key in (top, f"{top}({sub})" if sub else None):
            if key:
                sections.setdefault(key, []).append(line)
    return {k: Section(k, _join_page_breaks("\n".join(v))) for k, v in sections.items()}


def _number_in(wording: str) -> Decimal:
    found = re.findall(r"(\d+(?:\.\d+)?)\s*(?:%|万亿元)", wording)
    assert len(found) == 1, wording
    return Decimal(found[0])


# --- the data file against the plan's text --------------------------------------------------


def test_the_plan_is_named_as_in_the_seed_document():
    text = _seed_text()
    plan = targets.plan()
    assert plan.document_number in text
    assert f"《{plan.title}》" in text


def test_every_cited_section_occurs_in_the_plan_and_holds_its_quotations():
    sections = _sections(_seed_text())
    checked = 0
    for raw in _raw_targets()["targets"]:
        assert CITATION.match(raw["section"]), raw["section"]
        assert raw["section"] in sections, f"{raw['id']}: no section {raw['section']}"
        body = sections[raw["section"]].body
        for milestone in raw["milestones"]:
            assert milestone["wording"] in body, milestone["wording"]
            checked += 1
        if raw["baseline"]:
            baseline = raw["baseline"]
            assert baseline["section"] in sections
            assert baseline["wording"] in sections[baseline["section"]].body
            checked += 1
    assert checked >= 12


def test_every_quoted_wording_appears_verbatim_in_the_plan():
    text = _join_page_breaks(_seed_text())
    for raw in _raw_targets()["targets"]:
        quotes = [m["wording"] for m in raw["milestones"]]
        if raw["baseline"]:
            quotes.append(raw["baseline"]["wording"])
        for quote in quotes:
            assert quote in text, f"{raw['id']}: not in the plan: {quote}"


def test_each_milestone_is_quoted_from_the_goals_for_its_own_year():
    body = _sections(_seed_text())["二(三)"].body
    chunks = YEAR_OPENING.split(body)  # [before, "2015", text, "2017", text, "2020", text]
    by_year = {int(year): chunk for year, chunk in zip(chunks[1::2], chunks[2::2], strict=True)}
    assert sorted(by_year) == [2015, 2017, 2020]
    for t in targets.targets():
        for m in t.milestones:
            assert m.wording in by_year[m.year], f"{t.id} {m.year}: {m.wording}"


def test_the_baselines_are_the_2012_figures_of_the_plan():
    paragraph = next(p for p in _sections(_seed_text())["一"].body.split("\n") if "2012年" in p)
    baselines = [t.baseline for t in targets.targets() if t.baseline]
    assert baselines
    for baseline in baselines:
        assert baseline.year == 2012
        assert baseline.wording in paragraph


# --- the data file on its own -----------------------------------------------------------------


def test_each_value_and_comparator_is_the_one_in_its_quotation():
    for t in targets.targets():
        quotes = [(m.wording, m.value, m.comparator) for m in t.milestones]
        for wording, value, comparator in quotes:
            assert _number_in(wording) == value, wording
            exceeds = "超过" in wording or "突破" in wording
            assert comparator == ("above" if exceeds else "at_least"), wording
        if t.baseline:
            assert _number_in(t.baseline.wording) == t.baseline.value


def test_rfid_use_in_logistics_rises_40_50_70_percent_by_2015_2017_2020():
    rfid = targets.target("rfid_logistics_adoption")
    assert [(m.year, m.value) for m in rfid.milestones] == [
        (2015, Decimal(40)),
        (2017, Decimal(50)),
        (2020, Decimal(70)),
    ]
    assert rfid.unit == "percent"
    assert rfid.section == "二(三)"
    assert rfid.comparison == "proxy"
    assert "RFID" in rfid.measured_as.en
    assert "RFID" in rfid.measured_as.zh


def test_the_plan_targets_cover_ecommerce_online_shopping_networks_and_rfid():
    expected = {
        "ecommerce_transaction_volume": [3.2, 5.6, 8],
        "online_shopping_retail_share": [10, 15, 20],
        "enterprise_network_application_rate": [80, 85, 90],
        "rfid_logistics_adoption": [40, 50, 70],
    }
    found = {t.id: [m.value for m in t.milestones] for t in targets.targets()}
    assert found == {k: [Decimal(str(v)) for v in vs] for k, vs in expected.items()}


def test_every_target_names_its_indicator_unit_and_comparison_in_both_languages():
    for t in targets.targets():
        assert t.indicator.zh
        assert t.indicator.en
        assert t.indicator.zh != t.indicator.en
        assert t.unit_label.zh
        assert t.unit_label.en
        assert t.comparison in ("proxy", "reference")
        if t.comparison == "proxy":
            assert t.measured_as is not None
        if t.measured_as is not None:
            assert t.measured_as.zh
            assert t.measured_as.en


def test_cooperatives_active_online_stand_in_for_the_enterprise_network_application_rate():
    rate = targets.target("enterprise_network_application_rate")
    assert rate.indicator.zh == "传统产业企业信息网络应用率"
    assert "30" in rate.measured_as.en
    assert "paid order" in rate.measured_as.en
    assert "30 天" in rate.measured_as.zh


def test_text_is_chinese_by_default_and_english_for_english_locales():
    name = targets.target("rfid_logistics_adoption").indicator
    assert name.for_locale() == name.zh
    assert name.for_locale("zh_Hans_CN") == name.zh
    assert name.for_locale("en") == name.en
    assert name.for_locale("en_GB") == name.en


def test_an_unknown_target_id_is_a_not_found_error():
    with pytest.raises(UnknownTargetError) as caught:
        targets.target("no_such_target")
    assert caught.value.code == "unknown_target"
    with pytest.raises(UnknownTargetError):
        targets.target_for_year("no_such_target", 2020)


def test_targets_returns_a_fresh_list_each_time():
    first = targets.targets()
    first.clear()
    assert len(targets.targets()) == 4


# --- milestones by year -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (2012, None),
        (2014, None),
        (2015, 40),
        (2016, 40),
        (2017, 50),
        (2019, 50),
        (2020, 70),
        (2026, 70),
    ],
)
def test_the_target_for_a_year_is_the_latest_milestone_at_or_before_it(year, expected):
    value = targets.target_for_year("rfid_logistics_adoption", year)
    assert value == (Decimal(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("year", "expected"), [(2010, 2015), (2015, 2017), (2016, 2017), (2017, 2020), (2020, None)]
)
def test_the_next_milestone_is_the_first_after_the_year(year, expected):
    milestone = targets.next_milestone("rfid_logistics_adoption", year)
    assert (milestone.year if milestone else None) == expected


def test_a_year_must_be_an_int():
    with pytest.raises(TypeError):
        targets.target_for_year("rfid_logistics_adoption", "2020")
    with pytest.raises(TypeError):
        targets.target_for_year("rfid_logistics_adoption", True)


# --- progress ---------------------------------------------------------------------------------


def test_progress_at_the_target_of_a_reach_goal_is_met():
    result = targets.progress("rfid_logistics_adoption", 70, 2026)
    assert result == Progress(
        actual=Decimal(70),
        target=Decimal(70),
        ratio=1.0,
        status="met",
        milestone=targets.milestone_for_year("rfid_logistics_adoption", 2026),
    )


def test_progress_below_the_target_is_behind_with_the_ratio_of_actual_to_target():
    result = targets.progress("rfid_logistics_adoption", 35, 2017)
    assert result.target == Decimal(50)
    assert result.ratio == pytest.approx(0.7)
    assert result.status == "behind"


def test_progress_at_exactly_an_exceed_goal_is_still_behind():
    # The plan says online shopping share "超过 15%": exactly 15 has not exceeded it.
    assert targets.progress("online_shopping_retail_share", 15, 2017).status == "behind"
    assert targets.progress("online_shopping_retail_share", 15.1, 2017).status == "met"
    # "突破 90%" in 2020, but "达到 85%" in 2017.
    assert targets.progress("enterprise_network_application_rate", 90, 2020).status == "behind"
    assert targets.progress("enterprise_network_application_rate", 85, 2017).status == "met"


def test_progress_above_the_target_has_a_ratio_over_one():
    result = targets.progress("ecommerce_transaction_volume", Decimal("9.6"), 2021)
    assert result.target == Decimal(8)
    assert result.ratio == pytest.approx(1.2)
    assert result.status == "met"


def test_progress_before_the_first_milestone_has_no_target():
    result = targets.progress("rfid_logistics_adoption", 12.5, 2014)
    assert result == Progress(
        actual=Decimal("12.5"), target=None, ratio=None, status="no_target", milestone=None
    )


def test_progress_keeps_a_float_actual_exact_as_written():
    assert targets.progress("rfid_logistics_adoption", 42.1, 2016).actual == Decimal("42.1")
    assert targets.progress("rfid_logistics_adoption", 0, 2016).ratio == 0.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), Decimal("NaN"), -1])
def test_progress_refuses_an_actual_that_is_not_a_finite_non_negative_number(bad):
    with pytest.raises(ValueError, match="actual"):
        targets.progress("rfid_logistics_adoption", bad, 2020)


@pytest.mark.parametrize("bad", ["70", None, True])
def test_progress_refuses_an_actual_that_is_not_a_number(bad):
    with pytest.raises(TypeError):
        targets.progress("rfid_logistics_adoption", bad, 2020)
