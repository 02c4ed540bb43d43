"""Public JSON API of the catalog: list and read products (GET only, rate limited)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, jsonify, request, url_for

from market import openapi, places, search
from market.catalog import services
from market.catalog.models import Category, Product
from market.extensions import db
from market.web import api_error

bp = Blueprint("catalog_api", __name__, url_prefix=openapi.API_PREFIX)

LIST_PARAMS = ("category", "city", "county", "cooperative", "q", "page", "per_page")
MAX_QUERY_CHARS = 64
MAX_PAGE = 10_000


class BadParameterError(Exception):
    def __init__(self, parameter: str, message: str, code: str = "invalid_parameter") -> None:
        super().__init__(message)
        self.parameter = parameter
        self.code = code
        self.message = message


def _arg(name: str) -> str | None:
    """The parameter's value; given empty (``?category=``) counts as not given."""
    return request.args.get(name) or None


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = _arg(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,6}", raw) or not low <= int(raw) <= high:
        raise BadParameterError(name, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def parse_list_args() -> dict[str, Any]:
    """Validate the list filters; anything unknown, repeated or malformed is refused."""
    for name in request.args:
        if name not in LIST_PARAMS:
            raise BadParameterError(name, f"unknown query parameter {name!r}", "unknown_parameter")
        if len(request.args.getlist(name)) > 1:
            raise BadParameterError(name, f"{name} may be given once")
    args: dict[str, Any] = {"category": None, "city": None, "county": None}
    raw = _arg("category")
    if raw is not None:
        try:
            args["category"] = Category(raw)
        except ValueError:
            allowed = ", ".join(c.value for c in Category)
            raise BadParameterError("category", f"category must be one of: {allowed}") from None
    for name, level in (("city", "city"), ("county", "county")):
        raw = _arg(name)
        if raw is None:
            continue
        division = places.get(raw) if places.is_valid_guangdong_code(raw) else None
        if division is None or division.level != level:
            raise BadParameterError(
                name, f"{name} must be the GB/T 2260 code of a Guangdong {level}"
            )
        args[name] = raw
    args["cooperative"] = _int("cooperative", 0, 1, 10**9) or None
    q = request.args.get("q")
    if q is not None and len(q) > MAX_QUERY_CHARS:
        raise BadParameterError("q", f"q may have at most {MAX_QUERY_CHARS} characters")
    args["q"] = (q or "").strip()
    args["page"] = _int("page", 1, 1, MAX_PAGE)
    args["per_page"] = _int("per_page", 20, 1, services.MAX_PER_PAGE)
    return args


def _photo_json(photo) -> dict[str, Any]:
    def link(size: int, fmt: str) -> str:
        return url_for("core.media_file", name=f"{photo.key}-{size}.{fmt}", _external=True)

    return {
        "width": photo.width,
        "height": photo.height,
        "large": {"webp": link(1280, "webp"), "jpeg": link(1280, "jpg")},
        "thumbnail": {"webp": link(320, "webp"), "jpeg": link(320, "jpg")},
    }


def _time(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def product_json(product: Product, highlight: str | None = None) -> dict[str, Any]:
    city = places.city_of(product.origin_code)
    origin_division = places.get(product.origin_code)
    county = product.origin_code if origin_division and origin_division.level == "county" else None
    body: dict[str, Any] = {
        "id": product.id,
        "title": product.title,
        "category": product.category.value,
        "unit": product.unit,
        "price_fen": product.price_fen,
        "currency": "CNY",
        "stock": product.stock,
        "status": product.status.value,
        "description": product.description,
        "geographical_indication": {
            "is_gi": product.is_gi,
            "name": product.gi_name or None,
        },
        "certifications": list(product.certifications or []),
        "harvest_months": list(product.harvest_months or []),
        "gtin": product.gtin,
        "origin": {
            "division_code": product.origin_code,
            "name": places.full_name(product.origin_code),
            "city_code": city.code if city else None,
            "county_code": county,
            "detail": product.origin_detail or None,
        },
        "cooperative": {
            "id": product.cooperative.id,
            "name": product.cooperative.name,
            "url": url_for(
                "cooperatives.detail", cooperative_id=product.cooperative_id, _external=True
            ),
        },
        "photos": [_photo_json(p) for p in product.photos],
        "url": url_for("catalog.product_detail", product_id=product.id, _external=True),
        "created_at": _time(product.created_at),
        "updated_at": _time(product.updated_at),
    }
    if highlight is not None:
        body["highlight"] = highlight
    return body


@bp.get("/products")
@openapi.public_rate_limit
def list_products():
    try:
        args = parse_list_args()
    except BadParameterError as exc:
        return api_error(400, exc.code, exc.message, parameter=exc.parameter)
    if args["q"]:
        extra = {"cooperative_id": args["cooperative"]} if args["cooperative"] else {}
        items, total, highlights = search.search_products(
            db.session,
            args["q"],
            category=args["category"].value if args["category"] else None,
            city_code=args["city"],
            county_code=args["county"],
            page=args["page"],
            per_page=args["per_page"],
            **extra,
        )
        result = services.ProductPage(items, total, args["page"], args["per_page"], highlights)
    else:
        result = services.public_products(
            db.session,
            category=args["category"],
            city_code=args["city"],
            county_code=args["county"],
            cooperative_id=args["cooperative"],
            page=args["page"],
            per_page=args["per_page"],
        )

    def link(page: int | None) -> str | None:
        if page is None:
            return None
        query = {k: v for k, v in request.args.items() if k != "page"}
        return url_for("catalog_api.list_products", **query, page=page, _external=True)

    body = {
        "data": [
            product_json(p, result.highlights.get(p.id) if args["q"] else None)
            for p in result.items
        ],
        "meta": {
            "total": result.total,
            "page": result.page,
            "per_page": result.per_page,
            "pages": result.pages,
        },
        "links": {
            "self": link(result.page),
            "first": link(1),
            "last": link(result.pages),
            "prev": link(result.page - 1) if result.has_prev else None,
            "next": link(result.page + 1) if result.has_next else None,
        },
    }
    return jsonify(body)


@bp.get("/products/<int:product_id>")
@openapi.public_rate_limit
def get_product(product_id: int):
    product = services.public_product(db.session, product_id)
    if product is None:
        return api_error(404, "not_found", "no such product")
    return jsonify({"data": product_json(product)})


# --- OpenAPI ---------------------------------------------------------------------------

_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "429": {"$ref": "#/components/responses/TooManyRequests"},
}

PRODUCT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "title",
        "category",
        "unit",
        "price_fen",
        "currency",
        "stock",
        "status",
        "description",
        "geographical_indication",
        "certifications",
        "harvest_months",
        "gtin",
        "origin",
        "cooperative",
        "photos",
        "url",
        "created_at",
        "updated_at",
    ],
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string", "maxLength": services.TITLE_MAX},
        "category": {"$ref": "#/components/schemas/Category"},
        "unit": {
            "type": "string",
            "description": "The sale unit that price and stock count in (斤, 公斤, 箱 ...).",
        },
        "price_fen": {
            "type": "integer",
            "minimum": 1,
            "description": "Price of one unit in fen (分): 1280 is ¥12.80.",
        },
        "currency": {"const": "CNY"},
        "stock": {"type": "integer", "minimum": 0, "description": "Whole units left."},
        "status": {"enum": ["on_sale", "sold_out"]},
        "description": {"type": "string"},
        "geographical_indication": {
            "type": "object",
            "required": ["is_gi", "name"],
            "properties": {
                "is_gi": {"type": "boolean"},
                "name": {
                    "type": ["string", "null"],
                    "description": "Registered 地理标志 name, e.g. 新会陈皮.",
                },
            },
        },
        "certifications": {
            "type": "array",
            "items": {
                "enum": ["green_food", "organic", "pollution_free", "compliance_certificate"]
            },
            "description": "绿色食品, 有机, 无公害, 承诺达标合格证.",
        },
        "harvest_months": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": 12},
        },
        "gtin": {
            "type": ["string", "null"],
            "pattern": "^[0-9]{14}$",
            "description": "GTIN-14 under the platform's GS1 company prefix.",
        },
        "origin": {
            "type": "object",
            "required": ["division_code", "name", "city_code", "county_code", "detail"],
            "properties": {
                "division_code": {"type": "string", "pattern": "^44[0-9]{4}$"},
                "name": {"type": "string", "description": "e.g. 广东省江门市新会区"},
                "city_code": {"type": ["string", "null"]},
                "county_code": {"type": ["string", "null"]},
                "detail": {"type": ["string", "null"], "description": "Town and village."},
            },
        },
        "cooperative": {
            "type": "object",
            "required": ["id", "name", "url"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "url": {"type": "string", "format": "uri"},
            },
        },
        "photos": {
            "type": "array",
            "maxItems": services.MAX_PHOTOS,
            "items": {"$ref": "#/components/schemas/Photo"},
            "description": "The first is the cover.",
        },
        "url": {"type": "string", "format": "uri", "description": "The product's web page."},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "highlight": {
            "type": "string",
            "description": "Only with `q`: the title as HTML with the matches in <mark>.",
        },
    },
}

