"""Sign-up, sign-in and password forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from market.auth.services import MIN_PASSWORD_LENGTH, InvalidPhoneError, normalize_phone


def mainland_phone(_form, field) -> None:
    try:
        field.data = normalize_phone(field.data or "")
    except InvalidPhoneError as exc:
        raise ValidationError(_l("Enter an 11-digit mainland mobile number.")) from exc


class RegisterForm(FlaskForm):
    phone = StringField(
        _l("Mobile number"),
        validators=[DataRequired(), mainland_phone],
        render_kw={"inputmode": "tel", "autocomplete": "tel"},
    )
    name = StringField(_l("Name (optional)"), validators=[Length(max=40)])
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=128)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(), EqualTo("password", message=_l("Passwords do not match."))],
        render_kw={"autocomplete": "new-password"},
    )


class LoginForm(FlaskForm):
    phone = StringField(
        _l("Mobile number"),
        validators=[DataRequired()],
        render_kw={"inputmode": "tel", "autocomplete": "username"},
    )
    password = PasswordField(
        _l("Password"), validators=[DataRequired()], render_kw={"autocomplete": "current-password"}
    )
    remember = BooleanField(_l("Stay signed in"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired()],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        _l("New password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=128)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("Passwords do not match."))],
        render_kw={"autocomplete": "new-password"},
    )
