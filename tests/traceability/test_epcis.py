"""The EPCIS 2.0 REST binding: capture, query, tokens, and the schema files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from market.extensions import db
from tests.conftest import empty_tables
from traceability import epcis, services
from traceability.config import PACKAGE_DIR
from traceability.models import Batch, TraceEvent

SHARED = Path(__file__).resolve().parents[3] / "shared" / "standards" / "epcis"
EXAMPLES = PACKAGE_DIR.parent / "tests" / "traceability" / "epcis_examples"
#: GS1's examples of the event types this repository stores (all of them).
FITTING_EXAMPLES = (
    "Example_9.6.1-ObjectEvent.jsonld",
    "Example_9.6.3-AggregationEvent.jsonld",
    "Example_9.6.4-TransformationEvent.jsonld",
    "SensorDataExample1.jsonld",
    "Example-TransactionEvents-2020_07_03y.jsonld",
    "AssociationEvent-a.jsonld",
)


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def mint(app, scopes=("capture", "query"), cooperative_id=None) -> str:
    with app.app_context():
        _token, plain = services.create_token(
            db.session,
            name="test",
            scopes=list(scopes),
            cooperative_id=cooperative_id,
            user_id=None,
        )
        db.session.commit()
    return plain


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def capture(client, token, document, content_type="application/ld+json"):
    return client.post(
        "/epcis/capture",
        data=json.dumps(document, ensure_ascii=False).encode(),
        headers={**auth(token), "Content-Type": content_type},
    )


def query(client, token, **params):
    response = client.get("/epcis/events", query_string=params, headers=auth(token))
    return response


def without_record_time(events):
    return [{k: v for k, v in e.items() if k != "recordTime"} for e in events]


@pytest.fixture
def validator(app):
    return epcis.load_validator(app.config["EPCIS_SCHEMA_DIR"])


# --- the schema files ---------------------------------------------------------------------


def test_the_packaged_schema_files_are_the_shared_ones_unchanged():
    names = ("EPCIS-JSON-Schema.json", "EPCIS-Query-JSON-Schema.json", "epcis-context.jsonld")
    for name in names:
        assert (PACKAGE_DIR / "schemas" / name).is_file(), name
    if not SHARED.is_dir():
        pytest.skip("shared/standards/epcis is not beside the repository")
    for name in (*names, "SOURCES.md"):
        assert (PACKAGE_DIR / "schemas" / name).read_bytes() == (SHARED / name).read_bytes(), name
    for name in FITTING_EXAMPLES:
        assert (EXAMPLES / name).read_bytes() == (SHARED / "examples" / name).read_bytes(), name


def test_the_app_loads_the_schema_from_its_own_package(app):
    assert Path(app.config["EPCIS_SCHEMA_DIR"]) == PACKAGE_DIR / "schemas"


def test_a_missing_schema_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="EPCIS_SCHEMA_DIR"):
        epcis.load_validator(str(tmp_path))


def test_format_checking_is_on(validator):
    bad = example("Example_9.6.1-ObjectEvent.jsonld")
    bad["epcisBody"]["eventList"][0]["eventTime"] = "2005-04-03 20:33"
    bad["epcisBody"]["eventList"][0]["readPoint"]["id"] = "not a uri"
    paths = {e["path"] for e in epcis.document_errors(validator, bad)}
    assert "/epcisBody/eventList/0/eventTime" in paths
    assert "/epcisBody/eventList/0/readPoint/id" in paths


# --- capture --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FITTING_EXAMPLES)
def test_gs1_examples_are_captured_and_queried_back_unchanged(app, client, validator, name):
    token = mint(app)
    document = example(name)
    response = capture(client, token, document)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["eventCount"] == len(document["epcisBody"]["eventList"])
    assert response.headers["Location"] == f"/epcis/capture/{body['captureID']}"
    status = client.get(response.headers["Location"], headers=auth(token)).get_json()
    assert status["success"] is True
    assert status["running"] is False

    exported = query(client, token)
    assert exported.status_code == 200
    assert exported.mimetype == "application/ld+json"
    result = exported.get_json()
    assert epcis.schema_errors(validator, result) == []
    events = result["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert all("recordTime" in e for e in events)
    extra = epcis.extension_context(document)
    expected = []
    for original in document["epcisBody"]["eventList"]:
        event = copy.deepcopy(original)
        if extra:
            event["@context"] = extra
        expected.append(event)
    key = lambda e: e["eventTime"]  # noqa: E731
    got = without_record_time(events)
    if all("eventID" in e for e in expected):
        assert sorted(got, key=key) == sorted(expected, key=key)
    else:
        assert sorted(({k: v for k, v in e.items() if k != "eventID"} for e in got), key=key) == (
            sorted(expected, key=key)
        )


def test_exported_events_round_trip_through_capture_unchanged(app, client, validator):
    token = mint(app)
    for name in FITTING_EXAMPLES:
        assert capture(client, token, example(name)).status_code == 202
    first = query(client, token, perPage="1000").get_json()
    events = first["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert len(events) == 8
    document = epcis.document(events, services.utcnow())
    assert epcis.document_errors(validator, document) == []

    empty_tables(app)
    token = mint(app)
    assert capture(client, token, document).status_code == 202
    second = query(client, token, perPage="1000").get_json()
    again = second["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert without_record_time(again) == without_record_time(events)


def test_capturing_the_same_events_again_is_harmless(app, client):
    token = mint(app)
    document = example("Example_9.6.1-ObjectEvent.jsonld")
    assert capture(client, token, document).status_code == 202
    again = capture(client, token, document)
    assert again.status_code == 202
    assert again.get_json()["eventCount"] == 0
    assert again.get_json()["duplicateCount"] == 2
    with app.app_context():
        assert len(db.session.scalars(select(TraceEvent)).all()) == 2


def test_an_eventid_reused_for_another_event_is_a_conflict(app, client):
    token = mint(app)
    document = example("Example_9.6.1-ObjectEvent.jsonld")
    assert capture(client, token, document).status_code == 202
    document["epcisBody"]["eventList"][0]["disposition"] = "damaged"
    response = capture(client, token, document)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"
    assert response.get_json()["error"]["errors"][0]["path"] == "/epcisBody/eventList/0/eventID"


def test_an_invalid_document_is_refused_with_every_error_listed(app, client):
    token = mint(app)
    document = example("Example_9.6.1-ObjectEvent.jsonld")
    first, second = document["epcisBody"]["eventList"]
    first["bizStep"] = "urn:epcglobal:cbv:bizstep:shipping"  # EPCIS 1.x form
    del first["eventTimeZoneOffset"]
    second["eventTime"] = "yesterday"
    second["action"] = "LOOK"
    response = capture(client, token, document)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_document"
    paths = {e["path"] for e in error["errors"]}
    assert {
        "/epcisBody/eventList/0/bizStep",
        "/epcisBody/eventList/0",
        "/epcisBody/eventList/1/eventTime",
        "/epcisBody/eventList/1/action",
    } <= paths
    assert all(e["message"] for e in error["errors"])
    with app.app_context():
        assert db.session.scalars(select(TraceEvent)).first() is None


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"type": "EPCISDocument"}', "text/plain", 415, "unsupported_media_type"),
        (b"[]", "application/json", 400, "invalid_document"),
        (b'{"type": "EPCISQueryDocument"}', "application/json", 400, "invalid_document"),
        (b'"\xff"', "application/json", 400, "invalid_json"),
    ],
)
def test_bodies_that_are_not_epcis_documents_are_refused(
    app, client, body, content_type, status, code
):
    token = mint(app)
    response = client.post(
        "/epcis/capture", data=body, headers={**auth(token), "Content-Type": content_type}
    )
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_an_unsupported_event_type_is_listed(app, client):
    token = mint(app)
    document = example("Example_9.6.1-ObjectEvent.jsonld")
    event = document["epcisBody"]["eventList"][0]
    event["type"] = "https://ns.example.com/epcis/MyEvent"
    response = capture(client, token, document)
    assert response.status_code == 400
    messages = " ".join(e["message"] for e in response.get_json()["error"]["errors"])
    assert "not supported" in messages


def test_the_api_needs_a_valid_token_with_the_right_scope(app, client):
    document = example("Example_9.6.1-ObjectEvent.jsonld")
    no_token = client.post("/epcis/capture", json=document)
    assert no_token.status_code == 401
    assert no_token.get_json()["error"]["code"] == "unauthorized"
    assert "Bearer" in no_token.headers["WWW-Authenticate"]
    assert capture(client, "yn_not-a-real-token", document).status_code == 401
    reader = mint(app, scopes=("query",))
    assert capture(client, reader, document).status_code == 403
    writer = mint(app, scopes=("capture",))
    assert query(client, writer).status_code == 403
    assert query(client, reader).status_code == 200
    with app.app_context():
        token = next(
            t for t in db.session.scalars(select(services.ApiToken)) if t.scopes == ["query"]
        )
        services.revoke_token(db.session, token.id)
        db.session.commit()
    assert query(client, reader).status_code == 401


def test_the_api_ignores_session_cookies_and_csrf(app, client):
    from tests.conftest import login
    from tests.factories import platform_admin

    with app.app_context():
        platform_admin(phone="13900009999")
        db.session.commit()
    login(client, "13900009999")
    response = client.post("/epcis/capture", json=example("Example_9.6.1-ObjectEvent.jsonld"))
    assert response.status_code == 401  # a signed-in session is not a token
    token = mint(app)
    assert capture(client, token, example("Example_9.6.1-ObjectEvent.jsonld")).status_code == 202


# --- our own batches through the API -----------------------------------------------------------


def _lot_event(app, world, **changes) -> dict:
    prefix = app.config["GS1_COMPANY_PREFIX"]
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-20T09:30:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "bizStep": "departing",
        "disposition": "in_transit",
        "quantityList": [
            {
                "epcClass": epcis.lgtin_uri(prefix, world.gtin, world.lot),
                "quantity": 20,
                "uom": "KGM",
            }
        ],
        "readPoint": {"id": services.cooperative_location(prefix, world.coop)},
        "sensorElementList": [
            {"sensorReport": [{"type": "Temperature", "value": 4.0, "uom": "CEL"}]}
        ],
    }
    event.update(changes)
    return event


def test_a_cooperatives_token_writes_into_its_batch_chain(app, client, world):
    token = mint(app, cooperative_id=world.coop)
    document = epcis.document([_lot_event(app, world)], services.utcnow())
    response = capture(client, token, document)
    assert response.status_code == 202, response.get_json()
    with app.app_context():
        event = db.session.scalars(
            select(TraceEvent).where(TraceEvent.biz_step == "departing")
        ).one()
        assert event.batch_id == world.batch
        assert event.chain_key == f"batch:{world.batch}"
        assert event.seq == 1  # after the harvest event
        assert services.verify_chains(db.session)[1] == []
        batch = db.session.get(Batch, world.batch)
        titles = [
            e.biz_step for e in services.timeline(db.session, batch, company_prefix="6970000")
        ]
        assert titles == ["commissioning", "departing"]


def test_a_cooperatives_token_cannot_write_about_another_cooperatives_batch(app, client, world):
    token = mint(app, cooperative_id=world.other_coop)
    document = epcis.document([_lot_event(app, world)], services.utcnow())
    response = capture(client, token, document)
    assert response.status_code == 403
    assert world.lot in response.get_json()["error"]["errors"][0]["message"]


def test_unit_codes_and_digital_links_in_events_link_to_their_batch(app, client, world):
    with app.app_context():
        services.issue_codes(db.session, world.batch, 2, company_prefix="6970000", max_count=5)
        db.session.commit()
        first, second = services.unit_codes(db.session, world.batch)
    from traceability import codes

    event = _lot_event(
        app,
        world,
        quantityList=[],
        epcList=[
            codes.sgtin_pure_uri("6970000", world.gtin, first.serial),
            f"https://id.gs1.org/01/{world.gtin}/10/{world.lot}/21/{second.serial}",
        ],
    )
    del event["quantityList"]
    token = mint(app, cooperative_id=world.coop)
    assert capture(client, token, epcis.document([event], services.utcnow())).status_code == 202
    with app.app_context():
        stored = db.session.scalars(
            select(TraceEvent).where(TraceEvent.biz_step == "departing")
        ).one()
        assert stored.batch_id == world.batch


def test_a_transformation_captured_by_api_records_where_a_batch_came_from(app, client, world):
    from tests.traceability.conftest import make_batch

    with app.app_context():
        peel = make_batch(app, world.coop, world.product, name="陈皮", quantity=50)
        db.session.commit()
        peel_id, peel_lot = peel.id, peel.lot_code
    prefix = app.config["GS1_COMPANY_PREFIX"]
    event = {
        "type": "TransformationEvent",
        "eventTime": "2026-11-21T10:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "inputQuantityList": [
            {
                "epcClass": epcis.lgtin_uri(prefix, world.gtin, world.lot),
                "quantity": 250,
                "uom": "KGM",
            }
        ],
        "outputQuantityList": [
            {
                "epcClass": epcis.lgtin_uri(prefix, world.gtin, peel_lot),
                "quantity": 50,
                "uom": "KGM",
            }
        ],
        "bizStep": "commissioning",
    }
    token = mint(app, cooperative_id=world.coop)
    assert capture(client, token, epcis.document([event], services.utcnow())).status_code == 202
    with app.app_context():
        assert [b.id for b in services.source_batches(db.session, peel_id)] == [world.batch]
        stored = db.session.scalars(
            select(TraceEvent).where(TraceEvent.event_type == "TransformationEvent")
        ).one()
        assert stored.batch_id == peel_id


# --- query ------------------------------------------------------------------------------------


@pytest.fixture
def loaded(app, client):
    token = mint(app)
    for name in FITTING_EXAMPLES:
        assert capture(client, token, example(name)).status_code == 202
    return token


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    events = response.get_json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return sorted(e["eventTime"] for e in events)


@pytest.mark.parametrize(
    ("params", "times"),
    [
        ({"eventType": "AggregationEvent"}, ["2013-06-08T14:58:56.591Z"]),
        (
            {"eventType": "AggregationEvent|TransformationEvent"},
            ["2013-06-08T14:58:56.591Z", "2013-10-31T14:58:56.591Z"],
        ),
        (
            {"GE_eventTime": "2019-01-01T00:00:00Z", "LT_eventTime": "2019-11-01T00:00:00+08:00"},
            ["2019-04-02T15:00:00.000+01:00", "2019-10-04T13:12:00.000Z"],
        ),
        ({"GE_eventTime": "2019-11-01T14:00:00.000+01:00"}, ["2019-11-01T14:00:00.000+01:00"]),
        (
            {"EQ_bizStep": "receiving"},
            ["2005-04-04T20:33:31.116-06:00", "2013-06-08T14:58:56.591Z"],
        ),
        (
            {"EQ_bizStep": "https://ref.gs1.org/cbv/BizStep-shipping"},
            ["2005-04-03T20:33:31.116000-06:00"],
        ),
        (
            {"EQ_disposition": "in_transit"},
            ["2005-04-03T20:33:31.116000-06:00", "2014-12-12T10:00:00.000Z"],
        ),
        ({"EQ_readPoint": "urn:epc:id:sgln:0614141.00777.0"}, ["2013-06-08T14:58:56.591Z"]),
        ({"EQ_bizLocation": "urn:epc:id:sgln:0012345.11111.0"}, ["2005-04-04T20:33:31.116-06:00"]),
        (
            {"MATCH_epc": "urn:epc:id:sgtin:0614141.107346.2018"},
            [
                "2005-04-03T20:33:31.116000-06:00",
                "2005-04-04T20:33:31.116-06:00",
                "2013-06-08T14:58:56.591Z",
            ],
        ),
        ({"MATCH_epc": "urn:epc:id:sscc:0614141.1234567890"}, []),
        ({"MATCH_anyEPC": "urn:epc:id:sscc:0614141.1234567890"}, ["2013-06-08T14:58:56.591Z"]),
        ({"MATCH_anyEPC": "urn:epc:id:sgtin:4012345.077889.27"}, ["2013-10-31T14:58:56.591Z"]),
        (
            {"MATCH_anyEPC": "urn:epc:idpat:sgtin:4012345.011111.*"},
            ["2019-04-02T15:00:00.000+01:00"],
        ),
        (
            {"MATCH_epc": "urn:epc:idpat:sgtin:0614141.*.*", "EQ_bizStep": "shipping"},
            ["2005-04-03T20:33:31.116000-06:00"],
        ),
        (
            {"MATCH_anyEPCClass": "urn:epc:class:lgtin:4012345.011111.4444"},
            ["2013-10-31T14:58:56.591Z"],
        ),
    ],
)
def test_query_parameters_filter_events(app, client, loaded, params, times):
    assert _ids(query(client, loaded, **params)) == sorted(times)


def test_results_come_in_pages_with_a_next_link(app, client, loaded):
    seen: list[str] = []
    response = query(client, loaded, perPage="3")
    pages = 0
    while True:
        pages += 1
        seen.extend(
            e["eventID"]
            for e in response.get_json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        )
        link = response.headers.get("Link")
        if not link:
            break
        assert link.endswith('>; rel="next"')
        target = link[1 : link.index(">")]
        assert parse_qs(urlsplit(target).query)["perPage"] == ["3"]
        response = client.get(target, headers=auth(loaded))
    assert pages == 3
    assert len(seen) == len(set(seen)) == 8


def test_a_page_token_cannot_be_forged_or_reused_for_another_query(app, client, loaded):
    first = query(client, loaded, perPage="2")
    target = first.headers["Link"][1 : first.headers["Link"].index(">")]
    page_token = parse_qs(urlsplit(target).query)["nextPageToken"][0]
    tampered = query(client, loaded, perPage="2", nextPageToken=page_token[:-2] + "xx")
    assert tampered.status_code == 400
    assert tampered.get_json()["error"]["code"] == "invalid_page_token"
    other = query(client, loaded, perPage="2", EQ_bizStep="receiving", nextPageToken=page_token)
    assert other.status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {"perPage": "0"},
        {"perPage": "many"},
        {"GE_eventTime": "last week"},
        {"GE_eventTime": "2026-01-01T00:00:00"},  # no offset
        {"eventType": "CoolEvent"},
        {"EQ_action": "LOOK"},
        {"MATCH_epc": "urn:epc:idpat:sgtin:*.107346.2018"},
        {"orderBy": "eventTime"},
    ],
)
def test_bad_query_parameters_are_refused_with_a_reason(app, client, loaded, params):
    response = query(client, loaded, **params)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "query_parameter"
    assert error["errors"][0]["parameter"] == next(iter(params))


def test_an_unescaped_plus_in_a_time_offset_is_understood(app, client, loaded):
    response = client.get(
        "/epcis/events?GE_eventTime=2019-11-01T14:00:00+01:00", headers=auth(loaded)
    )
    assert _ids(response) == ["2019-11-01T14:00:00.000+01:00"]


def test_a_cooperatives_token_sees_only_its_own_events(app, client, world, loaded):
    own = mint(app, scopes=("query",), cooperative_id=world.coop)
    events = query(client, own).get_json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["bizStep"] for e in events] == ["commissioning"]
    stranger = mint(app, scopes=("query",), cooperative_id=world.other_coop)
    events = query(client, stranger).get_json()["epcisBody"]["queryResults"]["resultsBody"][
        "eventList"
    ]
    assert events == []


def test_events_recorded_on_pages_export_as_valid_epcis(app, client, world, validator):
    from datetime import timedelta

    with app.app_context():
        services.issue_codes(db.session, world.batch, 3, company_prefix="6970000", max_count=5)
        for kind, extra in (
            ("packing", {"pack_units": 3}),
            ("storing", {"temperature_c": 5.0, "humidity_pct": 80.0}),
            ("shipping", {"note": "顺丰冷运", "place_code": "440100"}),
            ("recall", {}),
        ):
            services.record_ui_event(
                db.session,
                world.batch,
                kind,
                when=services.utcnow() - timedelta(minutes=5),
                user_id=None,
                company_prefix="6970000",
                **extra,
            )
        db.session.commit()
    token = mint(app)
    result = query(client, token).get_json()
    assert epcis.schema_errors(validator, result) == []
    events = result["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["type"] for e in events].count("AggregationEvent") == 1
    shipping = next(e for e in events if e.get("bizStep") == "shipping")
    assert shipping["yn:note"] == "顺丰冷运"
    assert shipping["@context"] == [epcis.NAMESPACE]
    document = epcis.document(without_record_time(events), services.utcnow())
    assert epcis.document_errors(validator, document) == []
