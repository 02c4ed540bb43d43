"""HTML pages: the public resolver and scan page, and batch, code and label management."""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from pathlib import Path
from threading import Lock
from typing import Any, TypeVar
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup, escape
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from market import media, places
from market.auth.models import Role
from market.catalog.models import Product
from market.cooperatives.models import Cooperative
from market.cooperatives.views import photo_error_text
from market.errors import DomainError
from market.extensions import db, hit_rate_limit, limiter
from market.policy import in_scope
from market.web import authorize, field_error, local_time
from traceability import codes, config, forms, labels, scanlog, services, tasks
from traceability import policy as _policy  # noqa: F401 - registers the trace.* rules
from traceability.models import (
    ApiToken,
    Batch,
    CodeKind,
    JobStatus,
    LabelJob,
    LabelLayout,
    TraceCode,
)

bp = Blueprint("traceability", __name__)
log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_REPORT_BYTES = 10 * 1024 * 1024


def _prefix() -> str:
    return current_app.config["GS1_COMPANY_PREFIX"]


def batch_messages() -> dict[str, str]:
    return {
        "product_not_ours": _("Choose one of your cooperative's products."),
        "no_gtin": _("This product has no GS1 product number yet."),
        "quantity": _("Enter a whole number above zero."),
        "unit": _("Choose a unit."),
        "invalid_division": _("Choose a city or county in Guangdong."),
        "future_date": _("The date cannot be in the future."),
        "too_old": _("The date is too long ago."),
        "cert_basis": _("Choose from the listed bases."),
        "cert_date": _("The certificate date must be between the harvest and today."),
        "lot_prefix": _("1 to 8 letters A-Z."),
        "required": _("This field is required."),
        "too_long": _("This is too long."),
        "range": _("The number is out of range."),
        "labels_printed": _("Labels have been printed; the certificate can no longer change."),
        "no_codes": _("Issue unit codes first."),
        "source": _("Choose another batch of your cooperative."),
        "too_many": _("Too many labels for one job; print one issue of codes at a time."),
        "kind": _("Choose what happened."),
        "scopes": _("Choose at least one."),
    }


# --------------------------------------------------------------------------------------
# Public: resolver and scan page
# --------------------------------------------------------------------------------------


def _reason_text(reason: str) -> str:
    texts = {
        "check_digit": _("The product number's check digit is wrong."),
        "length": _("A part of the code has the wrong length."),
        "charset": _("The code contains characters a real code never has."),
        "order": _("The parts of the code are in the wrong order."),
        "duplicate": _("A part of the code appears twice."),
        "missing_gtin": _("The code has no product number."),
        "unknown_ai": _("The code contains parts this platform never prints."),
        "query_key": _("The code contains parts this platform never prints."),
        "trailing_slash": _("The code has a stray character at the end."),
        "date": _("The code carries a date that does not exist."),
        "not_issued": _("No product was ever given this code."),
        "no_batch": _("The code names a product, but no batch."),
        "serial": _("The RFID number is not one this platform issues."),
        "header": _("The RFID number is not one this platform issues."),
        "partition": _("The RFID number is not one this platform issues."),
        "filter": _("The RFID number is not one this platform issues."),
    }
    return texts.get(reason, _("The code could not be read."))


def not_recognised(reason: str, shown: str = "") -> tuple[str, int]:
    return (
        render_template(
            "traceability/not_recognised.html", reason=_reason_text(reason), shown=shown[:200]
        ),
        404,
    )


def raw_target(environ: dict[str, Any]) -> str:
    """The request target as the client sent it (percent-escapes intact), so the strict
    Digital Link parser sees exactly what was printed."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if raw:
        path = raw.split("?", 1)[0]
    else:
        path = "/" + environ.get("PATH_INFO", "").encode("latin-1").decode(errors="replace").lstrip(
            "/"
        )
    query = environ.get("QUERY_STRING", "")
    return path + ("?" + query if query else "")


@dataclass(frozen=True)
class ScanVisit:
    """Who is scanning and how their page must look: built from Flask's request by the
    resolver views, or from the bare WSGI environ by the fast path (fastscan.py)."""

    #: The client's address (after ProxyFix): only ever kept as a keyed daily hash.
    address: str
    #: The city the proxy put in TRACE_GEO_HEADER, normalised (or None).
    city: str | None
    #: The page's path and query as Flask's ``request.full_path`` has it (language links).
    full_path: str
    locale: str
    #: The signed-in user, or None for visitors.
    user: Any
    #: Not signed in and nothing in the session: the page's shell may come from the cache.
    shell_cacheable: bool
    #: The fast path's environ: a request context is built from it only to render a miss.
    environ: dict[str, Any] | None = None


def scan_visit(
    app: Flask,
    environ: dict[str, Any],
    locale: str,
    *,
    user: Any = None,
    shell_cacheable: bool = True,
    fast: bool = False,
) -> ScanVisit:
    path = "/" + environ.get("PATH_INFO", "").encode("latin-1").decode(errors="replace").lstrip("/")
    query = environ.get("QUERY_STRING", "").encode("latin-1").decode(errors="replace")
    header = app.config.get("TRACE_GEO_HEADER")
    city = None
    if header:
        raw = environ.get("HTTP_" + header.upper().replace("-", "_"))
        if raw:
            from urllib.parse import unquote

            city = services.normalize_city(unquote(raw, errors="replace"))
    return ScanVisit(
        address=environ.get("REMOTE_ADDR") or "unknown",
        city=city,
        full_path=f"{path}?{query}",
        locale=locale,
        user=user,
        shell_cacheable=shell_cacheable,
        environ=environ if fast else None,
    )


def _request_visit() -> ScanVisit:
    from flask import session

    user = current_user._get_current_object()
    return scan_visit(
        current_app._get_current_object(),
        request.environ,
        _locale(),
        user=user if user.is_authenticated else None,
        shell_cacheable=not user.is_authenticated and set(session) <= _NEUTRAL_SESSION_KEYS,
    )


@contextmanager
def _rendering(visit: ScanVisit) -> Iterator[None]:
    """Where a template is rendered for a scan: Flask's views already have their request
    context; the fast path builds one from its environ (only for a cache miss)."""
    if visit.environ is None:
        yield
        return
    with current_app.request_context(visit.environ):
        g.locale = visit.locale
        yield


def _is_own_scan(user: Any, cooperative_id: int) -> bool:
    """Scans by the batch's own cooperative (checking labels) are not counted."""
    return user is not None and (
        user.role is Role.PLATFORM_ADMIN or user.cooperative_id == cooperative_id
    )


