"""The EPCIS 2.0 REST binding: POST /epcis/capture, GET /epcis/capture/<id>, GET /epcis/events.

Authentication is a bearer token (``Authorization: Bearer yn_...``) minted on the tokens
page or with ``flask trace create-token``; these endpoints never read cookies, so they
are exempt from CSRF. Errors are JSON: ``{"error": {"code", "message", ...}}``.
"""

from __future__ import annotations

import json
from functools import wraps
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for

from market.extensions import db
from market.types import utcnow
from market.web import api_error
from traceability import config, epcis, services
from traceability.models import ApiToken

bp = Blueprint("epcis", __name__, url_prefix="/epcis")
EPCIS_VERSION = "2.0.0"
JSON_TYPES = ("application/json", "application/ld+json")


def _validator():
    return epcis.load_validator(current_app.config["EPCIS_SCHEMA_DIR"])


def require_token(scope: str):
    """Let the request through only with an active token that has ``scope``."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            kind, _sep, value = header.partition(" ")
            if kind.lower() != "bearer" or not value.strip():
                response = api_error(
                    401, "unauthorized", "Send an API token: Authorization: Bearer <token>"
                )
                response[0].headers["WWW-Authenticate"] = 'Bearer realm="epcis"'
                return response
            token = services.authenticate_token(db.session, value.strip())
            if token is None:
                response = api_error(401, "unauthorized", "The API token is unknown or revoked")
                response[0].headers["WWW-Authenticate"] = (
                    'Bearer realm="epcis", error="invalid_token"'
                )
                return response
            if scope not in (token.scopes or []):
                return api_error(403, "forbidden", f"The token lacks the {scope!r} scope")
            g.api_token = token
            return view(*args, **kwargs)

        return wrapper

    return decorate


@bp.after_request
def _epcis_headers(response: Response) -> Response:
    response.headers["GS1-EPCIS-Version"] = EPCIS_VERSION
    response.headers["GS1-CBV-Version"] = EPCIS_VERSION
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.post("/capture")
@require_token("capture")
def capture():
    """Capture an EPCISDocument: 202 with the capture id, or 400 listing every error."""
    token: ApiToken = g.api_token
    if request.mimetype not in JSON_TYPES:
        return api_error(
            415, "unsupported_media_type", "Send the EPCISDocument as application/ld+json"
        )
    try:
        document = epcis.loads(request.get_data(cache=False) or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        return api_error(400, "invalid_json", f"The body is not valid JSON: {exc}")
    try:
        record = services.capture(
            db.session,
            document,
            token=token,
            validator=_validator(),
            max_events=current_app.config["EPCIS_MAX_CAPTURE_EVENTS"],
        )
    except RecursionError:
        db.session.rollback()
        return api_error(400, "invalid_document", "The document is nested too deeply")
    except services.CaptureError as exc:
        db.session.rollback()
        message = {
            "invalid_document": "The document does not validate against the EPCIS 2.0 schema",
            "forbidden": "The document names batches of another cooperative",
            "conflict": "An eventID is already used by a different event",
        }.get(exc.code, str(exc))
        return api_error(exc.status, exc.code, message, errors=exc.errors)
    capture_id = record.id
    body = {
        "captureID": capture_id,
        "eventCount": record.event_count,
        "duplicateCount": record.duplicate_count,
    }
    db.session.commit()
    response = jsonify(body)
    response.status_code = 202
    response.headers["Location"] = url_for("epcis.capture_status", capture_id=capture_id)
    return response


@bp.get("/capture/<capture_id>")
@require_token("capture")
def capture_status(capture_id: str):
    """The capture job: captures are processed at once, so it is always finished."""
    token: ApiToken = g.api_token
    try:
        record = services.get_capture(db.session, capture_id, cooperative_id=token.cooperative_id)
    except services.NotFoundError:
        return api_error(404, "not_found", "No such capture")
    db.session.commit()
    return jsonify(
        captureID=record.id,
        createdAt=epcis.format_time(record.created_at),
        running=False,
        success=True,
        captureErrorBehaviour="rollback",
        eventCount=record.event_count,
        duplicateCount=record.duplicate_count,
        errors=[],
    )


@bp.get("/events")
@require_token("query")
def events():
    """SimpleEventQuery over the REST binding; answers an EPCISQueryDocument.

    More results: a ``Link: <...&nextPageToken=...>; rel="next"`` header, as the
    binding specifies.
    """
    token: ApiToken = g.api_token
    cfg = current_app.config
    args = {name: request.args.getlist(name) for name in request.args}
    try:
        query = epcis.parse_query(
            args,
            default_per_page=cfg["EPCIS_DEFAULT_PER_PAGE"],
            max_per_page=cfg["EPCIS_MAX_PER_PAGE"],
        )
        rows, next_token = services.query_events(
            db.session,
            query,
            cooperative_id=token.cooperative_id,
            page_secret=config.page_token_secret(),
        )
    except epcis.QueryError as exc:
        return api_error(
            400, "query_parameter", "Some query parameters cannot be used", errors=exc.errors
        )
    except services.PageTokenError as exc:
        return api_error(400, "invalid_page_token", str(exc))
    document = epcis.query_document((services.export_event(r) for r in rows), utcnow())
    db.session.commit()
    response = Response(
        json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        mimetype="application/ld+json",
    )
    if next_token:
        params = [(k, v) for k, v in request.args.items(multi=True) if k != "nextPageToken"]
        link = url_for("epcis.events") + "?" + urlencode([*params, ("nextPageToken", next_token)])
        response.headers["Link"] = f'<{link}>; rel="next"'
    return response
