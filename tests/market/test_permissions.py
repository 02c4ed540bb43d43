"""The role/permission matrix: every route that exists, for every kind of user.

A new route without a row here fails `test_the_matrix_covers_every_route`.
"""

from __future__ import annotations

import pytest

from market.catalog.models import ProductStatus
from market.cooperatives.models import CooperativeStatus
from market.extensions import db
from tests.conftest import csrf_token, login
from tests.factories import (
    CooperativeFactory,
    ProductFactory,
    buyer,
    coop_admin,
    farmer,
    platform_admin,
    staff,
)
from tests.logistics.helpers import logistics_world
from tests.orders.helpers import orders_world
from tests.traceability.helpers import trace_world

ROLES = (
    "anon",
    "buyer",
    "farmer",
    "coop_admin",
    "other_admin",
    "staff_in",
    "staff_out",
    "platform",
)
OK, LOGIN, DENY = "ok", "login", "403"

ALL = dict.fromkeys(ROLES, OK)
SIGNED_IN = {**dict.fromkeys(ROLES, OK), "anon": LOGIN}
PLATFORM_ONLY = {**dict.fromkeys(ROLES, DENY), "anon": LOGIN, "platform": OK}
MANAGE = {**dict.fromkeys(ROLES, DENY), "anon": LOGIN, "coop_admin": OK, "platform": OK}
OVERSEE = {**MANAGE, "staff_in": OK}
BUYER_ONLY = {**dict.fromkeys(ROLES, DENY), "anon": LOGIN, "buyer": OK}
SELLERS = {**dict.fromkeys(ROLES, DENY), "anon": LOGIN, "farmer": OK, "coop_admin": OK}
SELLERS_ANY_COOP = {**SELLERS, "other_admin": OK}
COOP_ADMIN_ONLY = {**dict.fromkeys(ROLES, DENY), "anon": LOGIN, "coop_admin": OK}
OWNERS_ONLY_SEE = {**dict.fromkeys(ROLES, "404"), "farmer": OK, "coop_admin": OK}

# endpoint -> (method, url template, expected by role)
MATRIX: dict[str, tuple[str, str, dict[str, str]]] = {
    "static": ("GET", "/static/css/app.css", ALL),
    "core.home": ("GET", "/", ALL),
    "core.set_language": ("GET", "/lang/en", ALL),
    "core.healthz": ("GET", "/healthz", ALL),
    "core.media_file": ("GET", "/media/{missing_media}", {r: "404" for r in ROLES}),
    "auth.register": ("GET", "/auth/register", ALL),
    "auth.login": ("GET", "/auth/login", ALL),
    "auth.logout": ("POST", "/auth/logout", ALL),
    "auth.change_password": ("GET", "/auth/password", SIGNED_IN),
    "cooperatives.index": ("GET", "/cooperatives", ALL),
    "cooperatives.detail": ("GET", "/cooperatives/{coop}", ALL),
    "cooperatives.apply": ("GET", "/cooperatives/apply", BUYER_ONLY),
    "cooperatives.edit": ("GET", "/cooperatives/{coop}/edit", MANAGE),
    "cooperatives.members": ("GET", "/cooperatives/{coop}/members", OVERSEE),
    "cooperatives.remove_member": (
        "POST",
        "/cooperatives/{coop}/members/{farmer}/remove",
        MANAGE,
    ),
    "admin.index_admin": ("GET", "/admin", PLATFORM_ONLY),
    "admin.new_cooperative": ("GET", "/admin/cooperatives/new", PLATFORM_ONLY),
    "admin.approve_cooperative": ("POST", "/admin/cooperatives/{pending}/approve", PLATFORM_ONLY),
    "admin.reject_cooperative": ("POST", "/admin/cooperatives/{pending}/reject", PLATFORM_ONLY),
    "admin.staff": ("GET", "/admin/staff", PLATFORM_ONLY),
    "notifications.index": ("GET", "/notifications", SIGNED_IN),
    "notifications.mark_read": ("POST", "/notifications/read", SIGNED_IN),
    "catalog.product_list": ("GET", "/products?q=陈皮&category=dried&city=441800", ALL),
    "catalog.product_detail": ("GET", "/products/{product}", ALL),
    "catalog.new_product": ("GET", "/products/new", SELLERS_ANY_COOP),
    "catalog.edit_product": ("GET", "/products/{product}/edit", SELLERS),
    "catalog.update_stock": ("POST", "/products/{spare}/stock", SELLERS),
    "catalog.publish_product": ("POST", "/products/{spare}/publish", SELLERS),
    "catalog.archive_product": ("POST", "/products/{spare}/archive", SELLERS),
    "catalog.my_products": ("GET", "/products/mine", SELLERS_ANY_COOP),
    "catalog.import_products": ("GET", "/cooperatives/{coop}/products/import", COOP_ADMIN_ONLY),
    "catalog.import_template": (
        "GET",
        "/cooperatives/{coop}/products/import/template.xlsx",
        COOP_ADMIN_ONLY,
    ),
    "catalog_api.list_products": ("GET", "/api/v1/products?category=dried", ALL),
    "catalog_api.get_product": ("GET", "/api/v1/products/{product}", ALL),
    "openapi.openapi_document": ("GET", "/api/v1/openapi.json", ALL),
}

