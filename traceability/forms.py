"""Forms for batches, farm inputs, inspections, events, codes, labels and API tokens."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import (
    DateField,
    DateTimeLocalField,
    DecimalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from market.catalog.models import UNITS
from market.cooperatives.forms import guangdong_division, guangdong_division_choices
from traceability.models import (
    CodeKind,
    InputKind,
    InspectionKind,
    InspectionResult,
    LabelLayout,
    OriginKind,
)
from traceability.services import FORM_EVENT_KINDS

ORIGIN_KIND_LABELS = {
    OriginKind.PLOT: _l("Field plot"),
    OriginKind.ORCHARD: _l("Orchard"),
    OriginKind.TEA_GARDEN: _l("Tea garden"),
    OriginKind.GREENHOUSE: _l("Greenhouse"),
    OriginKind.POND: _l("Pond"),
    OriginKind.BOAT: _l("Fishing boat"),
    OriginKind.FARM: _l("Livestock or poultry farm"),
    OriginKind.WORKSHOP: _l("Processing workshop"),
    OriginKind.OTHER: _l("Other"),
}
INPUT_KIND_LABELS = {
    InputKind.PESTICIDE: _l("Pesticide"),
    InputKind.FERTILISER: _l("Fertiliser"),
    InputKind.FEED: _l("Feed"),
    InputKind.VET_DRUG: _l("Veterinary or fishery drug"),
    InputKind.OTHER: _l("Other"),
}
INSPECTION_KIND_LABELS = {
    InspectionKind.SELF_TEST: _l("Self-test"),
    InspectionKind.LAB: _l("Laboratory test"),
}
RESULT_LABELS = {InspectionResult.PASS: _l("Pass"), InspectionResult.FAIL: _l("Fail")}
CERT_BASIS_LABELS = {
    "commissioned_test": _l("Commissioned test"),
    "self_test": _l("Self-test"),
    "internal_control": _l("Internal quality control"),
    "self_commitment": _l("Self-commitment"),
}
LAYOUT_LABELS = {
    LabelLayout.ROLL_40X30: _l("Thermal roll 40 × 30 mm"),
    LabelLayout.ROLL_60X40: _l("Thermal roll 60 × 40 mm"),
    LabelLayout.A4_3X8: _l("A4 sheet, 3 × 8 labels"),
}
EVENT_KIND_LABELS = {
    "harvest": _l("Harvest or catch"),
    "inspection": _l("Inspection"),
    "packing": _l("Packing"),
    "processing": _l("Processing (made from another batch)"),
    "storing": _l("Into storage"),
    "shipping": _l("Shipped"),
    "receiving": _l("Received"),
    "sensor": _l("Temperature reading"),
    "recall": _l("Recall"),
}


def _choices(labels: dict) -> list[SelectChoice]:
    return [
        SelectChoice(key.value if hasattr(key, "value") else key, text)
        for key, text in labels.items()
    ]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class BatchForm(FlaskForm):
    product_id = SelectField(_l("Product"), coerce=int, validators=[InputRequired()])
    name = StringField(
        _l("Batch name"),
        validators=[DataRequired(), Length(max=60)],
        render_kw={"placeholder": "2026年11月大红柑第一批"},
    )
    harvest_date = DateField(_l("Harvest or catch date"), validators=[InputRequired()])
    quantity = IntegerField(
        _l("Quantity"),
        validators=[InputRequired(), NumberRange(min=1, max=100_000_000)],
        render_kw={"inputmode": "numeric"},
    )
    unit = SelectField(
        _l("Unit"), choices=[SelectChoice(u, u) for u in UNITS], validators=[DataRequired()]
    )
    variety = StringField(_l("Variety or species (optional)"), validators=[Length(max=40)])
    origin_kind = SelectField(_l("Grown or caught in"), choices=_choices(ORIGIN_KIND_LABELS))
    origin_code = SelectField(
        _l("County / district of origin"),
        validators=[DataRequired(), guangdong_division],
        validate_choice=False,
    )
    origin_village = StringField(_l("Town and village"), validators=[Length(max=60)])
    origin_site = StringField(
        _l("Plot, pond or boat (optional)"),
        validators=[Length(max=60)],
        render_kw={"placeholder": "3号地块 / 5号塘 / 粤阳西渔12345"},
    )
    method = StringField(
        _l("Farming, catch or processing method (optional)"), validators=[Length(max=60)]
    )
    notes = TextAreaField(_l("Notes (optional)"), validators=[Length(max=2000)])
    cert_basis = MultiCheckboxField(
        _l("Basis of the commitment"), choices=_choices(CERT_BASIS_LABELS), validate_choice=True
    )
    cert_contact = StringField(
        _l("Contact on the certificate (optional)"),
        validators=[Length(max=30)],
        render_kw={"inputmode": "tel"},
    )
    lot_prefix = StringField(
        _l("Lot code letters (optional)"),
        validators=[Optional(), Regexp(r"^[A-Za-z]{1,8}$", message=_l("1 to 8 letters A-Z."))],
        render_kw={"autocapitalize": "characters", "spellcheck": "false"},
    )

    def __init__(self, *args, products=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.product_id.choices = [SelectChoice(p.id, p.title) for p in products]
        self.origin_code.choices = guangdong_division_choices()


class EditBatchForm(BatchForm):
    """The fields that may still change (the rest are in the harvest event)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("product_id", "harvest_date", "quantity", "unit", "lot_prefix"):
            delattr(self, name)


class InputForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=_choices(INPUT_KIND_LABELS))
    name = StringField(
        _l("Name and active ingredient"),
        validators=[DataRequired(), Length(max=60)],
        render_kw={"placeholder": "阿维菌素 1.8% 乳油"},
    )
    amount = StringField(
        _l("Amount (optional)"),
        validators=[Length(max=40)],
        render_kw={"placeholder": "每亩 40 毫升"},
    )
    used_on = DateField(_l("Date used"), validators=[InputRequired()])
    safety_days = IntegerField(
        _l("Pre-harvest interval or withdrawal period, days (optional)"),
        validators=[Optional(), NumberRange(min=0, max=365)],
        render_kw={"inputmode": "numeric"},
    )
    notes = StringField(_l("Notes (optional)"), validators=[Length(max=120)])


class InspectionForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=_choices(INSPECTION_KIND_LABELS))
    tested_on = DateField(_l("Test date"), validators=[InputRequired()])
    items = StringField(
        _l("What was tested"),
        validators=[DataRequired(), Length(max=120)],
        render_kw={"placeholder": "农药残留速测（有机磷和氨基甲酸酯类）"},
    )
    result = SelectField(_l("Result"), choices=_choices(RESULT_LABELS))
    agency = StringField(_l("Laboratory or tester (optional)"), validators=[Length(max=60)])
    report_no = StringField(_l("Report number (optional)"), validators=[Length(max=40)])
    report = FileField(
        _l("Report (PDF or photo, optional)"),
        validators=[
            FileAllowed(["pdf", "jpg", "jpeg", "png", "webp"], _l("Upload a PDF or a photo."))
        ],
        render_kw={"accept": "application/pdf,image/*"},
    )


class EventForm(FlaskForm):
    kind = SelectField(
        _l("What happened"),
        choices=[SelectChoice(k, EVENT_KIND_LABELS[k]) for k in FORM_EVENT_KINDS],
    )
    when = DateTimeLocalField(_l("When"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()])
    place_code = SelectField(
        _l("Where (if not at the cooperative)"), validators=[Optional()], validate_choice=False
    )
    note = StringField(_l("Note (optional)"), validators=[Length(max=200)])
    temperature_c = DecimalField(
        _l("Temperature °C (optional)"),
        places=1,
        validators=[Optional(), NumberRange(min=-60, max=80)],
        render_kw={"inputmode": "decimal"},
    )
    humidity_pct = DecimalField(
        _l("Relative humidity % (optional)"),
        places=0,
        validators=[Optional(), NumberRange(min=0, max=100)],
        render_kw={"inputmode": "decimal"},
    )
    source_batch_id = SelectField(
        _l("Made from batch"), coerce=int, validators=[Optional()], validate_choice=False
    )
    source_quantity = IntegerField(
        _l("Quantity of that batch used (optional)"),
        validators=[Optional(), NumberRange(min=1, max=100_000_000)],
        render_kw={"inputmode": "numeric"},
    )
    pack_units = IntegerField(
        _l("Unit codes packed into this case (optional)"),
        validators=[Optional(), NumberRange(min=1, max=1000)],
        render_kw={"inputmode": "numeric"},
    )

    def __init__(self, *args, sources=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.place_code.choices = [SelectChoice("", "—")] + [
            SelectChoice(code, name, optgroup=group)
            for group, options in guangdong_division_choices().items()
            for code, name in options
        ]
        self.source_batch_id.choices = [SelectChoice(0, "—")] + [
            SelectChoice(b.id, f"{b.lot_code} {b.name}") for b in sources
        ]


class IssueCodesForm(FlaskForm):
    count = IntegerField(
        _l("Number of unit codes"),
        validators=[InputRequired(), NumberRange(min=1, max=20000)],
        render_kw={"inputmode": "numeric"},
    )


class StockForm(FlaskForm):
    units = IntegerField(
        _l("Units to put on sale"),
        validators=[InputRequired(), NumberRange(min=1, max=1_000_000)],
        render_kw={"inputmode": "numeric"},
    )


class LabelForm(FlaskForm):
    layout = SelectField(_l("Label stock"), choices=_choices(LAYOUT_LABELS))
    kind = SelectField(
        _l("Labels for"),
        choices=[
            SelectChoice(CodeKind.UNIT.value, _l("Each unit (one code per unit)")),
            SelectChoice(CodeKind.BATCH.value, _l("The whole batch (one code per batch)")),
        ],
    )
    issue_no = SelectField(_l("Codes"), coerce=int, validate_choice=False)
    copies = IntegerField(
        _l("Copies of the batch label"),
        default=1,
        validators=[Optional(), NumberRange(min=1, max=20000)],
        render_kw={"inputmode": "numeric"},
    )

    def __init__(self, *args, issues=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.issue_no.choices = [SelectChoice(0, _l("All unit codes"))] + [
            SelectChoice(i.issue_no, f"#{i.issue_no} ({i.count})") for i in issues
        ]


class TokenForm(FlaskForm):
    name = StringField(
        _l("What the token is for"),
        validators=[DataRequired(), Length(max=60)],
        render_kw={"placeholder": "冷库 RFID 读写器"},
    )
    scopes = MultiCheckboxField(
        _l("Allowed"),
        choices=[
            SelectChoice("capture", _l("Send events (capture)")),
            SelectChoice("query", _l("Read events (query)")),
        ],
        validators=[DataRequired(message=_l("Choose at least one."))],
    )
