"""Catalog pages: browse and product pages, the phone listing form, editing, stock,
status, the seller's list and the cooperative's bulk import."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from PIL import Image

from market import media, places, policy, search
from market.catalog import importing, services
from market.catalog.forms import ImportForm, ProductDetailsForm, QuickProductForm, StockForm
from market.catalog.labels import (
    CATEGORY_LABELS,
    CERTIFICATION_LABELS,
    MONTH_LABELS,
    STATUS_LABELS,
    category_label,
    month_ranges,
    unit_label,
)
from market.catalog.models import Category, Product, ProductStatus
from market.cooperatives.forms import EmptyForm
from market.cooperatives.models import Cooperative
from market.cooperatives.views import photo_error_text
from market.errors import DomainError
from market.extensions import db
from market.money import fen_to_yuan
from market.views import safe_next
from market.web import authorize

bp = Blueprint("catalog", __name__)

PER_PAGE = 20


# --- messages --------------------------------------------------------------------------


def problem_messages() -> dict[str, str]:
    """Service and import problem codes in the user's language."""
    return {
        "required": _("Please fill this in."),
        "too_long": _("This is too long."),
        "invalid_category": _("Choose one of the categories."),
        "invalid_unit": _("Choose one of the units."),
        "invalid_price": _("Enter a price such as 12.80."),
        "price_sub_fen": _("Prices are in yuan with at most two decimals."),
        "price_too_high": _("That price is too high; please check it."),
        "invalid_stock": _("Enter a whole number, 0 or more."),
        "stock_required": _("Enter the stock you have before putting it on sale."),
        "gi_name_required": _(
            "Enter the registered name of the geographical indication, e.g. 新会陈皮."
        ),
        "invalid_certification": _("Use 绿色食品, 有机, 无公害 or 承诺达标合格证."),
        "invalid_month": _("Months are 1 to 12, e.g. 5-7 or 5,6,7."),
        "invalid_division": _("Choose a city or county in Guangdong."),
        "ambiguous_origin": _("Several places have this name; add the city, e.g. 江门市新会区."),
        "too_many_photos": _("A product has at most 6 photos."),
        "invalid_photo": _("That photo could not be used; please choose it again."),
        "photo_required": _("Add a photo to put the product on sale."),
    }


def file_messages(error: importing.ImportFileError) -> str:
    texts = {
        "unsupported_file": _("Choose a CSV or XLSX file."),
        "unreadable_file": _("The file could not be read. Save it again as CSV (UTF-8) or XLSX."),
        "empty_file": _("The file has no products: fill in rows under the header."),
        "too_many_rows": _("At most %(n)s products per file.", n=importing.MAX_ROWS),
        "too_many_columns": _("The file has too many columns: use the template."),
        "unknown_column": _(
            "Unknown column “%(name)s”: use the headers of the template.", name=error.detail
        ),
        "duplicate_column": _("The column “%(name)s” appears twice.", name=error.detail),
        "missing_column": _("The column “%(name)s” is missing.", name=error.detail),
        "cell_outside_columns": _(
            "Row %(line)s has something in a column without a header.", line=error.detail
        ),
    }
    return texts.get(error.code, texts["unreadable_file"])


GTIN_EXHAUSTED = "gtin_range_exhausted"


def gtin_exhausted_text() -> str:
    return _(
        "No more product codes are available under the platform's GS1 prefix. "
        "Please tell the platform; nothing was saved."
    )


def stock_changed_text(current: int) -> str:
    return _(
        "The stock changed while you were editing (orders came in): it is now %(n)s. "
        "Check the number and save again.",
        n=current,
    )


def mark_problems(form, problems: Sequence[services.Problem], rename: dict[str, str]) -> None:
    messages = problem_messages()
    for problem in problems:
        text = messages.get(problem.code, _("Please check this field."))
        field = getattr(form, rename.get(problem.field, problem.field), None)
        if field is not None:
            if text not in field.errors:
                field.errors = [*list(field.errors), text]
        elif text not in form.form_errors:
            form.form_errors.append(text)


# --- photos ----------------------------------------------------------------------------


class UploadRefusedError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def media_dir() -> Path:
    return Path(current_app.config["MEDIA_DIR"])