# Traceability: public resolver and scan page, the cooperative's batch pages, EPCIS API
# (which answers 401 without a token, whoever is signed in: sessions do not count there).
TRACE_MANAGE = {**MANAGE, "farmer": OK}
TRACE_VIEW = {**TRACE_MANAGE, "staff_in": OK}
TRACE_TOKENS = {**COOP_ADMIN_ONLY, "other_admin": OK, "platform": OK}
MATRIX.update(
    {
        "traceability.resolve": ("GET", "{unit_path}", ALL),
        "traceability.resolve_epc": ("GET", "/epc/{epc}", ALL),
        "traceability.report_file": (
            "GET",
            "/trace/reports/{missing_report}",
            {r: "404" for r in ROLES},
        ),
        "traceability.batches": ("GET", "/trace/batches", {**SIGNED_IN, "buyer": DENY}),
        "traceability.new_batch": ("GET", "/trace/batches/new", SELLERS_ANY_COOP),
        "traceability.batch_detail": ("GET", "/trace/batches/{batch}", TRACE_VIEW),
        "traceability.edit_batch": ("GET", "/trace/batches/{batch}/edit", TRACE_MANAGE),
        "traceability.add_input": ("GET", "/trace/batches/{batch}/inputs/new", TRACE_MANAGE),
        "traceability.add_inspection": (
            "GET",
            "/trace/batches/{batch}/inspections/new",
            TRACE_MANAGE,
        ),
        "traceability.add_event": ("GET", "/trace/batches/{batch}/events/new", TRACE_MANAGE),
        "traceability.issue_codes": ("POST", "/trace/batches/{batch}/codes", TRACE_MANAGE),
        "traceability.codes_list": ("GET", "/trace/batches/{batch}/codes", TRACE_VIEW),
        "traceability.code_image": ("GET", "/trace/codes/{code}/qr.png", TRACE_VIEW),
        "traceability.put_on_sale": ("POST", "/trace/batches/{batch}/stock", TRACE_MANAGE),
        "traceability.create_labels": ("POST", "/trace/batches/{batch}/labels", TRACE_MANAGE),
        "traceability.label_job": ("GET", "/trace/labels/{job}", TRACE_MANAGE),
        "traceability.label_job_status": ("GET", "/trace/labels/{job}/status", TRACE_MANAGE),
        "traceability.label_download": ("GET", "/trace/labels/{job}/download", TRACE_MANAGE),
        "traceability.tokens": ("GET", "/trace/tokens", TRACE_TOKENS),
        "traceability.revoke_token": ("POST", "/trace/tokens/{token}/revoke", MANAGE),
        "epcis.capture": ("POST", "/epcis/capture", ALL),
        "epcis.capture_status": ("GET", "/epcis/capture/no-such-capture", ALL),
        "epcis.events": ("GET", "/epcis/events", ALL),
    }
)

