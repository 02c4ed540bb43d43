"""Trace labels and the public scan page.

1. Label codes per second through the whole PDF path (the Celery task: read the codes
   from the database, build each Digital Link with its HMAC tag, draw the 证码合一 label
   and its QR modules as vectors, write the PDF), beside plain ``qrcode`` PNG generation
   of the same URLs in the same run (``qrcode.make(url).save(png)``, the usual way).
   Goal: at least 300 codes/s per core and at least twice the plain path.
2. Scan page requests per second under gunicorn (2 sync workers) with ``wrk`` on
   127.0.0.1, beside a hello-world route of the same app and server (registered only
   because the app runs with BENCH=true). Goal: at least 0.6x, p99 at most 20 ms.

The app runs on a throw-away SQLite database in a temporary folder (the embedded
default), or on ``BENCH_DATABASE_URL`` when that is set (e.g. PostgreSQL).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import qrcode

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://trace.yuenong.example"
SECRET = "bench-secret-key-not-for-production"  # noqa: S105 - a throw-away benchmark app


def _app(database_url: str, tmp: Path):
    from market.app import create_app

    return create_app(
        {
            "SECRET_KEY": SECRET,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "MEDIA_DIR": str(tmp / "media"),
            "LABEL_DIR": str(tmp / "labels"),
            "PUBLIC_BASE_URL": BASE_URL,
            "TESTING": True,
        }
    )


def _prepare(app, codes_wanted: int) -> dict:
    """Schema, a cooperative, a product, a batch with events and ``codes_wanted`` codes."""
    import flask_migrate

    from market.catalog.models import Category, Product, ProductStatus
    from market.cooperatives.models import Cooperative, CooperativeStatus
    from market.extensions import db
    from market.types import utcnow
    from traceability import codes, config, services
    from traceability.models import CodeKind, LabelLayout, OriginKind

    with app.app_context():
        flask_migrate.upgrade(revision="heads")
        coop = Cooperative(
            name="新会区会城陈皮专业合作社",
            division_code="440705",
            village="会城街道茶坑村",
            status=CooperativeStatus.APPROVED,
            contact_phone="13700000001",
        )
        db.session.add(coop)
        db.session.flush()
        values = {
            "cooperative_id": coop.id,
            "title": "新会陈皮（三年陈）",
            "category": Category.DRIED,
            "unit": "盒",
            "price_fen": 12800,
            "status": ProductStatus.ON_SALE,
            "is_gi": True,
            "gi_name": "新会陈皮",
            "certifications": ["green_food"],
        }
        if hasattr(Product, "origin_code"):
            values["origin_code"] = coop.division_code
        product = Product(**values)
        db.session.add(product)
        db.session.flush()
        prefix = app.config["GS1_COMPANY_PREFIX"]
        product.item_ref, product.gtin = product.id, codes.make_gtin(prefix, product.id)
        batch = services.create_batch(
            db.session,
            coop.id,
            services.BatchData(
                product_id=product.id,
                name="2026年大红柑第一批",
                harvest_date=services.today_shanghai() - timedelta(days=20),
                quantity=500,
                unit="公斤",
                origin_code="440705",
                origin_kind=OriginKind.ORCHARD,
                origin_village="会城街道茶坑村",
                cert_basis=["self_test"],
            ),
            user_id=None,
            company_prefix=prefix,
        )
        for kind, extra in (
            ("storing", {"temperature_c": 16.0}),
            ("shipping", {"note": "顺丰冷运", "place_code": "440100"}),
        ):
            services.record_ui_event(
                db.session,
                batch.id,
                kind,
                when=utcnow() - timedelta(hours=2),
                user_id=None,
                company_prefix=prefix,
                **extra,
            )
        services.issue_codes(
            db.session, batch.id, codes_wanted, company_prefix=prefix, max_count=codes_wanted
        )
        job = services.create_label_job(
            db.session,
            batch.id,
            layout=LabelLayout.ROLL_40X30,
            kind=CodeKind.UNIT,
            max_labels=codes_wanted,
        )
        db.session.commit()
        first = services.unit_codes(db.session, batch.id, limit=1)[0]
        link = services.code_link(BASE_URL, config.tag_secret(app), first, batch.lot_code)
        secret = config.tag_secret(app)
        urls = [
            services.code_link(BASE_URL, secret, c, batch.lot_code)
            for c in services.unit_codes(db.session, batch.id)
        ]
        return {"job": job.id, "scan_url": link, "urls": urls}


def _labels(app, prepared: dict, quick: bool) -> dict:
    from market.extensions import db
    from traceability import tasks
    from traceability.models import LabelJob

    urls = prepared["urls"]
    with app.app_context():
        start = time.perf_counter()
        tasks.render_label_job(prepared["job"])
        pdf_s = time.perf_counter() - start
        job = db.session.get(LabelJob, prepared["job"])
        assert job.done == len(urls), (job.status, job.error)
        pdf_size = (Path(app.config["LABEL_DIR"]) / job.file_name).stat().st_size
    plain = urls[: max(100, len(urls) // 4)]
    start = time.perf_counter()
    for url in plain:
        buffer = io.BytesIO()
        qrcode.make(url).save(buffer)
    png_s = time.perf_counter() - start
    pdf_rate = len(urls) / pdf_s
    png_rate = len(plain) / png_s
    return {
        "label_codes": len(urls),
        "label_pdf_codes_per_s": round(pdf_rate, 1),
        "label_pdf_kb_per_code": round(pdf_size / len(urls) / 1024, 2),
        "plain_qrcode_png_codes_per_s": round(png_rate, 1),
        "label_vs_plain_png": round(pdf_rate / png_rate, 2),
    }


# --------------------------------------------------------------------------------------
# Scan page: CPU per request inside the app (no server), to show where the time goes
# --------------------------------------------------------------------------------------


def _wsgi_cpu(app, paths: list[str], repeat: int) -> float:
    """CPU milliseconds per request through the whole Flask app, best of ``repeat``."""
    from werkzeug.test import EnvironBuilder

    environs = []
    for path in paths:
        raw_path, _sep, query = path.partition("?")
        environ = EnvironBuilder(path=raw_path, query_string=query).get_environ()
        environ.update(RAW_URI=path, REMOTE_ADDR="127.0.0.1")
        environs.append(environ)

    def start_response(*_args: object) -> None:
        return None

    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for environ in environs:
            body = app.wsgi_app(dict(environ), start_response)
            for _chunk in body:
                pass
            body.close()
        best = min(best, (time.process_time() - start) / len(environs) * 1000)
    return best


def _in_process(database_url: str, tmp: Path, prepared: dict, quick: bool) -> dict:
    from market.app import create_app

    app = create_app(
        {
            "SECRET_KEY": SECRET,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PUBLIC_BASE_URL": BASE_URL,
            "BENCH": True,
            "PUBLIC_RATE_LIMIT": "10000000 per minute",
            "TRACE_SCAN_WRITE_BEHIND": 1.0,
        }
    )
    paths = [(lambda u: u.path + "?" + u.query)(urlsplit(url)) for url in prepared["urls"]]
    count = 300 if quick else 1500
    _wsgi_cpu(app, ["/bench/hello"] * 100 + paths[:100], 1)
    hello = _wsgi_cpu(app, ["/bench/hello"] * count, 3)
    scan = _wsgi_cpu(app, paths[:count], 3)
    log = app.extensions.get("trace_scanlog")
    if log is not None:
        log.stop()
    return {
        "hello_cpu_ms_in_app": round(hello, 3),
        "scan_cpu_ms_in_app": round(scan, 3),
    }


# --------------------------------------------------------------------------------------
# Scan page under gunicorn + wrk
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer {url}")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


_ROTATE = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""


def _wrk(url: str, seconds: int, paths: Path | None = None) -> dict:
    """wrk with 2 threads and 4 connections (two per worker); with ``paths``, every
    request takes the next path of that file (many different codes, as real scans)."""
    command = ["wrk", "-t2", "-c4", f"-d{seconds}s", "--latency"]
    env = dict(os.environ)
    if paths is not None:
        script = paths.with_suffix(".lua")
        script.write_text(_ROTATE, encoding="utf-8")
        command += ["-s", str(script)]
        env["BENCH_PATHS"] = str(paths)
    out = subprocess.run(
        [*command, url], check=True, capture_output=True, text=True, env=env
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out).groups()
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p99_ms": float(value) * _UNITS[unit],
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def _scan(database_url: str, prepared: dict, quick: bool, tmp: Path) -> dict:
    if shutil.which("wrk") is None:
        return {"scan_skipped": "wrk is not installed"}
    port = _free_port()
    env = {
        **os.environ,
        "SECRET_KEY": SECRET,
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": BASE_URL,
        "YUENONG_BENCH": "true",
        # Rate limiting stays on (as deployed), generous enough for the load generator.
        "YUENONG_PUBLIC_RATE_LIMIT": "10000000 per minute",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "market.app:create_app()",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    seconds = 4 if quick else 10
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(base + "/bench/hello")
        paths = tmp / "scan-paths.txt"
        paths.write_text(
            "\n".join((lambda u: u.path + "?" + u.query)(urlsplit(url)) for url in prepared["urls"])
            + "\n",
            encoding="utf-8",
        )
        target = urlsplit(prepared["scan_url"])
        scan_url = base + target.path + "?" + target.query
        _wait(scan_url)
        _wrk(base + "/bench/hello", 2)  # warm both workers
        _wrk(base + "/", 2, paths)
        hello = _wrk(base + "/bench/hello", seconds)
        scan = _wrk(base + "/", seconds, paths)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    return {
        # Other processes on the machine skew server figures; this says how busy it was.
        "load_average_1min": round(os.getloadavg()[0], 2),
        "hello_rps": round(hello["rps"], 1),
        "hello_p99_ms": round(hello["p99_ms"], 2),
        "scan_rps": round(scan["rps"], 1),
        "scan_p99_ms": round(scan["p99_ms"], 2),
        "scan_vs_hello": round(scan["rps"] / hello["rps"], 2),
        "scan_non_2xx": scan["errors"],
    }


def run(quick: bool = False) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-trace-"))
    try:
        database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'bench.sqlite3'}"
        app = _app(database_url, tmp)
        prepared = _prepare(app, 600 if quick else 3000)
        figures = {
            **_labels(app, prepared, quick),
            **_in_process(database_url, tmp, prepared, quick),
            **_scan(database_url, prepared, quick, tmp),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("traceability:")
    for key, value in figures.items():
        print(f"  {key:32} {value}")
    goals = [
        ("label PDF >= 300 codes/s", figures["label_pdf_codes_per_s"] >= 300),
        ("label PDF >= 2x plain PNG", figures["label_vs_plain_png"] >= 2),
    ]
    if "scan_rps" in figures:
        goals += [
            ("scan >= 0.6x hello", figures["scan_vs_hello"] >= 0.6),
            ("scan p99 <= 20 ms", figures["scan_p99_ms"] <= 20),
        ]
    for name, met in goals:
        print(f"  goal {name:30} {'met' if met else 'MISSED'}")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
