"""Delivered rows keep only their receipt details, and only for the configured retention."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from kiosk.app import Parts, build_parts
from kiosk.config import Config
from offline_queue.outbox import State
from tests.fixtures.platform import enrol_absent
from tests.gui.conftest import CATALOGUE, closed_port_url


def _parts(tmp_path: Path, days: float) -> Parts:
    config = Config(
        data_dir=tmp_path / "data", platform_url=closed_port_url(), delivered_retention_days=days
    )
    enrol_absent(config)  # a terminal is enrolled before it starts; its platform is away
    return build_parts(config, demo=False, bundled_catalogue=CATALOGUE)


def test_delivered_rows_go_after_the_retention_and_waiting_rows_never(tmp_path: Path) -> None:
    parts = _parts(tmp_path, days=30)
    try:
        outbox = parts.outbox
        summary = json.dumps({"receipt_number": "K01-20261123-0001"}).encode()
        delivered = outbox.enqueue("submission", b'{"x": 1}', summary)
        waiting = outbox.enqueue("submission", b'{"x": 2}', summary)
        claimed = outbox.claim_next()
        assert claimed is not None and claimed.id == delivered
        outbox.mark_delivered(delivered, b"{}")
        assert parts.housekeeping() == 0  # delivered a moment ago: kept for reprints
        assert outbox.get_summary(delivered) == summary

        parts.config = dataclasses.replace(parts.config, delivered_retention_days=0)
        assert parts.housekeeping() == 1
        assert outbox.state_of(delivered) is None
        assert outbox.state_of(waiting) is State.QUEUED  # never purged while it waits
        assert parts.housekeeping() == 0
    finally:
        parts.close()
