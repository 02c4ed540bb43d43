import io

from PIL import Image
from sqlalchemy import select

from market.auth.models import Role, User
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.demo import demo_uscc
from market.extensions import db
from market.notifications.models import Notification
from tests.conftest import login, post_form
from tests.factories import CooperativeFactory, buyer, coop_admin, farmer, platform_admin

PROFILE = {
    "name": "台山市大米专业合作社",
    "division_code": "440781",
    "village": "斗山镇",
    "intro": "台山丝苗米",
    "uscc": "",
    "contact_phone": "",
}


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (640, 480), (200, 120, 40))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (22.0, 15.0, 1.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_a_buyer_applies_and_a_platform_admin_approves(client, app):
    with app.app_context():
        buyer(phone="13500135000")
        platform_admin(phone="13900139999")
        db.session.commit()
    login(client, "13500135000")
    response = post_form(client, "/cooperatives/apply", PROFILE)
    assert response.status_code == 303
    with app.app_context():
        coop = db.session.scalars(select(Cooperative)).one()
        assert coop.status is CooperativeStatus.PENDING
        coop_id = coop.id
    # Not public while pending.
    post_form(client, "/auth/logout", {})
    assert client.get(f"/cooperatives/{coop_id}").status_code == 302

    login(client, "13900139999")
    assert "台山市大米专业合作社" in client.get("/admin").get_data(as_text=True)
    assert post_form(client, f"/admin/cooperatives/{coop_id}/approve", {}).status_code == 303
    with app.app_context():
        applicant = db.session.scalars(select(User).where(User.phone == "13500135000")).one()
        assert applicant.role is Role.COOP_ADMIN
        note = db.session.scalars(select(Notification)).one()
        assert note.user_id == applicant.id
        assert note.title == "台山市大米专业合作社 已通过审核"
    # Reviewing twice changes nothing.
    again = post_form(client, f"/admin/cooperatives/{coop_id}/reject", {}, follow_redirects=True)
    assert "该申请已审核" in again.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Cooperative, coop_id).status is CooperativeStatus.APPROVED


def test_rejection_frees_the_applicant_to_apply_again(client, app):
    with app.app_context():
        applicant = buyer(phone="13500135001")
        platform_admin(phone="13900139998")
        coop = CooperativeFactory(status=CooperativeStatus.PENDING)
        applicant.cooperative = coop
        db.session.commit()
        coop_id = coop.id
    login(client, "13900139998")
    assert post_form(client, f"/admin/cooperatives/{coop_id}/reject", {}).status_code == 303
    with app.app_context():
        user = db.session.scalars(select(User).where(User.phone == "13500135001")).one()
        assert user.cooperative_id is None
        assert user.role is Role.BUYER
        assert db.session.scalars(select(Notification)).one().user_id == user.id


def test_a_bad_credit_code_is_marked_and_nothing_is_stored(client, app):
    with app.app_context():
        buyer(phone="13500135002")
        db.session.commit()
    login(client, "13500135002")
    good = demo_uscc("440781", 1)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    response = post_form(client, "/cooperatives/apply", {**PROFILE, "uscc": bad})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "校验码不符" in page
    assert 'value="台山市大米专业合作社"' in page
    with app.app_context():
        assert db.session.scalars(select(Cooperative)).all() == []
    ok = post_form(client, "/cooperatives/apply", {**PROFILE, "uscc": good.lower()})
    assert ok.status_code == 303
    with app.app_context():
        assert db.session.scalars(select(Cooperative)).one().uscc == good


def test_a_place_outside_guangdong_is_refused(client, app):
    with app.app_context():
        buyer(phone="13500135003")
        db.session.commit()
    login(client, "13500135003")
    response = post_form(client, "/cooperatives/apply", {**PROFILE, "division_code": "110101"})
    assert response.status_code == 400
    assert "请选择广东省内的市或县（区）。" in response.get_data(as_text=True)