def store_uploads(uploads: Sequence) -> list[services.PhotoRef]:
    """Process every upload, all or nothing: a refused one leaves no file behind.

    Photos are processed into a scratch folder inside the media folder and moved in only
    when all of them passed.
    """
    files = [u for u in uploads if u and getattr(u, "filename", "")]
    if not files:
        return []
    target = media_dir()
    target.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".incoming-", dir=target))
    try:
        stored = []
        for upload in files:
            try:
                stored.append(media.process_photo(upload.stream, scratch))
            except media.PhotoError as exc:
                raise UploadRefusedError(photo_error_text(exc.code)) from exc
        for name in os.listdir(scratch):
            if not (target / name).exists():
                os.replace(scratch / name, target / name)
        return [services.PhotoRef(s.key, s.width, s.height) for s in stored]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def kept_photo(key: str | None) -> services.PhotoRef | None:
    """A photo stored by an earlier try of the same form, if it really is there."""
    if not key or not media.is_valid_key(key):
        return None
    path = media_dir() / f"{key}-1280.jpg"
    if not path.is_file():
        return None
    try:
        with Image.open(path) as img:
            width, height = img.size
    except OSError:
        return None
    return services.PhotoRef(key, width, height)


# --- template helpers ------------------------------------------------------------------


@bp.app_template_filter("category_label")
def _category_label(value) -> str:
    return category_label(value)


@bp.app_template_filter("unit_label")
def _unit_label(value: str) -> str:
    return unit_label(value)


@bp.app_template_global("photo_url")
def photo_url(key: str, size: int = 320, fmt: str = "webp") -> str:
    return url_for("core.media_file", name=f"{key}-{size}.{fmt}")


@bp.app_template_global("harvest_text")
def harvest_text(months: list[int]) -> str:
    parts = []
    for start, end in month_ranges(months or []):
        if start == end:
            parts.append(str(MONTH_LABELS[start]))
        else:
            parts.append(
                _("%(start)s to %(end)s", start=MONTH_LABELS[start], end=MONTH_LABELS[end])
            )
    return _(", ").join(parts)


def _labels() -> dict:
    return {
        "category_labels": CATEGORY_LABELS,
        "certification_labels": CERTIFICATION_LABELS,
        "status_labels": STATUS_LABELS,
    }


# --- browsing --------------------------------------------------------------------------


