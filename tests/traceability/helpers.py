"""Traceability records for tests outside this folder (the permission matrix)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask

from market.catalog.models import Product
from market.extensions import db
from traceability import codes, config, services, tasks
from traceability.models import CodeKind, LabelLayout, OriginKind


def trace_world(app: Flask, product: Product, user_id: int | None) -> dict[str, object]:
    """A batch of `product` with one unit code, a finished label job and an API token.

    Returns URL parts for route templates: batch, code, job, token, unit_path, epc,
    missing_report. Call inside an app context; it commits.
    """
    prefix = app.config["GS1_COMPANY_PREFIX"]
    if not product.gtin:
        product.gtin = codes.make_gtin(prefix, product.id)
    batch = services.create_batch(
        db.session,
        product.cooperative_id,
        services.BatchData(
            product_id=product.id,
            name="权限测试批次",
            harvest_date=services.today_shanghai() - timedelta(days=1),
            quantity=10,
            unit="公斤",
            origin_code=product.cooperative.division_code,
            origin_kind=OriginKind.PLOT,
        ),
        user_id=user_id,
        company_prefix=prefix,
    )
    services.issue_codes(db.session, batch.id, 1, company_prefix=prefix, max_count=10)
    code = services.unit_codes(db.session, batch.id)[0]
    job = services.create_label_job(
        db.session, batch.id, layout=LabelLayout.ROLL_40X30, kind=CodeKind.BATCH, max_labels=10
    )
    token, _plain = services.create_token(
        db.session,
        name="matrix",
        scopes=["capture", "query"],
        cooperative_id=product.cooperative_id,
        user_id=user_id,
    )
    db.session.commit()
    tasks.render_label_job(job.id)
    link = urlsplit(
        services.code_link(
            app.config["PUBLIC_BASE_URL"], config.tag_secret(app), code, batch.lot_code
        )
    )
    return {
        "batch": batch.id,
        "code": code.id,
        "job": job.id,
        "token": token.id,
        "unit_path": link.path + "?" + link.query,
        "epc": code.epc_hex,
        "missing_report": "a" * 64 + ".pdf",
    }
