"""Register, sign in, sign out, change password."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from market.auth import services
from market.auth.forms import ChangePasswordForm, LoginForm, RegisterForm
from market.errors import DomainError
from market.extensions import db, limiter
from market.views import safe_next
from market.web import authorize, field_error

bp = Blueprint("auth", __name__, url_prefix="/auth")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _register_limit() -> str:
    return current_app.config["REGISTER_RATE_LIMIT"]


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_register_limit, methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = services.register(
                db.session,
                form.phone.data,
                form.password.data,
                name=form.name.data or "",
                locale=str(request.cookies.get("lang") or "") or None,
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(
                form,
                exc,
                {
                    "phone_taken": _("This number is already registered. Sign in instead."),
                    "invalid_phone": _("Enter an 11-digit mainland mobile number."),
                    "weak_password": _("Choose a longer, less predictable password."),
                },
            )
        else:
            db.session.commit()
            login_user(user)
            flash(_("Welcome to YueNong Market!"), "success")
            return redirect(url_for("core.home"), 303)
    status = 400 if form.is_submitted() else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(db.session, form.phone.data, form.password.data)
        if user is None:
            db.session.rollback()
            form.password.errors = [_("Wrong mobile number or password.")]
        else:
            db.session.commit()
            login_user(user, remember=form.remember.data)
            if user.must_change_password:
                flash(_("Please choose your own password now."), "info")
                return redirect(url_for("auth.change_password"), 303)
            return redirect(safe_next(request.args.get("next"), url_for("core.home")), 303)
    status = 400 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("core.home"), 303)


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    authorize("account.manage_own")
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(
                db.session, current_user.id, form.current_password.data, form.new_password.data
            )
        except DomainError as exc:
            db.session.rollback()
            field_error(
                form,
                exc,
                {
                    "wrong_password": _("The current password is wrong."),
                    "weak_password": _("Choose a longer, less predictable password."),
                },
            )
        else:
            db.session.commit()
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("core.home"), 303)
    status = 400 if form.is_submitted() else 200
    return render_template("auth/password.html", form=form), status
