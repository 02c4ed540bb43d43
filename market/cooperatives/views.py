"""Cooperative pages, member management, and the platform admin's review."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from market import media
from market.auth.models import Role, User
from market.cooperatives import services
from market.cooperatives.forms import (
    AddMemberForm,
    AdminCooperativeForm,
    CooperativeForm,
    EmptyForm,
    StaffForm,
)
from market.cooperatives.models import Cooperative
from market.errors import DomainError
from market.extensions import db
from market.notifications import tasks as notification_tasks
from market.web import authorize, field_error

bp = Blueprint("cooperatives", __name__, url_prefix="/cooperatives")
admin_bp = Blueprint("admin", __name__, url_prefix="/admin")


def coop_messages() -> dict[str, str]:
    return {
        "name_taken": _("A cooperative with this name is already registered."),
        "invalid_division": _("Choose a city or county in Guangdong."),
        "uscc_taken": _("This credit code is already registered."),
        "uscc_check": _("The check character does not match; please check the code."),
        "invalid_phone": _("Enter an 11-digit mainland mobile number."),
        "already_member": _("This person is already a member."),
        "member_elsewhere": _("This number belongs to another cooperative or role."),
        "has_role": _("This number already has another role."),
    }


def photo_error_text(code: str) -> str:
    texts = {
        "too_large": _("The photo is larger than 10 MB."),
        "not_image": _("That file is not a photo."),
        "bomb": _("The photo's dimensions are too large."),
        "unsupported": _("Upload a JPEG, PNG or WebP photo."),
    }
    return texts.get(code, texts["not_image"])


def store_form_photo(form) -> str | bool | None:
    """Process an uploaded photo; None when none was sent, False (with the field
    marked) when it was refused."""
    upload = form.photo.data
    if not upload or not getattr(upload, "filename", ""):
        return None
    try:
        stored = media.process_photo(upload.stream, Path(current_app.config["MEDIA_DIR"]))
    except media.PhotoError as exc:
        form.photo.errors = [*list(form.photo.errors), photo_error_text(exc.code)]
        return False
    return stored.key


def _input(form) -> services.CooperativeInput:
    return services.CooperativeInput(
        name=form.name.data or "",
        division_code=form.division_code.data or "",
        village=form.village.data or "",
        intro=form.intro.data or "",
        uscc=form.uscc.data or "",
        contact_phone=form.contact_phone.data or "",
    )


@bp.get("")
def index():
    return render_template("cooperatives/index.html", cooperatives=services.approved(db.session))


@bp.get("/<int:cooperative_id>")
def detail(cooperative_id: int):
    coop = db.get_or_404(Cooperative, cooperative_id)
    authorize("cooperative.view", coop)
    from market.catalog import services as catalog
    from market.catalog.views import parse_filters

    page = parse_filters(request.args)["page"]
    products = catalog.public_products(db.session, cooperative_id=coop.id, page=page)
    return render_template("cooperatives/detail.html", coop=coop, products=products)


@bp.route("/apply", methods=["GET", "POST"])
@login_required
def apply():
    authorize("cooperative.apply")
    form = CooperativeForm()
    if form.validate_on_submit():
        photo_key = store_form_photo(form)
        if photo_key is not False:
            try:
                coop = services.apply(db.session, current_user.id, _input(form))
                coop.photo_key = photo_key
            except DomainError as exc:
                db.session.rollback()
                field_error(form, exc, coop_messages())
            else:
                coop_id = coop.id
                db.session.commit()
                flash(_("Thank you! The platform will review your application."), "success")
                return redirect(url_for("cooperatives.detail", cooperative_id=coop_id), 303)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "cooperatives/form.html", form=form, title=_("Register a cooperative")
    ), status


@bp.route("/<int:cooperative_id>/edit", methods=["GET", "POST"])
@login_required
def edit(cooperative_id: int):
    coop = db.get_or_404(Cooperative, cooperative_id)
    authorize("cooperative.manage", coop)
    form = CooperativeForm(obj=coop)
    if form.validate_on_submit():
        photo_key = store_form_photo(form)
        if photo_key is not False:
            try:
                services.update_profile(db.session, coop.id, _input(form))
                if photo_key:
                    services.set_photo(db.session, coop.id, photo_key)
            except DomainError as exc:
                db.session.rollback()
                field_error(form, exc, coop_messages())
            else:
                db.session.commit()
                flash(_("Saved."), "success")
                return redirect(url_for("cooperatives.detail", cooperative_id=cooperative_id), 303)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "cooperatives/form.html", form=form, coop=coop, title=_("Edit cooperative")
    ), status


@bp.route("/<int:cooperative_id>/members", methods=["GET", "POST"])
@login_required
def members(cooperative_id: int):
    coop = db.get_or_404(Cooperative, cooperative_id)
    authorize("cooperative.oversee", coop)
    form = AddMemberForm()
    initial_password = None
    if form.is_submitted():
        authorize("cooperative.manage", coop)
    if form.validate_on_submit():
        try:
            user, initial_password = services.add_farmer(
                db.session, coop.id, form.phone.data, form.name.data or ""
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, coop_messages())
        else:
            db.session.commit()
            flash(_("%(name)s has been added as a farmer.", name=user.display_name), "success")
            if initial_password is None:
                return redirect(url_for("cooperatives.members", cooperative_id=coop.id), 303)
            form = AddMemberForm(formdata=None)
    people = db.session.scalars(
        select(User).where(User.cooperative_id == coop.id).order_by(User.role, User.id)
    ).all()
    status = 400 if form.errors else 200
    return render_template(
        "cooperatives/members.html",
        coop=coop,
        form=form,
        people=people,
        initial_password=initial_password,
        remove_form=EmptyForm(),
    ), status


@bp.post("/<int:cooperative_id>/members/<int:user_id>/remove")
@login_required
def remove_member(cooperative_id: int, user_id: int):
    coop = db.get_or_404(Cooperative, cooperative_id)
    authorize("cooperative.manage", coop)
    form = EmptyForm()
    if not form.validate_on_submit():
        return redirect(url_for("cooperatives.members", cooperative_id=coop.id), 303)
    try:
        services.remove_farmer(db.session, coop.id, user_id)
    except DomainError:
        db.session.rollback()
        flash(_("That person is not a farmer of this cooperative."), "error")
    else:
        db.session.commit()
        flash(_("Removed from the cooperative."), "success")
    return redirect(url_for("cooperatives.members", cooperative_id=coop.id), 303)


# --- platform admin ------------------------------------------------------------


@admin_bp.get("")
@login_required
def index_admin():
    authorize("admin.access")
    return render_template(
        "admin/index.html", pending=services.pending(db.session), review_form=EmptyForm()
    )


@admin_bp.route("/cooperatives/new", methods=["GET", "POST"])
@login_required
def new_cooperative():
    authorize("cooperative.create")
    form = AdminCooperativeForm()
    initial_password = None
    if form.validate_on_submit():
        photo_key = store_form_photo(form)
        if photo_key is not False:
            try:
                coop, initial_password = services.create(
                    db.session,
                    _input(form),
                    admin_phone=form.admin_phone.data,
                    admin_name=form.admin_name.data or "",
                )
                coop.photo_key = photo_key
            except DomainError as exc:
                db.session.rollback()
                field_error(form, exc, coop_messages())
            else:
                coop_id = coop.id
                db.session.commit()
                flash(_("Cooperative created."), "success")
                if initial_password is None:
                    return redirect(url_for("cooperatives.detail", cooperative_id=coop_id), 303)
                return render_template(
                    "admin/created.html",
                    coop_id=coop_id,
                    phone=form.admin_phone.data,
                    initial_password=initial_password,
                )
    status = 400 if form.is_submitted() else 200
    return render_template("cooperatives/form.html", form=form, title=_("New cooperative")), status


def _review(cooperative_id: int, approve: bool):
    authorize("cooperative.review")
    form = EmptyForm()
    if not form.validate_on_submit():
        return redirect(url_for("admin.index_admin"), 303)
    coop = db.get_or_404(Cooperative, cooperative_id)
    applicant_ids = [member.id for member in coop.members]
    try:
        if approve:
            services.approve(db.session, coop.id)
        else:
            services.reject(db.session, coop.id)
    except DomainError:
        db.session.rollback()
        flash(_("This application has already been reviewed."), "error")
        return redirect(url_for("admin.index_admin"), 303)
    db.session.commit()
    notification_tasks.notify_cooperative_reviewed.delay(cooperative_id, applicant_ids)
    flash(_("Approved.") if approve else _("Rejected."), "success")
    return redirect(url_for("admin.index_admin"), 303)


@admin_bp.post("/cooperatives/<int:cooperative_id>/approve")
@login_required
def approve_cooperative(cooperative_id: int):
    return _review(cooperative_id, approve=True)


@admin_bp.post("/cooperatives/<int:cooperative_id>/reject")
@login_required
def reject_cooperative(cooperative_id: int):
    return _review(cooperative_id, approve=False)


@admin_bp.route("/staff", methods=["GET", "POST"])
@login_required
def staff():
    authorize("staff.manage")
    form = StaffForm()
    initial_password = None
    if form.validate_on_submit():
        try:
            _user, initial_password = services.create_staff(
                db.session, form.phone.data, form.name.data or "", form.division_code.data
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(form, exc, coop_messages())
        else:
            db.session.commit()
            flash(_("Staff account ready."), "success")
            if initial_password is None:
                return redirect(url_for("admin.staff"), 303)
            form = StaffForm(formdata=None)
    people = db.session.scalars(
        select(User).where(User.role == Role.SUPPLY_STAFF).order_by(User.division_code)
    ).all()
    status = 400 if form.errors else 200
    return render_template(
        "admin/staff.html", form=form, people=people, initial_password=initial_password
    ), status
