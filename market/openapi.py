"""The OpenAPI 3.1 document of the JSON API, served at /api/v1/openapi.json.

Each package describes its own operations next to its API code and adds them with
:func:`register_paths` when that module is imported (the app factory imports every API
blueprint), so this module knows no package. Shared pieces — the error body, pagination
parameters and the standard error responses — live in ``BASE`` for everyone to ``$ref``.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from market.extensions import limiter

API_PREFIX = "/api/v1"

ERROR_RESPONSE = {
    "description": "An error with a stable machine code.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

BASE: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "YueNong Market API",
        "version": "1.0.0",
        "summary": "Guangdong cooperatives' farm and fishery products, traced from plot to parcel.",
        "description": (
            "Public, read-only endpoints need no authentication and are rate limited per "
            "client address. Money is integer fen (1 yuan = 100 fen) with an explicit "
            "currency. Times are RFC 3339 in UTC. Errors are JSON "
            '`{"error": {"code": ..., "message": ...}}` where `code` is stable.'
        ),
    },
    "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
    "servers": [{"url": API_PREFIX}],
    "tags": [],
    "paths": {},
    "components": {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {
                                "type": "string",
                                "description": "Stable machine code, e.g. `not_found`, "
                                "`invalid_parameter`, `unknown_parameter`, `rate_limited`.",
                            },
                            "message": {"type": "string"},
                            "parameter": {
                                "type": "string",
                                "description": "The query parameter at fault, for "
                                "`invalid_parameter` and `unknown_parameter`.",
                            },
                        },
                    }
                },
            },
            "PageMeta": {
                "type": "object",
                "required": ["total", "page", "per_page", "pages"],
                "properties": {
                    "total": {"type": "integer", "minimum": 0},
                    "page": {"type": "integer", "minimum": 1},
                    "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
                    "pages": {"type": "integer", "minimum": 1},
                },
            },
            "PageLinks": {
                "type": "object",
                "required": ["self", "first", "last", "prev", "next"],
                "properties": {
                    "self": {"type": "string", "format": "uri"},
                    "first": {"type": "string", "format": "uri"},
                    "last": {"type": "string", "format": "uri"},
                    "prev": {"type": ["string", "null"], "format": "uri"},
                    "next": {"type": ["string", "null"], "format": "uri"},
                },
            },
        },
        "parameters": {
            "page": {
                "name": "page",
                "in": "query",
                "description": "Page number, from 1.",
                "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1},
            },
            "per_page": {
                "name": "per_page",
                "in": "query",
                "description": "Items per page.",
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
        },
        "responses": {
            "BadRequest": {**ERROR_RESPONSE, "description": "A query parameter is not valid."},
            "NotFound": {**ERROR_RESPONSE, "description": "No such resource (or not public)."},
            "TooManyRequests": {
                **ERROR_RESPONSE,
                "description": "Rate limit reached; retry after the `Retry-After` seconds.",
            },
        },
    },
}

_paths: dict[str, dict[str, Any]] = {}
_components: dict[str, dict[str, Any]] = {}
_tags: dict[str, dict[str, Any]] = {}


def register_paths(
    paths: dict[str, dict[str, Any]],
    *,
    components: dict[str, dict[str, Any]] | None = None,
    tags: list[dict[str, Any]] | None = None,
) -> None:
    """Add operations (path -> method -> operation), reusable components (kind -> name
    -> object, e.g. {"schemas": {...}}) and tags to the document.

    Registering the same thing twice is harmless; a different definition under a name
    already taken is a programming error.
    """
    for path, operations in paths.items():
        if not path.startswith("/"):
            raise ValueError(f"OpenAPI path must start with '/': {path!r}")
        known = _paths.setdefault(path, {})
        for method, operation in operations.items():
            _add(known, method, operation, f"{method.upper()} {path}")
    for kind, items in (components or {}).items():
        known = _components.setdefault(kind, {})
        for name, item in items.items():
            if name in BASE["components"].get(kind, {}):
                raise ValueError(f"components.{kind}.{name} is part of the base document")
            _add(known, name, item, f"components.{kind}.{name}")
    for tag in tags or ():
        _add(_tags, tag["name"], tag, f"tag {tag['name']}")


def _add(registry: dict[str, Any], key: str, value: Any, what: str) -> None:
    if key in registry and registry[key] != value:
        raise ValueError(f"{what} is already registered differently")
    registry[key] = copy.deepcopy(value)


def document(server_url: str | None = None) -> dict[str, Any]:
    """The whole document, as a fresh dict."""
    doc = copy.deepcopy(BASE)
    if server_url:
        doc["servers"] = [{"url": server_url}]
    doc["paths"] = copy.deepcopy(dict(sorted(_paths.items())))
    for kind, items in _components.items():
        doc["components"].setdefault(kind, {}).update(copy.deepcopy(items))
    doc["tags"] = [copy.deepcopy(tag) for _, tag in sorted(_tags.items())]
    return doc


def _public_limit() -> str:
    return current_app.config["PUBLIC_RATE_LIMIT"]


#: Decorator for public (anonymous) API endpoints: one budget of PUBLIC_RATE_LIMIT per
#: client address, shared by all of them.
public_rate_limit = limiter.shared_limit(_public_limit, scope="public_api")

bp = Blueprint("openapi", __name__)


@bp.get(API_PREFIX + "/openapi.json")
@public_rate_limit
def openapi_document():
    response = jsonify(document(request.url_root.rstrip("/") + API_PREFIX))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
