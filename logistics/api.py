"""Machine endpoints: RFID readers push tag reads and temperatures; carriers push tracking.

Readers authenticate with their own bearer token (``Authorization: Bearer yn_...``,
scope ``rfid``, minted when the reader is registered); carriers with the signature of
their tracking service. Neither reads cookies, so the blueprint is exempt from CSRF.
Errors are JSON ``{"error": {"code", "message", ...}}`` with stable codes, never HTML.

``POST /logistics/readers/<id>/reads``
    Impinj IoT Device Interface events (JSON array or NDJSON; ``epcHex`` or base64
    ``epc``), a plain ``[{"epc", "antenna", "rssi", "time"}]`` array, or LLRP reads an
    edge process forwards (see logistics.readers). Answers 202 with what was stored;
    items that could not be used are listed in ``errors`` (the rest are kept). Posting
    the same body twice stores nothing the second time.
``POST /logistics/readers/<id>/temperatures``
    ``{"sensor": "<logger id>", "readings": [{"epc", "time", "celsius"}]}`` (or the bare
    array), each naming a parcel by its SSCC (or a unit packed in it).
``POST /logistics/carriers/<code>/push``
    The carrier tracking service's signed push (see logistics.interfaces).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from logistics import config, providers, readers, services, tasks
from logistics.carriers import CARRIERS
from logistics.interfaces import TrackingError
from market.errors import NotFoundError
from market.extensions import db, limiter
from market.web import API_CODES, api_error

bp = Blueprint("logistics_api", __name__, url_prefix="/logistics")
MAX_ERRORS_SHOWN = 100


def _reads_limit() -> str:
    return current_app.config["LOGISTICS_READS_RATE_LIMIT"]


def _reader_key() -> str:
    return f"reader:{(request.view_args or {}).get('reader_id')}"


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    status = exc.code or 500
    return api_error(status, API_CODES.get(status, "error"), exc.description or "")


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _reader_or_error(reader_id: int):
    try:
        return services.authenticate_reader(
            db.session, reader_id, request.headers.get("Authorization")
        ), None
    except services.ReaderAuthError as exc:
        db.session.rollback()
        response = api_error(exc.status, exc.code, str(exc))
        if exc.status == 401:
            response[0].headers["WWW-Authenticate"] = 'Bearer realm="logistics"'
        return None, response


def _errors(items) -> list[dict]:
    return [
        {"index": e.index, "code": e.code, "message": e.message} for e in items[:MAX_ERRORS_SHOWN]
    ]


@bp.post("/readers/<int:reader_id>/reads")
@limiter.limit(_reads_limit, key_func=_reader_key)
def reader_reads(reader_id: int):
    """Store a reader's tag reads; a worker turns them into EPCIS events after commit."""
    reader, refused = _reader_or_error(reader_id)
    if refused is not None:
        return refused
    try:
        result = services.ingest_reads(
            db.session, reader, request.get_data(cache=False), request.content_type
        )
    except readers.ReadPayloadError as exc:
        db.session.rollback()
        return api_error(exc.http_status, exc.code, str(exc))
    if result.parsed == 0 and result.errors:
        db.session.rollback()
        return api_error(
            400,
            "no_valid_reads",
            "No read in the body could be used",
            errors=_errors(result.errors),
        )
    reader_id = reader.id
    db.session.commit()
    if result.stored:
        tasks.process_reads.delay(reader_id)
    body = {
        "parsed": result.parsed,
        "kept": result.kept,
        "stored": result.stored,
        "duplicates": result.duplicates,
        "ignored": result.ignored,
        "errors": _errors(result.errors),
    }
    response = jsonify(body)
    response.status_code = 202
    return response


@bp.post("/readers/<int:reader_id>/temperatures")
@limiter.limit(_reads_limit, key_func=_reader_key)
def reader_temperatures(reader_id: int):
    """Store temperature readings of parcels; excursions are looked for after commit."""
    reader, refused = _reader_or_error(reader_id)
    if refused is not None:
        return refused
    if request.mimetype not in ("application/json", "text/json", ""):
        return api_error(415, "unsupported_media_type", "Send the readings as application/json")
    payload = request.get_json(silent=True, force=True)
    if payload is None:
        return api_error(400, "bad_json", "The body is not valid JSON")
    try:
        stored, errors, shipments = services.ingest_temperatures(
            db.session, reader, payload, table=config.thresholds()
        )
    except services.LogisticsError as exc:
        db.session.rollback()
        return api_error(413 if exc.code == "too_many_items" else 400, exc.code, str(exc))
    if stored == 0 and errors:
        db.session.rollback()
        return api_error(
            400,
            "no_valid_readings",
            "No reading in the body could be used",
            errors=_errors(errors),
        )
    db.session.commit()
    if shipments:
        tasks.check_cold_chain.delay(sorted(shipments))
    response = jsonify({"stored": stored, "errors": _errors(errors)})
    response.status_code = 202
    return response


@bp.post("/carriers/<code>/push")
def carrier_push(code: str):
    """A carrier tracking service's push: verify the signature, record each update once."""
    carrier = CARRIERS.get(code.upper())
    if carrier is None or not carrier.tracked:
        return api_error(404, "unknown_carrier", f"No tracked carrier {code[:20]!r}")
    tracking = providers.tracking_provider()
    body = request.get_data(cache=False)

    def answer(ok: bool, status: int, code: str = "", message: str = "") -> Response:
        data, content_type = tracking.push_response(ok)
        if not ok:
            # The service retries until it gets an "ok"; say why too, for people.
            return api_error(status, code, message)[0], status
        return Response(data, status=status, content_type=content_type)

    try:
        updates = tracking.parse_push(body, request.headers)
    except TrackingError as exc:
        status = 401 if exc.code in ("bad_signature", "stale") else 400
        return answer(False, status, exc.code, str(exc))
    if not updates:
        return answer(True, 200)
    try:
        _shipment, outcomes = services.apply_tracking_updates(
            db.session,
            carrier.code,
            updates,
            company_prefix=current_app.config["GS1_COMPANY_PREFIX"],
        )
    except NotFoundError as exc:
        db.session.rollback()
        return answer(False, 404, "unknown_waybill", str(exc))
    except services.LogisticsError as exc:
        db.session.rollback()
        return answer(False, 400, exc.code, str(exc))
    news = [
        o.checkpoint.id for o in outcomes if o.created and o.checkpoint.kind in services.ALERT_KINDS
    ]
    db.session.commit()
    for checkpoint_id in news:
        tasks.notify_checkpoint.delay(checkpoint_id)
    return answer(True, 200)
