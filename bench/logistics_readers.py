"""RFID ingest core: parse + de-duplicate + key a full reader batch; cold-chain excursions.

Baselines, measured in the same run: ``json.loads`` of every NDJSON line of the same body
(the least any JSON reader ingest must do), and sorting the same temperature readings by
time (the least an excursion scan must do).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from logistics.coldchain import Reading, excursions
from logistics.readers import MAX_ITEMS, dedupe, dedupe_key, parse_reads

T0 = datetime(2026, 11, 27, tzinfo=UTC)
WINDOW = timedelta(seconds=10)


def _impinj_body(n: int, tags: int, rng: random.Random) -> bytes:
    lines = []
    for i in range(n):
        epc = f"3074257BF7194E40{rng.randrange(tags):08X}"
        seen = T0 + timedelta(milliseconds=i * 20 + rng.randrange(20))
        event = {
            "timestamp": seen.isoformat().replace("+00:00", "Z"),
            "hostname": "impinj-14-1f-2e",
            "eventType": "tagInventory",
            "tagInventoryEvent": {
                "epcHex": epc,
                "antennaPort": rng.randint(1, 2),
                "peakRssiCdbm": -rng.randint(4000, 7500),
                "lastSeenTime": seen.isoformat().replace("+00:00", "Z"),
            },
        }
        lines.append(json.dumps(event))
    return "\n".join(lines).encode()


def _best(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(quick: bool = False) -> dict:
    rng = random.Random(2026)
    repeats = 3 if quick else 7
    n = MAX_ITEMS
    body = _impinj_body(n, tags=60, rng=rng)

    def baseline() -> None:
        [json.loads(line) for line in body.split(b"\n")]

    def ingest() -> None:
        kept = dedupe(parse_reads(body, "application/x-ndjson").reads, WINDOW)
        [dedupe_key(r, WINDOW, reader_id=1) for r in kept]

    kept = dedupe(parse_reads(body, "application/x-ndjson").reads, WINDOW)
    json_s, ingest_s = _best(baseline, repeats), _best(ingest, repeats)

    m = 20_000 if quick else 100_000
    readings = [
        Reading(T0 + timedelta(minutes=i), 3.0 + rng.gauss(0, 1.2), "logger") for i in range(m)
    ]
    rng.shuffle(readings)
    sort_s = _best(lambda: sorted(readings, key=lambda r: r.at), repeats)
    scan_s = _best(lambda: excursions(readings, 0.0, 4.0), repeats)
    found = excursions(readings, 0.0, 4.0)

    figures = {
        "batch_reads": n,
        "batch_kept_after_dedupe": len(kept),
        "json_loads_ms": round(json_s * 1000, 1),
        "ingest_ms": round(ingest_s * 1000, 1),
        "ingest_reads_per_s": round(n / ingest_s),
        "ingest_vs_json_loads": round(ingest_s / json_s, 2),
        "readings": m,
        "excursions_found": len(found),
        "sort_ms": round(sort_s * 1000, 1),
        "excursions_ms": round(scan_s * 1000, 1),
        "excursions_vs_sort": round(scan_s / sort_s, 2),
    }
    print("logistics_readers")
    print(
        f"  parse+dedupe+keys of {n} Impinj NDJSON events: {figures['ingest_ms']} ms "
        f"({figures['ingest_reads_per_s']} reads/s), json.loads alone {figures['json_loads_ms']}"
        f" ms -> x{figures['ingest_vs_json_loads']}; kept {len(kept)} after a 10 s window"
    )
    print(
        f"  excursions over {m} readings: {figures['excursions_ms']} ms, sorting alone "
        f"{figures['sort_ms']} ms -> x{figures['excursions_vs_sort']}; {len(found)} found"
    )
    return figures


if __name__ == "__main__":
    run()
