"""HTML pages: packing and shipping orders, a shipment's journey and checkpoints, read
points, RFID readers and the quarantine of unknown tags."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

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
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from logistics import config, forms, journey, services, tasks
from logistics.carriers import CARRIERS, WaybillError
from logistics.epc import format_sscc
from logistics.models import (
    EXCEPTION_STATUSES,
    QuarantinedEpc,
    Reader,
    ReadPoint,
    Shipment,
)
from market.auth.models import Role
from market.cooperatives.models import Cooperative
from market.errors import DomainError
from market.extensions import db
from market.orders.models import Order, OrderStatus
from market.types import utcnow
from market.web import authorize, field_error

bp = Blueprint("logistics", __name__, url_prefix="/logistics")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _prefix() -> str:
    return current_app.config["GS1_COMPANY_PREFIX"]


def messages() -> dict[str, str]:
    """What a service's error code means, in the reader's language."""
    return {
        "required": _("This field is required."),
        "too_long": _("This is too long."),
        "kind": _("Choose one of the options."),
        "invalid_division": _("Choose a city or county in Guangdong."),
        "biz_step": _("Choose one of the options."),
        "read_point": _("Choose one of your read points."),
        "antenna_map": _("Map each antenna to one of your read points."),
        "range": _("The number is out of range."),
        "future_date": _("The time cannot be in the future."),
        "not_packable": _("This order is not waiting to be packed."),
        "nothing_to_pack": _("Your part of this order is already packed."),
        "code_unknown": _("A code was not recognised: scan the label's QR code or RFID tag."),
        "code_other_product": _("A code belongs to another product."),
        "code_twice": _("A code was entered twice."),
        "code_packed": _("A unit has already been packed into another parcel."),
        "batch": _("Choose a batch of this product."),
        "quantity": _("Enter a whole number above zero."),
        "line_count": _("The codes and quantity must add up to the quantity ordered."),
        "sscc_exhausted": _("No more parcel numbers are available; contact the platform."),
        "not_shippable": _("This order is not packed and waiting to ship."),
        "already_shipped": _("This order has already been shipped."),
        "unknown_carrier": _("Choose a carrier."),
        "empty": _("Enter the waybill number."),
        "charset": _("A waybill number has only letters and digits."),
        "check_digit": _("The check digit of this waybill number is wrong; please check it."),
        "waybill_taken": _("This waybill number is already used by another shipment."),
        "profile": _("Choose one of the options."),
        "still_unknown": _("No code or parcel on the platform carries this EPC yet."),
    }


def _waybill_format_text(carrier_code: str) -> str:
    carrier = CARRIERS.get(carrier_code)
    if carrier is None:
        return _("Choose a carrier.")
    name = carrier.label(str(get_locale()))
    if carrier.example:
        return _(
            "This is not a %(carrier)s waybill number (they look like %(example)s).",
            carrier=name,
            example=carrier.example,
        )
    return _("This is not a %(carrier)s waybill number.", carrier=name)


def _shanghai_now() -> datetime:
    return utcnow().astimezone(SHANGHAI).replace(tzinfo=None, second=0, microsecond=0)


# --------------------------------------------------------------------------------------
# Overview
# --------------------------------------------------------------------------------------


def _own_cooperative_id() -> int | None:
    """The cooperative whose logistics the user sees (None: the platform sees all)."""
    if current_user.role is Role.PLATFORM_ADMIN:
        return request.args.get("cooperative", type=int)
    return current_user.cooperative_id


@bp.get("")
@login_required
def index():
    authorize("logistics.view")
    coop_id = _own_cooperative_id()
    session = db.session
    user = current_user._get_current_object()
    to_pack = services.orders_waiting(session, user, OrderStatus.PAID)
    to_ship = services.orders_waiting(session, user, OrderStatus.PACKED)
    shipments = services.shipments_for(session, coop_id, limit=50)
    if user.role is Role.FARMER:
        shipments = [
            s for s in shipments if any(line.farmer_id == user.id for line in s.order.lines)
        ]
    owner = session.get(Cooperative, coop_id) if coop_id else None
    return render_template(
        "logistics/index.html",
        to_pack=to_pack,
        to_ship=to_ship,
        shipments=shipments,
        problems=[s for s in shipments if s.status in EXCEPTION_STATUSES],
        status_labels=forms.STATUS_LABELS,
        owner=owner,
        can_manage_readers=current_user.role is Role.PLATFORM_ADMIN
        or (owner is not None and _can("reader.manage", owner)),
    )


def _can(action: str, target: Any) -> bool:
    from market.policy import can

    return can(current_user, action, target)


# --------------------------------------------------------------------------------------
# Packing and shipping
# --------------------------------------------------------------------------------------


def _order_or_404(order_id: int) -> Order:
    return db.get_or_404(Order, order_id)


@bp.route("/orders/<int:order_id>/pack", methods=["GET", "POST"])
@login_required
def pack_order(order_id: int):
    order = _order_or_404(order_id)
    authorize("logistics.pack", order)
    user = current_user._get_current_object()
    if order.status is not OrderStatus.PAID:
        flash(messages()["not_packable"], "error")
        return redirect(url_for("orders.order_detail", order_id=order.id), 303)
    lines = services.lines_to_pack(order, user)
    if not lines:
        flash(messages()["nothing_to_pack"], "info")
        return redirect(url_for("orders.order_detail", order_id=order.id), 303)
    batches = {line.id: services.packable_batches(db.session, line.product_id) for line in lines}
    form = forms.pack_form(lines, batches)()
    line_errors: dict[int, str] = {}
    if form.validate_on_submit():
        assignments = [
            services.LineAssignment(
                line_id=line.id,
                codes=(form[f"codes_{line.id}"].data or "").splitlines(),
                batch_id=form[f"batch_{line.id}"].data or None,
                quantity=form[f"quantity_{line.id}"].data or 0,
            )
            for line in lines
        ]
        try:
            parcel = services.pack_order(
                db.session, order.id, user, assignments, company_prefix=_prefix()
            )
        except services.PackError as exc:
            db.session.rollback()
            text = messages().get(exc.code, _("Please check this field."))
            target = form._fields.get(f"{exc.field}_{exc.line_id}") if exc.line_id else None
            if target is None and exc.field == "batch_id" and exc.line_id:
                target = form._fields.get(f"batch_{exc.line_id}")
            if target is not None:
                target.errors = [*target.errors, text]
            else:
                form.form_errors.append(text)
            if exc.line_id:
                line_errors[exc.line_id] = text
        else:
            sscc = format_sscc(parcel.sscc)
            db.session.commit()
            flash(_("Packed into parcel %(sscc)s.", sscc=sscc), "success")
            return redirect(url_for("orders.order_detail", order_id=order_id), 303)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "logistics/pack.html",
        order=order,
        lines=lines,
        form=form,
        batches=batches,
        line_errors=line_errors,
    ), status


@bp.route("/orders/<int:order_id>/shipment", methods=["GET", "POST"])
@login_required
def new_shipment(order_id: int):
    order = _order_or_404(order_id)
    authorize("shipment.create", order)
    existing = services.shipment_of_order(db.session, order.id)
    if existing is not None:
        return redirect(url_for("logistics.shipment_detail", shipment_id=existing.id), 303)
    if order.status is not OrderStatus.PACKED:
        flash(messages()["not_shippable"], "error")
        return redirect(url_for("orders.order_detail", order_id=order.id), 303)
    table = config.thresholds()
    profiles = services.cold_profiles(table)
    form = forms.ShipmentForm(lang=str(get_locale()), profiles=profiles)
    if form.validate_on_submit():
        try:
            shipment = services.create_shipment(
                db.session,
                order.id,
                carrier_code=form.carrier.data,
                waybill=form.waybill.data or "",
                actor_id=current_user.id,
                company_prefix=_prefix(),
                cold_profile=form.cold_profile.data or "",
                profiles=profiles,
            )
        except WaybillError as exc:
            db.session.rollback()
            text = (
                _waybill_format_text(form.carrier.data)
                if exc.code == "format"
                else messages().get(exc.code, _("Please check this field."))
            )
            target = form.carrier if exc.code == "unknown_carrier" else form.waybill
            target.errors = [*target.errors, text]
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, messages())
        else:
            shipment_id = shipment.id
            db.session.commit()
            tasks.subscribe_tracking.delay(shipment_id)
            from market.orders import tasks as order_tasks

            order_tasks.notify_order.delay(order_id, "shipped")
            flash(_("Shipped. The buyer has been told."), "success")
            return redirect(url_for("logistics.shipment_detail", shipment_id=shipment_id), 303)
    status = 400 if form.is_submitted() else 200
    parcels = services.parcels_of_order(db.session, order.id)
    return render_template(
        "logistics/new_shipment.html", order=order, form=form, parcels=parcels
    ), status


# --------------------------------------------------------------------------------------
# Shipments
# --------------------------------------------------------------------------------------


def _shipment_or_404(shipment_id: int, action: str = "shipment.view") -> Shipment:
    shipment = db.get_or_404(Shipment, shipment_id)
    authorize(action, shipment)
    return shipment


def _shipment_page(shipment: Shipment, checkpoint_form=None, temperature_form=None, status=200):
    session = db.session
    if checkpoint_form is None:
        checkpoint_form = forms.CheckpointForm(formdata=None)
        checkpoint_form.at.data = _shanghai_now()
    if temperature_form is None:
        temperature_form = forms.TemperatureForm(formdata=None)
        temperature_form.at.data = _shanghai_now()
    limits = services.limits_for(session, shipment, config.thresholds())
    return render_template(
        "logistics/shipment.html",
        shipment=shipment,
        order=shipment.order,
        carrier=CARRIERS.get(shipment.carrier_code),
        journey=journey.order_journey(session, shipment.order_id, company_prefix=_prefix()),
        excursions=services.excursions_of(session, shipment.id),
        temperatures=services.temperatures_of(session, shipment.id, limit=50),
        limits=limits,
        checkpoint_form=checkpoint_form,
        temperature_form=temperature_form,
        status_labels=forms.STATUS_LABELS,
        checkpoint_labels=forms.CHECKPOINT_LABELS,
        manage=_can("shipment.manage", shipment),
    ), status


@bp.get("/shipments/<int:shipment_id>")
@login_required
def shipment_detail(shipment_id: int):
    return _shipment_page(_shipment_or_404(shipment_id))


@bp.post("/shipments/<int:shipment_id>/checkpoints")
@login_required
def add_checkpoint(shipment_id: int):
    shipment = _shipment_or_404(shipment_id, "shipment.manage")
    form = forms.CheckpointForm()
    if form.validate_on_submit():
        try:
            outcome = services.record_checkpoint(
                db.session,
                shipment.id,
                form.kind.data,
                at=form.at.data.replace(tzinfo=SHANGHAI),
                company_prefix=_prefix(),
                location=form.location.data or "",
                division_code=form.division_code.data or None,
                note=form.note.data or "",
                user_id=current_user.id,
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, messages())
        else:
            checkpoint_id, kind = outcome.checkpoint.id, outcome.checkpoint.kind
            created = outcome.created
            db.session.commit()
            if created and kind in services.ALERT_KINDS:
                tasks.notify_checkpoint.delay(checkpoint_id)
            flash(_("Recorded."), "success")
            return redirect(
                url_for("logistics.shipment_detail", shipment_id=shipment_id) + "#journey", 303
            )
    return _shipment_page(shipment, checkpoint_form=form, status=400)


@bp.post("/shipments/<int:shipment_id>/temperatures")
@login_required
def add_temperature(shipment_id: int):
    shipment = _shipment_or_404(shipment_id, "shipment.manage")
    form = forms.TemperatureForm()
    if form.validate_on_submit():
        try:
            shipments = services.record_manual_temperature(
                db.session,
                shipment.id,
                celsius=float(form.celsius.data),
                at=form.at.data.replace(tzinfo=SHANGHAI),
                table=config.thresholds(),
                user_id=current_user.id,
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, messages())
        else:
            db.session.commit()
            if shipments:
                tasks.check_cold_chain.delay(sorted(shipments))
            flash(_("Temperature recorded."), "success")
            return redirect(
                url_for("logistics.shipment_detail", shipment_id=shipment_id) + "#temperatures",
                303,
            )
    return _shipment_page(shipment, temperature_form=form, status=400)


@bp.get("/shipments/<int:shipment_id>/epcis.jsonld")
@login_required
def shipment_epcis(shipment_id: int):
    """The shipment's journey as an EPCIS 2.0 document (validates against GS1's schema)."""
    shipment = _shipment_or_404(shipment_id)
    found = journey.order_journey(db.session, shipment.order_id, company_prefix=_prefix())
    document = journey.journey_document(db.session, found or journey.Journey([]), utcnow())
    response = Response(
        json.dumps(document, ensure_ascii=False, indent=1), mimetype="application/ld+json"
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="shipment-{shipment.waybill}.jsonld"'
    )
    return response


# --------------------------------------------------------------------------------------
# Read points, readers, quarantine
# --------------------------------------------------------------------------------------


def _owner() -> Cooperative | None:
    """Whose read points and readers the page shows: the admin's cooperative, or (for the
    platform) the one chosen with ?cooperative=, or the platform's own."""
    if current_user.role is Role.PLATFORM_ADMIN:
        wanted = request.args.get("cooperative", type=int)
        return db.get_or_404(Cooperative, wanted) if wanted else None
    coop = db.session.get(Cooperative, current_user.cooperative_id or 0)
    if coop is None:
        abort(403)
    return coop


