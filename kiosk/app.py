"""The composition root's parts: everything the terminal needs, built from the config."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devices.identity import Identity
from devices.printing import PrintResult, ReceiptDocument, ReceiptPrinter
from devices.readers.base import CardReader
from devices.readers.simulated import SimulatedReader
from kiosk.access_keys import AccessKeys
from kiosk.catalogue import Catalogue, CatalogueError
from kiosk.catalogue_store import CatalogueStore
from kiosk.config import Config
from kiosk.demo import demo_identities
from kiosk.photos import PhotoSource
from kiosk.platform_client import PlatformClient
from kiosk.readers import build_readers
from kiosk.receipt_numbers import ReceiptNumbers
from kiosk.submissions import Submitter
from kiosk.sync import SyncEngine
from offline_queue.keys import load_outbox_key
from offline_queue.outbox import Outbox
from offline_queue.recovery import OpenedOutbox, open_outbox

log = logging.getLogger(__name__)


class DeferredPdfPrinter:
    """The PDF printer, loaded on first use: reportlab and qrcode cost about 150 ms of import
    that the first screen need not wait for (warm() loads them once the window is up)."""

    def __init__(self, out_dir: Path, font_path: Path | None) -> None:
        self._out_dir = out_dir
        self._font_path = font_path
        self._printer: ReceiptPrinter | None = None
        self._lock = threading.Lock()  # warm() and a first receipt may race on worker threads

    def warm(self) -> None:
        self._get()

    def _get(self) -> ReceiptPrinter:
        with self._lock:
            if self._printer is None:
                from devices.printers.pdf import PdfReceiptPrinter

                self._printer = PdfReceiptPrinter(self._out_dir, font_path=self._font_path)
            return self._printer

    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        return self._get().print_receipt(doc)


@dataclass
class Parts:
    config: Config
    outbox: Outbox
    client: PlatformClient
    sync: SyncEngine
    submitter: Submitter
    catalogue_store: CatalogueStore
    catalogue: Catalogue | None
    catalogue_error: CatalogueError | None
    readers: list[CardReader]
    demo_reader: SimulatedReader | None = None
    demo_people: list[Identity] = field(default_factory=list)
    on_close: list[Callable[[], None]] = field(default_factory=list)
    # Set when the outbox was damaged and set aside at start: staff must be told.
    outbox_recovery: OpenedOutbox | None = None
    # Work that can wait until the first screen is up (the demo's platform, loading the
    # printer); it runs on a worker thread then, never on the GUI thread.
    after_first_paint: list[Callable[[], None]] = field(default_factory=list)
    # MRZ data staff typed for a travel document's chip (PC/SC readers ask it for keys).
    access_keys: AccessKeys = field(default_factory=AccessKeys)
    photos: PhotoSource = field(default_factory=PhotoSource)

    def retry_card_read(self, reader: str) -> None:
        """Read the card on this reader again (staff have just typed its MRZ data)."""
        for backend in self.readers:
            retry = getattr(backend, "retry", None)
            if callable(retry):
                retry(reader)

    def housekeeping(self) -> int:
        """Forget delivered rows older than the retention; returns how many went."""
        days = self.config.delivered_retention_days
        purged = self.outbox.purge_delivered(days * 86400)
        if purged:
            log.info("outbox: %d delivered row(s) past %.0f days removed", purged, days)
        return purged

    def close(self) -> None:
        for reader in self.readers:
            reader.stop()
        self.sync.stop()
        self.client.close()
        self.outbox.close()
        for callback in reversed(self.on_close):
            callback()


def build_parts(config: Config, *, demo: bool, bundled_catalogue: Path | None) -> Parts:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    key = load_outbox_key(config.outbox_path, config.key_path, config.outbox_key_store)
    log.info("outbox key from %s", key.source.value)
    opened = open_outbox(config.outbox_path, key.key)
    outbox = opened.outbox
    client = PlatformClient(config.platform_url)
    sync = SyncEngine(outbox, client)
    store = CatalogueStore(config.catalogue_cache_path, bundled_catalogue)
    catalogue: Catalogue | None = None
    error: CatalogueError | None = None
    try:
        catalogue = store.load_local()
    except CatalogueError as exc:
        error = exc
    printer = DeferredPdfPrinter(config.receipts_path, config.receipt_font)
    submitter = Submitter(
        config=config,
        outbox=outbox,
        uploader=sync,
        printer=printer,
        numbers=ReceiptNumbers(config.counters_path, config.terminal_id),
    )
    access_keys = AccessKeys()
    readers: list[CardReader] = build_readers(config.card_readers, access_keys)
    demo_reader: SimulatedReader | None = None
    people: list[Identity] = []
    if demo:
        demo_reader = SimulatedReader()
        readers.append(demo_reader)
        people = demo_identities()
    return Parts(
        config=config,
        outbox=outbox,
        client=client,
        sync=sync,
        submitter=submitter,
        catalogue_store=store,
        catalogue=catalogue,
        catalogue_error=error,
        readers=readers,
        demo_reader=demo_reader,
        demo_people=people,
        outbox_recovery=opened if opened.reason is not None else None,
        access_keys=access_keys,
        photos=PhotoSource.from_library(config.photo_decoder),
        after_first_paint=[printer.warm],
    )