def _visitor(app: Flask, address: str, now: datetime) -> tuple[str, date]:
    day = now.astimezone(SHANGHAI).date()
    return services.visitor_key(config.visitor_secret(app), address, day), day


@dataclass(frozen=True)
class _BatchKey:
    """What identifies a rendering of a batch's record (read before the scan's commit)."""

    batch_id: int
    created_at: datetime
    version: int
    updated_at: datetime
    cooperative_id: int
    product_name: str


def scan_link(app: Flask, link: codes.DigitalLink, visit: ScanVisit) -> Response | str:
    """The scan page of a parsed Digital Link, or why the code is not recognised."""
    if link.cpv is not None or (link.lot is None and link.serial is None):
        return "no_batch" if link.cpv is None else "not_issued"
    now = services.utcnow()
    visitor, day = _visitor(app, visit.address, now)

    def lookup(conn: Connection) -> services.ScanTarget | None:
        if link.serial is None:
            return services.batch_scan_target(conn, link.gtin, link.lot, visitor)
        found = services.unit_scan_target(conn, link.gtin, link.serial, visitor)
        return None if found is None or link.lot not in (None, found.lot) else found

    conn, code = _first_read(app, lookup)
    with conn:
        if code is None:
            return "not_issued"
        tag = link.query.get("s")
        if not tag:
            tag_status = "missing"
        else:
            ok = codes.verify_tag(
                config.tag_secret(app),
                link.gtin,
                link.lot,
                link.serial,
                tag,
                length=app.config["TRACE_CODE_TAG_LENGTH"],
            )
            tag_status = "ok" if ok else "wrong"
        return _show_code(app, conn, code, tag_status, visitor, day, now, visit)


def scan_epc(app: Flask, epc: str, visit: ScanVisit) -> Response | str:
    """The scan page of an RFID tag's EPC, or why it is not recognised."""
    try:
        gtin, serial, _prefix_found = codes.decode_sgtin96(epc.strip())
    except codes.CodeError as exc:
        return exc.reason
    now = services.utcnow()
    visitor, day = _visitor(app, visit.address, now)
    conn, code = _first_read(
        app, lambda conn: services.unit_scan_target(conn, gtin, serial, visitor)
    )
    with conn:
        if code is None:
            return "not_issued"
        return _show_code(app, conn, code, "rfid", visitor, day, now, visit)


def scan_engine(app: Flask) -> Engine:
    """The engine the resolver reads with: a plain connection, not the ORM session, as
    this is the busiest page of the site.

    On SQLite that is the app's own engine. On a database server it is a second, small
    pool of autocommit connections without pre-ping: the page only reads, one statement
    at a time, so it needs no BEGIN and ROLLBACK, and a ping per checkout would cost a
    round trip per scan. A connection the server dropped is noticed on the first read
    instead, and that read is tried once more on a new connection (``_first_read``).
    """
    engine = app.extensions.get("trace_scan_engine")
    if engine is None:
        engine = db.engine
        if engine.dialect.name != "sqlite":
            options = {
                **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
                "pool_pre_ping": False,
                "isolation_level": "AUTOCOMMIT",
            }
            engine = create_engine(engine.url, **options)
        app.extensions["trace_scan_engine"] = engine
    return engine


_T = TypeVar("_T")


