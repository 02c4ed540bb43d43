"""The third-party files under static/vendor/: what they contain and that their licenses ship."""

import json
import re
from pathlib import Path

import pytest

from market import places

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "static" / "vendor"
MAP = VENDOR / "maps" / "guangdong.json"
ECHARTS = VENDOR / "echarts" / "echarts.min.js"
DOCS = {"README.md", "NOTICE"}
GUANGDONG_CITY_CODES = {
    "440100", "440200", "440300", "440400", "440500", "440600", "440700",
    "440800", "440900", "441200", "441300", "441400", "441500", "441600",
    "441700", "441800", "441900", "442000", "445100", "445200", "445300",
}  # fmt: skip
# Guangdong with a margin: about 109.6-117.4 E, 20.2-25.6 N.
LNG_RANGE = (109.0, 118.0)
LAT_RANGE = (20.0, 26.0)


def _vendored_files() -> list[Path]:
    return [
        p
        for p in VENDOR.rglob("*")
        if p.is_file() and p.name not in DOCS and not p.name.startswith("LICENSE")
    ]


@pytest.fixture(scope="module")
def geo() -> dict:
    return json.loads(MAP.read_text(encoding="utf-8"))


def _rings(geometry: dict) -> list[list[list[float]]]:
    if geometry["type"] == "Polygon":
        return geometry["coordinates"]
    assert geometry["type"] == "MultiPolygon"
    return [ring for polygon in geometry["coordinates"] for ring in polygon]


# --- the Guangdong map ------------------------------------------------------------------------


def test_the_map_has_exactly_the_21_guangdong_city_codes(geo):
    assert geo["type"] == "FeatureCollection"
    codes = [f["properties"]["adcode"] for f in geo["features"]]
    assert len(codes) == 21
    assert set(codes) == GUANGDONG_CITY_CODES
    assert [f["id"] for f in geo["features"]] == codes
    assert set(codes) == {city.code for city in places.guangdong_cities()}


def test_every_city_on_the_map_is_named_as_in_the_division_list(geo):
    for feature in geo["features"]:
        props = feature["properties"]
        division = places.get(props["adcode"])
        assert props["name"], props
        assert props["name"] == division.name
        assert props["name_en"] == division.name_en
        assert len(props["cp"]) == 2


def test_the_map_geometry_is_closed_rings_of_guangdong_coordinates(geo):
    for feature in geo["features"]:
        rings = _rings(feature["geometry"])
        assert rings, feature["id"]
        for ring in rings:
            assert len(ring) >= 4
            assert ring[0] == ring[-1]
            for lng, lat in ring:
                assert LNG_RANGE[0] < lng < LNG_RANGE[1]
                assert LAT_RANGE[0] < lat < LAT_RANGE[1]
                assert round(lng, 3) == lng
                assert round(lat, 3) == lat


def test_the_map_is_small_enough_for_a_dashboard():
    assert MAP.stat().st_size <= 150 * 1024


# --- ECharts --------------------------------------------------------------------------------------


def test_echarts_is_the_full_build_at_the_documented_version():
    # The map series itself is checked in a real browser: tests/browser/test_report_charts.py.
    script = ECHARTS.read_text(encoding="utf-8")
    readme = (ECHARTS.parent / "README.md").read_text(encoding="utf-8")
    version = re.search(r'\bversion="(\d+\.\d+\.\d+)"', script).group(1)
    assert f"version **{version}**" in readme
    assert "Licensed to the Apache Software Foundation" in script[:2000]
    # Neither is in the package's smaller builds (echarts.common / echarts.simple).
    for needed in ("registerMap", '"visualMap.continuous"', '"visualMap.piecewise"'):
        assert needed in script, needed


# --- licenses ------------------------------------------------------------------------------------


def test_every_vendored_file_has_its_license_and_readme_beside_it():
    files = _vendored_files()
    assert {MAP, ECHARTS} <= set(files)
    for path in files:
        folder = path.parent
        assert (folder / "LICENSE").is_file(), f"no LICENSE beside {path.relative_to(ROOT)}"
        readme = folder / "README.md"
        assert readme.is_file(), f"no README.md beside {path.relative_to(ROOT)}"
        assert path.name in readme.read_text(encoding="utf-8")


def test_apache_licensed_files_ship_with_their_notice():
    for path in _vendored_files():
        license_text = (path.parent / "LICENSE").read_text(encoding="utf-8")
        if "Apache License" in license_text:
            notice = path.parent / "NOTICE"
            assert notice.is_file(), f"no NOTICE beside {path.relative_to(ROOT)}"
            assert "The Apache Software Foundation" in notice.read_text(encoding="utf-8")


def test_the_libraries_bundled_into_echarts_have_their_licenses_too():
    folder = ECHARTS.parent
    assert "BSD 3-Clause" in (folder / "LICENSE-zrender").read_text(encoding="utf-8")
    assert "Mike Bostock" in (folder / "LICENSE-d3").read_text(encoding="utf-8")
