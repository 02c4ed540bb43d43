"""Product forms: the one-minute phone form, the details form, stock, and import."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired, MultipleFileField
from wtforms import (
    BooleanField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from market.catalog import services
from market.catalog.labels import CATEGORY_LABELS, CERTIFICATION_LABELS, MONTH_LABELS, unit_label
from market.catalog.models import CERTIFICATIONS, UNITS, Category
from market.cooperatives.forms import guangdong_division_choices
from market.money import MoneyError, yuan_to_fen

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp"]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def price_in_yuan(_form, field) -> None:
    """Yuan with at most two decimals, more than zero; sets `field.fen`."""
    text = (field.data or "").strip().replace("¥", "").replace("￥", "").removesuffix("元")
    field.fen = None
    try:
        fen = yuan_to_fen(text)
    except MoneyError as exc:
        if "finer" in str(exc):
            raise ValidationError(_l("Prices are in yuan with at most two decimals.")) from exc
        raise ValidationError(_l("Enter a price such as 12.80.")) from exc
    if fen <= 0:
        raise ValidationError(_l("The price must be more than zero."))
    if fen > services.MAX_PRICE_FEN:
        raise ValidationError(_l("That price is too high; please check it."))
    field.fen = fen


def whole_number(_form, field) -> None:
    text = (field.data or "").strip().replace(",", "")
    if not re.fullmatch(r"\d{1,9}", text) or int(text) > services.MAX_STOCK:
        raise ValidationError(_l("Enter a whole number, 0 or more."))
    field.number = int(text)


def category_choices() -> list[tuple[str, str]]:
    return [(c.value, CATEGORY_LABELS[c]) for c in Category]


def unit_choices() -> list[tuple[str, str]]:
    return [(u, unit_label(u)) for u in UNITS]


class ProductCoreMixin:
    """The five things every product needs, shared by both forms."""

    title = StringField(
        _l("Product name"),
        validators=[DataRequired(), Length(max=services.TITLE_MAX)],
        render_kw={"maxlength": services.TITLE_MAX, "autocomplete": "off"},
    )
    category = SelectField(_l("Category"), validators=[DataRequired()])
    price = StringField(
        _l("Price (yuan)"),
        validators=[DataRequired(), price_in_yuan],
        render_kw={"inputmode": "decimal", "autocomplete": "off", "placeholder": "12.80"},
    )
    unit = SelectField(_l("per"), validators=[DataRequired()])
    stock = StringField(
        _l("Stock"),
        validators=[DataRequired(), whole_number],
        render_kw={"inputmode": "numeric", "pattern": "[0-9]*", "autocomplete": "off"},
    )

    def _choices(self) -> None:
        self.category.choices = category_choices()
        self.unit.choices = unit_choices()

    def core_input(self) -> dict:
        return {
            "title": self.title.data or "",
            "category": self.category.data or "",
            "unit": self.unit.data or "",
            "price_fen": getattr(self.price, "fen", None) or 0,
            "stock": getattr(self.stock, "number", 0),
        }


class QuickProductForm(ProductCoreMixin, FlaskForm):
    """List a product from a phone in under a minute."""

    photo = FileField(
        _l("Photo"),
        validators=[FileAllowed(PHOTO_TYPES, _l("Upload a JPEG, PNG or WebP photo."))],
        render_kw={"accept": "image/*", "capture": "environment", "data-resize": "1600"},
    )
    #: A photo that was already stored when another field needed fixing.
    photo_key = HiddenField()
    save_draft = SubmitField(_l("Save draft"))
    publish = SubmitField(_l("Put on sale"))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._choices()

    def product_input(self) -> services.ProductInput:
        return services.ProductInput(**self.core_input())


class ProductDetailsForm(ProductCoreMixin, FlaskForm):
    """Everything about a product, for later."""

    #: The stock the page showed, so an order taken meanwhile is not overwritten.
    stock_seen = HiddenField()
    description = TextAreaField(
        _l("Description"),
        validators=[Optional(), Length(max=services.DESCRIPTION_MAX)],
        render_kw={"rows": 5},
    )
    is_gi = BooleanField(_l("Geographical indication product (地理标志)"))
    gi_name = StringField(
        _l("Registered GI name"),
        validators=[Optional(), Length(max=services.GI_NAME_MAX)],
        render_kw={"placeholder": "新会陈皮"},
    )
    certifications = MultiCheckboxField(_l("Certifications"))
    harvest_months = MultiCheckboxField(_l("Harvest months"), coerce=int)
    origin_code = SelectField(_l("Origin (county)"), validate_choice=False)
    origin_detail = StringField(
        _l("Origin (town and village)"),
        validators=[Optional(), Length(max=services.ORIGIN_DETAIL_MAX)],
    )
    new_photos = MultipleFileField(
        _l("Add photos"),
        validators=[FileAllowed(PHOTO_TYPES, _l("Upload a JPEG, PNG or WebP photo."))],
        render_kw={"accept": "image/*", "data-resize": "1600"},
    )
    remove_photos = MultiCheckboxField(_l("Remove"), coerce=str, validate_choice=False)
    cover = HiddenField()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._choices()
        # Choices are set here, not on the class: WTForms 3.3 warns about class-level tuples.
        self.certifications.choices = [(c, CERTIFICATION_LABELS[c]) for c in CERTIFICATIONS]
        self.harvest_months.choices = list(MONTH_LABELS.items())
        self.origin_code.choices = guangdong_division_choices()

    def product_input(self) -> services.ProductInput:
        return services.ProductInput(
            **self.core_input(),
            description=self.description.data or "",
            is_gi=bool(self.is_gi.data),
            gi_name=self.gi_name.data or "",
            certifications=list(self.certifications.data or []),
            harvest_months=list(self.harvest_months.data or []),
            origin_code=self.origin_code.data or "",
            origin_detail=self.origin_detail.data or "",
        )

    def stock_seen_value(self) -> int | None:
        value = (self.stock_seen.data or "").strip()
        return int(value) if value.isdigit() else None


class StockForm(FlaskForm):
    stock = StringField(
        _l("Stock"),
        validators=[DataRequired(), whole_number],
        render_kw={"inputmode": "numeric", "pattern": "[0-9]*", "autocomplete": "off"},
    )
    stock_seen = HiddenField()


class ImportForm(FlaskForm):
    file = FileField(
        _l("Spreadsheet (CSV or XLSX)"),
        validators=[
            FileRequired(_l("Choose a CSV or XLSX file.")),
            FileAllowed(["csv", "xlsx"], _l("Choose a CSV or XLSX file.")),
        ],
        render_kw={"accept": ".csv,.xlsx,text/csv"},
    )
