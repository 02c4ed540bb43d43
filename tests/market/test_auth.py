import re

from sqlalchemy import select

from market.auth import services
from market.auth.models import Role, User
from market.extensions import db
from tests.conftest import csrf_token, login, post_form
from tests.factories import PASSWORD, buyer


def test_buyer_registers_and_is_signed_in(client, app):
    response = post_form(
        client,
        "/auth/register",
        {
            "phone": "138 0013 8000",
            "name": "小王",
            "password": "tea-and-lychee",
            "confirm": "tea-and-lychee",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        user = db.session.scalars(select(User).where(User.phone == "13800138000")).one()
        assert user.role is Role.BUYER
        assert user.password_hash.startswith("$argon2id$")
        assert "tea-and-lychee" not in user.password_hash
    home = client.get("/").get_data(as_text=True)
    assert "小王" in home
    assert "退出" in home


def test_register_with_a_bad_phone_marks_the_field_in_chinese_and_stores_nothing(client, app):
    response = post_form(
        client,
        "/auth/register",
        {
            "phone": "12345678901",
            "password": "long-enough-1",
            "confirm": "long-enough-1",
        },
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "请输入11位中国大陆手机号码。" in page
    assert 'aria-invalid="true"' in page
    with app.app_context():
        assert db.session.scalars(select(User)).all() == []


def test_register_answers_in_english_when_chosen(client):
    client.set_cookie("lang", "en")
    response = post_form(
        client,
        "/auth/register",
        {
            "phone": "1380013800",
            "password": "short",
            "confirm": "other",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Enter an 11-digit mainland mobile number." in page
    assert "Passwords do not match." in page


def test_a_taken_phone_is_refused_and_the_form_keeps_what_was_typed(client, app):
    with app.app_context():
        buyer(phone="13900139000")
        db.session.commit()
    response = post_form(
        client,
        "/auth/register",
        {
            "phone": "13900139000",
            "name": "重复",
            "password": "long-enough-1",
            "confirm": "long-enough-1",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "该号码已注册" in page
    assert 'value="重复"' in page
    with app.app_context():
        assert len(db.session.scalars(select(User)).all()) == 1


def test_login_logout(client, app):
    with app.app_context():
        buyer(phone="13700137000", name="阿明")
        db.session.commit()
    login(client, "13700137000", PASSWORD)
    assert "阿明" in client.get("/").get_data(as_text=True)
    response = post_form(client, "/auth/logout", {})
    assert response.status_code == 303
    assert "阿明" not in client.get("/").get_data(as_text=True)


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, app):
    with app.app_context():
        buyer(phone="13700137001")
        db.session.commit()
    for phone in ("13700137001", "13700137999"):
        response = post_form(client, "/auth/login", {"phone": phone, "password": "nope-nope"})
        assert response.status_code == 400
        assert "手机号码或密码错误。" in response.get_data(as_text=True)


def test_login_is_rate_limited(client, app):
    with app.app_context():
        buyer(phone="13700137002")
        db.session.commit()
    token = csrf_token(client, "/auth/login")
    statuses = [
        client.post(
            "/auth/login",
            data={
                "phone": "13700137002",
                "password": "guess-guess",
                "csrf_token": token,
            },
        ).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    page = client.post("/auth/login", data={"csrf_token": token}).get_data(as_text=True)
    assert "请求过于频繁" in page


def test_forms_need_the_csrf_token(client, app):
    with app.app_context():
        buyer(phone="13700137003")
        db.session.commit()
    response = client.post("/auth/login", data={"phone": "13700137003", "password": PASSWORD})
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)
    assert "退出" not in client.get("/").get_data(as_text=True)


def test_change_password(client, app):
    with app.app_context():
        buyer(phone="13700137004")
        db.session.commit()
    login(client, "13700137004", PASSWORD)
    wrong = post_form(
        client,
        "/auth/password",
        {
            "current_password": "not-it-at-all",
            "new_password": "brand-new-pass",
            "confirm": "brand-new-pass",
        },
    )
    assert wrong.status_code == 400
    assert "当前密码不正确。" in wrong.get_data(as_text=True)
    ok = post_form(
        client,
        "/auth/password",
        {
            "current_password": PASSWORD,
            "new_password": "brand-new-pass",
            "confirm": "brand-new-pass",
        },
    )
    assert ok.status_code == 303
    post_form(client, "/auth/logout", {})
    login(client, "13700137004", "brand-new-pass")


def test_an_account_made_for_someone_must_choose_a_password_first(client, app):
    with app.app_context():
        user = buyer(phone="13700137005")
        user.must_change_password = True
        db.session.commit()
    response = post_form(client, "/auth/login", {"phone": "13700137005", "password": PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/auth/password")


def test_open_redirects_are_not_followed(client, app):
    with app.app_context():
        buyer(phone="13700137006")
        db.session.commit()
    token = csrf_token(client, "/auth/login")
    response = client.post(
        "/auth/login?next=https://evil.example/x",
        data={"phone": "13700137006", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    assert "evil.example" not in response.headers["Location"]


def test_phone_normalisation_and_masking():
    assert services.normalize_phone("+86 138-0013-8000") == "13800138000"
    assert services.mask_phone("13800138000") == "138****8000"
    assert re.fullmatch(r"[a-z2-9]{10}", services.initial_password())
