"""Bulk product import files: the CSV/XLSX template, and reading an upload into rows.

Pure: no database and no request. Rows are numbered as a spreadsheet shows them (the
header is row 1), and every cell problem names its column, so the page can say
"row 7, price: ...". Cells are read in Chinese or English, whatever the user's language:
a cooperative may share one spreadsheet between people.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from functools import cache

from flask_babel import lazy_gettext as _l

from market import places
from market.catalog.labels import (
    CATEGORY_LABELS,
    CATEGORY_NAMES_ZH,
    CERTIFICATION_LABELS,
    CERTIFICATION_NAMES_ZH,
    UNIT_LABELS,
    english,
)
from market.catalog.models import UNITS, Category
from market.catalog.services import Problem, ProductInput
from market.money import MoneyError, yuan_to_fen

#: More rows than this are refused: a cooperative lists tens of products, not thousands.
MAX_ROWS = 500
#: Refuse XLSX files that unpack to more than this (zip bombs).
MAX_XLSX_UNPACKED_BYTES = 40 * 1024 * 1024
MAX_COLUMNS = 40


@dataclass(frozen=True)
class Column:
    key: str
    label: object  # lazy string in the user's language
    english: str
    chinese: str
    required: bool = False
    width: int = 14


COLUMNS: tuple[Column, ...] = (
    Column("title", _l("Product name"), "Product name", "商品名称", True, 28),
    Column("category", _l("Category"), "Category", "分类", True, 14),
    Column("unit", _l("Unit"), "Unit", "单位", True, 8),
    Column("price", _l("Price (yuan)"), "Price (yuan)", "单价（元）", True, 12),
    Column("stock", _l("Stock"), "Stock", "库存", True, 10),
    Column("description", _l("Description"), "Description", "商品描述", False, 40),
    Column("gi_name", _l("GI name"), "GI name", "地理标志名称", False, 18),
    Column("certifications", _l("Certifications"), "Certifications", "认证", False, 20),
    Column("harvest_months", _l("Harvest months"), "Harvest months", "上市月份", False, 14),
    Column("origin_code", _l("Origin (county)"), "Origin (county)", "产地（区县）", False, 16),
    Column(
        "origin_detail",
        _l("Origin (town and village)"),
        "Origin (town and village)",
        "产地（镇村）",
        False,
        20,
    ),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


class ImportFileError(Exception):
    """The file as a whole cannot be read. `code` is stable; `detail` names what."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass
class ParsedRow:
    line: int
    data: ProductInput
    problems: list[Problem] = field(default_factory=list)


# --- headers ---------------------------------------------------------------------------

_FOLD = str.maketrans({"（": "(", "）": ")", "：": ":", "*": "", " ": "", "\u3000": ""})


def _fold(text: str) -> str:
    return str(text).strip().translate(_FOLD).lower()


def _header_aliases() -> dict[str, str]:
    aliases: dict[str, str] = {}
    for column in COLUMNS:
        for name in (column.key, column.english, column.chinese, str(column.label)):
            aliases[_fold(name)] = column.key
    return aliases


def map_header(cells: list[str]) -> dict[int, str]:
    """Column index -> column key; refuses unknown, repeated and missing columns."""
    aliases = _header_aliases()
    mapping: dict[int, str] = {}
    for index, cell in enumerate(cells):
        if not str(cell).strip():
            continue
        key = aliases.get(_fold(cell))
        if key is None:
            raise ImportFileError("unknown_column", str(cell).strip())
        if key in mapping.values():
            raise ImportFileError("duplicate_column", str(cell).strip())
        mapping[index] = key
    for column in COLUMNS:
        if column.required and column.key not in mapping.values():
            raise ImportFileError("missing_column", str(column.label))
    return mapping


# --- reading files ---------------------------------------------------------------------


