"""Core pages: home, language switch, health check, uploaded media."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from sqlalchemy import text

from market import media
from market.catalog import services as catalog
from market.catalog.labels import CATEGORY_LABELS
from market.cooperatives import services as cooperatives
from market.extensions import db

bp = Blueprint("core", __name__)


@bp.get("/")
def home():
    coops = cooperatives.approved(db.session)
    featured = catalog.featured_gi(db.session)
    return render_template(
        "market/home.html",
        cooperatives=coops,
        featured=featured,
        category_labels=CATEGORY_LABELS,
    )


def safe_next(target: str | None, fallback: str) -> str:
    """Only follow same-site relative paths, never another host."""
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target


@bp.get("/lang/<code>")
def set_language(code: str):
    if code not in current_app.config["LANGUAGES"]:
        abort(404)
    response = redirect(safe_next(request.args.get("next"), url_for("core.home")), 303)
    response.set_cookie("lang", code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response


@bp.get("/healthz")
def healthz():
    """For operators and load balancers: is the database and the broker reachable?"""
    checks: dict[str, str] = {}
    healthy = True
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
        healthy = False
    celery_conf = current_app.config["CELERY"]
    if celery_conf.get("task_always_eager"):
        checks["broker"] = "eager"
    else:
        try:
            celery = current_app.extensions["celery"]
            with celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"error: {type(exc).__name__}"
            healthy = False
    return jsonify(status="ok" if healthy else "error", checks=checks), (200 if healthy else 503)


@bp.get("/media/<name>")
def media_file(name: str):
    key = name.split("-", 1)[0]
    if not media.is_valid_key(key):
        abort(404)
    response = send_from_directory(current_app.config["MEDIA_DIR"], name, max_age=365 * 24 * 3600)
    # Content-hash names never change content: cache them for a year.
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
