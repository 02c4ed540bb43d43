"""The role/permission matrix: every route that exists, for every kind of user.

A new route without a row here fails `test_the_matrix_covers_every_route`.
"""

from __future__ import annotations

import pytest

from market.cooperatives.models import CooperativeStatus
from market.extensions import db
from tests.conftest import csrf_token, login
from tests.factories import (
    CooperativeFactory,
    buyer,
    coop_admin,
    farmer,
    platform_admin,
    staff,
)

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
}

# Extra rows for routes that also answer a second method.
EXTRA = [
    ("cooperatives.members", "POST", "/cooperatives/{coop}/members", MANAGE),
    ("cooperatives.edit", "POST", "/cooperatives/{coop}/edit", MANAGE),
    ("cooperatives.apply", "POST", "/cooperatives/apply", BUYER_ONLY),
    ("admin.new_cooperative", "POST", "/admin/cooperatives/new", PLATFORM_ONLY),
    ("admin.staff", "POST", "/admin/staff", PLATFORM_ONLY),
    ("auth.change_password", "POST", "/auth/password", SIGNED_IN),
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
        db.session.commit()
        ids = {
            "coop": coop.id,
            "pending": pending.id,
            "farmer": people["farmer"].id,
            "missing_media": "0" * 32 + "-320.jpg",
        }
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
