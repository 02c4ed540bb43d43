"""RFID tag reads per second through ``POST /logistics/readers/<id>/reads`` and the worker.

A dock-door reader pushes Impinj IoT Device Interface NDJSON: each request carries one
pallet passing the door (``TAGS`` unit tags, each seen twice on each of two antennas, and
one stray tag), a minute after the previous one. Measured in one run, on a throw-away
SQLite database (or ``BENCH_DATABASE_URL``):

1. ingest: the endpoint through Flask's test client (token check, parse, de-duplicate,
   canonicalise, insert with "on conflict do nothing", commit), the worker switched off;
2. worker: the Celery task run eagerly over what the ingest stored (resolve EPCs, group,
   append hash-chained EPCIS ObjectEvents, quarantine the strays);
3. end to end: both, as the app runs by default (the task runs eagerly after commit);
4. baseline: a bare ``INSERT`` of the same rows the ingest stores, one statement and one
   commit per request, in the same database.

Reported as reads per second (every read in the bodies, duplicates included) and as the
ratio of each path's time to the baseline's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

SECRET = "bench-secret-key-not-for-production"  # noqa: S105 - a throw-away app
TAGS = 200
REPEATS = 2  # per antenna
ANTENNAS = 2
STRAY = "E2801160600002054E3D1A2B"


def _app(database_url: str, tmp: Path):
    from market.app import create_app

    return create_app(
        {
            "SECRET_KEY": SECRET,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "MEDIA_DIR": str(tmp / "media"),
            "LABEL_DIR": str(tmp / "labels"),
            "SEARCH_INDEX_DIR": str(tmp / "search"),
            "TESTING": True,
            "LOGISTICS_READS_RATE_LIMIT": "100000 per minute",
            "SEARCH_BACKEND": "like",
        }
    )


def _prepare(app, unit_codes: int) -> dict:
    import flask_migrate

    from logistics import services as logistics
    from market.catalog.models import Category, Product, ProductStatus
    from market.cooperatives.models import Cooperative, CooperativeStatus
    from market.extensions import db
    from traceability import codes
    from traceability import services as trace
    from traceability.models import OriginKind

    with app.app_context():
        flask_migrate.upgrade(revision="heads")
        coop = Cooperative(
            name="湛江市麻章区对虾养殖专业合作社",
            division_code="440811",
            status=CooperativeStatus.APPROVED,
        )
        db.session.add(coop)
        db.session.flush()
        product = Product(
            cooperative_id=coop.id,
            title="湛江对虾 鲜活 2斤",
            category=Category.AQUATIC,
            unit="盒",
            price_fen=8800,
            status=ProductStatus.ON_SALE,
            origin_code="440811",
        )
        db.session.add(product)
        db.session.flush()
        prefix = app.config["GS1_COMPANY_PREFIX"]
        product.item_ref, product.gtin = product.id, codes.make_gtin(prefix, product.id)
        batch = trace.create_batch(
            db.session,
            coop.id,
            trace.BatchData(
                product_id=product.id,
                name="对虾 bench",
                harvest_date=trace.today_shanghai() - timedelta(days=1),
                quantity=10_000,
                unit="斤",
                origin_code="440811",
                origin_kind=OriginKind.POND,
            ),
            user_id=None,
            company_prefix=prefix,
        )
        trace.issue_codes(
            db.session, batch.id, unit_codes, company_prefix=prefix, max_count=unit_codes
        )
        point = logistics.create_read_point(
            db.session,
            cooperative_id=coop.id,
            name="出库门",
            kind="gate",
            division_code="440811",
            biz_step="departing",
            company_prefix=prefix,
        )
        reader, token = logistics.register_reader(
            db.session, cooperative_id=coop.id, name="R700", read_point_id=point.id
        )
        epcs = [c.epc_hex for c in trace.unit_codes(db.session, batch.id)]
        reader_id = reader.id
        db.session.commit()
    return {"reader": reader_id, "token": token, "epcs": epcs}


def _body(epcs: list[str], at: datetime) -> bytes:
    lines = []
    for index, epc in enumerate([*epcs, STRAY]):
        for antenna in range(1, ANTENNAS + 1):
            for repeat in range(REPEATS):
                seen = at + timedelta(milliseconds=index * 5 + repeat * 400 + antenna)
                stamp = seen.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                lines.append(
                    json.dumps(
                        {
                            "timestamp": stamp,
                            "hostname": "impinj-bench",
                            "eventType": "tagInventory",
                            "tagInventoryEvent": {
                                "epcHex": epc,
                                "antennaPort": antenna,
                                "peakRssiCdbm": -5500,
                                "lastSeenTime": stamp,
                            },
                        }
                    )
                )
    return ("\n".join(lines) + "\n").encode()


def _reset_reads(app) -> None:
    """Empty what a run wrote, so each measured path starts from the same tables."""
    from sqlalchemy import delete, update

    from logistics.models import QuarantinedEpc, TagRead
    from market.extensions import db
    from traceability.models import ChainHead, EventBatch, EventEPC, TraceEvent

    with app.app_context():
        db.session.execute(delete(TagRead))
        db.session.execute(delete(QuarantinedEpc))
        rfid = db.select(TraceEvent.id).where(TraceEvent.source == "rfid")
        db.session.execute(delete(EventEPC).where(EventEPC.event_pk.in_(rfid)))
        db.session.execute(delete(EventBatch).where(EventBatch.event_pk.in_(rfid)))
        db.session.execute(delete(TraceEvent).where(TraceEvent.source == "rfid"))
        # The chains restart after the harvest events (a benchmark may rewind them).
        for head in db.session.scalars(db.select(ChainHead)):
            last = db.session.scalars(
                db.select(TraceEvent)
                .where(TraceEvent.chain_key == head.chain_key)
                .order_by(TraceEvent.seq.desc())
                .limit(1)
            ).first()
            db.session.execute(
                update(ChainHead)
                .where(ChainHead.chain_key == head.chain_key)
                .values(
                    length=(last.seq + 1) if last else 0, head_hash=last.hash if last else "0" * 64
                )
            )
        db.session.commit()


def _post_all(app, world: dict, bodies: list[bytes]) -> float:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {world['token']}", "Content-Type": "application/x-ndjson"}
    start = time.perf_counter()
    for body in bodies:
        response = client.post(
            f"/logistics/readers/{world['reader']}/reads", data=body, headers=headers
        )
        if response.status_code != 202:
            raise RuntimeError(f"ingest failed: {response.status_code} {response.get_data()[:200]}")
    return time.perf_counter() - start


def _stored_rows(app) -> list[dict]:
    from logistics.models import ReadStatus, TagRead
    from market.extensions import db

    with app.app_context():
        rows = db.session.scalars(db.select(TagRead).order_by(TagRead.id)).all()
        return [
            {
                "dedupe_key": r.dedupe_key,
                "reader_id": r.reader_id,
                "epc": r.epc,
                "antenna": r.antenna,
                "read_point_id": r.read_point_id,
                "rssi_dbm": r.rssi_dbm,
                "seen_count": r.seen_count,
                "seen_at": r.seen_at,
                "received_at": r.received_at,
                "status": ReadStatus.PENDING,
            }
            for r in rows
        ]


def run(quick: bool = False) -> dict:
    from sqlalchemy import insert

    from logistics import tasks
    from logistics.models import TagRead
    from market.extensions import db
    from traceability.models import TraceEvent

    requests = 10 if quick else 40
    tmp = Path(tempfile.mkdtemp(prefix="yuenong-bench-logistics-"))
    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'bench.sqlite3'}"
    try:
        app = _app(database_url, tmp)
        world = _prepare(app, TAGS * 2)
        base = datetime.now(UTC) - timedelta(hours=requests)
        bodies = [
            _body(world["epcs"][(i % 2) * TAGS : (i % 2 + 1) * TAGS], base + timedelta(minutes=i))
            for i in range(requests)
        ]
        reads = requests * (TAGS + 1) * ANTENNAS * REPEATS

        # 1 + 2: ingest alone, then the worker alone.
        eager_delay = tasks.process_reads.delay
        tasks.process_reads.delay = lambda *_a, **_k: None
        try:
            ingest_s = _post_all(app, world, bodies)
        finally:
            tasks.process_reads.delay = eager_delay
        rows = _stored_rows(app)
        start = time.perf_counter()
        with app.app_context():
            tasks.process_reads.run(world["reader"])
        worker_s = time.perf_counter() - start
        with app.app_context():
            events = db.session.scalar(
                db.select(db.func.count(TraceEvent.id)).where(TraceEvent.source == "rfid")
            )
        _reset_reads(app)

        # 3: end to end, the task running eagerly after each commit.
        end_to_end_s = _post_all(app, world, bodies)
        _reset_reads(app)

        # 4: the bare insert of the same rows, one statement and commit per request.
        per_request = len(rows) // requests
        with app.app_context():
            start = time.perf_counter()
            for i in range(requests):
                chunk = rows[i * per_request : (i + 1) * per_request]
                db.session.execute(insert(TagRead), chunk)
                db.session.commit()
            insert_s = time.perf_counter() - start
        _reset_reads(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    figures = {
        "backend": "postgresql" if database_url.startswith("postgres") else "sqlite",
        "requests": requests,
        "reads": reads,
        "rows_stored": len(rows),
        "events": int(events or 0),
        "ingest_reads_per_s": round(reads / ingest_s),
        "worker_reads_per_s": round(reads / worker_s),
        "end_to_end_reads_per_s": round(reads / end_to_end_s),
        "bare_insert_reads_per_s": round(reads / insert_s),
        "ingest_vs_bare_insert": round(ingest_s / insert_s, 2),
        "end_to_end_vs_bare_insert": round(end_to_end_s / insert_s, 2),
    }
    print("logistics")
    print(
        f"  {requests} posts of {reads // requests} Impinj reads ({TAGS} tags + 1 stray, x"
        f"{ANTENNAS * REPEATS}), {figures['backend']}: {len(rows)} rows stored, "
        f"{figures['events']} events"
    )
    print(
        f"  ingest endpoint {figures['ingest_reads_per_s']} reads/s · worker "
        f"{figures['worker_reads_per_s']} reads/s · end to end "
        f"{figures['end_to_end_reads_per_s']} reads/s"
    )
    print(
        f"  bare INSERT of the same rows {figures['bare_insert_reads_per_s']} reads/s -> ingest "
        f"x{figures['ingest_vs_bare_insert']}, end to end x{figures['end_to_end_vs_bare_insert']}"
    )
    return figures


if __name__ == "__main__":
    run()