def read_rows(filename: str, data: bytes) -> list[tuple[int, dict[str, str]]]:
    """(row number, {column key: text}) for each non-blank data row of a CSV or XLSX."""
    name = (filename or "").lower()
    if name.endswith(".xlsx"):
        table = _xlsx_table(data)
    elif name.endswith(".csv"):
        table = _csv_table(data)
    else:
        raise ImportFileError("unsupported_file", filename)
    header: list[str] | None = None
    mapping: dict[int, str] = {}
    rows: list[tuple[int, dict[str, str]]] = []
    for line, cells in table:
        if header is None:
            if not any(c.strip() for c in cells):
                continue
            header = cells
            mapping = map_header(cells)
            continue
        if not any(c.strip() for c in cells):
            continue
        extra = [c for i, c in enumerate(cells) if i not in mapping and c.strip()]
        if extra:
            raise ImportFileError("cell_outside_columns", str(line))
        rows.append((line, {key: cells[i] if i < len(cells) else "" for i, key in mapping.items()}))
        if len(rows) > MAX_ROWS:
            raise ImportFileError("too_many_rows", str(MAX_ROWS))
    if header is None or not rows:
        raise ImportFileError("empty_file")
    return rows


def _csv_table(data: bytes):
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ImportFileError("unreadable_file")
    if "\x00" in text:
        raise ImportFileError("unreadable_file")
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        for number, cells in enumerate(reader, start=1):
            if len(cells) > MAX_COLUMNS:
                raise ImportFileError("too_many_columns")
            yield number, [c.strip() for c in cells]
    except csv.Error as exc:
        raise ImportFileError("unreadable_file") from exc


def _xlsx_table(data: bytes):
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ImportFileError("unreadable_file") from exc
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise ImportFileError("unreadable_file")
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types on damaged files
        raise ImportFileError("unreadable_file") from exc
    try:
        sheet = workbook.worksheets[0]
        for number, values in enumerate(
            sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1
        ):
            yield number, [_cell_text(v) for v in values]
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


# --- cells -----------------------------------------------------------------------------

_LIST_SPLIT = re.compile(r"[,，、;；/|\s]+")
_MONTH_TOKEN = re.compile(r"^(\d{1,2})月?(?:[-~～至到—–](\d{1,2})月?)?$")
_UNIT_ALIASES = {"kg": "公斤", "千克": "公斤", "g": "克", "jin": "斤"}


def _lookup(value: str, table: dict[str, object]) -> object | None:
    return table.get(_fold(value))


@cache
def _category_table() -> dict[str, Category]:
    table: dict[str, Category] = {}
    for category in Category:
        table[_fold(category.value)] = category
        table[_fold(CATEGORY_NAMES_ZH[category])] = category
        table[_fold(english(CATEGORY_LABELS[category]))] = category
    return table


@cache
def _certification_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for code, label in CERTIFICATION_LABELS.items():
        table[_fold(code)] = code
        table[_fold(CERTIFICATION_NAMES_ZH[code])] = code
        table[_fold(english(label))] = code
    table[_fold("有机产品")] = "organic"
    table[_fold("无公害农产品")] = "pollution_free"
    table[_fold("合格证")] = "compliance_certificate"
    return table


@cache
def _unit_table() -> dict[str, str]:
    table = {_fold(unit): unit for unit in UNITS}
    table.update({_fold(alias): unit for alias, unit in _UNIT_ALIASES.items()})
    for unit, label in UNIT_LABELS.items():
        table.setdefault(_fold(english(label)), unit)
    return table


@cache
def _place_table() -> dict[str, tuple[str, ...]]:
    """Guangdong city and county names (alone and with their city) -> codes."""
    names: dict[str, set[str]] = {}
    for city in places.guangdong_cities():
        for name in (city.name, "广东省" + city.name):
            names.setdefault(name, set()).add(city.code)
        for county in places.children(city.code):
            for name in (county.name, city.name + county.name, "广东省" + city.name + county.name):
                names.setdefault(name, set()).add(county.code)
    return {name: tuple(sorted(codes)) for name, codes in names.items()}


def parse_months(text: str) -> list[int] | None:
    """'5-7', '5,6,7', '5月、6月', '11-2' (over the new year), '全年' -> months; None if bad."""
    text = text.strip()
    if not text:
        return []
    if _fold(text) in ("全年", "all", "allyear", "1-12"):
        return list(range(1, 13))
    months: set[int] = set()
    for token in _LIST_SPLIT.split(text):
        if not token:
            continue
        match = _MONTH_TOKEN.match(token)
        if not match:
            return None
        start = int(match.group(1))
        end = int(match.group(2) or start)
        if not (1 <= start <= 12 and 1 <= end <= 12):
            return None
        month = start
        while True:
            months.add(month)
            if month == end:
                break
            month = month % 12 + 1
    return sorted(months)