def _owner_query(owner: Cooperative | None) -> dict[str, int]:
    if current_user.role is Role.PLATFORM_ADMIN and owner is not None:
        return {"cooperative": owner.id}
    return {}


def _owned(row: ReadPoint | Reader | QuarantinedEpc) -> Cooperative | None:
    owner = db.session.get(Cooperative, row.cooperative_id) if row.cooperative_id else None
    authorize("reader.manage", owner)
    return owner


@bp.route("/read-points", methods=["GET", "POST"])
@login_required
def read_points():
    owner = _owner()
    authorize("reader.manage", owner)
    form = forms.ReadPointForm()
    if not form.is_submitted() and owner is not None:
        form.division_code.data = owner.division_code
    if form.validate_on_submit():
        try:
            services.create_read_point(
                db.session,
                cooperative_id=owner.id if owner else None,
                name=form.name.data,
                kind=form.kind.data,
                division_code=form.division_code.data,
                biz_step=form.biz_step.data or None,
                company_prefix=_prefix(),
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, messages())
        else:
            db.session.commit()
            flash(_("Read point added."), "success")
            return redirect(url_for("logistics.read_points", **_owner_query(owner)), 303)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "logistics/read_points.html",
        owner=owner,
        form=form,
        points=services.read_points_for(db.session, owner.id if owner else None),
        kind_labels=forms.KIND_LABELS,
        step_labels=forms.BIZ_STEP_LABELS,
        owner_query=_owner_query(owner),
    ), status


