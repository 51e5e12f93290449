"""A village bundle through a hall terminal: import and platform acceptance of n submissions.

The platform runs as its own process on a free loopback port with a fresh database. A village
terminal (V01) and a hall terminal (H01) are enrolled with it; the village outbox is filled with
n sealed submissions as its Submitter queues them and exported to a bundle file. The figure is
n divided by the time from importing the file at the hall terminal to the hall terminal's sync
engine having the platform's answer for all of them (read, checked, queued, sent, signature
checked again, every item opened, checked and stored).

    python -m benchmarks.bundles [n] [directory]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks._launch import BenchmarkError
from benchmarks._launch import stop as stop_process
from benchmarks.startup import enrol_terminal
from benchmarks.sync import _fill, _platform_count, _start_platform
from kiosk.bundles import export_bundle, import_bundle
from kiosk.config import Config, Mode
from kiosk.platform_client import PlatformClient
from kiosk.sync import SyncEngine
from kiosk.terminal_auth import load_identity
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, State


def measure_bundle_import(n: int, directory: Path) -> dict[str, float]:
    """bundle_import_per_s, with the export's time and the file's size beside it."""
    db = directory / "platform" / "platform.sqlite3"
    db.parent.mkdir(parents=True)
    process, url = _start_platform(db)
    try:
        village = Config(
            mode=Mode.RURAL, terminal_id="V01", platform_url=url, data_dir=directory / "village"
        )
        hall = replace(village, terminal_id="H01", data_dir=directory / "hall")
        for config in (village, hall):
            enrol_terminal(db.parent, url, config.data_dir, config.terminal_id)
        _fill(village, n)
        path = directory / "village.bundle"
        identity = load_identity(village.data_dir, url)
        with Outbox(village.outbox_path, load_or_create_key(village.key_path)) as box:
            started = time.perf_counter()
            exported = export_bundle(box, identity.key, village.terminal_id, path)
            export_s = time.perf_counter() - started
        if exported.written != n:
            raise BenchmarkError(f"the bundle holds {exported.written} of {n} submissions")
        hall_identity = load_identity(hall.data_dir, url)
        client = PlatformClient(url, auth=hall_identity.auth())
        with Outbox(hall.outbox_path, load_or_create_key(hall.key_path)) as box:
            started = time.perf_counter()
            import_bundle(box, path)
            delivered = SyncEngine(box, client).drain_once()
            elapsed = time.perf_counter() - started
            if delivered != 1 or box.state_of(exported.bundle_id) is not State.DELIVERED:
                raise BenchmarkError("the bundle was not delivered")
        client.close()
        if _platform_count(db) != n:
            raise BenchmarkError("the platform does not hold every submission of the bundle")
        return {
            "bundle_import_per_s": n / elapsed,
            "bundle_import_s": elapsed,
            "bundle_export_s": export_s,
            "bundle_mb": path.stat().st_size / (1024 * 1024),
        }
    finally:
        stop_process(process)


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 5000
    if len(argv) > 1:
        directory = Path(argv[1])
        directory.mkdir(parents=True, exist_ok=True)
        figures = measure_bundle_import(n, directory)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            figures = measure_bundle_import(n, Path(tmp))
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
