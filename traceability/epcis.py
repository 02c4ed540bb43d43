"""GS1 EPCIS 2.0 JSON-LD: validation, event building, canonical form, hashing and queries.

A pure module (no Flask, no database). The JSON schema is GS1's own, loaded from a
folder given by the caller (``EPCIS_SCHEMA_DIR``; the package keeps an unchanged copy in
``traceability/schemas``). Validation uses ``Draft7Validator`` with a ``FormatChecker``,
so ``date-time`` and ``uri`` formats are really checked.

Stored form of an event: the captured event, minus ``recordTime`` (the repository sets
it), with an ``eventID`` (``urn:uuid:...`` when the sender gave none) and, when the
document's ``@context`` declared extension prefixes, those prefixes as the event's own
``@context``, so the event can be exported on its own and captured again unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jsonschema import Draft7Validator, FormatChecker

from traceability import codes

__all__ = [
    "CONTEXT_URL",
    "EVENT_TYPES",
    "NAMESPACE",
    "EventQuery",
    "QueryError",
    "aggregation_event",
    "bare_cbv",
    "canonical_json",
    "chain_hash",
    "document_errors",
    "format_time",
    "identifiers",
    "index_fields",
    "lgtin_uri",
    "load_validator",
    "object_event",
    "parse_identifier",
    "parse_query",
    "parse_time",
    "query_document",
    "stored_event",
    "transformation_event",
]

CONTEXT_URL = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
SCHEMA_FILE = "EPCIS-JSON-Schema.json"
CONTEXT_FILE = "epcis-context.jsonld"
SCHEMA_VERSION = "2.0"
#: JSON-LD prefix of this platform's extension fields (yn:note, yn:placeCode, ...).
NAMESPACE = {"yn": "urn:yuenong:epcis:"}
#: The standard event types this repository stores.
EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransformationEvent",
    "TransactionEvent",
    "AssociationEvent",
)
GENESIS_HASH = "0" * 64
#: Longest URI kept in an indexed column.
MAX_URI_LENGTH = 255
SHANGHAI = ZoneInfo("Asia/Shanghai")

# --------------------------------------------------------------------------------------
# Schema validation
# --------------------------------------------------------------------------------------


@cache
def load_validator(schema_dir: str) -> Draft7Validator:
    """The Draft 7 validator (with format checking) for the EPCIS schema in ``schema_dir``."""
    path = Path(schema_dir) / SCHEMA_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"EPCIS schema not found at {path}; set EPCIS_SCHEMA_DIR to the folder holding "
            f"{SCHEMA_FILE}"
        )
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=FormatChecker())


def _pointer(path: Iterable[Any]) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _leaf_errors(error) -> list:
    """The most specific errors under an anyOf/oneOf/if-then failure."""
    if not error.context:
        return [error]
    leaves = []
    for sub in error.context:
        leaves.extend(_leaf_errors(sub))
    return leaves


def schema_errors(validator: Draft7Validator, document: Any) -> list[dict[str, str]]:
    """Every schema violation as ``{"path": JSON pointer, "message": ...}``, de-duplicated.

    Failures of ``anyOf`` branches are listed by their own causes, so a wrong bizStep
    says which values would do rather than only "is not valid under any of the schemas".
    """
    found: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        for leaf in _leaf_errors(error) if error.validator in ("anyOf", "oneOf") else [error]:
            path = _pointer(leaf.absolute_path)
            message = leaf.message
            if len(message) > 300:
                message = message[:297] + "..."
            if (path, message) not in seen:
                seen.add((path, message))
                found.append({"path": path, "message": message})
    return found


def document_errors(validator: Draft7Validator, document: Any) -> list[dict[str, str]]:
    """Why ``document`` cannot be captured: schema errors, then this repository's limits.

    An EPCISDocument is required (not a query document or a bare event); every event
    must be one of EVENT_TYPES, eventIDs must be unique within the document, and the
    identifiers kept in indexed columns must be at most MAX_URI_LENGTH characters.
    """
    if not isinstance(document, dict):
        return [{"path": "/", "message": "The body must be a JSON object (an EPCISDocument)"}]
    if document.get("type") != "EPCISDocument":
        return [{"path": "/type", "message": "Capture takes an EPCISDocument"}]
    errors = schema_errors(validator, document)
    if errors:
        return errors
    seen_ids: dict[str, int] = {}
    for index, event in enumerate(document["epcisBody"]["eventList"]):
        where = f"/epcisBody/eventList/{index}"
        if event.get("type") not in EVENT_TYPES:
            errors.append(
                {
                    "path": where + "/type",
                    "message": f"Event type {event.get('type')!r} is not supported here; "
                    f"use one of {', '.join(EVENT_TYPES)}",
                }
            )
            continue
        event_id = event.get("eventID")
        if event_id is not None:
            if event_id in seen_ids:
                errors.append(
                    {
                        "path": where + "/eventID",
                        "message": f"eventID {event_id} is also used by event {seen_ids[event_id]}",
                    }
                )
            seen_ids[event_id] = index
        try:
            parse_time(event["eventTime"])
        except (ValueError, KeyError, TypeError):
            errors.append(
                {"path": where + "/eventTime", "message": "The eventTime is out of range"}
            )
        for name in ("eventID", "bizStep", "disposition"):
            if isinstance(event.get(name), str) and len(event[name]) > MAX_URI_LENGTH:
                errors.append(
                    {"path": f"{where}/{name}", "message": f"Longer than {MAX_URI_LENGTH}"}
                )
        for name in ("readPoint", "bizLocation"):
            value = (event.get(name) or {}).get("id")
            if isinstance(value, str) and len(value) > MAX_URI_LENGTH:
                errors.append(
                    {"path": f"{where}/{name}/id", "message": f"Longer than {MAX_URI_LENGTH}"}
                )
        for field_name, uri in identifiers(event):
            if len(uri) > MAX_URI_LENGTH:
                errors.append(
                    {
                        "path": where,
                        "message": f"An identifier in {field_name} is longer than "
                        f"{MAX_URI_LENGTH} characters",
                    }
                )
                break
    return errors


# --------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------

_FRACTION_RE = re.compile(r"(\.\d{6})\d+")


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 date-time with an offset into an aware UTC datetime.

    Fractions finer than a microsecond are cut; a missing offset is an error.
    """
    if not isinstance(value, str):
        raise ValueError("a date-time must be a string")
    text = _FRACTION_RE.sub(r"\1", value.strip())
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("a date-time needs a time zone offset (Z or +08:00)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("the date-time is out of range") from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:20]} is too large")
    return value