def _first_read(app: Flask, read: Callable[[Connection], _T]) -> tuple[Connection, _T]:
    """A connection from ``scan_engine`` and the result of the page's first read on it;
    the caller closes the connection. A pooled connection the server has dropped is
    replaced once (SQLAlchemy then recycles the rest of that pool too)."""
    engine = scan_engine(app)
    for attempt in (1, 2):
        conn = engine.connect()
        try:
            return conn, read(conn)
        except DBAPIError as exc:
            conn.close()
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _show_code(
    app: Flask,
    conn: Connection,
    target: services.ScanTarget,
    tag_status: str,
    visitor: str,
    day: date,
    now: datetime,
    visit: ScanVisit,
) -> Response:
    """Count the scan and render the scan page of a code's batch."""
    cfg = app.config
    key = _BatchKey(
        target.batch_id,
        target.batch_created_at,
        target.batch_version,
        target.batch_updated_at,
        target.cooperative_id,
        target.product_name,
    )
    kind = target.kind
    own_scan = _is_own_scan(visit.user, target.cooperative_id)
    if own_scan:
        stats = services.ScanStats(
            target.scan_count,
            target.visitor_count,
            target.city_count,
            target.first_scanned_at,
            target.last_scanned_at,
        )
    else:
        scan_log = scanlog.for_app(app)
        scan = {
            "visitor": visitor,
            "day": day,
            "city": visit.city,
            "tag_status": tag_status,
            "now": now,
        }
        if scan_log is not None:
            stats = scan_log.record(conn, target, **scan)
        else:
            stats = services.record_scan(db.session, target.code_id, **scan)
            db.session.commit()
    suspicious = kind is CodeKind.UNIT and (
        stats.visitor_count >= cfg["TRACE_SCAN_ALERT_VISITORS"]
        or stats.city_count >= cfg["TRACE_SCAN_ALERT_CITIES"]
    )
    cities = services.scan_cities(db.session, target.code_id) if suspicious else []
    verify = _verify_html(
        app,
        visit,
        {
            "kind": kind.value,
            "tag_status": tag_status,
            "suspicious": suspicious,
            "own_scan": own_scan,
            "first_scan": stats.scan_count <= 1,
            "has_cities": bool(cities),
        },
        {
            "serial": target.serial or "",
            "lot": target.lot,
            "scan_count": str(stats.scan_count),
            "first_scanned": local_time(stats.first_scanned_at),
            "cities": "、".join(cities),
        },
    )
    journey = app.extensions.get("journey_provider")
    if journey is not None:
        # A unit's logistics journey, rendered per code by whoever registered the hook
        # (logistics does; this package never imports it), shown under the verification.
        verify += journey(conn, target, partial(_rendering, visit))
    # Counted per request: shared caches must not answer for us.
    return app.response_class(_scan_page(app, key, verify, visit), headers=_SCAN_HEADERS)


_SCAN_HEADERS = (("Cache-Control", "private, no-store"), ("X-Robots-Tag", "noindex"))


# The verification box has a handful of shapes (tag status, kind, first scan ...); each
# is rendered once per language with markers where the figures go, then filled in.
_VERIFY_MARK = "\ue000{}\ue001"


def _verify_html(
    app: Flask, visit: ScanVisit, shape: dict[str, Any], values: dict[str, str]
) -> str:
    cache_key = ("verify", id(app), visit.locale, tuple(sorted(shape.items())))
    skeleton = PAGE_CACHE.get(cache_key, float("inf"))
    if skeleton is None:
        marks = {name: _VERIFY_MARK.format(name) for name in values}
        if not shape["has_cities"]:
            marks["cities"] = ""
        with _rendering(visit):
            template = app.jinja_env.get_template("traceability/_verify.html")
            skeleton = template.render(**shape, **marks)
        PAGE_CACHE.put(cache_key, skeleton)
    for name, value in values.items():
        skeleton = skeleton.replace(_VERIFY_MARK.format(name), escape(value))
    return skeleton


# The scan page is the same for every code of a batch except the verification box, the
# page's own path (in the language links) and the CSRF token. For visitors who are not
# signed in and have nothing in their session (nearly every scanner), the rendered page
# is cached with these three holes and filled in per request.
_VERIFY_HOLE = "<!--yn:verify-->"
_CSRF_HOLE = "yn-csrf-hole"
_PATH_HOLE = "/yn-path-hole"
#: Session keys that do not change how a page looks (CSRF, Flask-Login's bookkeeping).
_NEUTRAL_SESSION_KEYS = frozenset({"csrf_token", "_remember", "_fresh", "_id"})


class _ShellRequest:
    """The request as base.html sees it while the shell is rendered: the page's path is
    a hole; everything else is the real request's."""

    full_path = _PATH_HOLE
    path = _PATH_HOLE
    method = "GET"

    def __getattr__(self, name: str) -> Any:
        return getattr(request, name)


def _encoded_next(path: str) -> str:
    """``path`` as url_for puts it in a query string (how base.html's language links
    carry the page they come from)."""
    return quote_plus(path, safe="/:?@!$'()*,;")


_ENCODED_PATH_HOLE = _encoded_next(_PATH_HOLE)


def _scan_page(app: Flask, key: _BatchKey, verify: str, visit: ScanVisit) -> str:
    ttl = app.config["TRACE_SCAN_CACHE_SECONDS"]
    if not visit.shell_cacheable or ttl <= 0:
        with _rendering(visit):
            return render_template(
                "traceability/scan.html",
                product_name=key.product_name,
                verify=Markup(verify),  # noqa: S704 - rendered by Jinja with autoescape
                record=record_html(key, visit.locale),
            )
    cache_key = ("shell", id(app), key, visit.locale)
    shell = PAGE_CACHE.get(cache_key, ttl)
    if shell is None:
        with _rendering(visit):
            shell = render_template(
                "traceability/scan.html",
                product_name=key.product_name,
                verify=Markup(_VERIFY_HOLE),  # noqa: S704 - a constant
                record=record_html(key, visit.locale),
                request=_ShellRequest(),
                csrf_token=lambda: _CSRF_HOLE,
            )
        PAGE_CACHE.put(cache_key, shell)
    return (
        shell.replace(_VERIFY_HOLE, verify, 1)
        # Nothing on this page posts a form, so scanners get no session cookie.
        .replace(_CSRF_HOLE, "", 1)
        .replace(_ENCODED_PATH_HOLE, _encoded_next(visit.full_path))
    )


