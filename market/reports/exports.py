"""The dashboards' tables, and the same tables as CSV and XLSX.

A :class:`Table` is built once from a :class:`~market.reports.services.Dashboard` and
drawn three ways: as the HTML table beside its chart (the accessible source of the
chart), as CSV (UTF-8 with a byte-order mark, so Excel reads the Chinese correctly) and
as XLSX (numbers as numbers, money in yuan with two decimals, shares as percentages).
The cell types say how a value is shown, so the three never disagree.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from market import places
from market.catalog.labels import CATEGORY_LABELS
from market.catalog.models import Category
from market.money import fen_to_yuan, format_fen
from market.reports import services
from market.reports.services import Dashboard, Figures, Indicator, Part

FORMATS = ("csv", "xlsx")


# --- cells -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fen:
    """Money in fen."""

    value: int | None


@dataclass(frozen=True)
class Pct:
    """A share, 0.123 = 12.3 %."""

    value: float | None


@dataclass(frozen=True)
class Change:
    """A relative change, 0.25 = +25.0 %."""

    value: float | None


Cell = str | int | Fen | Pct | Change | None

DASH = "—"


def _percent_text(value: float, signed: bool = False) -> str:
    number = Decimal(str(value)) * 100
    text = f"{number.quantize(Decimal('0.1')):{'+' if signed else ''}}%"
    return text.replace("-", "−") if signed else text


def show(cell: Cell) -> str:
    """A cell as people read it on the page: ¥1,234.56, 1,234, 12.3%, +4.0%, —."""
    if cell is None:
        return DASH
    if isinstance(cell, Fen):
        return format_fen(cell.value) if cell.value is not None else DASH
    if isinstance(cell, Pct):
        return _percent_text(cell.value) if cell.value is not None else DASH
    if isinstance(cell, Change):
        return _percent_text(cell.value, signed=True) if cell.value is not None else DASH
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, int):
        return f"{cell:,}"
    return str(cell)


def is_number(cell: Cell) -> bool:
    return isinstance(cell, int | Fen | Pct | Change) and not isinstance(cell, bool)


def _csv_text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, Fen):
        return fen_to_yuan(cell.value) if cell.value is not None else ""
    if isinstance(cell, Pct | Change):
        if cell.value is None:
            return ""
        return _percent_text(cell.value, signed=isinstance(cell, Change)).replace("−", "-")
    return str(cell)


# --- tables ------------------------------------------------------------------------------------


@dataclass
class Table:
    id: str
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    #: Per row: drill-down arguments of the row's own dashboard, or None.
    links: list[dict[str, str] | None] = field(default_factory=list)
    note: str = ""

    def add(self, cells: list[Cell], link: dict[str, str] | None = None) -> None:
        self.rows.append(cells)
        self.links.append(link)


def category_label(key: str) -> str:
    try:
        return str(CATEGORY_LABELS[Category(key)])
    except (ValueError, KeyError):
        return key


def place_label(code: str) -> str:
    from flask_babel import get_locale

    division = places.get(code)
    if division is None:
        return _("Unknown") if code == "000000" else code
    return division.name if str(get_locale() or "zh").startswith("zh") else division.name_en


def _aov(figures: Figures) -> Fen:
    return Fen(figures.aov_fen)


def _part_rows(table: Table, parts: list[Part], namer, *, link: bool = False) -> None:
    for part in parts:
        f = part.figures
        table.add(
            [namer(part), Fen(f.net_fen), Pct(part.share), f.orders, f.units, _aov(f)],
            part.link if link else None,
        )


def _sales_columns(first: str) -> list[str]:
    return [first, _("GMV"), _("Share"), _("Orders"), _("Units"), _("Average order value")]


def summary_table(d: Dashboard) -> Table:
    s = d.summary
    growth = s.growth
    table = Table(
        "summary",
        _("Key figures"),
        [
            _("Indicator"),
            _("This period"),
            _("Previous period"),
            _("Month on month"),
            _("Same period last year"),
            _("Year on year"),
        ],
        note=_(
            "This period: %(now)s. Previous period: %(previous)s. Last year: %(year)s.",
            now=_range_text(s.range),
            previous=_range_text(services.previous_range(s.range, d.kind)),
            year=_range_text(services.last_year_range(s.range, d.kind)),
        ),
    )
    c, p, y = s.current, s.previous, s.last_year
    table.add(
        [
            _("GMV (net of refunds)"),
            Fen(c.net_fen),
            Fen(p.net_fen),
            Change(growth["net_fen"].mom),
            Fen(y.net_fen),
            Change(growth["net_fen"].yoy),
        ]
    )
    table.add(
        [_("Refunds"), Fen(c.refunds_fen), Fen(p.refunds_fen), None, Fen(y.refunds_fen), None]
    )
    table.add(
        [
            _("Orders"),
            c.orders,
            p.orders,
            Change(growth["orders"].mom),
            y.orders,
            Change(growth["orders"].yoy),
        ]
    )
    table.add(
        [
            _("Units"),
            c.units,
            p.units,
            Change(growth["units"].mom),
            y.units,
            Change(growth["units"].yoy),
        ]
    )
    table.add(
        [
            _("Average order value"),
            _aov(c),
            _aov(p),
            Change(growth["aov_fen"].mom),
            _aov(y),
            Change(growth["aov_fen"].yoy),
        ]
    )
    table.add([_("Buyers"), d.buyers.buyers, None, None, None, None])
    table.add([_("Repeat-buyer rate"), Pct(d.buyers.repeat_rate), None, None, None, None])
    return table


def _range_text(dr) -> str:
    if dr.start == dr.end:
        return dr.start.isoformat()
    return _("%(start)s to %(end)s", start=dr.start.isoformat(), end=dr.end.isoformat())


def period_label(row: services.TrendRow) -> str:
    label = row.period.key
    return _("%(period)s (to date)", period=label) if row.to_date else label


def trend_table(d: Dashboard) -> Table:
    titles = {"day": _("By day"), "week": _("By week"), "month": _("By month")}
    table = Table(
        "trend",
        titles[d.kind],
        [
            _("Period"),
            _("GMV"),
            _("Orders"),
            _("Units"),
            _("Average order value"),
            _("Buyers"),
            _("Repeat-buyer rate"),
            _("GMV month on month"),
            _("GMV year on year"),
        ],
    )
    for row in d.trend:
        f = row.figures
        table.add(
            [
                period_label(row),
                Fen(f.net_fen),
                f.orders,
                f.units,
                _aov(f),
                row.buyers.buyers,
                Pct(row.buyers.repeat_rate),
                Change(row.growth.mom),
                Change(row.growth.yoy),
            ]
        )
    return table


def children_table(d: Dashboard) -> Table:
    level = d.node.child_level or "product"
    titles = {
        "city": (_("By city"), _("City")),
        "county": (_("By county"), _("County")),
        "cooperative": (_("By cooperative"), _("Cooperative")),
        "product": (_("By product"), _("Product")),
    }
    title, first = titles[level]
    table = Table("children", title, _sales_columns(first))
    if level in ("city", "county"):
        _part_rows(table, d.children, lambda p: place_label(p.key), link=True)
    else:
        _part_rows(table, d.children, lambda p: p.name or _("(deleted product)"), link=True)
    return table


def categories_table(d: Dashboard) -> Table:
    table = Table(
        "categories",
        _("By category"),
        _sales_columns(_("Category")),
        note=_("Orders: orders with at least one product of the category."),
    )
    _part_rows(table, d.categories, lambda p: category_label(p.key))
    return table


def gi_table(d: Dashboard) -> Table:
    names = {"gi": _("Geographical indication (地理标志)"), "other": _("Other products")}
    table = Table("gi", _("Geographical indication products"), _sales_columns(_("Products")))
    _part_rows(table, d.gi, lambda p: names[p.key])
    return table


def products_table(d: Dashboard) -> Table:
    table = Table(
        "products",
        _("Top products"),
        _sales_columns(_("Product")),
    )
    _part_rows(table, d.products, lambda p: p.name or _("(deleted product)"))
    return table


def destinations_table(d: Dashboard) -> Table:
    table = Table(
        "destinations",
        _("Where the goods went, by province"),
        _sales_columns(_("Buyer's province")),
    )
    _part_rows(table, d.destinations.provinces, lambda p: place_label(p.key))
    return table


def reach_table(d: Dashboard) -> Table:
    dest = d.destinations
    total = dest.inside.net_fen + dest.outside.net_fen
    table = Table("reach", _("Inside and outside Guangdong"), _sales_columns(_("Destination")))
    for label, figures in (
        (_("Inside Guangdong"), dest.inside),
        (_("Outside Guangdong"), dest.outside),
    ):
        share = figures.net_fen / total if total else None
        table.add(
            [label, Fen(figures.net_fen), Pct(share), figures.orders, figures.units, _aov(figures)]
        )
    return table


def indicator_label(key: str) -> str:
    return {
        "trace_coverage": _("Units sold with a unit trace code"),
        "inspection_coverage": _("Batches with an inspection record"),
        "rfid_shipments": _("Shipments with RFID reads"),
        "active_cooperatives": _("Cooperatives active online (paid order in 30 days)"),
    }[key]


def indicator_counts(ind: Indicator) -> str:
    n, d = format(ind.numerator, ","), format(ind.denominator, ",")
    if ind.key == "trace_coverage":
        return _("%(n)s of %(d)s units", n=n, d=d)
    if ind.key == "inspection_coverage":
        return _("%(n)s of %(d)s batches", n=n, d=d)
    if ind.key == "rfid_shipments":
        return _("%(n)s of %(d)s shipments", n=n, d=d)
    return _("%(n)s of %(d)s cooperatives", n=n, d=d)


def indicator_target_text(ind: Indicator) -> str:
    goal = ind.goal
    if ind.target_id is None:
        return _("No numeric target in the plan")
    if goal is None:
        return _("No target yet for %(year)s", year=ind.year)
    return _("%(value)s%% by %(year)s", value=goal.value, year=goal.year)


def indicator_status(ind: Indicator) -> str:
    progress = ind.progress
    if progress is None:
        return DASH
    if progress.status == "met":
        return _("Met")
    if progress.status == "behind":
        return _("Behind")
    return DASH


def indicators_table(d: Dashboard) -> Table:
    table = Table(
        "indicators",
        _("Informatization against the plan"),
        [
            _("Indicator"),
            _("Actual"),
            _("Counts"),
            _("Plan target"),
            _("Progress"),
            _("Status"),
        ],
    )
    for ind in d.indicators:
        progress = ind.progress
        table.add(
            [
                indicator_label(ind.key),
                Pct(ind.share),
                indicator_counts(ind),
                indicator_target_text(ind),
                Pct(progress.ratio) if progress is not None else None,
                indicator_status(ind),
            ]
        )
    return table


def tables(d: Dashboard) -> dict[str, Table]:
    """Every table of a dashboard, by id, in page order."""
    built = [
        summary_table(d),
        trend_table(d),
        children_table(d),
        categories_table(d),
        gi_table(d),
    ]
    if d.node.level != "cooperative":  # there the breakdown already lists every product
        built.append(products_table(d))
    built += [destinations_table(d), reach_table(d), indicators_table(d)]
    return {t.id: t for t in built}


TABLE_IDS = (
    "summary",
    "trend",
    "children",
    "categories",
    "gi",
    "products",
    "destinations",
    "reach",
    "indicators",
)


# --- files -------------------------------------------------------------------------------------


def to_csv(table: Table) -> bytes:
    """The table as CSV, UTF-8 with a byte-order mark (Excel then reads Chinese right)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_csv_text(cell) for cell in row])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