def loads(data: bytes | str) -> Any:
    """Parse JSON strictly: no NaN or Infinity, no numbers too large for a double.

    Raises ValueError (also for nesting too deep to parse) and UnicodeDecodeError.
    """
    try:
        return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def format_time(value: datetime, tz: ZoneInfo | None = None) -> str:
    """An RFC 3339 time with milliseconds: UTC with ``Z``, or in ``tz`` with its offset."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    if tz is None:
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value.astimezone(tz).isoformat(timespec="milliseconds")


def tz_offset(value: datetime, tz: ZoneInfo = SHANGHAI) -> str:
    """``+08:00`` style offset of ``value`` in ``tz``."""
    return value.astimezone(tz).strftime("%z")[:3] + ":" + value.astimezone(tz).strftime("%z")[3:]


# --------------------------------------------------------------------------------------
# Canonical form and hashes
# --------------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 text, no NaN."""
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )


def chain_hash(chain_key: str, seq: int, prev_hash: str, record_time: str, document: str) -> str:
    """SHA-256 (hex) of one event's place in its chain and its canonical document."""
    payload = canonical_json(
        {
            "v": 1,
            "chain": chain_key,
            "seq": seq,
            "prev": prev_hash,
            "recordTime": record_time,
            "event": json.loads(document),
        }
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def stored_event(event: Mapping[str, Any], extra_context: list[Any] | None = None) -> dict:
    """The form an incoming event is kept in (see the module docstring)."""
    stored = {key: value for key, value in event.items() if key != "recordTime"}
    if not stored.get("eventID"):
        stored["eventID"] = f"urn:uuid:{uuid.uuid4()}"
    if extra_context and "@context" not in stored:
        stored["@context"] = list(extra_context)
    return stored


def extension_context(document: Mapping[str, Any]) -> list[Any]:
    """The parts of a document's ``@context`` beyond the standard EPCIS context."""
    context = document.get("@context")
    if context is None:
        return []
    items = context if isinstance(context, list) else [context]
    return [item for item in items if item != CONTEXT_URL]


# --------------------------------------------------------------------------------------
# CBV values and identifiers
# --------------------------------------------------------------------------------------

_CBV_PREFIXES = {
    "bizStep": ("https://ref.gs1.org/cbv/BizStep-", "urn:epcglobal:cbv:bizstep:"),
    "disposition": ("https://ref.gs1.org/cbv/Disp-", "urn:epcglobal:cbv:disp:"),
}


def bare_cbv(value: str | None, kind: str) -> str | None:
    """A CBV bizStep or disposition in its bare form (``shipping``), whichever form given.

    GS1 Web vocabulary URIs and the EPCIS 1.x URNs map to the bare term; other URIs (a
    company's own vocabulary) stay as they are.
    """
    if value is None:
        return None
    for prefix in _CBV_PREFIXES[kind]:
        if value.lower().startswith(prefix.lower()):
            return value[len(prefix) :]
    return value


_INSTANCE_FIELDS = {
    "epcList": "epc",
    "childEPCs": "child",
    "inputEPCList": "input",
    "outputEPCList": "output",
}
_CLASS_FIELDS = {
    "quantityList": "quantity",
    "childQuantityList": "childQuantity",
    "inputQuantityList": "inputQuantity",
    "outputQuantityList": "outputQuantity",
}
#: Fields MATCH_epc looks at, and MATCH_anyEPC; MATCH_epcClass and MATCH_anyEPCClass.
MATCH_FIELDS = {
    "MATCH_epc": ("epc", "child"),
    "MATCH_anyEPC": ("epc", "child", "parent", "input", "output"),
    "MATCH_parentID": ("parent",),
    "MATCH_inputEPC": ("input",),
    "MATCH_outputEPC": ("output",),
    "MATCH_epcClass": ("quantity", "childQuantity"),
    "MATCH_inputEPCClass": ("inputQuantity",),
    "MATCH_outputEPCClass": ("outputQuantity",),
    "MATCH_anyEPCClass": ("quantity", "childQuantity", "inputQuantity", "outputQuantity"),
}


def identifiers(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (field, identifier) an event names: instance EPCs, parentID, EPC classes."""
    found: list[tuple[str, str]] = []
    for key, name in _INSTANCE_FIELDS.items():
        for epc in event.get(key) or []:
            if isinstance(epc, str):
                found.append((name, epc))
    if isinstance(event.get("parentID"), str):
        found.append(("parent", event["parentID"]))
    for key, name in _CLASS_FIELDS.items():
        for element in event.get(key) or []:
            if isinstance(element, dict) and isinstance(element.get("epcClass"), str):
                found.append((name, element["epcClass"]))
    return found


def index_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """The indexed columns of a stored event, derived from its document."""
    return {
        "event_id": event["eventID"],
        "event_type": event["type"],
        "action": event.get("action"),
        "event_time": parse_time(event["eventTime"]),
        "event_tz": event["eventTimeZoneOffset"],
        "biz_step": bare_cbv(event.get("bizStep"), "bizStep"),
        "disposition": bare_cbv(event.get("disposition"), "disposition"),
        "read_point": (event.get("readPoint") or {}).get("id"),
        "biz_location": (event.get("bizLocation") or {}).get("id"),
    }


def lgtin_uri(company_prefix: str, gtin14: str, lot: str) -> str:
    """``urn:epc:class:lgtin:{CompanyPrefix}.{Indicator+ItemRef}.{lot}`` (TDS LGTIN class)."""
    pure = codes.sgtin_pure_uri(company_prefix, gtin14, lot)
    return "urn:epc:class:lgtin:" + pure[len("urn:epc:id:sgtin:") :]


_EPC_UNESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class ParsedId:
    """What one of our identifiers names: a unit (gtin + serial) or a lot (gtin + lot)."""

    gtin: str
    lot: str | None = None
    serial: str | None = None


def _split_gs1_uri(rest: str) -> tuple[str, str, str] | None:
    fields = rest.split(".", 2)
    if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    prefix, indicator_item, value = fields
    if len(prefix) + len(indicator_item) != 13:
        return None
    body = indicator_item[0] + prefix + indicator_item[1:]
    gtin = body + codes.gtin_check_digit(body)
    return gtin, prefix, _EPC_UNESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), value)


def parse_identifier(uri: str) -> ParsedId | None:
    """Read an SGTIN, LGTIN or GS1 Digital Link identifier; None for anything else."""
    if not isinstance(uri, str):
        return None
    lowered = uri.lower()
    if lowered.startswith("urn:epc:id:sgtin:"):
        parts = _split_gs1_uri(uri[len("urn:epc:id:sgtin:") :])
        return ParsedId(gtin=parts[0], serial=parts[2]) if parts else None
    if lowered.startswith("urn:epc:class:lgtin:"):
        parts = _split_gs1_uri(uri[len("urn:epc:class:lgtin:") :])
        return ParsedId(gtin=parts[0], lot=parts[2]) if parts else None
    if lowered.startswith(("http://", "https://")) and "/01/" in uri:
        try:
            link = codes.parse_digital_link(uri)
        except codes.CodeError:
            return None
        return ParsedId(gtin=link.gtin, lot=link.lot, serial=link.serial)
    return None


# --------------------------------------------------------------------------------------
# Building events (what the UI records)
# --------------------------------------------------------------------------------------


def _base(event_type: str, event_time: datetime, extensions: Mapping[str, Any] | None) -> dict:
    event: dict[str, Any] = {
        "type": event_type,
        "eventID": f"urn:uuid:{uuid.uuid4()}",
        "eventTime": format_time(event_time, SHANGHAI),
        "eventTimeZoneOffset": tz_offset(event_time),
    }
    ext = {
        f"yn:{key}": value for key, value in (extensions or {}).items() if value not in ("", None)
    }
    if ext:
        event["@context"] = [dict(NAMESPACE)]
        event.update(ext)
    return event


def _where(event: dict, biz_step, disposition, read_point, biz_location) -> None:
    if biz_step:
        event["bizStep"] = biz_step
    if disposition:
        event["disposition"] = disposition
    if read_point:
        event["readPoint"] = {"id": read_point}
    if biz_location:
        event["bizLocation"] = {"id": biz_location}


def sensor_elements(readings: Iterable[Mapping[str, Any]], when: datetime) -> list[dict]:
    """One sensorElement from readings like ``{"type": "Temperature", "value": 4.5, "uom":
    "CEL"}``; ``None`` values are left out."""
    report = [dict(r) for r in readings if r.get("value") is not None]
    if not report:
        return []
    return [{"sensorMetadata": {"time": format_time(when, SHANGHAI)}, "sensorReport": report}]


def object_event(
    *,
    event_time: datetime,
    action: str,
    biz_step: str | None,
    disposition: str | None = None,
    read_point: str | None = None,
    biz_location: str | None = None,
    epcs: Iterable[str] = (),
    quantities: Iterable[Mapping[str, Any]] = (),
    sensors: Iterable[Mapping[str, Any]] = (),
    extensions: Mapping[str, Any] | None = None,
) -> dict:
    """An ObjectEvent about unit EPCs and/or lot quantities (LGTIN classes)."""
    event = _base("ObjectEvent", event_time, extensions)
    event["action"] = action
    event["epcList"] = list(epcs)
    quantity_list = [dict(q) for q in quantities]
    if quantity_list:
        event["quantityList"] = quantity_list
    _where(event, biz_step, disposition, read_point, biz_location)
    elements = sensor_elements(sensors, event_time)
    if elements:
        event["sensorElementList"] = elements
    return event


def aggregation_event(
    *,
    event_time: datetime,
    action: str,
    parent_id: str,
    child_epcs: Iterable[str] = (),
    child_quantities: Iterable[Mapping[str, Any]] = (),
    biz_step: str | None = "packing",
    disposition: str | None = "in_progress",
    read_point: str | None = None,
    biz_location: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict:
    """An AggregationEvent: units (or a lot quantity) packed into a parent (an SSCC)."""
    event = _base("AggregationEvent", event_time, extensions)
    event["action"] = action
    event["parentID"] = parent_id
    children = list(child_epcs)
    if children:
        event["childEPCs"] = children
    quantity_list = [dict(q) for q in child_quantities]
    if quantity_list:
        event["childQuantityList"] = quantity_list
    _where(event, biz_step, disposition, read_point, biz_location)
    return event


def transformation_event(
    *,
    event_time: datetime,
    inputs: Iterable[Mapping[str, Any]],
    outputs: Iterable[Mapping[str, Any]],
    biz_step: str | None = "commissioning",
    disposition: str | None = "active",
    read_point: str | None = None,
    biz_location: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict:
    """A TransformationEvent: input lot quantities made into output lot quantities."""
    event = _base("TransformationEvent", event_time, extensions)
    event["inputQuantityList"] = [dict(q) for q in inputs]
    event["outputQuantityList"] = [dict(q) for q in outputs]
    _where(event, biz_step, disposition, read_point, biz_location)
    return event


def document(events: Iterable[Mapping[str, Any]], created: datetime) -> dict:
    """An EPCISDocument carrying ``events`` (as a capture client sends it)."""
    return {
        "@context": [CONTEXT_URL],
        "type": "EPCISDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": format_time(created),
        "epcisBody": {"eventList": [dict(e) for e in events]},
    }


def query_document(events: Iterable[Mapping[str, Any]], created: datetime) -> dict:
    """An EPCISQueryDocument holding the result of a SimpleEventQuery."""
    return {
        "@context": [CONTEXT_URL],
        "type": "EPCISQueryDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": format_time(created),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": [dict(e) for e in events]},
            }
        },
    }


# --------------------------------------------------------------------------------------
# Queries (GET /events)
# --------------------------------------------------------------------------------------


class QueryError(ValueError):
    """Query parameters that cannot be used; ``errors`` lists each one."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['parameter']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass
class EventQuery:
    event_types: list[str] = field(default_factory=list)
    ge_event_time: datetime | None = None
    lt_event_time: datetime | None = None
    ge_record_time: datetime | None = None
    lt_record_time: datetime | None = None
    biz_steps: list[str] = field(default_factory=list)
    dispositions: list[str] = field(default_factory=list)
    read_points: list[str] = field(default_factory=list)
    biz_locations: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    #: MATCH_* parameter -> (exact identifiers, identifier prefixes from idpat patterns).
    matches: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    per_page: int = 100
    page_token: str | None = None

    def fingerprint(self) -> str:
        """A hash of everything but the paging, to bind a nextPageToken to its query."""
        data = {
            key: (value.isoformat() if isinstance(value, datetime) else value)
            for key, value in self.__dict__.items()
            if key not in ("page_token", "per_page")
        }
        return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


_LIST_PARAMS = {
    "eventType": "event_types",
    "EQ_bizStep": "biz_steps",
    "EQ_disposition": "dispositions",
    "EQ_readPoint": "read_points",
    "EQ_bizLocation": "biz_locations",
    "EQ_action": "actions",
    "EQ_eventID": "event_ids",
}
_TIME_PARAMS = {
    "GE_eventTime": "ge_event_time",
    "LT_eventTime": "lt_event_time",
    "GE_recordTime": "ge_record_time",
    "LT_recordTime": "lt_record_time",
}


def _values(raw: list[str]) -> list[str]:
    # The REST binding separates several values with "|"; repeating the parameter works too.
    return [part for value in raw for part in value.split("|") if part]


def idpat_prefix(pattern: str) -> str | None:
    """The instance-URI prefix an EPC pattern (``urn:epc:idpat:sgtin:CP.IR.*``) matches.

    Returns None when ``pattern`` is not a pattern. Only trailing ``*`` fields are
    supported (as the Tag Data Standard's patterns use them); raises ValueError otherwise.
    """
    if not pattern.lower().startswith("urn:epc:idpat:"):
        return None
    rest = pattern[len("urn:epc:idpat:") :]
    scheme, sep, fields_text = rest.partition(":")
    if not sep or not scheme:
        raise ValueError(f"{pattern} is not an EPC pattern")
    fields = fields_text.split(".")
    if "*" not in fields:
        return "urn:epc:id:" + scheme + ":" + fields_text
    first = fields.index("*")
    if any(f != "*" for f in fields[first:]):
        raise ValueError(f"{pattern}: only trailing '*' fields are supported")
    head = ".".join(fields[:first])
    return f"urn:epc:id:{scheme}:" + (head + "." if head else "")


def parse_query(
    args: Mapping[str, list[str]], *, default_per_page: int, max_per_page: int
) -> EventQuery:
    """Read the REST query parameters (``args`` maps each name to its values).

    Unknown parameters are errors, as the EPCIS query interface requires
    (QueryParameterException); so are unparseable times and page sizes.
    """
    query = EventQuery(per_page=default_per_page)
    errors: list[dict[str, str]] = []

    def fail(parameter: str, message: str) -> None:
        errors.append({"parameter": parameter, "message": message})

    for name, raw in args.items():
        values = _values(raw)
        if name in _LIST_PARAMS:
            if name == "EQ_bizStep":
                values = [bare_cbv(v, "bizStep") or v for v in values]
            elif name == "EQ_disposition":
                values = [bare_cbv(v, "disposition") or v for v in values]
            elif name == "eventType":
                unknown = [v for v in values if v not in EVENT_TYPES]
                if unknown:
                    fail(name, f"unknown event type(s): {', '.join(unknown)}")
            elif name == "EQ_action":
                unknown = [v for v in values if v not in ("ADD", "OBSERVE", "DELETE")]
                if unknown:
                    fail(name, "the action is ADD, OBSERVE or DELETE")
            setattr(query, _LIST_PARAMS[name], values)
        elif name in _TIME_PARAMS:
            if len(raw) != 1:
                fail(name, "give one time")
                continue
            # A "+" in an offset arrives as a space when the client forgot to escape it.
            text = re.sub(r" (\d\d:\d\d)$", r"+\1", raw[0].strip())
            try:
                setattr(query, _TIME_PARAMS[name], parse_time(text))
            except ValueError:
                fail(
                    name,
                    "expected an RFC 3339 date-time with offset, e.g. 2026-11-01T00:00:00+08:00",
                )
        elif name in MATCH_FIELDS:
            exact: list[str] = []
            prefixes: list[str] = []
            for value in values:
                try:
                    prefix = idpat_prefix(value)
                except ValueError as exc:
                    fail(name, str(exc))
                    continue
                if prefix is None:
                    exact.append(value)
                else:
                    prefixes.append(prefix)
                    if name.endswith("Class") and prefix.startswith("urn:epc:id:sgtin:"):
                        # A GTIN pattern also matches that GTIN's lots.
                        prefixes.append("urn:epc:class:lgtin:" + prefix[len("urn:epc:id:sgtin:") :])
            query.matches[name] = (exact, prefixes)
        elif name == "perPage":
            try:
                per_page = int(raw[0])
            except ValueError:
                fail(name, "expected a whole number")
                continue
            if not 1 <= per_page <= max_per_page:
                fail(name, f"expected 1 to {max_per_page}")
                continue
            query.per_page = per_page
        elif name == "nextPageToken":
            query.page_token = raw[0]
        else:
            fail(name, "unknown query parameter")
    if errors:
        raise QueryError(errors)
    return query