#: The rate-limit scope the resolvers (views and fast path) count against.
RESOLVER_LIMIT_SCOPE = "trace_resolver"


def public_limit(app: Flask) -> str:
    return app.config["PUBLIC_RATE_LIMIT"]


# The resolvers are exempt from Flask-Limiter's decorator and count with hit_rate_limit
# (the same storage) instead: the same limit for about a tenth of the cost.
@bp.get("/01/<gtin>/10/<lot>")
@bp.get("/01/<gtin>/10/<lot>/21/<serial>")
@bp.get("/01/<path:rest>")
@bp.get("/01/")
@limiter.exempt
def resolve(**_parts: str):
    """GS1 Digital Link resolver: open the scan page of a unit or batch code.

    Visitors without a session are usually answered before this view by the fast path
    (fastscan.py), which calls the same functions."""
    app = current_app._get_current_object()
    hit_rate_limit(public_limit(app), RESOLVER_LIMIT_SCOPE)
    target = raw_target(request.environ)
    try:
        link = codes.parse_digital_link(target)
    except codes.CodeError as exc:
        return not_recognised(exc.reason, target)
    answer = scan_link(app, link, _request_visit())
    return not_recognised(answer, target) if isinstance(answer, str) else answer


@bp.get("/epc/<path:epc>")
@limiter.exempt
def resolve_epc(epc: str):
    """An RFID tag's SGTIN-96 (hex, or urn:epc:id:sgtin / urn:epc:tag:sgtin-96 URI)."""
    app = current_app._get_current_object()
    hit_rate_limit(public_limit(app), RESOLVER_LIMIT_SCOPE)
    answer = scan_epc(app, epc, _request_visit())
    return not_recognised(answer, epc) if isinstance(answer, str) else answer


@bp.get("/trace/reports/<name>")
def report_file(name: str):
    """An inspection report (PDF) as uploaded; named by its content hash."""
    stem, _dot, ext = name.partition(".")
    if ext != "pdf" or len(stem) != 64 or any(c not in "0123456789abcdef" for c in stem):
        abort(404)
    response = send_from_directory(
        current_app.config["TRACE_REPORT_DIR"], name, mimetype="application/pdf", max_age=31536000
    )
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


# --- the batch record, cached per process ------------------------------------------------


def _locale() -> str:
    """The request's language code (the app's before_request has already chosen it)."""
    return str(g.get("locale") or get_locale())


class _PageCache:
    """Rendered scan pages and records by (batch, version, locale), kept a short while.

    Any change to a batch (inputs, inspections, events, certificate) bumps its version,
    so a new record is rendered at once; the time limit only bounds how long an edit to
    the product or cooperative profile takes to show.
    """

    def __init__(self, size: int = 512) -> None:
        self._items: OrderedDict[tuple, tuple[float, Markup]] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, key: tuple, ttl: float) -> Markup | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or time.monotonic() - found[0] > ttl:
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: tuple, value: Markup) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


PAGE_CACHE = _PageCache()


def record_html(key: _BatchKey, locale: str) -> Markup:
    """The scan page's record of a batch (everything but the code's own scan figures)."""
    ttl = current_app.config["TRACE_SCAN_CACHE_SECONDS"]
    cache_key = ("record", id(current_app), key, locale)
    cached = PAGE_CACHE.get(cache_key, ttl) if ttl > 0 else None
    if cached is not None:
        return cached
    batch = db.session.get(Batch, key.batch_id)
    # render_template escaped everything it put in; the result is safe to embed.
    html = Markup(render_template("traceability/_record.html", **record_context(batch)))  # noqa: S704
    if ttl > 0:
        PAGE_CACHE.put(cache_key, html)
    return html


def record_context(batch: Batch) -> dict[str, Any]:
    from market.catalog.labels import CATEGORY_LABELS, CERTIFICATION_LABELS

    product = batch.product
    session = db.session
    sources = services.source_batches(session, batch.id)
    # Processed goods carry the history of what they were made from: its inputs and tests.
    inputs = [(None, row) for row in batch.inputs] + [
        (source.lot_code, row) for source in sources for row in source.inputs
    ]
    inspections = [(None, row) for row in batch.inspections] + [
        (source.lot_code, row) for source in sources for row in source.inspections
    ]
    return {
        "inputs": sorted(inputs, key=lambda pair: pair[1].used_on),
        "inspections": sorted(inspections, key=lambda pair: pair[1].tested_on),
        "batch": batch,
        "product": product,
        "coop": batch.cooperative,
        "category_label": CATEGORY_LABELS.get(product.category, ""),
        "certifications": [CERTIFICATION_LABELS.get(c, c) for c in (product.certifications or [])],
        "sources": sources,
        "timeline": services.timeline(session, batch, company_prefix=_prefix()),
        "recalled": services.is_recalled(session, batch.id),
        "origin_kind": forms.ORIGIN_KIND_LABELS.get(batch.origin_kind),
        "input_kinds": forms.INPUT_KIND_LABELS,
        "inspection_kinds": forms.INSPECTION_KIND_LABELS,
        "result_labels": forms.RESULT_LABELS,
        "basis_labels": forms.CERT_BASIS_LABELS,
        "event_title": event_title,
        "place_name": places.full_name,
        "report_url": report_url,
    }


