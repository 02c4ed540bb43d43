"""Dashboards, their exports, and the printable monthly report."""

from __future__ import annotations

import re
from decimal import Decimal

from flask import Blueprint, Response, abort, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from market.errors import NotFoundError, PermissionDeniedError
from market.extensions import db
from market.reports import exports, forms, periods, services, targets
from market.reports.exports import FORMATS, TABLE_IDS
from market.reports.periods import DateRange, DateRangeError
from market.types import utcnow
from market.web import authorize

bp = Blueprint("reports", __name__, url_prefix="/reports")

_SLUG = re.compile(r"[^0-9A-Za-z_-]+")


def _user():
    return current_user._get_current_object()


def _dashboard(dr: DateRange, kind, area, coop) -> services.Dashboard:
    try:
        return services.dashboard(db.session, _user(), dr, kind, area=area, coop=coop)
    except PermissionDeniedError:
        abort(403)
    except NotFoundError:
        abort(404)


def _place_or_404() -> tuple[str | None, int | None]:
    try:
        return forms.parse_place(request.args)
    except forms.BadPlaceError:
        abort(404)


@bp.get("")
@login_required
def dashboard():
    authorize("reports.access")
    area, coop = _place_or_404()
    try:
        query = forms.parse_query(request.args)
    except DateRangeError as exc:
        return render_template(
            "reports/dashboard.html",
            d=None,
            error_field=exc.field,
            error=exc.user_message(),
            values={k: request.args.get(k, "") for k in ("from", "to", "by")},
            place_args={"area": area} if area else ({"coop": coop} if coop else {}),
            kinds=forms.KIND_LABELS,
        ), 400
    d = _dashboard(query.range, query.kind, area, coop)
    tables = exports.tables(d)
    query = forms.ReportQuery(d.range, d.kind, area, coop)
    return render_template(
        "reports/dashboard.html",
        d=d,
        tables=tables,
        charts=_charts(d),
        query=query,
        values={**d.range.as_query(), "by": d.kind},
        place_args=query.place_args(),
        kinds=forms.KIND_LABELS,
        plan=targets.plan(),
        error=None,
        error_field=None,
    )


@bp.get("/export/<table_id>.<fmt>")
@login_required
def export(table_id: str, fmt: str):
    authorize("reports.access")
    if fmt not in FORMATS or table_id not in TABLE_IDS:
        abort(404)
    area, coop = _place_or_404()
    try:
        query = forms.parse_query(request.args)
    except DateRangeError:
        abort(400)
    d = _dashboard(query.range, query.kind, area, coop)
    table = exports.tables(d).get(table_id)
    if table is None:
        abort(404)
    name = f"yuenong-{table_id}-{_slug(d.node)}-{d.range.start}-{d.range.end}.{fmt}"
    if fmt == "csv":
        body, mimetype = exports.to_csv(table), "text/csv; charset=utf-8"
    else:
        body = exports.to_xlsx(table, _about(d))
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-store",
        },
    )


@bp.get("/monthly")
@login_required
def monthly():
    authorize("reports.access")
    area, coop = _place_or_404()
    try:
        month = forms.parse_month(request.args.get("month"))
    except forms.BadMonthError:
        abort(400)
    d = _dashboard(month, "month", area, coop)
    tables = exports.tables(d)
    place_args = forms.ReportQuery(d.range, "month", area, coop).place_args()
    return render_template(
        "reports/monthly.html",
        d=d,
        tables=tables,
        month=month,
        place_args=place_args,
        generated_at=utcnow(),
        plan=targets.plan(),
    )


def _slug(node: services.Node) -> str:
    if node.level == "cooperative":
        return f"coop{node.cooperative_id}"
    return _SLUG.sub("", node.code) or "all"


def _about(d: services.Dashboard) -> list[tuple[str, str]]:
    return [
        (_("Place"), " / ".join(n.name for n in d.crumbs)),
        (_("From"), d.range.start.isoformat()),
        (_("To"), d.range.end.isoformat()),
        (_("Grouping"), str(forms.KIND_LABELS[d.kind])),
        (_("Money"), _("Yuan (CNY); GMV is net of refunds.")),
        (_("Generated"), utcnow().astimezone(periods.SHANGHAI).strftime("%Y-%m-%d %H:%M")),
        (_("Source"), _("YueNong Market report summaries")),
    ]


def _yuan(fen: int) -> float:
    return float(Decimal(fen) / 100)


def _charts(d: services.Dashboard) -> dict:
    """What reports.js draws: plain numbers (GMV in yuan) and labels, no markup."""
    indicators = [
        {
            "name": exports.indicator_label(ind.key),
            "actual": float(ind.percent) if ind.percent is not None else None,
            "target": float(ind.goal.value) if ind.goal is not None else None,
        }
        for ind in d.indicators
    ]
    show_map = d.node.level == "province"
    children = d.children[:15]
    return {
        "labels": {
            "gmv": _("GMV (yuan)"),
            "orders": _("Orders"),
            "actual": _("Actual (%)"),
            "target": _("Plan target (%)"),
        },
        "mapUrl": url_for("static", filename="vendor/maps/guangdong.json") if show_map else None,
        "trend": {
            "periods": [exports.period_label(r) for r in d.trend],
            "gmv": [_yuan(r.figures.net_fen) for r in d.trend],
            "orders": [r.figures.orders for r in d.trend],
        },
        "map": [
            {
                "name": part.key,
                "label": exports.place_label(part.key),
                "value": _yuan(part.figures.net_fen),
            }
            for part in (d.children if show_map else [])
        ],
        "children": {
            "names": [_child_name(d, p) for p in children],
            "gmv": [_yuan(p.figures.net_fen) for p in children],
        },
        "categories": [
            {"name": exports.category_label(p.key), "value": _yuan(p.figures.net_fen)}
            for p in d.categories
        ],
        "gi": [
            {
                "name": _("Geographical indication") if p.key == "gi" else _("Other products"),
                "value": _yuan(p.figures.net_fen),
            }
            for p in d.gi
        ],
        "destinations": {
            "names": [exports.place_label(p.key) for p in d.destinations.provinces[:10]],
            "gmv": [_yuan(p.figures.net_fen) for p in d.destinations.provinces[:10]],
        },
        "reach": [
            {"name": _("Inside Guangdong"), "value": _yuan(d.destinations.inside.net_fen)},
            {"name": _("Outside Guangdong"), "value": _yuan(d.destinations.outside.net_fen)},
        ],
        "indicators": indicators,
    }


def _child_name(d: services.Dashboard, part: services.Part) -> str:
    if d.node.level in ("province", "city"):
        return exports.place_label(part.key)
    return part.name or _("(deleted product)")


@bp.app_template_filter("report_cell")
def _report_cell(cell) -> str:
    return exports.show(cell)


@bp.app_template_filter("report_change")
def _report_change(value: float | None) -> str:
    return exports.show(exports.Change(value))


@bp.app_template_filter("report_pct")
def _report_pct(value: float | None) -> str:
    return exports.show(exports.Pct(value))


@bp.app_template_filter("report_indicator")
def _report_indicator(key: str) -> str:
    return exports.indicator_label(key)


@bp.app_template_global("report_is_number")
def _report_is_number(cell) -> bool:
    return exports.is_number(cell)