def test_cooperative_admin_adds_a_new_farmer_with_a_one_time_password(client, app):
    with app.app_context():
        coop = CooperativeFactory()
        coop_admin(coop, phone="13700137100")
        db.session.commit()
        coop_id = coop.id
    login(client, "13700137100")
    response = post_form(
        client, f"/cooperatives/{coop_id}/members", {"phone": "13600136100", "name": "李秀英"}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    password = page.split('data-testid="initial-password">')[1].split("<")[0]
    with app.app_context():
        farmer_user = db.session.scalars(select(User).where(User.phone == "13600136100")).one()
        assert farmer_user.role is Role.FARMER
        assert farmer_user.cooperative_id == coop_id
        assert farmer_user.must_change_password
    post_form(client, "/auth/logout", {})
    first = post_form(client, "/auth/login", {"phone": "13600136100", "password": password})
    assert first.headers["Location"].endswith("/auth/password")


def test_an_existing_buyer_joins_but_a_member_of_another_cooperative_does_not(client, app):
    with app.app_context():
        coop, other = CooperativeFactory(), CooperativeFactory()
        coop_admin(coop, phone="13700137101")
        buyer(phone="13500135100")
        farmer(other, phone="13600136101")
        db.session.commit()
        coop_id = coop.id
    login(client, "13700137101")
    joined = post_form(client, f"/cooperatives/{coop_id}/members", {"phone": "13500135100"})
    assert joined.status_code == 303
    refused = post_form(client, f"/cooperatives/{coop_id}/members", {"phone": "13600136101"})
    assert refused.status_code == 400
    assert "该号码已属于其他合作社或其他角色。" in refused.get_data(as_text=True)
    with app.app_context():
        moved = db.session.scalars(select(User).where(User.phone == "13600136101")).one()
        assert moved.cooperative_id != coop_id


def test_members_page_masks_phones_for_supervising_staff_but_not_for_the_admin(client, app):
    from tests.factories import staff

    with app.app_context():
        coop = CooperativeFactory(division_code="440705")
        coop_admin(coop, phone="13700137102")
        farmer(coop, phone="13600136102")
        staff("440700", phone="13900139100")
        db.session.commit()
        coop_id = coop.id
    login(client, "13700137102")
    assert "13600136102" in client.get(f"/cooperatives/{coop_id}/members").get_data(as_text=True)
    post_form(client, "/auth/logout", {})
    login(client, "13900139100")
    page = client.get(f"/cooperatives/{coop_id}/members").get_data(as_text=True)
    assert "136****6102" in page
    assert "13600136102" not in page
    assert "添加社员" not in page


def test_profile_photo_is_stored_without_gps(client, app, media_dir):
    with app.app_context():
        coop = CooperativeFactory()
        coop_admin(coop, phone="13700137103")
        db.session.commit()
        coop_id = coop.id
    login(client, "13700137103")
    data = {**PROFILE, "name": "新名字合作社", "photo": (io.BytesIO(_jpeg_with_gps()), "a.jpg")}
    response = post_form(
        client, f"/cooperatives/{coop_id}/edit", data, content_type="multipart/form-data"
    )
    assert response.status_code == 303
    with app.app_context():
        key = db.session.get(Cooperative, coop_id).photo_key
    assert key
    stored = (media_dir / f"{key}-1280.jpg").read_bytes()
    assert b"Exif" not in stored
    with client.get(f"/media/{key}-320.webp") as served:
        assert served.status_code == 200
        assert served.mimetype == "image/webp"
        assert "immutable" in served.headers["Cache-Control"]


def test_a_text_file_is_not_accepted_as_a_photo(client, app, media_dir):
    with app.app_context():
        coop = CooperativeFactory()
        coop_admin(coop, phone="13700137104")
        db.session.commit()
        coop_id, name = coop.id, coop.name
    login(client, "13700137104")
    data = {**PROFILE, "name": "改名", "photo": (io.BytesIO(b"hello, not a photo"), "a.jpg")}
    response = post_form(
        client, f"/cooperatives/{coop_id}/edit", data, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert "该文件不是照片。" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Cooperative, coop_id).name == name
    assert not media_dir.exists() or list(media_dir.iterdir()) == []


def test_platform_admin_creates_cooperative_and_staff(client, app):
    with app.app_context():
        platform_admin(phone="13900139997")
        db.session.commit()
    login(client, "13900139997")
    response = post_form(
        client,
        "/admin/cooperatives/new",
        {
            **PROFILE,
            "admin_phone": "13700137105",
            "admin_name": "黄社长",
        },
    )
    assert response.status_code == 200
    assert 'data-testid="initial-password"' in response.get_data(as_text=True)
    staff_page = post_form(
        client,
        "/admin/staff",
        {
            "phone": "13900139101",
            "name": "江门市供销社",
            "division_code": "440700",
        },
    )
    assert staff_page.status_code == 200
    with app.app_context():
        admin = db.session.scalars(select(User).where(User.phone == "13700137105")).one()
        assert admin.role is Role.COOP_ADMIN
        assert admin.cooperative.status is CooperativeStatus.APPROVED
        staff_user = db.session.scalars(select(User).where(User.phone == "13900139101")).one()
        assert staff_user.role is Role.SUPPLY_STAFF
        assert staff_user.division_code == "440700"
