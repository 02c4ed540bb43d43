"""The public products API and its OpenAPI 3.1 description."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_spec
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from market import openapi
from market.catalog.models import Category, ProductStatus
from market.cooperatives.models import CooperativeStatus
from market.extensions import db
from tests.factories import CooperativeFactory, ProductFactory, ProductPhotoFactory


@pytest.fixture
def catalog(app):
    """Two cooperatives' products in three places, plus some the public must not see."""
    with app.app_context():
        xinhui = CooperativeFactory(name="会城果品合作社", division_code="440705")
        yingde = CooperativeFactory(name="英德红茶合作社", division_code="441881")
        pending = CooperativeFactory(status=CooperativeStatus.PENDING, division_code="440705")
        peel = ProductFactory(
            cooperative=xinhui,
            title="新会陈皮 十年陈",
            is_gi=True,
            gi_name="新会陈皮",
            certifications=["green_food"],
            harvest_months=[11, 12],
            origin_detail="茶坑村",
            price_fen=28800,
        )
        ProductPhotoFactory(product=peel, key="cd" * 16)
        tea = ProductFactory(cooperative=yingde, title="英德红茶 英红九号", category=Category.TEA)
        sold_out = ProductFactory(
            cooperative=xinhui,
            title="新会柑 已售罄",
            category=Category.FRUIT,
            status=ProductStatus.SOLD_OUT,
            stock=0,
            origin_code="440703",
        )
        draft = ProductFactory(cooperative=xinhui, status=ProductStatus.DRAFT)
        archived = ProductFactory(cooperative=xinhui, status=ProductStatus.ARCHIVED)
        hidden = ProductFactory(cooperative=pending)
        db.session.commit()
        return {
            "xinhui": xinhui.id,
            "yingde": yingde.id,
            "peel": peel.id,
            "tea": tea.id,
            "sold_out": sold_out.id,
            "draft": draft.id,
            "archived": archived.id,
            "hidden": hidden.id,
        }


def ids(response) -> list[int]:
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["data"]]


def document_validator(client, schema: dict) -> Draft202012Validator:
    """A JSON Schema validator that resolves the document's #/components refs."""
    doc = client.get("/api/v1/openapi.json").get_json()
    resource = DRAFT202012.create_resource(doc)
    # Wrap the schema so its "#/components/..." refs point into the OpenAPI document.
    registry = Registry().with_resource("urn:openapi", resource)
    wrapped = {"$ref": "urn:openapi#" + schema["$ref"].removeprefix("#")}
    return Draft202012Validator(wrapped, registry=registry, format_checker=FormatChecker())


def test_the_list_shows_public_products_on_sale_first(client, catalog):
    body = client.get("/api/v1/products").get_json()
    assert [item["id"] for item in body["data"]] == [
        catalog["tea"],
        catalog["peel"],
        catalog["sold_out"],
    ]
    assert body["meta"] == {"total": 3, "page": 1, "per_page": 20, "pages": 1}


def test_a_product_in_full_with_price_in_fen_and_cny(client, catalog):
    body = client.get(f"/api/v1/products/{catalog['peel']}").get_json()["data"]
    assert body["price_fen"] == 28800
    assert body["currency"] == "CNY"
    assert body["geographical_indication"] == {"is_gi": True, "name": "新会陈皮"}
    assert body["certifications"] == ["green_food"]
    assert body["harvest_months"] == [11, 12]
    assert body["origin"] == {
        "division_code": "440705",
        "name": "广东省江门市新会区",
        "city_code": "440700",
        "county_code": "440705",
        "detail": "茶坑村",
    }
    assert body["cooperative"]["name"] == "会城果品合作社"
    assert body["photos"][0]["thumbnail"]["webp"].endswith("/media/" + "cd" * 16 + "-320.webp")
    assert body["url"].endswith(f"/products/{catalog['peel']}")
    assert body["created_at"].endswith("Z")


