from sqlalchemy import func, select

from market import demo, places
from market.auth.models import Role, User
from market.cooperatives.models import Cooperative
from market.extensions import db


def test_home_page_is_chinese_by_default_and_english_on_request(client, app):
    with app.app_context():
        demo.load(db.session)
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "广东特产，合作社直供" in page
    assert "新会区会城陈皮专业合作社" in page
    switched = client.get("/lang/en?next=/cooperatives")
    assert switched.status_code == 303
    assert switched.headers["Location"].endswith("/cooperatives")
    english = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in english
    assert "Guangdong specialties, straight from the cooperative" in english


def test_home_page_is_light(client, app):
    """First load at most 60 KB transferred (HTML + CSS), images aside."""
    with app.app_context():
        demo.load(db.session)
        db.session.commit()
    html = client.get("/").data
    with client.get("/static/css/app.css") as css:
        total = len(html) + len(css.data)
    assert total < 60 * 1024


def test_error_pages_speak_the_users_language(client):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert "页面不存在" in missing.get_data(as_text=True)
    client.set_cookie("lang", "en")
    assert "Page not found" in client.get("/no-such-page").get_data(as_text=True)


def test_api_errors_are_json(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json() == {
        "error": {"code": "not_found", "message": response.get_json()["error"]["message"]}
    }
    assert response.get_json()["error"]["message"]


def test_an_unexpected_error_is_a_friendly_500_page(app):
    app.config["PROPAGATE_UNEXPECTED"] = False
    try:
        with app.test_request_context("/"):
            from market.web import _render_error

            body, status = _render_error(500)
        assert status == 500
        assert "出错了" in body
    finally:
        app.config["PROPAGATE_UNEXPECTED"] = True


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "broker": "eager"}}


def test_unknown_language_is_404(client):
    assert client.get("/lang/fr").status_code == 404


def test_demo_data_is_true_to_life_and_loading_twice_changes_nothing(app):
    with app.app_context():
        first = demo.load(db.session)
        db.session.commit()
        counts = (
            db.session.scalar(select(func.count()).select_from(User)),
            db.session.scalar(select(func.count()).select_from(Cooperative)),
        )
        second = demo.load(db.session)
        db.session.commit()
        assert second.created == []
        assert first.created
        assert counts == (
            db.session.scalar(select(func.count()).select_from(User)),
            db.session.scalar(select(func.count()).select_from(Cooperative)),
        )
        coops = db.session.scalars(select(Cooperative)).all()
        assert len(coops) >= 8
        assert len({places.city_of(c.division_code).code for c in coops}) >= 5
        assert all(c.uscc and c.uscc.startswith("93") for c in coops)
        roles = {u.role for u in db.session.scalars(select(User))}
        assert roles == set(Role)
        staff_scopes = {
            u.division_code
            for u in db.session.scalars(select(User).where(User.role == Role.SUPPLY_STAFF))
        }
        assert any(code.endswith("00") for code in staff_scopes)
        assert any(not code.endswith("00") for code in staff_scopes)