# Orders and payments. The payment API and the sandbox gateway do not use sessions: the
# API answers 401 JSON without a key whoever is signed in; Alipay's notify answers `fail`.
ORDER_BUYER = {**BUYER_ONLY}
ORDER_VIEW = {**BUYER_ONLY, "farmer": OK, "coop_admin": OK, "platform": OK}
ORDER_SHIPPERS = {**dict.fromkeys(ROLES, DENY), "anon": LOGIN, "farmer": OK, "coop_admin": OK}
ORDER_DECIDE = {**COOP_ADMIN_ONLY, "platform": OK}
NOT_FOUND = {r: "404" for r in ROLES}
MATRIX.update(
    {
        "orders.cart": ("GET", "/cart", ALL),
        "orders.add_to_cart": ("POST", "/cart/items", ALL),
        "orders.update_cart_item": ("POST", "/cart/items/{product}", ALL),
        "orders.remove_cart_item": ("POST", "/cart/items/{product}/remove", ALL),
        "orders.checkout": ("GET", "/checkout", SIGNED_IN),
        "orders.place_children": ("GET", "/places/440000", ALL),
        "orders.my_orders": ("GET", "/orders", SIGNED_IN),
        "orders.order_detail": ("GET", "/orders/{order}", ORDER_VIEW),
        "orders.pay": ("POST", "/orders/{order}/pay", ORDER_BUYER),
        "orders.cancel": ("POST", "/orders/{order}/cancel", ORDER_BUYER),
        "orders.confirm_receipt": ("POST", "/orders/{order}/receive", ORDER_BUYER),
        "orders.request_refund": ("GET", "/orders/{order}/refund", ORDER_BUYER),
        "orders.decide_refund": ("POST", "/orders/{order}/refund/decide", ORDER_DECIDE),
        "orders.pack": ("POST", "/orders/{order}/pack", ORDER_SHIPPERS),
        "orders.ship": ("POST", "/orders/{order}/ship", ORDER_SHIPPERS),
        "orders.deliver": ("POST", "/orders/{order}/deliver", COOP_ADMIN_ONLY),
        "orders.payment_status": ("GET", "/orders/payments/{intent}", ORDER_BUYER),
        "orders.to_pack": ("GET", "/orders/to-pack", SELLERS_ANY_COOP),
        "payments.alipay_notify": ("POST", "/payments/alipay/notify", ALL),
        "payments.alipay_return": ("GET", "/payments/alipay/return", NOT_FOUND),
        "payments_api.payment_intents": ("GET", "/api/v1/payment_intents", ALL),
        "payments_api.payment_intent": ("GET", "/api/v1/payment_intents/{intent}", ALL),
        "payments_api.confirm_payment_intent": (
            "POST",
            "/api/v1/payment_intents/{intent}/confirm",
            ALL,
        ),
        "payments_api.cancel_payment_intent": (
            "POST",
            "/api/v1/payment_intents/{intent}/cancel",
            ALL,
        ),
        "payments_api.refunds": ("POST", "/api/v1/refunds", ALL),
        "payments_api.refund": ("GET", "/api/v1/refunds/re_missing", ALL),
        "payments_api.events": ("GET", "/api/v1/events", ALL),
        "payments_api.event": ("GET", "/api/v1/events/evt_missing", ALL),
        "sandbox.gateway": ("GET", "/sandbox/alipay/gateway.do", ALL),
        "sandbox.trade": ("GET", "/sandbox/alipay/trades/0000", NOT_FOUND),
    }
)