@bp.route("/read-points/<int:read_point_id>", methods=["GET", "POST"])
@login_required
def edit_read_point(read_point_id: int):
    point = db.get_or_404(ReadPoint, read_point_id)
    owner = _owned(point)
    form = forms.ReadPointForm(obj=point)
    if not form.is_submitted():
        form.kind.data = point.kind.value
    if form.validate_on_submit():
        try:
            services.update_read_point(
                db.session,
                point.id,
                name=form.name.data,
                kind=form.kind.data,
                division_code=form.division_code.data,
                biz_step=form.biz_step.data or None,
                active=form.active.data,
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, messages())
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("logistics.read_points", **_owner_query(owner)), 303)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "logistics/read_point.html", point=point, form=form, owner_query=_owner_query(owner)
    ), status


def _reader_values(form: forms.ReaderForm) -> dict[str, Any]:
    return {
        "name": form.name.data,
        "model": form.model.data or "",
        "read_point_id": form.read_point_id.data,
        "antenna_map": form.antenna_map(),
        "dedupe_window_s": form.dedupe_window_s.data,
        "local_time": bool(form.local_time.data),
    }


@bp.route("/readers", methods=["GET", "POST"])
@login_required
def readers():
    owner = _owner()
    authorize("reader.manage", owner)
    owner_id = owner.id if owner else None
    points = [p for p in services.read_points_for(db.session, owner_id) if p.active]
    form = forms.ReaderForm(points=points)
    if not form.is_submitted():
        form.dedupe_window_s.data = current_app.config["LOGISTICS_DEDUPE_WINDOW_SECONDS"]
    minted = None
    new_reader = None
    if points and form.validate_on_submit():
        try:
            new_reader, minted = services.register_reader(
                db.session,
                cooperative_id=owner_id,
                user_id=current_user.id,
                **_reader_values(form),
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, messages())
            minted = None
        else:
            new_reader_id = new_reader.id
            db.session.commit()
            new_reader = db.session.get(Reader, new_reader_id)
            form = forms.ReaderForm(formdata=None, points=points)
            form.dedupe_window_s.data = current_app.config["LOGISTICS_DEDUPE_WINDOW_SECONDS"]
    status = 400 if form.errors else 200
    return render_template(
        "logistics/readers.html",
        owner=owner,
        form=form,
        points=points,
        readers=services.readers_for(db.session, owner_id),
        minted=minted,
        new_reader=new_reader,
        owner_query=_owner_query(owner),
        action_form=FlaskForm(),
    ), status


