"""Forms: read points, readers, packing, shipments, checkpoints and temperatures."""

from __future__ import annotations

from collections.abc import Sequence

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    DecimalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from logistics.carriers import CARRIERS
from logistics.models import CheckpointKind, ReadPoint, ReadPointKind, ShipmentStatus
from market.cooperatives.forms import guangdong_division, guangdong_division_choices
from market.orders.models import OrderLine
from traceability.models import Batch

#: How many antenna ports the reader form offers (Impinj R700 and Speedway R420: 4).
ANTENNAS = 4

KIND_LABELS = {
    ReadPointKind.WAREHOUSE: _l("Warehouse"),
    ReadPointKind.COLD_STORE: _l("Cold store"),
    ReadPointKind.GATE: _l("Gate or dock door"),
    ReadPointKind.VEHICLE: _l("Vehicle"),
}
BIZ_STEP_LABELS = {
    "arriving": _l("Arriving"),
    "departing": _l("Departing"),
    "receiving": _l("Receiving"),
    "shipping": _l("Shipping"),
    "loading": _l("Loading"),
    "unloading": _l("Unloading"),
    "storing": _l("Storing"),
    "transporting": _l("Transporting"),
    "inspecting": _l("Inspecting"),
}
CHECKPOINT_LABELS = {
    CheckpointKind.ACCEPTED: _l("Picked up by the carrier"),
    CheckpointKind.DEPARTED: _l("Departed"),
    CheckpointKind.IN_TRANSIT: _l("In transit"),
    CheckpointKind.ARRIVED: _l("Arrived"),
    CheckpointKind.OUT_FOR_DELIVERY: _l("Out for delivery"),
    CheckpointKind.DELIVERED: _l("Delivered"),
    CheckpointKind.DELAYED: _l("Delayed"),
    CheckpointKind.DAMAGED: _l("Damaged"),
    CheckpointKind.LOST: _l("Lost"),
    CheckpointKind.RETURNED: _l("Returned"),
}
STATUS_LABELS = {
    ShipmentStatus.SHIPPED: _l("Handed to the carrier"),
    ShipmentStatus.ACCEPTED: _l("Picked up by the carrier"),
    ShipmentStatus.IN_TRANSIT: _l("In transit"),
    ShipmentStatus.OUT_FOR_DELIVERY: _l("Out for delivery"),
    ShipmentStatus.DELIVERED: _l("Delivered"),
    ShipmentStatus.DELAYED: _l("Delayed"),
    ShipmentStatus.DAMAGED: _l("Damaged"),
    ShipmentStatus.LOST: _l("Lost"),
    ShipmentStatus.RETURNED: _l("Returned"),
}
PROFILE_LABELS = {
    "live": _l("Live (shellfish, crabs)"),
    "frozen": _l("Frozen"),
    "tropical": _l("Tropical fruit"),
    "chilled": _l("Chilled meat"),
}


def _choices(labels: dict) -> list[SelectChoice]:
    return [SelectChoice(getattr(k, "value", k), text) for k, text in labels.items()]


def _division_choices(blank: str | None = None) -> list[SelectChoice]:
    head = [SelectChoice("", blank)] if blank is not None else []
    return head + [
        SelectChoice(code, name, optgroup=group)
        for group, options in guangdong_division_choices().items()
        for code, name in options
    ]


class ReadPointForm(FlaskForm):
    name = StringField(
        _l("Read point name"),
        validators=[DataRequired(), Length(max=60)],
        render_kw={"placeholder": "1号冷库 出库门"},
    )
    kind = SelectField(_l("Kind of place"), choices=_choices(KIND_LABELS))
    division_code = SelectField(
        _l("County / district"),
        validators=[DataRequired(), guangdong_division],
        validate_choice=False,
    )
    biz_step = SelectField(
        _l("A read here means"),
        choices=[
            SelectChoice("", _l("The usual for this kind of place")),
            *_choices(BIZ_STEP_LABELS),
        ],
        validators=[Optional()],
    )
    active = BooleanField(_l("In use"), default=True)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.division_code.choices = _division_choices()


