"""证码合一 label PDFs: every QR decodes with a real decoder and leads to its unit's page."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from market.extensions import db
from tests.conftest import login, post_form
from tests.traceability.conftest import ADMIN_PHONE
from traceability import labels, services
from traceability.models import JobStatus, LabelJob, LabelLayout, TraceCode

PDFTOPPM = shutil.which("pdftoppm")
needs_poppler = pytest.mark.skipif(PDFTOPPM is None, reason="pdftoppm (poppler-utils) missing")


def pdf_pages_as_images(pdf: bytes, tmp_path: Path, dpi: int = 300) -> list[Image.Image]:
    source = tmp_path / "labels.pdf"
    source.write_bytes(pdf)
    subprocess.run(  # noqa: S603 - fixed arguments
        [PDFTOPPM, "-r", str(dpi), "-png", str(source), str(tmp_path / "page")], check=True
    )
    return [Image.open(p) for p in sorted(tmp_path.glob("page-*.png"))]


def decode_all(images: list[Image.Image]) -> list[str]:
    found = []
    for image in images:
        found.extend(
            r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
        )
    return found


def _issue(app, batch_id: int, count: int) -> list[str]:
    with app.app_context():
        services.issue_codes(db.session, batch_id, count, company_prefix="6970000", max_count=1000)
        db.session.commit()
        return [c.serial for c in services.unit_codes(db.session, batch_id)]


@needs_poppler
@pytest.mark.parametrize(
    ("layout", "count"),
    [(LabelLayout.ROLL_40X30, 3), (LabelLayout.ROLL_60X40, 3), (LabelLayout.A4_3X8, 26)],
)
def test_every_printed_qr_decodes_and_opens_its_units_scan_page(
    app, world, client, tmp_path, layout, count
):
    serials = _issue(app, world.batch, count)
    login(client, ADMIN_PHONE)
    response = post_form(
        client,
        f"/trace/batches/{world.batch}/labels",
        {"layout": layout.value, "kind": "unit", "issue_no": "0", "copies": "1"},
    )
    assert response.status_code == 303
    job_page = response.headers["Location"]
    status = client.get(job_page + "/status").get_json()
    assert status["status"] == "done"
    assert status["percent"] == 100
    with client.get(status["download"]) as pdf:
        assert pdf.status_code == 200
        assert pdf.mimetype == "application/pdf"
        data = pdf.data
    assert b"/FontFile2" in data  # the CJK font is embedded
    images = pdf_pages_as_images(data, tmp_path)
    assert len(images) == (count if layout is not LabelLayout.A4_3X8 else 2)
    urls = decode_all(images)
    assert len(urls) == count
    client.get("/lang/zh_Hans_CN")
    anonymous = app.test_client()
    seen = set()
    for url in urls:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == app.config["PUBLIC_BASE_URL"]
        serial = parts.path.rsplit("/", 1)[-1]
        page = anonymous.get(parts.path + "?" + parts.query)
        assert page.status_code == 200, url
        text = page.get_data(as_text=True)
        assert serial in text
        assert "标签可能" not in text
        assert "防伪校验码" not in text
        assert "验证通过" in text
        seen.add(serial)
    assert seen == set(serials)


@needs_poppler
def test_batch_labels_carry_the_batch_code(app, world, client, tmp_path):
    login(client, ADMIN_PHONE)
    response = post_form(
        client,
        f"/trace/batches/{world.batch}/labels",
        {"layout": "60x40", "kind": "batch", "issue_no": "0", "copies": "2"},
    )
    status = client.get(response.headers["Location"] + "/status").get_json()
    with client.get(status["download"]) as pdf:
        data = pdf.data
    urls = decode_all(pdf_pages_as_images(data, tmp_path))
    assert len(urls) == 2
    assert urls[0] == urls[1]
    path = urlsplit(urls[0])
    assert path.path == f"/01/{world.gtin}/10/{world.lot}"
    assert "批次码" in app.test_client().get(path.path + "?" + path.query).get_data(as_text=True)


def test_label_text_shows_the_certificate(app, world, tmp_path):
    """The PDF's text layer carries 承诺达标合格证 and the certificate's fields."""
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("pdftotext missing")
    certificate = labels.Certificate(
        product_name="新会陈皮",
        quantity="500公斤",
        origin="广东省江门市新会区",
        producer="新会区会城陈皮专业合作社",
        contact="13700001001",
        issued_on="2026-11-20",
        lot="XH2611A",
        basis=("self_test",),
    )
    out = tmp_path / "one.pdf"
    labels.render_labels(
        out,
        LabelLayout.ROLL_60X40,
        certificate,
        [("http://yuenong.test/01/06970000000017/10/XH2611A", "XH2611A")],
        font_path=app.config["LABEL_FONT_PATH"],
    )
    text = subprocess.run(  # noqa: S603
        [pdftotext, str(out), "-"], check=True, capture_output=True, text=True
    ).stdout.replace(" ", "")
    for expected in ("承诺达标合格证", "新会陈皮", "500公斤", "13700001001", "2026-11-20"):
        assert expected in text, expected
    assert "不使用禁用农药兽药" in text.replace("\n", "")


def test_a_missing_font_is_a_clear_error(app, world, client, tmp_path):
    app.config["LABEL_FONT_PATH"] = str(tmp_path / "no-such-font.ttc")
    labels.register_font.cache_clear()
    try:
        with pytest.raises(labels.LabelFontError, match="LABEL_FONT_PATH"):
            labels.register_font(app.config["LABEL_FONT_PATH"])
        login(client, ADMIN_PHONE)
        response = post_form(
            client,
            f"/trace/batches/{world.batch}/labels",
            {"layout": "40x30", "kind": "batch", "issue_no": "0", "copies": "1"},
        )
        status = client.get(response.headers["Location"] + "/status").get_json()
    finally:
        app.config["LABEL_FONT_PATH"] = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
        labels.register_font.cache_clear()
    assert status["status"] == "failed"
    assert "LABEL_FONT_PATH" in status["error"]


def test_the_job_page_polls_until_the_pdf_is_ready(app, world, client):
    _issue(app, world.batch, 2)
    with app.app_context():
        job = services.create_label_job(
            db.session,
            world.batch,
            layout=LabelLayout.ROLL_40X30,
            kind=services.CodeKind.UNIT,
            max_labels=100,
        )
        db.session.commit()
        job_id = job.id
    login(client, ADMIN_PHONE)
    page = client.get(f"/trace/labels/{job_id}").get_data(as_text=True)
    assert "setTimeout(poll" in page
    assert "hidden" in page
    assert client.get(f"/trace/labels/{job_id}/status").get_json()["status"] == "pending"
    assert client.get(f"/trace/labels/{job_id}/download").status_code == 404
    from traceability import tasks

    with app.app_context():
        tasks.render_label_job(job_id)
        tasks.render_label_job(job_id)  # a second run changes nothing
        job = db.session.get(LabelJob, job_id)
        assert job.status is JobStatus.DONE
        assert job.done == job.total == 2
    status = client.get(f"/trace/labels/{job_id}/status").get_json()
    assert status == {
        "status": "done",
        "percent": 100,
        "done": 2,
        "total": 2,
        "download": f"/trace/labels/{job_id}/download",
        "error": "",
    }
    with client.get(f"/trace/labels/{job_id}/download") as download:
        assert download.status_code == 200


def test_progress_is_reported_while_rendering(app, world):
    steps: list[int] = []
    labels.render_labels(
        io.BytesIO(),
        LabelLayout.A4_3X8,
        labels.Certificate("陈皮", "1盒", "江门", "合作社", "", "2026-11-20", "XH2611A"),
        (
            (f"http://yuenong.test/01/06970000000017/10/XH2611A/21/{10**10 + i}", "x")
            for i in range(45)
        ),
        font_path=app.config["LABEL_FONT_PATH"],
        progress=steps.append,
        progress_every=20,
    )
    assert steps == [20, 40, 45]


def test_single_codes_come_as_png_and_svg(app, world, client):
    serial = _issue(app, world.batch, 1)[0]
    with app.app_context():
        code_id = db.session.scalars(select(TraceCode.id).where(TraceCode.serial == serial)).one()
    login(client, ADMIN_PHONE)
    png = client.get(f"/trace/codes/{code_id}/qr.png")
    assert png.status_code == 200
    assert png.mimetype == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert len(decoded) == 1
    assert decoded[0].text.startswith(
        f"http://yuenong.test/01/{world.gtin}/10/{world.lot}/21/{serial}?s="
    )
    svg = client.get(f"/trace/codes/{code_id}/qr.svg")
    assert svg.mimetype == "image/svg+xml"
    assert b"<svg" in svg.data
    assert b"<path" in svg.data
    assert client.get(f"/trace/codes/{code_id}/qr.gif").status_code == 404
