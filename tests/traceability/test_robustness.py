"""Whatever arrives at the public resolver or the EPCIS API, the answer is never a 500."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.extensions import db
from traceability import services

FUZZ = settings(
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SEGMENT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=25
)


@pytest.fixture
def token(app):
    with app.app_context():
        _row, plain = services.create_token(
            db.session, name="fuzz", scopes=["capture", "query"], cooperative_id=None, user_id=None
        )
        db.session.commit()
    return plain


@FUZZ
@given(parts=st.lists(SEGMENT, min_size=0, max_size=7), query=SEGMENT)
def test_the_resolver_never_fails_on_any_path(app, parts, query):
    client = app.test_client()
    limit, app.config["PUBLIC_RATE_LIMIT"] = app.config["PUBLIC_RATE_LIMIT"], "100000 per minute"
    try:
        path = "/01/" + "/".join(quote(p, safe="") for p in parts)
        response = client.get(path + ("?" + quote(query, safe="=&") if query else ""))
        epc = client.get("/epc/" + quote("".join(parts), safe=""))
    finally:
        app.config["PUBLIC_RATE_LIMIT"] = limit
    # 308: the router merges doubled slashes before the resolver sees them.
    assert response.status_code in (200, 308, 404), path
    assert epc.status_code in (200, 308, 404)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


@FUZZ
@given(body=JSON)
def test_capture_never_fails_on_any_json(app, token, body):
    client = app.test_client()
    response = client.post(
        "/epcis/capture",
        data=json.dumps(body, allow_nan=True),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] in ("invalid_document", "invalid_json")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"type": "EPCISDocument", "x": 1e999}',
        b'{"type": "EPCISDocument", "x": NaN}',
        b'{"type": "EPCISDocument", "x": Infinity}',
    ],
)
def test_pathological_json_is_refused_cleanly(app, token, body):
    response = app.test_client().post(
        "/epcis/capture",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_an_event_time_out_of_range_is_an_error_not_a_crash(app, token):
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-27T10:00:00Z",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": "0001-01-01T00:00:00+01:00",
                    "eventTimeZoneOffset": "+01:00",
                    "action": "OBSERVE",
                    "epcList": [],
                }
            ]
        },
    }
    response = app.test_client().post(
        "/epcis/capture",
        json=document,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["errors"][0]["path"] == "/epcisBody/eventList/0/eventTime"
