"""Cart, checkout and order forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from market.auth.forms import mainland_phone
from market.money import MoneyError, yuan_to_fen
from market.orders.cart import MAX_LINE_QUANTITY


class EmptyForm(FlaskForm):
    """Just the CSRF token, for one-button forms."""


class AddToCartForm(FlaskForm):
    product_id = HiddenField(validators=[DataRequired()])
    quantity = IntegerField(
        _l("Quantity"),
        default=1,
        validators=[InputRequired(), NumberRange(min=1, max=MAX_LINE_QUANTITY)],
        render_kw={"inputmode": "numeric", "min": 1, "max": MAX_LINE_QUANTITY},
    )
    next = HiddenField()


class CartLineForm(FlaskForm):
    quantity = IntegerField(
        _l("Quantity"),
        validators=[InputRequired(), NumberRange(min=0, max=MAX_LINE_QUANTITY)],
        render_kw={"inputmode": "numeric", "min": 0, "max": MAX_LINE_QUANTITY},
    )


class CheckoutForm(FlaskForm):
    recipient = StringField(
        _l("Recipient"),
        validators=[DataRequired(), Length(max=40)],
        render_kw={"autocomplete": "name"},
    )
    phone = StringField(
        _l("Mobile number"),
        validators=[DataRequired(), mainland_phone],
        render_kw={"inputmode": "tel", "autocomplete": "tel"},
    )
    province_code = SelectField(_l("Province"), validators=[DataRequired()], validate_choice=False)
    city_code = SelectField(_l("City"), validators=[Optional()], validate_choice=False)
    county_code = SelectField(
        _l("County / district"), validators=[Optional()], validate_choice=False
    )
    address = StringField(
        _l("Street address"),
        validators=[DataRequired(), Length(min=4, max=120)],
        render_kw={"autocomplete": "street-address"},
    )
    note = TextAreaField(
        _l("Note to the sellers (optional)"), validators=[Optional(), Length(max=200)]
    )
    #: "product:quantity:price;..." as shown on the page: what the buyer agreed to pay.
    quote = HiddenField()


def yuan_amount(_form, field) -> None:
    try:
        field.fen = yuan_to_fen(field.data or "")
    except MoneyError as exc:
        raise ValidationError(_l("Enter an amount in yuan, e.g. 12.30.")) from exc
    if field.fen <= 0:
        raise ValidationError(_l("Enter an amount in yuan, e.g. 12.30."))


class RefundRequestForm(FlaskForm):
    amount = StringField(
        _l("Amount to refund (yuan)"),
        validators=[DataRequired(), yuan_amount],
        render_kw={"inputmode": "decimal"},
    )
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=200)])


class RefundDecisionForm(FlaskForm):
    decision = HiddenField(validators=[DataRequired()])
    amount = StringField(
        _l("Amount to refund (yuan)"),
        validators=[Optional(), yuan_amount],
        render_kw={"inputmode": "decimal"},
    )
