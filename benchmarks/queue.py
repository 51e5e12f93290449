"""Outbox enqueue throughput and latency, beside persist-queue's SQLiteAckQueue on the same disk.

Both sides commit every item on its own (what a kiosk does: the citizen is told "accepted" only
after the commit) in WAL mode with synchronous=FULL. Ours also encrypts payload and summary.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import persistqueue

from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, new_item_id

_WARMUP = 20


def _payloads(n: int) -> list[bytes]:
    """Submission bodies of about 1.5 KB, like the demo services' (Chinese text, UTF-8)."""
    result = []
    for i in range(n):
        body = {
            "submission_id": f"0192f0c4-{i:04x}-7000-8000-000000000000",
            "service_id": "residence-permit",
            "catalogue_version": "2026.11.1",
            "receipt_number": f"K01-20261123-{i:04d}",
            "channel": "kiosk",
            "terminal_id": "K01",
            "operator_id": None,
            "created_at": "2026-11-23T14:32:05+08:00",
            "applicant": {
                "name": "王秀英",
                "id_number": "11010519491231002X",
                "sex": "2",
                "nation": "汉",
                "birth_date": "1949-12-31",
                "address": "北京市东城区幸福路12号3栋502室",
            },
            "answers": {
                "phone": "13800138000",
                "reason": "family",
                "residence_start": "2026-03-01",
                "collection": "hall",
                "note": "申请人本人到场办理，材料齐全。" * 20,
                "sequence": i,
            },
        }
        result.append(json.dumps(body, ensure_ascii=False).encode("utf-8"))
    return result


def _p99_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98] * 1000.0


def _measure_outbox(folder: Path, payloads: list[bytes]) -> tuple[float, float]:
    key = load_or_create_key(folder / "outbox.key")
    summary = json.dumps({"receipt_number": "K01-20261123-0001", "name": "王**"}).encode()
    box = Outbox(folder / "outbox.db", key)
    try:
        for payload in payloads[:_WARMUP]:
            box.enqueue("submission", payload, summary, item_id=new_item_id())
        latencies = []
        started = time.perf_counter()
        for payload in payloads:
            t0 = time.perf_counter()
            box.enqueue("submission", payload, summary)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    finally:
        box.close()
    return len(payloads) / elapsed, _p99_ms(latencies)


def _measure_persistqueue(folder: Path, payloads: list[bytes]) -> tuple[float, float]:
    queue = persistqueue.SQLiteAckQueue(str(folder), auto_commit=True, multithreading=True)
    # It opens its connections in WAL mode and leaves synchronous at the build default; set FULL
    # on both (reader and writer) so the two sides promise the same durability.
    for conn in {id(queue._conn): queue._conn, id(queue._putter): queue._putter}.values():
        conn.execute("PRAGMA synchronous = FULL")
    try:
        for payload in payloads[:_WARMUP]:
            queue.put(payload)
        latencies = []
        started = time.perf_counter()
        for payload in payloads:
            t0 = time.perf_counter()
            queue.put(payload)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    finally:
        queue.close()
    return len(payloads) / elapsed, _p99_ms(latencies)


def measure_enqueue(n: int = 2000, tmp: Path | None = None) -> dict[str, float]:
    """Enqueue n ~1.5 KB submissions into our outbox and into persist-queue, in this run."""
    payloads = _payloads(n)
    with tempfile.TemporaryDirectory(dir=tmp) as scratch:
        root = Path(scratch)
        (root / "ours").mkdir()
        (root / "persistqueue").mkdir()
        ours_rate, ours_p99 = _measure_outbox(root / "ours", payloads)
        theirs_rate, theirs_p99 = _measure_persistqueue(root / "persistqueue", payloads)
    return {
        "enqueue_per_s": round(ours_rate, 1),
        "enqueue_p99_ms": round(ours_p99, 3),
        "persistqueue_enqueue_per_s": round(theirs_rate, 1),
        "persistqueue_enqueue_p99_ms": round(theirs_p99, 3),
        "payload_bytes": float(len(payloads[0])) if payloads else 0.0,
    }