# Extra rows for routes that also answer a second method.
EXTRA = [
    ("cooperatives.members", "POST", "/cooperatives/{coop}/members", MANAGE),
    ("cooperatives.edit", "POST", "/cooperatives/{coop}/edit", MANAGE),
    ("cooperatives.apply", "POST", "/cooperatives/apply", BUYER_ONLY),
    ("admin.new_cooperative", "POST", "/admin/cooperatives/new", PLATFORM_ONLY),
    ("admin.staff", "POST", "/admin/staff", PLATFORM_ONLY),
    ("auth.change_password", "POST", "/auth/password", SIGNED_IN),
    ("catalog.product_detail", "GET", "/products/{draft}", OWNERS_ONLY_SEE),
    ("catalog_api.get_product", "GET", "/api/v1/products/{draft}", {r: "404" for r in ROLES}),
    ("catalog.edit_product", "GET", "/products/{draft}/edit", SELLERS),
    ("catalog.edit_product", "POST", "/products/{spare}/edit", SELLERS),
    ("catalog.new_product", "POST", "/products/new", SELLERS_ANY_COOP),
    ("catalog.import_products", "POST", "/cooperatives/{coop}/products/import", COOP_ADMIN_ONLY),
    (
        "catalog.import_template",
        "GET",
        "/cooperatives/{coop}/products/import/template.csv",
        COOP_ADMIN_ONLY,
    ),
]
EXTRA += [
    ("traceability.new_batch", "POST", "/trace/batches/new", SELLERS_ANY_COOP),
    ("traceability.edit_batch", "POST", "/trace/batches/{batch}/edit", TRACE_MANAGE),
    ("traceability.add_input", "POST", "/trace/batches/{batch}/inputs/new", TRACE_MANAGE),
    ("traceability.add_inspection", "POST", "/trace/batches/{batch}/inspections/new", TRACE_MANAGE),
    ("traceability.add_event", "POST", "/trace/batches/{batch}/events/new", TRACE_MANAGE),
    ("traceability.tokens", "POST", "/trace/tokens", TRACE_TOKENS),
    ("traceability.code_image", "GET", "/trace/codes/{code}/qr.svg", TRACE_VIEW),
    ("traceability.resolve", "GET", "/01/06970000000000/10/NOPE", {r: "404" for r in ROLES}),
]
EXTRA += [
    ("orders.checkout", "POST", "/checkout", SIGNED_IN),
    ("orders.request_refund", "POST", "/orders/{order}/refund", ORDER_BUYER),
    ("payments_api.payment_intents", "POST", "/api/v1/payment_intents", ALL),
    ("sandbox.gateway", "POST", "/sandbox/alipay/gateway.do", ALL),
    ("sandbox.trade", "POST", "/sandbox/alipay/trades/0000", NOT_FOUND),
]

# Logistics: packing and shipping (those who ship the order), a shipment's page (also the
# buyer, 供销社 staff in scope), read points / readers / quarantine (a cooperative's admin
# for its own, the platform); the reader and carrier endpoints answer 401 JSON without a
# token or signature, whoever is signed in.
LOGISTICS_VIEW = {**SELLERS_ANY_COOP, "platform": OK}
SHIPMENT_VIEW = {**ORDER_VIEW, "staff_in": OK}
SHIPMENT_MANAGE = {**ORDER_SHIPPERS, "platform": OK}
MATRIX.update(
    {
        "logistics.index": ("GET", "/logistics", LOGISTICS_VIEW),
        "logistics.pack_order": ("GET", "/logistics/orders/{order}/pack", ORDER_SHIPPERS),
        "logistics.new_shipment": ("GET", "/logistics/orders/{order}/shipment", ORDER_SHIPPERS),
        "logistics.shipment_detail": ("GET", "/logistics/shipments/{shipment}", SHIPMENT_VIEW),
        "logistics.add_checkpoint": (
            "POST",
            "/logistics/shipments/{shipment}/checkpoints",
            SHIPMENT_MANAGE,
        ),
        "logistics.add_temperature": (
            "POST",
            "/logistics/shipments/{shipment}/temperatures",
            SHIPMENT_MANAGE,
        ),
        "logistics.shipment_epcis": (
            "GET",
            "/logistics/shipments/{shipment}/epcis.jsonld",
            SHIPMENT_VIEW,
        ),
        "logistics.read_points": ("GET", "/logistics/read-points", TRACE_TOKENS),
        "logistics.edit_read_point": ("GET", "/logistics/read-points/{read_point}", MANAGE),
        "logistics.readers": ("GET", "/logistics/readers", TRACE_TOKENS),
        "logistics.edit_reader": ("GET", "/logistics/readers/{reader}", MANAGE),
        "logistics.rotate_token": ("POST", "/logistics/readers/{reader}/token", MANAGE),
        "logistics.quarantine": ("GET", "/logistics/quarantine", TRACE_TOKENS),
        "logistics.dismiss_quarantined": (
            "POST",
            "/logistics/quarantine/{quarantine}/dismiss",
            MANAGE,
        ),
        "logistics.retry_quarantined": (
            "POST",
            "/logistics/quarantine/{quarantine}/retry",
            MANAGE,
        ),
        "logistics_api.reader_reads": ("POST", "/logistics/readers/{reader}/reads", ALL),
        "logistics_api.reader_temperatures": (
            "POST",
            "/logistics/readers/{reader}/temperatures",
            ALL,
        ),
        "logistics_api.carrier_push": ("POST", "/logistics/carriers/SF/push", ALL),
    }
)
EXTRA += [
    ("logistics.pack_order", "POST", "/logistics/orders/{order}/pack", ORDER_SHIPPERS),
    ("logistics.new_shipment", "POST", "/logistics/orders/{order}/shipment", ORDER_SHIPPERS),
    ("logistics.read_points", "POST", "/logistics/read-points", TRACE_TOKENS),
    ("logistics.edit_read_point", "POST", "/logistics/read-points/{read_point}", MANAGE),
    ("logistics.readers", "POST", "/logistics/readers", TRACE_TOKENS),
    ("logistics.edit_reader", "POST", "/logistics/readers/{reader}", MANAGE),
]