class ReaderForm(FlaskForm):
    name = StringField(
        _l("Reader name"),
        validators=[DataRequired(), Length(max=60)],
        render_kw={"placeholder": "冷库门 R700"},
    )
    model = StringField(
        _l("Make and model (optional)"),
        validators=[Optional(), Length(max=60)],
        render_kw={"placeholder": "Impinj R700"},
    )
    read_point_id = SelectField(_l("Read point"), coerce=int, validators=[InputRequired()])
    dedupe_window_s = IntegerField(
        _l("Count a tag once per (seconds)"),
        default=30,
        validators=[InputRequired(), NumberRange(min=1, max=3600)],
        render_kw={"inputmode": "numeric"},
    )
    local_time = BooleanField(_l("The reader sends Beijing time without a time zone"))
    active = BooleanField(_l("In use"), default=True)

    def __init__(self, *args, points: Sequence[ReadPoint] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read_point_id.choices = [SelectChoice(p.id, p.name) for p in points]
        self.antennas = []
        for number in range(1, ANTENNAS + 1):
            field = self._fields.get(f"antenna_{number}")
            if field is not None:
                field.choices = [SelectChoice(0, _l("Same as the reader"))] + [
                    SelectChoice(p.id, p.name) for p in points
                ]
                self.antennas.append(field)

    def antenna_map(self) -> dict[str, str]:
        return {
            str(number): str(field.data)
            for number, field in enumerate(self.antennas, start=1)
            if field.data
        }


for _number in range(1, ANTENNAS + 1):
    setattr(
        ReaderForm,
        f"antenna_{_number}",
        SelectField(
            _l("Antenna %(n)d", n=_number),
            coerce=int,
            validators=[Optional()],
            validate_choice=False,
        ),
    )


class ShipmentForm(FlaskForm):
    carrier = SelectField(_l("Carrier"), validators=[DataRequired()])
    waybill = StringField(
        _l("Waybill number"),
        validators=[Length(max=40)],
        render_kw={
            "autocapitalize": "characters",
            "autocomplete": "off",
            "spellcheck": "false",
            "inputmode": "text",
        },
    )
    cold_profile = SelectField(_l("Cold chain"), validators=[Optional()])

    def __init__(self, *args, lang: str = "zh", profiles: Sequence[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.carrier.choices = [SelectChoice(c.code, c.label(lang)) for c in CARRIERS.values()]
        self.cold_profile.choices = [SelectChoice("", _l("Limits of the product's category"))] + [
            SelectChoice(p, PROFILE_LABELS.get(p, p)) for p in profiles
        ]


class CheckpointForm(FlaskForm):
    kind = SelectField(_l("What happened"), choices=_choices(CHECKPOINT_LABELS))
    at = DateTimeLocalField(_l("When"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()])
    division_code = SelectField(
        _l("Where (county / district)"), validators=[Optional()], validate_choice=False
    )
    location = StringField(
        _l("Place (optional)"),
        validators=[Optional(), Length(max=60)],
        render_kw={"placeholder": "江门中转场"},
    )
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=200)])

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.division_code.choices = _division_choices("—")


class TemperatureForm(FlaskForm):
    celsius = DecimalField(
        _l("Temperature °C"),
        places=1,
        validators=[InputRequired(), NumberRange(min=-60, max=80)],
        render_kw={"inputmode": "decimal"},
    )
    at = DateTimeLocalField(_l("When"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()])


def pack_form(lines: Sequence[OrderLine], batches: dict[int, list[Batch]]) -> type[FlaskForm]:
    """A form class with, for each line, a box for scanned codes and a batch + quantity."""

    class PackForm(FlaskForm):
        pass

    for line in lines:
        setattr(
            PackForm,
            f"codes_{line.id}",
            TextAreaField(
                _l("Unit codes (scan or type, one per line)"),
                validators=[Optional(), Length(max=200_000)],
                render_kw={"rows": 3, "autocapitalize": "off", "spellcheck": "false"},
            ),
        )
        setattr(
            PackForm,
            f"batch_{line.id}",
            SelectField(
                _l("Or from batch"),
                coerce=int,
                choices=[SelectChoice(0, "—")]
                + [SelectChoice(b.id, f"{b.lot_code} {b.name}") for b in batches.get(line.id, [])],
                validators=[Optional()],
            ),
        )
        setattr(
            PackForm,
            f"quantity_{line.id}",
            IntegerField(
                _l("Quantity from the batch"),
                validators=[Optional(), NumberRange(min=1, max=100_000)],
                render_kw={"inputmode": "numeric"},
            ),
        )
    return PackForm
