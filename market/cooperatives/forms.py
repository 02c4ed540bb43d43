"""Cooperative profile, member and staff forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from market import places, uscc
from market.auth.forms import mainland_phone


def guangdong_division_choices() -> dict[str, list[tuple[str, str]]]:
    """Cities as option groups, each offering the whole city and its counties."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for city in places.guangdong_cities():
        groups[city.name] = [(city.code, city.name)] + [
            (county.code, f"{city.name} {county.name}") for county in places.children(city.code)
        ]
    return groups


def valid_uscc(_form, field) -> None:
    if not field.data:
        return
    field.data = uscc.normalize(field.data)
    reason = uscc.explain(field.data)
    if reason == "length":
        raise ValidationError(_l("The code has 18 characters."))
    if reason == "charset":
        raise ValidationError(_l("The code uses digits and capital letters except I, O, S, V, Z."))
    if reason:
        raise ValidationError(_l("The check character does not match; please check the code."))


def guangdong_division(_form, field) -> None:
    if not places.is_valid_guangdong_code(field.data or ""):
        raise ValidationError(_l("Choose a city or county in Guangdong."))


class CooperativeForm(FlaskForm):
    name = StringField(_l("Cooperative name"), validators=[DataRequired(), Length(max=60)])
    division_code = SelectField(
        _l("County / district"),
        validators=[DataRequired(), guangdong_division],
        validate_choice=False,
    )
    village = StringField(_l("Town and village"), validators=[Optional(), Length(max=60)])
    uscc = StringField(
        _l("Unified social credit code (optional)"),
        validators=[Optional(), valid_uscc],
        render_kw={"autocapitalize": "characters", "spellcheck": "false"},
    )
    contact_phone = StringField(
        _l("Contact phone (optional)"),
        validators=[Optional(), mainland_phone],
        render_kw={"inputmode": "tel"},
    )
    intro = TextAreaField(_l("Introduction"), validators=[Optional(), Length(max=2000)])
    photo = FileField(
        _l("Photo"),
        validators=[
            FileAllowed(["jpg", "jpeg", "png", "webp"], _l("Upload a JPEG, PNG or WebP photo."))
        ],
        render_kw={"accept": "image/*"},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.division_code.choices = guangdong_division_choices()


class AdminCooperativeForm(CooperativeForm):
    admin_phone = StringField(
        _l("Cooperative admin's mobile number"),
        validators=[DataRequired(), mainland_phone],
        render_kw={"inputmode": "tel"},
    )
    admin_name = StringField(_l("Admin's name"), validators=[Optional(), Length(max=40)])


class AddMemberForm(FlaskForm):
    phone = StringField(
        _l("Farmer's mobile number"),
        validators=[DataRequired(), mainland_phone],
        render_kw={"inputmode": "tel"},
    )
    name = StringField(_l("Farmer's name"), validators=[Optional(), Length(max=40)])


class StaffForm(FlaskForm):
    phone = StringField(
        _l("Mobile number"),
        validators=[DataRequired(), mainland_phone],
        render_kw={"inputmode": "tel"},
    )
    name = StringField(_l("Name"), validators=[Optional(), Length(max=40)])
    division_code = SelectField(
        _l("Oversees (city or county)"),
        validators=[DataRequired(), guangdong_division],
        validate_choice=False,
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.division_code.choices = guangdong_division_choices()


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for POST buttons."""
