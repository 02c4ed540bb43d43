"""Reading import spreadsheets: headers in Chinese or English, cells people write."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook

from market.catalog import importing
from market.catalog.importing import ImportFileError, parse_file, parse_months
from market.catalog.services import Problem

HEADER_ZH = (
    "商品名称,分类,单位,单价（元）,库存,商品描述,地理标志名称,认证,上市月份,"
    "产地（区县）,产地（镇村）"
)
HEADER_EN = (
    "Product name,Category,Unit,Price (yuan),Stock,Description,GI name,Certifications,"
    "Harvest months,Origin (county),Origin (town and village)"
)


def csv_bytes(*lines: str, encoding: str = "utf-8-sig") -> bytes:
    return "\r\n".join(lines).encode(encoding)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("", []),
        ("5-7", [5, 6, 7]),
        ("5,6,7", [5, 6, 7]),
        ("5月、6月", [5, 6]),
        ("11-2", [1, 2, 11, 12]),
        ("6～7月", [6, 7]),
        ("全年", list(range(1, 13))),
        ("13", None),
        ("五月", None),
    ],
)
def test_harvest_months_as_people_write_them(text, months):
    assert parse_months(text) == months


def test_a_chinese_csv_from_excel_in_gb18030_is_read(app):
    data = csv_bytes(
        HEADER_ZH,
        "新会陈皮 十年陈 250克,干货及加工品,罐,¥288.00,60,十年陈皮,新会陈皮,"
        "绿色食品、承诺达标合格证,11-12,新会区,茶坑村",
        encoding="gb18030",
    )
    with app.test_request_context():
        (row,) = parse_file("产品.csv", data)
    assert row.line == 2
    assert row.problems == []
    assert (row.data.title, row.data.category, row.data.unit) == (
        "新会陈皮 十年陈 250克",
        "dried",
        "罐",
    )
    assert (row.data.price_fen, row.data.stock) == (28800, 60)
    assert (row.data.is_gi, row.data.gi_name) == (True, "新会陈皮")
    assert row.data.certifications == ["green_food", "compliance_certificate"]
    assert row.data.harvest_months == [11, 12]
    assert (row.data.origin_code, row.data.origin_detail) == ("440705", "茶坑村")


def test_english_headers_and_values_are_read_too(app):
    data = csv_bytes(HEADER_EN, "Lychee,fruit,kg,12.5,3,,,organic,6-7,440118,")
    with app.test_request_context():
        (row,) = parse_file("products.csv", data)
    assert row.problems == []
    assert (row.data.category, row.data.unit, row.data.price_fen) == ("fruit", "公斤", 1250)
    assert row.data.origin_code == "440118"


def test_bad_cells_are_named_with_their_row(app):
    data = csv_bytes(
        HEADER_ZH,
        "好商品,水果,箱,12.50,10,,,,,,",
        ",糖果,吨,12.345,-1,,,清真,13,火星区,",
        "",
        "第三个,蔬菜,斤,abc,1.5,,,,,江门市 新会区,",
    )
    with app.test_request_context():
        rows = parse_file("p.csv", data)
    assert [r.line for r in rows] == [2, 3, 5]
    assert rows[0].problems == []
    assert set(rows[1].problems) == {
        Problem("category", "invalid_category"),
        Problem("unit", "invalid_unit"),
        Problem("price", "price_sub_fen"),
        Problem("stock", "invalid_stock"),
        Problem("certifications", "invalid_certification"),
        Problem("harvest_months", "invalid_month"),
        Problem("origin_code", "invalid_division"),
    }
    assert set(rows[2].problems) == {
        Problem("price", "invalid_price"),
        Problem("stock", "invalid_stock"),
    }
    assert rows[2].data.origin_code == "440705"


def test_an_xlsx_with_numbers_in_cells_is_read(app):
    data = xlsx_bytes(
        [
            ["商品名称", "分类", "单位", "单价（元）", "库存"],
            ["梅州金柚 5斤装", "水果", "箱", 49.9, 200.0],
            [None, None, None, None, None],
            ["徐闻菠萝 10斤", "fruit", "箱", 59, 300],
        ]
    )
    with app.test_request_context():
        rows = parse_file("import.XLSX", data)
    assert [(r.line, r.data.price_fen, r.data.stock, r.problems) for r in rows] == [
        (2, 4990, 200, []),
        (4, 5900, 300, []),
    ]


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("p.txt", b"title\n", "unsupported_file"),
        ("p.xlsx", b"not a zip", "unreadable_file"),
        ("p.csv", csv_bytes(HEADER_ZH), "empty_file"),
        ("p.csv", b"", "empty_file"),
        ("p.csv", csv_bytes("商品名称,分类,单位,单价（元）"), "missing_column"),
        ("p.csv", csv_bytes(HEADER_ZH + ",备注"), "unknown_column"),
        ("p.csv", csv_bytes("商品名称,分类,单位,单价（元）,库存,Stock"), "duplicate_column"),
        (
            "p.csv",
            csv_bytes("商品名称,分类,单位,单价（元）,库存", "a,水果,斤,1,1,oops"),
            "cell_outside_columns",
        ),
    ],
)
def test_files_that_cannot_be_read_as_a_whole_say_why(app, name, data, code):
    with app.test_request_context(), pytest.raises(ImportFileError) as excinfo:
        parse_file(name, data)
    assert excinfo.value.code == code


def test_too_many_rows_are_refused(app):
    lines = [HEADER_ZH] + ["a,水果,斤,1,1,,,,,,"] * (importing.MAX_ROWS + 1)
    with app.test_request_context(), pytest.raises(ImportFileError) as excinfo:
        parse_file("p.csv", csv_bytes(*lines))
    assert excinfo.value.code == "too_many_rows"


def test_an_xlsx_that_unpacks_to_too_much_is_refused(app, monkeypatch):
    monkeypatch.setattr(importing, "MAX_XLSX_UNPACKED_BYTES", 1000)
    with app.test_request_context(), pytest.raises(ImportFileError) as excinfo:
        parse_file("p.xlsx", xlsx_bytes([["商品名称"]]))
    assert excinfo.value.code == "unreadable_file"


def test_the_csv_template_reads_back_and_opens_in_excel(app):
    with app.test_request_context():
        data = importing.template_csv()
        assert data.startswith("\ufeff".encode())
        assert data.decode("utf-8-sig").startswith("商品名称,分类,单位,单价（元）,库存")
        with pytest.raises(ImportFileError) as excinfo:
            parse_file("t.csv", data)
    # Only the header: the empty template is refused as having no products.
    assert excinfo.value.code == "empty_file"


def test_the_xlsx_template_has_drop_downs_and_instructions(app):
    with app.test_request_context():
        data = importing.template_xlsx([("列", "是否必填", "填写说明")], ("商品", "填写说明"))
    workbook = load_workbook(io.BytesIO(data))
    sheet = workbook["商品"]
    assert [c.value for c in sheet[1]][:5] == ["商品名称", "分类", "单位", "单价（元）", "库存"]
    formulas = [v.formula1 for v in sheet.data_validations.dataValidation]
    assert any("水果" in f and "花卉苗木" in f for f in formulas)
    assert any("斤" in f and "公斤" in f for f in formulas)
    assert workbook["填写说明"]["C1"].value == "填写说明"