def event_title(entry: services.TimelineEntry) -> str:
    """What a timeline entry says happened, in the reader's language."""
    if entry.disposition == "recalled":
        return _("Recalled")
    if entry.event_type == "TransformationEvent":
        return _("Processed")
    if entry.event_type == "AggregationEvent":
        return _("Unpacked") if entry.action == "DELETE" else _("Packed")
    titles = {
        "commissioning": _("Harvested or produced"),
        "inspecting": _("Inspected"),
        "packing": _("Packed"),
        "storing": _("Into storage"),
        "shipping": _("Shipped"),
        "receiving": _("Received"),
        "departing": _("Departed"),
        "arriving": _("Arrived"),
        "loading": _("Loaded"),
        "sensor_reporting": _("Temperature recorded"),
        "holding": _("Held"),
        "retail_selling": _("Sold"),
        "sampling": _("Sampled"),
        "transporting": _("In transport"),
    }
    return titles.get(entry.biz_step or "", _("Recorded"))


def report_url(file_name: str | None) -> str | None:
    if not file_name:
        return None
    if file_name.startswith("img:"):
        return url_for("core.media_file", name=file_name[4:] + "-1280.jpg")
    return url_for("traceability.report_file", name=file_name)


# --------------------------------------------------------------------------------------
# Batches (cooperative side)
# --------------------------------------------------------------------------------------


def _visible_cooperative_ids() -> list[int] | None:
    """Cooperatives whose batches the current user may list (None: all)."""
    user = current_user
    if user.role is Role.PLATFORM_ADMIN:
        return None
    if user.role is Role.SUPPLY_STAFF:
        coops = db.session.scalars(select(Cooperative)).all()
        return [c.id for c in coops if in_scope(user, c.division_code)]
    return [user.cooperative_id] if user.cooperative_id else []


def _batch_or_404(batch_id: int, action: str = "trace.manage") -> Batch:
    batch = db.get_or_404(Batch, batch_id)
    authorize(action, batch)
    return batch


def _my_cooperative() -> Cooperative:
    coop = db.session.get(Cooperative, current_user.cooperative_id or 0)
    if coop is None:
        abort(403)
    authorize("trace.manage", coop)
    return coop


@bp.get("/trace/batches")
@login_required
def batches():
    authorize("trace.list")
    coop_ids = _visible_cooperative_ids()
    wanted = request.args.get("cooperative", type=int)
    if wanted and (coop_ids is None or wanted in coop_ids):
        coop_ids = [wanted]
    rows = services.batches_for(db.session, cooperative_ids=coop_ids)
    counts = services.code_counts(db.session, [b.id for b in rows])
    can_create = current_user.cooperative_id is not None and current_user.role in (
        Role.FARMER,
        Role.COOP_ADMIN,
    )
    return render_template(
        "traceability/batches.html", batches=rows, counts=counts, can_create=can_create
    )


def _batch_data(form: forms.BatchForm, **fixed: Any) -> services.BatchData:
    def value(name: str, default: Any = "") -> Any:
        if name in fixed:
            return fixed[name]
        field = getattr(form, name, None)
        return field.data if field is not None and field.data is not None else default

    return services.BatchData(
        product_id=value("product_id", 0),
        name=value("name"),
        harvest_date=value("harvest_date"),
        quantity=value("quantity", 0),
        unit=value("unit"),
        origin_code=value("origin_code"),
        origin_kind=services.OriginKind(value("origin_kind", "plot")),
        origin_village=value("origin_village"),
        origin_site=value("origin_site"),
        variety=value("variety"),
        method=value("method"),
        notes=value("notes"),
        cert_basis=value("cert_basis", []),
        cert_contact=value("cert_contact"),
        lot_prefix=value("lot_prefix"),
    )


@bp.route("/trace/batches/new", methods=["GET", "POST"])
@login_required
def new_batch():
    coop = _my_cooperative()
    products = db.session.scalars(
        select(Product).where(Product.cooperative_id == coop.id).order_by(Product.title)
    ).all()
    form = forms.BatchForm(products=products)
    if not form.is_submitted():
        form.origin_code.data = coop.division_code
        form.origin_village.data = coop.village
        form.harvest_date.data = services.today_shanghai()
        wanted = request.args.get("product", type=int)
        if wanted:
            form.product_id.data = wanted
    if form.validate_on_submit():
        try:
            batch = services.create_batch(
                db.session,
                coop.id,
                _batch_data(form),
                user_id=current_user.id,
                company_prefix=_prefix(),
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, batch_messages())
        else:
            batch_id, lot = batch.id, batch.lot_code
            db.session.commit()
            flash(_("Batch %(lot)s recorded.", lot=lot), "success")
            return redirect(url_for("traceability.batch_detail", batch_id=batch_id), 303)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "traceability/batch_form.html", form=form, title=_("New batch"), products=products
    ), status


