"""Celery tasks of the traceability package (take ids, check state first, commit their work)."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from celery import shared_task
from flask import current_app
from sqlalchemy import select, update

from market.extensions import db
from market.types import utcnow
from traceability import config, labels, services
from traceability.models import Batch, CodeKind, JobStatus, LabelJob, TraceCode

log = logging.getLogger(__name__)

#: Codes read from the database per query while rendering.
CHUNK = 1000


def certificate_of(batch: Batch) -> labels.Certificate:
    return labels.Certificate(
        product_name=batch.cert_product_name,
        quantity=batch.cert_quantity,
        origin=batch.cert_origin,
        producer=batch.cert_producer,
        contact=batch.cert_contact,
        issued_on=batch.cert_issued_on.isoformat(),
        lot=batch.lot_code,
        basis=tuple(batch.cert_basis or ()),
    )


def label_items(job: LabelJob, batch: Batch) -> Iterator[tuple[str, str]]:
    """(Digital Link, caption) for every label of the job, read in chunks."""
    app = current_app
    base = app.config["PUBLIC_BASE_URL"]
    secret = config.tag_secret(app)
    length = app.config["TRACE_CODE_TAG_LENGTH"]
    if job.kind is CodeKind.BATCH:
        code = services.batch_code(db.session, batch.id)
        url = services.code_link(base, secret, code, batch.lot_code, tag_length=length)
        for _ in range(job.copies):
            yield url, batch.lot_code
        return
    last_id = 0
    while True:
        query = (
            select(TraceCode)
            .where(
                TraceCode.batch_id == batch.id,
                TraceCode.kind == CodeKind.UNIT,
                TraceCode.id > last_id,
            )
            .order_by(TraceCode.id)
            .limit(CHUNK)
        )
        if job.issue_no is not None:
            query = query.where(TraceCode.issue_no == job.issue_no)
        chunk = list(db.session.scalars(query))
        if not chunk:
            return
        for code in chunk:
            url = services.code_link(base, secret, code, batch.lot_code, tag_length=length)
            yield url, f"{batch.lot_code}  {code.serial}"
        last_id = chunk[-1].id


@shared_task(acks_late=True, ignore_result=True)
def render_label_job(job_id: int) -> None:
    """Render a label job's PDF, reporting progress on the job row as it goes.

    Idempotent: a finished job is left alone; a job found running (its worker died) is
    rendered again from the start.
    """
    job = db.session.get(LabelJob, job_id)
    if job is None or job.status is JobStatus.DONE:
        return
    job.status, job.done, job.error = JobStatus.RUNNING, 0, ""
    db.session.commit()
    batch = db.session.get(Batch, job.batch_id)
    folder = Path(current_app.config["LABEL_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    name = f"labels-{job.id}-{batch.lot_code}-{secrets.token_hex(6)}.pdf"
    partial = folder / (name + ".part")

    def progress(done: int) -> None:
        # A separate UPDATE, committed at once, so the polling page sees it.
        db.session.execute(
            update(LabelJob)
            .where(LabelJob.id == job_id)
            .values(done=min(done, job.total))
            .execution_options(synchronize_session=False)
        )
        db.session.commit()

    try:
        count = labels.render_labels(
            partial,
            job.layout,
            certificate_of(batch),
            label_items(job, batch),
            font_path=current_app.config["LABEL_FONT_PATH"],
            progress=progress,
        )
        os.replace(partial, folder / name)
    except Exception as exc:
        db.session.rollback()
        partial.unlink(missing_ok=True)
        log.exception("label job %s failed", job_id)
        job = db.session.get(LabelJob, job_id)
        job.status = JobStatus.FAILED
        job.error = str(exc)[:200]
        job.finished_at = utcnow()
        db.session.commit()
        if isinstance(exc, labels.LabelFontError):
            return
        raise
    job = db.session.get(LabelJob, job_id)
    db.session.refresh(job)
    job.total = max(job.total, count)
    job.done = count
    job.file_name = name
    job.status = JobStatus.DONE
    job.finished_at = utcnow()
    db.session.commit()