@bp.route("/readers/<int:reader_id>", methods=["GET", "POST"])
@login_required
def edit_reader(reader_id: int):
    reader = db.get_or_404(Reader, reader_id)
    owner = _owned(reader)
    points = services.read_points_for(db.session, reader.cooperative_id)
    form = forms.ReaderForm(obj=reader, points=points)
    if not form.is_submitted():
        for number, field in enumerate(form.antennas, start=1):
            value = (reader.antenna_map or {}).get(str(number))
            field.data = int(value) if value and value.isdigit() else 0
    if form.validate_on_submit():
        try:
            services.update_reader(
                db.session, reader.id, active=bool(form.active.data), **_reader_values(form)
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, messages())
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("logistics.readers", **_owner_query(owner)), 303)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "logistics/reader.html",
        reader=reader,
        form=form,
        owner_query=_owner_query(owner),
        action_form=FlaskForm(),
        minted=None,
    ), status


@bp.post("/readers/<int:reader_id>/token")
@login_required
def rotate_token(reader_id: int):
    reader = db.get_or_404(Reader, reader_id)
    owner = _owned(reader)
    if not FlaskForm().validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(url_for("logistics.edit_reader", reader_id=reader_id), 303)
    minted = services.rotate_reader_token(db.session, reader.id, user_id=current_user.id)
    db.session.commit()
    reader = db.session.get(Reader, reader_id)
    points = services.read_points_for(db.session, reader.cooperative_id)
    form = forms.ReaderForm(obj=reader, points=points)
    for number, field in enumerate(form.antennas, start=1):
        value = (reader.antenna_map or {}).get(str(number))
        field.data = int(value) if value and value.isdigit() else 0
    return render_template(
        "logistics/reader.html",
        reader=reader,
        form=form,
        owner_query=_owner_query(owner),
        action_form=FlaskForm(),
        minted=minted,
    )


