"""A user's notifications."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from market.cooperatives.forms import EmptyForm
from market.extensions import db
from market.notifications import services
from market.web import authorize

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.get("")
@login_required
def index():
    authorize("account.manage_own")
    return render_template(
        "notifications/index.html",
        notifications=services.for_user(db.session, current_user.id),
        form=EmptyForm(),
    )


@bp.post("/read")
@login_required
def mark_read():
    authorize("account.manage_own")
    if EmptyForm().validate_on_submit():
        services.mark_all_read(db.session, current_user.id)
        db.session.commit()
    return redirect(url_for("notifications.index"), 303)