@bp.route("/trace/batches/<int:batch_id>/edit", methods=["GET", "POST"])
@login_required
def edit_batch(batch_id: int):
    batch = _batch_or_404(batch_id)
    form = forms.EditBatchForm(obj=batch)
    if form.validate_on_submit():
        try:
            services.update_batch(
                db.session, batch.id, _batch_data(form, product_id=batch.product_id)
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, batch_messages())
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("traceability.batch_detail", batch_id=batch_id), 303)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "traceability/batch_form.html",
        form=form,
        batch=batch,
        title=_("Edit batch %(lot)s", lot=batch.lot_code),
        locked=services.labels_printed(db.session, batch.id),
    ), status


@bp.get("/trace/batches/<int:batch_id>")
@login_required
def batch_detail(batch_id: int):
    batch = _batch_or_404(batch_id, "trace.view")
    session = db.session
    issue_list = services.issues(session, batch.id)
    base = current_app.config["PUBLIC_BASE_URL"]
    secret = config.tag_secret()
    length = current_app.config["TRACE_CODE_TAG_LENGTH"]
    batch_code = services.batch_code(session, batch.id)
    session.commit()
    return render_template(
        "traceability/batch_detail.html",
        batch=batch,
        issues=issue_list,
        batch_link=services.code_link(base, secret, batch_code, batch.lot_code, tag_length=length),
        batch_code=batch_code,
        jobs=services.label_jobs(session, batch.id),
        timeline=services.timeline(session, batch, company_prefix=_prefix()),
        sources=services.source_batches(session, batch.id),
        recalled=services.is_recalled(session, batch.id),
        issue_form=forms.IssueCodesForm(),
        stock_form=forms.StockForm(),
        label_form=forms.LabelForm(issues=issue_list),
        layout_labels=forms.LAYOUT_LABELS,
        input_kinds=forms.INPUT_KIND_LABELS,
        inspection_kinds=forms.INSPECTION_KIND_LABELS,
        result_labels=forms.RESULT_LABELS,
        basis_labels=forms.CERT_BASIS_LABELS,
        origin_kind=forms.ORIGIN_KIND_LABELS.get(batch.origin_kind),
        event_title=event_title,
        report_url=report_url,
        place_name=places.full_name,
        locked=services.labels_printed(session, batch.id),
    )


@bp.route("/trace/batches/<int:batch_id>/inputs/new", methods=["GET", "POST"])
@login_required
def add_input(batch_id: int):
    batch = _batch_or_404(batch_id)
    form = forms.InputForm()
    if not form.is_submitted():
        form.used_on.data = services.today_shanghai()
    if form.validate_on_submit():
        try:
            services.add_input(
                db.session,
                batch.id,
                kind=services.InputKind(form.kind.data),
                name=form.name.data,
                used_on=form.used_on.data,
                amount=form.amount.data or "",
                safety_days=form.safety_days.data,
                notes=form.notes.data or "",
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, batch_messages())
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(
                url_for("traceability.batch_detail", batch_id=batch_id) + "#inputs", 303
            )
    status = 400 if form.is_submitted() else 200
    return render_template(
        "traceability/simple_form.html",
        form=form,
        batch=batch,
        title=_("Record a farm input"),
        fields=["kind", "name", "amount", "used_on", "safety_days", "notes"],
    ), status