@bp.get("/quarantine")
@login_required
def quarantine():
    owner = _owner()
    authorize("reader.manage", owner)
    show_all = request.args.get("all") == "1"
    return render_template(
        "logistics/quarantine.html",
        owner=owner,
        entries=services.quarantine_for(
            db.session, owner.id if owner else None, include_resolved=show_all
        ),
        show_all=show_all,
        owner_query=_owner_query(owner),
        action_form=FlaskForm(),
    )


@bp.post("/quarantine/<int:entry_id>/dismiss")
@login_required
def dismiss_quarantined(entry_id: int):
    entry = db.get_or_404(QuarantinedEpc, entry_id)
    owner = _owned(entry)
    if FlaskForm().validate_on_submit():
        services.dismiss_quarantined(db.session, entry.id)
        db.session.commit()
        flash(_("Removed from the list. It comes back if the tag is read again."), "success")
    return redirect(url_for("logistics.quarantine", **_owner_query(owner)), 303)


@bp.post("/quarantine/<int:entry_id>/retry")
@login_required
def retry_quarantined(entry_id: int):
    entry = db.get_or_404(QuarantinedEpc, entry_id)
    owner = _owned(entry)
    if FlaskForm().validate_on_submit():
        try:
            result = services.retry_quarantined(db.session, entry.id, company_prefix=_prefix())
        except DomainError as exc:
            db.session.rollback()
            flash(messages().get(exc.code, _("Please check this field.")), "error")
        else:
            db.session.commit()
            flash(_("%(n)d reads recorded.", n=result.recorded + result.merged), "success")
    return redirect(url_for("logistics.quarantine", **_owner_query(owner)), 303)