# Reports: everyone with dashboards opens their own (platform: the province, staff: their
# division, a cooperative admin: their cooperative); a drill-down or export of a place
# only for those whose scope holds it.
REPORTS_ANY = {**dict.fromkeys(ROLES, OK), "anon": LOGIN, "buyer": DENY, "farmer": DENY}
REPORTS_QINGYUAN = {**PLATFORM_ONLY, "staff_in": OK}
MATRIX.update(
    {
        "reports.dashboard": ("GET", "/reports", REPORTS_ANY),
        "reports.export": ("GET", "/reports/export/children.csv?coop={coop}", OVERSEE),
        "reports.monthly": ("GET", "/reports/monthly?area=441800", REPORTS_QINGYUAN),
    }
)
EXTRA += [
    ("reports.dashboard", "GET", "/reports?coop={coop}", OVERSEE),
    ("reports.dashboard", "GET", "/reports?area=441881", REPORTS_QINGYUAN),
    ("reports.export", "GET", "/reports/export/summary.xlsx", REPORTS_ANY),
    ("reports.monthly", "GET", "/reports/monthly", REPORTS_ANY),
]


def test_the_matrix_covers_every_route(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - set(MATRIX) == set(), "add the new routes to the permission matrix"
    assert set(MATRIX) - endpoints == set()


@pytest.fixture
def world(app):
    with app.app_context():
        coop = CooperativeFactory(division_code="441881")
        other = CooperativeFactory(division_code="440705")
        pending = CooperativeFactory(status=CooperativeStatus.PENDING, division_code="441881")
        people = {
            "buyer": buyer(phone="13500000101"),
            "farmer": farmer(coop, phone="13600000101"),
            "coop_admin": coop_admin(coop, phone="13700000101"),
            "other_admin": coop_admin(other, phone="13700000102"),
            "staff_in": staff("441800", phone="13900000101"),
            "staff_out": staff("440700", phone="13900000102"),
            "platform": platform_admin(phone="13900000103"),
        }
        product = ProductFactory(cooperative=coop, farmer=people["farmer"])
        spare = ProductFactory(cooperative=coop, farmer=people["farmer"])
        draft = ProductFactory(
            cooperative=coop, farmer=people["farmer"], status=ProductStatus.DRAFT
        )
        db.session.commit()
        ids = {
            "coop": coop.id,
            "pending": pending.id,
            "farmer": people["farmer"].id,
            "product": product.id,
            "spare": spare.id,
            "draft": draft.id,
            "missing_media": "0" * 32 + "-320.jpg",
        }
        ids.update(trace_world(app, product, people["farmer"].id))
        ids.update(orders_world(people["buyer"].id, product.id))
        ids.update(logistics_world(app, product, people["buyer"].id, ids["code"]))
        phones = {role: user.phone for role, user in people.items()}
    return ids, phones


def _classify(response) -> str:
    if response.status_code in (301, 302) and "/auth/login" in response.headers.get("Location", ""):
        return LOGIN
    if response.status_code in (403, 404):
        return str(response.status_code)
    if response.status_code < 500:
        return OK
    return str(response.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(app, world, role):
    ids, phones = world
    rows = [(ep, *row) for ep, row in MATRIX.items()] + EXTRA
    # Sign out last, so one sign-in serves every row (sign-in is rate limited).
    rows.sort(key=lambda row: row[0] == "auth.logout")
    client = app.test_client()
    if role != "anon":
        login(client, phones[role])
    for endpoint, method, template, expected in rows:
        url = template.format(**ids)
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data={"csrf_token": csrf_token(client)})
        with response:
            assert _classify(response) == expected[role], (
                f"{role} {method} {url} ({endpoint}) -> {response.status_code}"
            )