def parse_filters(args) -> dict:
    """Browse filters from the query string; values that are not valid are dropped."""
    category = None
    try:
        category = Category(args.get("category", ""))
    except ValueError:
        category = None
    city = args.get("city", "")
    county = args.get("county", "")
    city_division = places.get(city) if places.is_valid_guangdong_code(city) else None
    if city_division is None or city_division.level != "city":
        city = ""
    county_division = places.get(county) if places.is_valid_guangdong_code(county) else None
    if county_division is None or county_division.level != "county":
        county = ""
    elif not city or county[:4] != city[:4]:
        city = county[:4] + "00"
    try:
        page = max(1, min(int(args.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    q = (args.get("q") or "").strip()[:64]
    return {"category": category, "city": city, "county": county, "page": page, "q": q}


def find_products(filters: dict, per_page: int = PER_PAGE, **extra) -> services.ProductPage:
    if filters["q"]:
        items, total, highlights = search.search_products(
            db.session,
            filters["q"],
            category=filters["category"].value if filters["category"] else None,
            city_code=filters["city"] or None,
            county_code=filters["county"] or None,
            page=filters["page"],
            per_page=per_page,
            **extra,
        )
        return services.ProductPage(
            items,
            total,
            filters["page"],
            per_page,
            {pid: Markup(text) for pid, text in highlights.items()},  # noqa: S704 - the search escapes titles
        )
    return services.public_products(
        db.session,
        category=filters["category"],
        city_code=filters["city"] or None,
        county_code=filters["county"] or None,
        page=filters["page"],
        per_page=per_page,
        **extra,
    )


@bp.get("/products")
def product_list():
    filters = parse_filters(request.args)
    result = find_products(filters)

    counties = places.children(filters["city"]) if filters["city"] else []
    return render_template(
        "catalog/list.html",
        result=result,
        filters=filters,
        cities=places.guangdong_cities(),
        counties=counties,
        page_args={k: v for k, v in request.args.items() if k != "page" and v},
        **_labels(),
    )


@bp.get("/products/<int:product_id>")
def product_detail(product_id: int):
    product = db.session.get(Product, product_id)
    if product is None or not policy.can(current_user, "product.view", product):
        abort(404)
    can_edit = policy.can(current_user, "product.edit", product)
    stock_form = StockForm(formdata=None, stock=str(product.stock), stock_seen=str(product.stock))
    more = []
    if product.is_listed:
        more = [
            p
            for p in services.public_products(
                db.session, cooperative_id=product.cooperative_id, per_page=5
            ).items
            if p.id != product.id
        ][:4]
    return render_template(
        "catalog/detail.html",
        product=product,
        can_edit=can_edit,
        stock_form=stock_form,
        action_form=EmptyForm(),
        more=more,
        **_labels(),
    )


# --- listing from a phone --------------------------------------------------------------


@bp.route("/products/new", methods=["GET", "POST"])
@login_required
def new_product():
    authorize("product.create")
    form = QuickProductForm()
    kept = kept_photo(form.photo_key.data) if form.is_submitted() else None
    if not form.is_submitted():
        return render_template("catalog/new.html", form=form, kept=None)

    form.validate()
    upload = form.photo.data
    if upload and getattr(upload, "filename", "") and not form.photo.errors:
        try:
            stored = store_uploads([upload])
        except UploadRefusedError as exc:
            form.photo.errors = [*list(form.photo.errors), exc.text]
        else:
            kept = stored[0]
    form.photo_key.data = kept.key if kept else ""
    if not form.errors:
        publish = bool(form.publish.data)
        try:
            product = services.create_product(
                db.session,
                current_user.id,
                form.product_input(),
                company_prefix=current_app.config["GS1_COMPANY_PREFIX"],
                photos=[kept] if kept else [],
                publish=publish,
            )
        except services.InvalidProductError as exc:
            db.session.rollback()
            mark_problems(form, exc.problems, {})
        except services.GtinRangeExhaustedError:
            db.session.rollback()
            form.form_errors.append(gtin_exhausted_text())
        else:
            product_id = product.id
            db.session.commit()
            search.index_product_later(product_id)
            if publish:
                flash(_("Your product is on sale."), "success")
            else:
                flash(_("Draft saved. Put it on sale when you are ready."), "success")
            return redirect(url_for("catalog.product_detail", product_id=product_id), 303)
    return render_template("catalog/new.html", form=form, kept=kept), 400


# --- editing ---------------------------------------------------------------------------


def details_data(product: Product) -> dict:
    return {
        "title": product.title,
        "category": product.category.value,
        "unit": product.unit,
        "price": fen_to_yuan(product.price_fen),
        "stock": str(product.stock),
        "stock_seen": str(product.stock),
        "description": product.description,
        "is_gi": product.is_gi,
        "gi_name": product.gi_name,
        "certifications": list(product.certifications or []),
        "harvest_months": list(product.harvest_months or []),
        "origin_code": product.origin_code,
        "origin_detail": product.origin_detail,
    }


def _editable(product_id: int) -> Product:
    product = db.get_or_404(Product, product_id)
    authorize("product.edit", product)
    return product


@bp.route("/products/<int:product_id>/edit", methods=["GET", "POST"])
@login_required
def edit_product(product_id: int):
    product = _editable(product_id)
    if request.method == "GET":
        form = ProductDetailsForm(data=details_data(product))
        return render_template("catalog/edit.html", form=form, product=product, **_labels())

    form = ProductDetailsForm()
    form.remove_photos.choices = [(p.key, p.key) for p in product.photos]
    form.validate()
    removed = set(form.remove_photos.data or [])
    refs = [
        services.PhotoRef(p.key, p.width, p.height) for p in product.photos if p.key not in removed
    ]
    uploads = [u for u in form.new_photos.data or [] if u and getattr(u, "filename", "")]
    # Photos are stored only once everything else is right, so a refused form leaves
    # no files behind.
    if not form.errors and len(refs) + len(uploads) > services.MAX_PHOTOS:
        mark_problems(form, [services.Problem("photo", "too_many_photos")], {"photo": "new_photos"})
    elif not form.errors:
        try:
            refs += store_uploads(uploads)
        except UploadRefusedError as exc:
            form.new_photos.errors = [*list(form.new_photos.errors), exc.text]
    if not form.errors:
        cover = form.cover.data
        refs.sort(key=lambda ref: ref.key != cover)
        try:
            services.update_product(
                db.session, product.id, form.product_input(), stock_seen=form.stock_seen_value()
            )
            services.set_photos(db.session, product.id, refs)
        except services.InvalidProductError as exc:
            db.session.rollback()
            mark_problems(form, exc.problems, {"photo": "new_photos"})
        except services.StockChangedError as exc:
            db.session.rollback()
            form.stock.errors = [*list(form.stock.errors), stock_changed_text(exc.current)]
            form.stock_seen.data = str(exc.current)
        else:
            db.session.commit()
            search.index_product_later(product_id)
            flash(_("Saved."), "success")
            return redirect(url_for("catalog.product_detail", product_id=product_id), 303)
    db.session.expire_all()
    product = db.session.get(Product, product_id)
    return render_template("catalog/edit.html", form=form, product=product, **_labels()), 400


def _back(product_id: int) -> str:
    return safe_next(
        request.form.get("next"), url_for("catalog.product_detail", product_id=product_id)
    )


@bp.post("/products/<int:product_id>/stock")
@login_required
def update_stock(product_id: int):
    product = _editable(product_id)
    form = StockForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
        return redirect(_back(product.id), 303)
    seen = form.stock_seen.data
    try:
        services.set_stock(
            db.session,
            product.id,
            form.stock.number,
            expected=int(seen) if seen and seen.isdigit() else None,
        )
    except services.StockChangedError as exc:
        db.session.rollback()
        flash(stock_changed_text(exc.current), "error")
    except DomainError:
        db.session.rollback()
        flash(_("Enter a whole number, 0 or more."), "error")
    else:
        db.session.commit()
        search.index_product_later(product_id)
        flash(_("Stock updated."), "success")
    return redirect(_back(product_id), 303)


def _change_status(product_id: int, change) -> Response | None:
    product = _editable(product_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(_back(product.id), 303)
    try:
        change(db.session, product.id)
    except services.InvalidProductError as exc:
        db.session.rollback()
        messages = problem_messages()
        for problem in exc.problems:
            flash(messages.get(problem.code, _("Please check this field.")), "error")
        return redirect(_back(product_id), 303)
    except DomainError:
        db.session.rollback()
        flash(_("This product cannot be put on sale now."), "error")
        return redirect(_back(product_id), 303)
    db.session.commit()
    search.index_product_later(product_id)
    return None


@bp.post("/products/<int:product_id>/publish")
@login_required
def publish_product(product_id: int):
    failed = _change_status(product_id, services.publish)
    if failed is not None:
        return failed
    flash(_("Your product is on sale."), "success")
    return redirect(_back(product_id), 303)


@bp.post("/products/<int:product_id>/archive")
@login_required
def archive_product(product_id: int):
    failed = _change_status(product_id, services.archive)
    if failed is not None:
        return failed
    flash(_("Taken off sale. You can put it on sale again at any time."), "success")
    return redirect(_back(product_id), 303)


@bp.get("/products/mine")
@login_required
def my_products():
    authorize("product.list_own")
    status = None
    try:
        status = ProductStatus(request.args.get("status", ""))
    except ValueError:
        status = None
    products = services.seller_products(db.session, current_user.id, status)
    return render_template(
        "catalog/mine.html",
        products=products,
        status=status,
        action_form=EmptyForm(),
        coop=current_user.cooperative,
        can_import=policy.can(current_user, "product.import", current_user.cooperative),
        **_labels(),
    )


# --- bulk import -----------------------------------------------------------------------


def instructions() -> list[tuple[str, str, str]]:
    yes, no = _("required"), _("optional")
    categories = "、".join(str(label) for label in CATEGORY_LABELS.values())
    notes = {
        "title": _("Up to 60 characters, e.g. 新会陈皮 十年陈 250克."),
        "category": _("One of: %(list)s.", list=categories),
        "unit": _("The unit the price and stock count in: 斤, 公斤, 箱, 盒, 袋 ..."),
        "price": _("Yuan per unit, at most two decimals, e.g. 128.00."),
        "stock": _("Whole units you have to sell, e.g. 100."),
        "description": _("Optional text shown on the product page."),
        "gi_name": _("Only for 地理标志 products: the registered name, e.g. 新会陈皮."),
        "certifications": _("Any of 绿色食品, 有机, 无公害, 承诺达标合格证, separated by 、"),
        "harvest_months": _("Months in season, e.g. 5-7 or 11-2 or 全年."),
        "origin_code": _("County or district, e.g. 新会区 (empty: the cooperative's own)."),
        "origin_detail": _("Town and village, e.g. 会城街道茶坑村."),
    }
    rows = [(_("Column"), _("Required?"), _("What to write"))]
    rows += [(str(c.label), yes if c.required else no, notes[c.key]) for c in importing.COLUMNS]
    rows.append(("", "", ""))
    rows.append(
        (
            _("Note"),
            "",
            _(
                "Imported products are saved as drafts. Add a photo to each, then put it "
                "on sale. If any row has a problem, nothing is imported."
            ),
        )
    )
    return rows


def _import_coop(cooperative_id: int) -> Cooperative:
    coop = db.get_or_404(Cooperative, cooperative_id)
    authorize("product.import", coop)
    return coop


@bp.get("/cooperatives/<int:cooperative_id>/products/import/template.<any(csv, xlsx):fmt>")
@login_required
def import_template(cooperative_id: int, fmt: str):
    _import_coop(cooperative_id)
    filename = "products-template." + fmt
    if fmt == "csv":
        body = importing.template_csv()
        mimetype = "text/csv; charset=utf-8"
    else:
        body = importing.template_xlsx(instructions(), (_("Products"), _("Instructions")))
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.route("/cooperatives/<int:cooperative_id>/products/import", methods=["GET", "POST"])
@login_required
def import_products(cooperative_id: int):
    coop = _import_coop(cooperative_id)
    form = ImportForm()
    row_errors: list[str] = []
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.stream.read(current_app.config["MAX_CONTENT_LENGTH"] + 1)
        try:
            rows = importing.parse_file(upload.filename, data)
        except importing.ImportFileError as exc:
            form.file.errors = [*list(form.file.errors), file_messages(exc)]
        else:
            try:
                products = services.import_products(
                    db.session,
                    current_user.id,
                    coop.id,
                    [(row.line, row.data, row.problems) for row in rows],
                    company_prefix=current_app.config["GS1_COMPANY_PREFIX"],
                )
            except services.ImportRejectedError as exc:
                db.session.rollback()
                row_errors = describe_row_problems(exc.problems)
            except services.GtinRangeExhaustedError:
                db.session.rollback()
                form.form_errors.append(gtin_exhausted_text())
            else:
                ids = [p.id for p in products]
                db.session.commit()
                for product_id in ids:
                    search.index_product_later(product_id)
                flash(
                    _(
                        "%(n)s products imported as drafts. Add a photo to each and put it "
                        "on sale.",
                        n=len(ids),
                    ),
                    "success",
                )
                return redirect(url_for("catalog.my_products", status="draft"), 303)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "catalog/import.html", form=form, coop=coop, row_errors=row_errors
    ), status


def describe_row_problems(problems: Sequence[services.RowProblem]) -> list[str]:
    messages = problem_messages()
    columns = {c.key: str(c.label) for c in importing.COLUMNS}
    return [
        _(
            "Row %(line)s, %(column)s: %(message)s",
            line=p.line,
            column=columns.get(p.field, p.field),
            message=messages.get(p.code, _("Please check this field.")),
        )
        for p in problems
    ]


# --- uploads that are too large --------------------------------------------------------


@bp.errorhandler(413)
def too_large(_exc):
    """Werkzeug refuses bodies over MAX_CONTENT_LENGTH before any form is read: say which
    limit it was, in the user's language, and offer the way back. Nothing is stored."""
    limit_mb = media.MAX_UPLOAD_BYTES // (1024 * 1024)
    if request.endpoint == "catalog.import_products":
        message = _("The file is too large. Files up to %(mb)s MB are accepted.", mb=limit_mb)
    else:
        message = _(
            "The photo is too large. Photos up to %(mb)s MB are accepted: choose a smaller "
            "one, or take it again at a lower resolution.",
            mb=limit_mb,
        )
    return render_template("catalog/too_large.html", message=message, back=request.path), 413
