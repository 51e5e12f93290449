"""The "last contact" staff see: kept current by a health check when nothing is waiting."""

from __future__ import annotations

from pathlib import Path

from kiosk.platform_client import PlatformClient
from kiosk.sync import SyncEngine
from offline_queue.outbox import Outbox
from refplatform.server import RunningPlatform
from tests.fixtures.badpeer import BadPeer
from tests.integration.test_sync import StatusWatch, outbox  # noqa: F401 - the fixture


def test_an_idle_engine_asks_the_platform_and_records_the_contact(
    outbox: Outbox,  # noqa: F811 - the fixture imported above
    platform_server: RunningPlatform,
) -> None:
    client = PlatformClient(platform_server.base_url)
    watch = StatusWatch()
    engine = SyncEngine(outbox, client, on_change=watch)
    engine.start()
    try:
        status = watch.wait_for(lambda s: s.last_contact_at is not None)
        assert status.online is True
        assert status.pending == 0 and status.last_success_at is None  # nothing was sent
    finally:
        engine.stop()
        client.close()


def test_a_captive_portal_is_not_contact(
    outbox: Outbox,  # noqa: F811 - the fixture imported above
    bad_peer: BadPeer,
    tmp_path: Path,
) -> None:
    bad_peer.health = "captive"
    client = PlatformClient(bad_peer.base_url)
    watch = StatusWatch()
    engine = SyncEngine(outbox, client, on_change=watch, idle_check_s=0.05)
    engine.start()
    try:
        watch.wait_for(lambda s: s.online is False)
        bad_peer.health = "ok"
        status = watch.wait_for(lambda s: s.online is True and s.last_contact_at is not None)
        assert status.pending == 0
    finally:
        engine.stop()
        client.close()