@pytest.mark.parametrize("which", ["draft", "archived", "hidden"])
def test_drafts_archived_and_unapproved_products_are_not_found(client, catalog, which):
    response = client.get(f"/api/v1/products/{catalog[which]}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert catalog[which] not in ids(client.get("/api/v1/products?per_page=100"))


def test_a_missing_product_is_a_json_404(client, catalog):
    response = client.get("/api/v1/products/999999")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_filters_combine(client, catalog):
    assert ids(client.get("/api/v1/products?category=tea")) == [catalog["tea"]]
    assert ids(client.get("/api/v1/products?city=440700")) == [catalog["peel"], catalog["sold_out"]]
    assert ids(client.get("/api/v1/products?county=440705")) == [catalog["peel"]]
    assert ids(client.get(f"/api/v1/products?cooperative={catalog['yingde']}")) == [catalog["tea"]]
    assert ids(client.get("/api/v1/products?city=440700&category=fruit")) == [catalog["sold_out"]]
    assert ids(client.get("/api/v1/products?cooperative=999999")) == []


def test_q_searches_and_highlights(client, catalog):
    body = client.get("/api/v1/products?q=陈皮").get_json()
    assert [item["id"] for item in body["data"]] == [catalog["peel"]]
    assert "<mark>陈皮</mark>" in body["data"][0]["highlight"]
    assert ids(client.get(f"/api/v1/products?q=红茶&cooperative={catalog['xinhui']}")) == []


def test_pagination_links(client, catalog):
    body = client.get("/api/v1/products?per_page=1&page=2&category=").get_json()
    assert body["meta"] == {"total": 3, "page": 2, "per_page": 1, "pages": 3}
    links = body["links"]
    assert parse_qs(urlsplit(links["next"]).query) == {"per_page": ["1"], "page": ["3"]}
    assert parse_qs(urlsplit(links["prev"]).query)["page"] == ["1"]
    assert parse_qs(urlsplit(links["last"]).query)["page"] == ["3"]
    assert urlsplit(links["self"]).path == "/api/v1/products"
    last = client.get(links["last"]).get_json()
    assert last["links"]["next"] is None
    assert len(last["data"]) == 1
    beyond = client.get("/api/v1/products?page=50").get_json()
    assert beyond["data"] == []
    assert beyond["links"]["prev"] is not None


@pytest.mark.parametrize(
    ("query", "code", "parameter"),
    [
        ("per_page=101", "invalid_parameter", "per_page"),
        ("per_page=0", "invalid_parameter", "per_page"),
        ("page=0", "invalid_parameter", "page"),
        ("page=abc", "invalid_parameter", "page"),
        ("page=-1", "invalid_parameter", "page"),
        ("category=candy", "invalid_parameter", "category"),
        ("city=440705", "invalid_parameter", "city"),
        ("city=110000", "invalid_parameter", "city"),
        ("county=440700", "invalid_parameter", "county"),
        ("cooperative=x", "invalid_parameter", "cooperative"),
        ("q=" + "荔" * 65, "invalid_parameter", "q"),
        ("category=tea&category=fruit", "invalid_parameter", "category"),
        ("sort=price", "unknown_parameter", "sort"),
    ],
)
def test_bad_parameters_are_400_with_stable_codes(client, catalog, query, code, parameter):
    response = client.get("/api/v1/products?" + query)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["parameter"]) == (code, parameter)
    assert error["message"]


def test_public_endpoints_are_rate_limited(app, client, catalog):
    app.config["PUBLIC_RATE_LIMIT"] = "2 per minute"
    try:
        assert client.get("/api/v1/products").status_code == 200
        assert client.get(f"/api/v1/products/{catalog['peel']}").status_code == 200
        limited = client.get("/api/v1/products")
        assert limited.status_code == 429
        assert limited.get_json()["error"]["code"] == "rate_limited"
        assert "Retry-After" in limited.headers
    finally:
        app.config["PUBLIC_RATE_LIMIT"] = "120 per minute"


def test_the_openapi_document_is_valid_openapi_3_1(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"] == "3.1.0"
    validate_spec(doc)
    assert {"/products", "/products/{product_id}"} <= set(doc["paths"])
    assert doc["servers"] == [{"url": "http://localhost/api/v1"}]


def test_responses_match_the_documented_schemas(client, catalog):
    list_validator = document_validator(client, {"$ref": "#/components/schemas/ProductList"})
    for query in ("", "?per_page=1&page=2", "?q=陈皮"):
        list_validator.validate(client.get("/api/v1/products" + query).get_json())
    product_validator = document_validator(client, {"$ref": "#/components/schemas/Product"})
    product_validator.validate(client.get(f"/api/v1/products/{catalog['peel']}").get_json()["data"])
    error_validator = document_validator(client, {"$ref": "#/components/schemas/Error"})
    error_validator.validate(client.get("/api/v1/products?page=0").get_json())
    error_validator.validate(client.get("/api/v1/products/999999").get_json())


def test_other_packages_can_add_paths_but_not_redefine_them():
    operation = {"get": {"operationId": "x", "responses": {"200": {"description": "ok"}}}}
    openapi.register_paths({"/catalog-test-only": operation})
    try:
        openapi.register_paths({"/catalog-test-only": operation})  # the same again is fine
        assert "/catalog-test-only" in openapi.document()["paths"]
        with pytest.raises(ValueError, match="already registered"):
            openapi.register_paths(
                {"/catalog-test-only": {"get": {**operation["get"], "operationId": "y"}}}
            )
        with pytest.raises(ValueError, match="base document"):
            openapi.register_paths({}, components={"schemas": {"Error": {}}})
    finally:
        openapi._paths.pop("/catalog-test-only")