def _store_report(form: forms.InspectionForm) -> str | bool | None:
    """Keep an uploaded report: a PDF by content hash, a photo through the photo
    pipeline (which strips its metadata). None: nothing uploaded; False: refused."""
    upload = form.report.data
    if not upload or not getattr(upload, "filename", ""):
        return None
    data = upload.stream.read(MAX_REPORT_BYTES + 1)
    if len(data) > MAX_REPORT_BYTES:
        form.report.errors = [*form.report.errors, _("The file is larger than 10 MB.")]
        return False
    if data.startswith(b"%PDF-"):
        name = hashlib.sha256(data).hexdigest() + ".pdf"
        folder = Path(current_app.config["TRACE_REPORT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if not target.exists():
            partial = target.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(target)
        return name
    try:
        stored = media.process_photo(io.BytesIO(data), Path(current_app.config["MEDIA_DIR"]))
    except media.PhotoError as exc:
        form.report.errors = [*form.report.errors, photo_error_text(exc.code)]
        return False
    return "img:" + stored.key


@bp.route("/trace/batches/<int:batch_id>/inspections/new", methods=["GET", "POST"])
@login_required
def add_inspection(batch_id: int):
    batch = _batch_or_404(batch_id)
    form = forms.InspectionForm()
    if not form.is_submitted():
        form.tested_on.data = services.today_shanghai()
    if form.validate_on_submit():
        stored = _store_report(form)
        if stored is not False:
            try:
                services.add_inspection(
                    db.session,
                    batch.id,
                    kind=services.InspectionKind(form.kind.data),
                    tested_on=form.tested_on.data,
                    items=form.items.data,
                    result=services.InspectionResult(form.result.data),
                    agency=form.agency.data or "",
                    report_no=form.report_no.data or "",
                    report_file=stored,
                    user_id=current_user.id,
                    company_prefix=_prefix(),
                )
            except DomainError as exc:
                db.session.rollback()
                field_error(form, exc, batch_messages())
            else:
                db.session.commit()
                flash(_("Saved."), "success")
                return redirect(
                    url_for("traceability.batch_detail", batch_id=batch_id) + "#inspections", 303
                )
    status = 400 if form.is_submitted() else 200
    return render_template(
        "traceability/simple_form.html",
        form=form,
        batch=batch,
        title=_("Record an inspection"),
        fields=["kind", "tested_on", "items", "result", "agency", "report_no", "report"],
        multipart=True,
    ), status


@bp.route("/trace/batches/<int:batch_id>/events/new", methods=["GET", "POST"])
@login_required
def add_event(batch_id: int):
    batch = _batch_or_404(batch_id)
    sources = [
        b
        for b in services.batches_for(db.session, cooperative_ids=[batch.cooperative_id])
        if b.id != batch.id
    ]
    form = forms.EventForm(sources=sources)
    if not form.is_submitted():
        form.when.data = (
            services.utcnow().astimezone(SHANGHAI).replace(tzinfo=None, second=0, microsecond=0)
        )
        if request.args.get("kind") in services.FORM_EVENT_KINDS:
            form.kind.data = request.args["kind"]
    if form.validate_on_submit():
        when = form.when.data.replace(tzinfo=SHANGHAI)
        try:
            services.record_ui_event(
                db.session,
                batch.id,
                form.kind.data,
                when=when,
                user_id=current_user.id,
                company_prefix=_prefix(),
                note=form.note.data or "",
                place_code=form.place_code.data or None,
                temperature_c=float(form.temperature_c.data)
                if form.temperature_c.data is not None
                else None,
                humidity_pct=float(form.humidity_pct.data)
                if form.humidity_pct.data is not None
                else None,
                source_batch_id=form.source_batch_id.data or None,
                source_quantity=form.source_quantity.data,
                pack_units=form.pack_units.data,
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, batch_messages())
        else:
            db.session.commit()
            flash(_("Event recorded."), "success")
            return redirect(
                url_for("traceability.batch_detail", batch_id=batch_id) + "#timeline", 303
            )
    status = 400 if form.is_submitted() else 200
    return render_template("traceability/event_form.html", form=form, batch=batch), status


@bp.post("/trace/batches/<int:batch_id>/codes")
@login_required
def issue_codes(batch_id: int):
    batch = _batch_or_404(batch_id)
    form = forms.IssueCodesForm()
    if not form.validate_on_submit():
        flash(_("Enter how many codes to issue (1 to 20000)."), "error")
        return redirect(url_for("traceability.batch_detail", batch_id=batch_id) + "#codes", 303)
    try:
        issue_no = services.issue_codes(
            db.session,
            batch.id,
            form.count.data,
            company_prefix=_prefix(),
            max_count=current_app.config["TRACE_MAX_CODES_PER_ISSUE"],
        )
    except DomainError as exc:
        db.session.rollback()
        flash(batch_messages().get(exc.code, _("Please check this field.")), "error")
    else:
        db.session.commit()
        flash(
            _("Issued %(n)d unit codes (issue #%(no)d).", n=form.count.data, no=issue_no), "success"
        )
    return redirect(url_for("traceability.batch_detail", batch_id=batch_id) + "#codes", 303)


@bp.get("/trace/batches/<int:batch_id>/codes")
@login_required
def codes_list(batch_id: int):
    batch = _batch_or_404(batch_id, "trace.view")
    page = max(request.args.get("page", 1, type=int), 1)
    per_page = 100
    issue_no = request.args.get("issue", type=int)
    rows = services.unit_codes(
        db.session, batch.id, issue_no, offset=(page - 1) * per_page, limit=per_page + 1
    )
    base = current_app.config["PUBLIC_BASE_URL"]
    secret = config.tag_secret()
    length = current_app.config["TRACE_CODE_TAG_LENGTH"]
    items = [
        (c, services.code_link(base, secret, c, batch.lot_code, tag_length=length))
        for c in rows[:per_page]
    ]
    return render_template(
        "traceability/codes.html",
        batch=batch,
        items=items,
        page=page,
        has_next=len(rows) > per_page,
        issue_no=issue_no,
    )


@bp.get("/trace/codes/<int:code_id>/qr.<any(png, svg):fmt>")
@login_required
def code_image(code_id: int, fmt: str):
    """One code's QR as PNG or SVG (for a shop window, a crate, a web page)."""
    code = db.get_or_404(TraceCode, code_id)
    authorize("trace.view", code.batch)
    link = services.code_link(
        current_app.config["PUBLIC_BASE_URL"],
        config.tag_secret(),
        code,
        code.batch.lot_code,
        tag_length=current_app.config["TRACE_CODE_TAG_LENGTH"],
    )
    name = f"{code.batch.lot_code}-{code.serial or 'batch'}.{fmt}"
    if fmt == "png":
        response = Response(labels.qr_png(link), mimetype="image/png")
    else:
        response = Response(labels.qr_svg(link), mimetype="image/svg+xml")
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response


@bp.post("/trace/batches/<int:batch_id>/stock")
@login_required
def put_on_sale(batch_id: int):
    batch = _batch_or_404(batch_id)
    form = forms.StockForm()
    if not form.validate_on_submit():
        flash(_("Enter a whole number above zero."), "error")
        return redirect(url_for("traceability.batch_detail", batch_id=batch_id) + "#stock", 303)
    try:
        services.put_on_sale(db.session, batch.id, form.units.data)
    except DomainError as exc:
        db.session.rollback()
        flash(batch_messages().get(exc.code, _("Please check this field.")), "error")
    else:
        db.session.commit()
        flash(_("%(n)d units from this batch are now on sale.", n=form.units.data), "success")
    return redirect(url_for("traceability.batch_detail", batch_id=batch_id) + "#stock", 303)


# --- labels ----------------------------------------------------------------------------


@bp.post("/trace/batches/<int:batch_id>/labels")
@login_required
def create_labels(batch_id: int):
    batch = _batch_or_404(batch_id)
    form = forms.LabelForm(issues=services.issues(db.session, batch.id))
    if not form.validate_on_submit():
        flash(_("Choose the label stock and the codes to print."), "error")
        return redirect(url_for("traceability.batch_detail", batch_id=batch_id) + "#labels", 303)
    try:
        job = services.create_label_job(
            db.session,
            batch.id,
            layout=LabelLayout(form.layout.data),
            kind=CodeKind(form.kind.data),
            issue_no=form.issue_no.data or None,
            copies=form.copies.data or 1,
            user_id=current_user.id,
            max_labels=current_app.config["TRACE_MAX_CODES_PER_ISSUE"],
        )
    except DomainError as exc:
        db.session.rollback()
        flash(batch_messages().get(exc.code, _("Please check this field.")), "error")
        return redirect(url_for("traceability.batch_detail", batch_id=batch_id) + "#labels", 303)
    job_id = job.id
    db.session.commit()
    try:
        tasks.render_label_job.delay(job_id)
    except Exception:
        # Only in eager mode does the task run (and fail) here; the job row says it
        # failed and why, which the job page shows.
        log.exception("label job %s failed", job_id)
    return redirect(url_for("traceability.label_job", job_id=job_id), 303)


def _job_or_404(job_id: int) -> LabelJob:
    job = db.get_or_404(LabelJob, job_id)
    authorize("trace.manage", job.batch)
    return job


@dataclass(frozen=True)
class _JobView:
    status: str
    percent: int
    done: int
    total: int
    download: str | None
    error: str


def _job_view(job: LabelJob) -> _JobView:
    download = (
        url_for("traceability.label_download", job_id=job.id)
        if job.status is JobStatus.DONE
        else None
    )
    return _JobView(job.status.value, job.percent, job.done, job.total, download, job.error)


@bp.get("/trace/labels/<int:job_id>")
@login_required
def label_job(job_id: int):
    job = _job_or_404(job_id)
    return render_template(
        "traceability/label_job.html",
        job=job,
        view=_job_view(job),
        layout_labels=forms.LAYOUT_LABELS,
    )


@bp.get("/trace/labels/<int:job_id>/status")
@login_required
def label_job_status(job_id: int):
    job = _job_or_404(job_id)
    view = _job_view(job)
    return jsonify(view.__dict__)


@bp.get("/trace/labels/<int:job_id>/download")
@login_required
def label_download(job_id: int):
    job = _job_or_404(job_id)
    if job.status is not JobStatus.DONE or not job.file_name:
        abort(404)
    return send_from_directory(
        current_app.config["LABEL_DIR"],
        job.file_name,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=f"labels-{job.batch.lot_code}-{job.layout.value}.pdf",
    )


# --- API tokens --------------------------------------------------------------------------


def _token_owner() -> Cooperative | None:
    """Whose tokens the page shows: the admin's cooperative, or (platform) the one
    chosen with ?cooperative=, or platform-wide tokens."""
    if current_user.role is Role.PLATFORM_ADMIN:
        wanted = request.args.get("cooperative", type=int)
        return db.get_or_404(Cooperative, wanted) if wanted else None
    coop = db.session.get(Cooperative, current_user.cooperative_id or 0)
    if coop is None:
        abort(403)
    return coop


@bp.route("/trace/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    owner = _token_owner()
    authorize("trace.tokens", owner)
    form = forms.TokenForm()
    minted = None
    if form.validate_on_submit():
        try:
            _token, minted = services.create_token(
                db.session,
                name=form.name.data,
                scopes=form.scopes.data,
                cooperative_id=owner.id if owner else None,
                user_id=current_user.id,
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, batch_messages())
            minted = None
        else:
            db.session.commit()
            form = forms.TokenForm(formdata=None)
    status = 400 if form.errors else 200
    return render_template(
        "traceability/tokens.html",
        form=form,
        owner=owner,
        tokens=services.tokens_for(db.session, owner.id if owner else None),
        minted=minted,
        revoke_form=forms.FlaskForm(),
    ), status


@bp.post("/trace/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    token = db.get_or_404(ApiToken, token_id)
    authorize("trace.tokens", token.cooperative)
    form = forms.FlaskForm()
    if form.validate_on_submit():
        services.revoke_token(db.session, token.id)
        db.session.commit()
        flash(_("Token revoked."), "success")
    query = (
        {"cooperative": token.cooperative_id} if current_user.role is Role.PLATFORM_ADMIN else {}
    )
    return redirect(url_for("traceability.tokens", **query), 303)


# --------------------------------------------------------------------------------------
# Benchmark baseline
# --------------------------------------------------------------------------------------


def register_bench_routes(app: Flask) -> None:
    """A hello-world route for bench/traceability.py, only when BENCH is set."""

    @app.get("/bench/hello")
    def bench_hello():
        return "hello"