_XLSX_FORMATS = {
    Fen: "#,##0.00",
    Pct: "0.0%",
    Change: "+0.0%;-0.0%;0.0%",
}


def _xlsx_value(cell: Cell) -> Any:
    if isinstance(cell, Fen):
        return None if cell.value is None else Decimal(cell.value) / 100
    if isinstance(cell, Pct | Change):
        return cell.value
    return cell


def to_xlsx(table: Table, about: list[tuple[str, str]]) -> bytes:
    """The table as an XLSX workbook: the table on the first sheet, from cell A1, and
    what it is (place, dates, when) on a second."""
    book = Workbook()
    sheet = book.active
    sheet.title = _safe_sheet_title(table.title)
    sheet.append(table.columns)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table.rows:
        sheet.append([_xlsx_value(cell) for cell in row])
        for target, cell in zip(sheet[sheet.max_row], row, strict=True):
            number_format = _XLSX_FORMATS.get(type(cell))
            if number_format and target.value is not None:
                target.number_format = number_format
    for index, title in enumerate(table.columns, start=1):
        width = max([len(str(title)) * 2, *(len(show(r[index - 1])) + 2 for r in table.rows)])
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width, 10), 50)
    sheet.freeze_panes = "B2"
    info = book.create_sheet(_("About"))
    for key, value in about:
        info.append([key, value])
    info.column_dimensions["A"].width = 16
    info.column_dimensions["B"].width = 60
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _safe_sheet_title(title: str) -> str:
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in title).strip()
    return cleaned[:31] or "Report"