def parse_row(line: int, cells: dict[str, str]) -> ParsedRow:
    """Turn one row's text into a ProductInput, noting each cell that cannot be read."""
    problems: list[Problem] = []
    get = lambda key: (cells.get(key) or "").strip()  # noqa: E731

    category = _lookup(get("category"), _category_table())
    if category is None:
        problems.append(
            Problem("category", "required" if not get("category") else "invalid_category")
        )

    unit = _lookup(get("unit"), _unit_table())
    if unit is None:
        problems.append(Problem("unit", "required" if not get("unit") else "invalid_unit"))

    price_fen = 0
    price_text = get("price").replace("¥", "").replace("￥", "").removesuffix("元").strip()
    if not price_text:
        problems.append(Problem("price", "required"))
    else:
        try:
            price_fen = yuan_to_fen(price_text)
        except MoneyError as exc:
            code = "price_sub_fen" if "finer" in str(exc) else "invalid_price"
            problems.append(Problem("price", code))

    stock = 0
    stock_text = get("stock").replace(",", "")
    if not stock_text:
        problems.append(Problem("stock", "required"))
    elif not re.fullmatch(r"\d{1,9}", stock_text):
        problems.append(Problem("stock", "invalid_stock"))
    else:
        stock = int(stock_text)

    certifications: list[str] = []
    for token in _LIST_SPLIT.split(get("certifications")):
        if not token:
            continue
        code = _lookup(token, _certification_table())
        if code is None:
            problems.append(Problem("certifications", "invalid_certification"))
            break
        certifications.append(code)

    months = parse_months(get("harvest_months"))
    if months is None:
        problems.append(Problem("harvest_months", "invalid_month"))
        months = []

    origin_code = ""
    origin = get("origin_code").replace(" ", "")
    if origin:
        if re.fullmatch(r"\d{6}", origin):
            origin_code = origin
        else:
            codes = _place_table().get(origin, ())
            if len(codes) == 1:
                origin_code = codes[0]
            else:
                problems.append(
                    Problem("origin_code", "ambiguous_origin" if codes else "invalid_division")
                )

    data = ProductInput(
        title=get("title"),
        category=category.value if isinstance(category, Category) else "",
        unit=str(unit or ""),
        price_fen=price_fen,
        stock=stock,
        description=cells.get("description") or "",
        is_gi=bool(get("gi_name")),
        gi_name=get("gi_name"),
        certifications=certifications,
        harvest_months=months,
        origin_code=origin_code,
        origin_detail=get("origin_detail"),
    )
    return ParsedRow(line, data, problems)


def parse_file(filename: str, data: bytes) -> list[ParsedRow]:
    return [parse_row(line, cells) for line, cells in read_rows(filename, data)]


# --- templates -------------------------------------------------------------------------


def template_csv() -> bytes:
    """A header row in the user's language, UTF-8 with a BOM so Excel shows Chinese."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([str(c.label) for c in COLUMNS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def template_xlsx(instructions: list[tuple[str, str, str]], sheet_names: tuple[str, str]) -> bytes:
    """A workbook: the product sheet (header, drop-downs for category and unit) and a
    sheet of instructions, one (column, required?, what to write) per row."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = sheet_names[0]
    sheet.append([str(c.label) for c in COLUMNS])
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="E8F2EC")
    for index, column in enumerate(COLUMNS, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.font = bold
        cell.fill = fill
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "A2"

    def dropdown(key: str, values: list[str]) -> None:
        letter = get_column_letter(COLUMN_KEYS.index(key) + 1)
        validation = DataValidation(
            type="list", formula1='"' + ",".join(values) + '"', allow_blank=True
        )
        sheet.add_data_validation(validation)
        validation.add(f"{letter}2:{letter}{MAX_ROWS + 1}")

    dropdown("category", [str(CATEGORY_LABELS[c]) for c in Category])
    dropdown("unit", list(UNITS))
    price_letter = get_column_letter(COLUMN_KEYS.index("price") + 1)
    for row in range(2, 52):
        sheet[f"{price_letter}{row}"].number_format = "0.00"

    notes = workbook.create_sheet(sheet_names[1])
    for row in instructions:
        notes.append(list(row))
    for cell in notes[1]:
        cell.font = bold
    notes.column_dimensions["A"].width = 22
    notes.column_dimensions["B"].width = 10
    notes.column_dimensions["C"].width = 90
    for row in notes.iter_rows(min_row=2):
        row[2].alignment = Alignment(wrap_text=True, vertical="top")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