_IMAGE = {
    "type": "object",
    "required": ["webp", "jpeg"],
    "properties": {
        "webp": {"type": "string", "format": "uri"},
        "jpeg": {"type": "string", "format": "uri"},
    },
}

openapi.register_paths(
    {
        "/products": {
            "get": {
                "operationId": "listProducts",
                "tags": ["catalog"],
                "summary": "List products on sale",
                "description": "Products on sale or sold out, of approved cooperatives; "
                "on sale first, then newest first (best match first with `q`). Filters "
                "combine with AND.",
                "parameters": [
                    {
                        "name": "category",
                        "in": "query",
                        "schema": {"$ref": "#/components/schemas/Category"},
                    },
                    {
                        "name": "city",
                        "in": "query",
                        "description": "GB/T 2260 code of a Guangdong prefecture-level city "
                        "(e.g. 440700 江门市): products from there.",
                        "schema": {"type": "string", "pattern": "^44[0-9]{2}00$"},
                    },
                    {
                        "name": "county",
                        "in": "query",
                        "description": "GB/T 2260 code of a Guangdong county or district "
                        "(e.g. 440705 新会区).",
                        "schema": {"type": "string", "pattern": "^44[0-9]{4}$"},
                    },
                    {
                        "name": "cooperative",
                        "in": "query",
                        "description": "Only this cooperative's products.",
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    {
                        "name": "q",
                        "in": "query",
                        "description": "Search words, Chinese or pinyin.",
                        "schema": {"type": "string", "maxLength": MAX_QUERY_CHARS},
                    },
                    {"$ref": "#/components/parameters/page"},
                    {"$ref": "#/components/parameters/per_page"},
                ],
                "responses": {
                    "200": {
                        "description": "One page of products.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ProductList"}
                            }
                        },
                    },
                    **_ERRORS,
                },
            }
        },
        "/products/{product_id}": {
            "get": {
                "operationId": "getProduct",
                "tags": ["catalog"],
                "summary": "One product",
                "description": "Drafts, archived products and products of cooperatives "
                "that are not approved are not found.",
                "parameters": [
                    {
                        "name": "product_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The product.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["data"],
                                    "properties": {
                                        "data": {"$ref": "#/components/schemas/Product"}
                                    },
                                }
                            }
                        },
                    },
                    "404": {"$ref": "#/components/responses/NotFound"},
                    "429": {"$ref": "#/components/responses/TooManyRequests"},
                },
            }
        },
    },
    components={
        "schemas": {
            "Category": {
                "enum": [c.value for c in Category],
                "description": "水果 fruit, 蔬菜 vegetable, 茶叶 tea, 粮油 grain_oil, 禽畜蛋 "
                "poultry_egg, 水产 aquatic, 干货及加工品 dried, 花卉苗木 flowers, 其他 other.",
            },
            "Photo": {
                "type": "object",
                "required": ["width", "height", "large", "thumbnail"],
                "properties": {
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                    "large": {**_IMAGE, "description": "At most 1280 px on the long side."},
                    "thumbnail": {**_IMAGE, "description": "At most 320 px on the long side."},
                },
            },
            "Product": PRODUCT_SCHEMA,
            "ProductList": {
                "type": "object",
                "required": ["data", "meta", "links"],
                "properties": {
                    "data": {"type": "array", "items": {"$ref": "#/components/schemas/Product"}},
                    "meta": {"$ref": "#/components/schemas/PageMeta"},
                    "links": {"$ref": "#/components/schemas/PageLinks"},
                },
            },
        }
    },
    tags=[{"name": "catalog", "description": "Products cooperatives sell."}],
)
