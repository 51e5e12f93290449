"""The composition root's parts: everything the terminal needs, built from the config."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.identity import Identity
from devices.readers.base import CardReader
from devices.readers.simulated import SimulatedReader
from kiosk.access_keys import AccessKeys
from kiosk.audit_log import AuditLog, open_audit_log
from kiosk.audit_upload import AuditUploader
from kiosk.catalogue import Catalogue, CatalogueError
from kiosk.catalogue_store import TERMINAL_KEYS_FILE, CatalogueStore, TerminalKeysStore
from kiosk.config import Config
from kiosk.corrections import Corrector
from kiosk.demo import demo_identities
from kiosk.lookup import LookupCache, LookupDesk, cache_key
from kiosk.photos import PhotoSource
from kiosk.platform_client import PlatformClient
from kiosk.printers import build_printer
from kiosk.ratings import RatingDesk
from kiosk.readers import READER_PIN_FILE, build_readers
from kiosk.receipt_numbers import ReceiptNumbers
from kiosk.reprint import Reprinter
from kiosk.submissions import Submitter
from kiosk.sync import SyncEngine
from kiosk.terminal_auth import check_transport, load_identity
from kiosk.trust import signing_keys
from offline_queue.files import PRIVATE_DIR, PRIVATE_FILE, narrow_mode
from offline_queue.keys import load_outbox_key
from offline_queue.outbox import Outbox
from offline_queue.recovery import OpenedOutbox, open_outbox
from offline_queue.salvage import SalvageResult, recover_set_aside

log = logging.getLogger(__name__)


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
    # When the catalogue in use was taken from the platform; None: the one shipped with it.
    catalogue_fetched_at: float | None = None
    # Who signed in and out, what was submitted: hash-chained and signed (kiosk/audit_log.py).
    audit: AuditLog | None = None
    # Staff correct a submission the platform refused, under the same id (kiosk/corrections.py).
    corrector: Corrector | None = None
    # Staff print a receipt again from the queue (kiosk/reprint.py).
    reprinter: Reprinter | None = None
    # The terminals' public keys the platform published: any receipt checked offline.
    terminal_keys: TerminalKeysStore | None = None
    # A case looked up at the terminal (kiosk/lookup.py) and the citizens' ratings, queued
    # (kiosk/ratings.py).
    lookup: LookupDesk | None = None
    ratings: RatingDesk | None = None

    def retry_card_read(self, reader: str) -> None:
        """Read the card on this reader again (staff have just typed its MRZ data)."""
        for backend in self.readers:
            retry = getattr(backend, "retry", None)
            if callable(retry):
                retry(reader)

    def housekeeping(self) -> int:
        """Forget delivered rows and receipt files older than the retention; returns how many
        rows and files went, together."""
        days = self.config.delivered_retention_days
        purged = self.outbox.purge_delivered(days * 86400)
        if purged:
            log.info("outbox: %d delivered row(s) past %.0f days removed", purged, days)
        receipts = purge_receipts(self.config.receipts_path, days * 86400)
        if receipts:
            log.info("receipts: %d PDF file(s) past %.0f days removed", receipts, days)
        return purged + receipts

    def close(self) -> None:
        for reader in self.readers:
            reader.stop()
        self.sync.stop()
        self.client.close()
        self.outbox.close()
        if self.audit is not None:
            self.audit.close()
        for callback in reversed(self.on_close):
            callback()


RECEIPT_SUFFIX = ".pdf"
_RECEIPT_TEMPORARY = (".receipt-", ".tmp")  # what PdfReceiptPrinter writes before renaming
_TEMPORARY_GRACE_S = 3600.0  # a temporary younger than this may be a receipt being written


def purge_receipts(folder: Path, older_than_s: float, now: float | None = None) -> int:
    """Delete the receipt PDFs in folder last written more than older_than_s ago; returns how
    many went. Temporaries a crash left go too, once surely not being written. The receipts that
    stay are narrowed to 0600 (files from before receipts were private)."""
    at = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        name = entry.name
        temporary = name.startswith(_RECEIPT_TEMPORARY[0]) and name.endswith(_RECEIPT_TEMPORARY[1])
        if not (temporary or name.endswith(RECEIPT_SUFFIX)):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not entry.is_file(follow_symlinks=False):
                continue
            limit = max(older_than_s, _TEMPORARY_GRACE_S) if temporary else older_than_s
            if info.st_mtime < at - limit:
                os.unlink(entry.path)
                removed += 1
            else:
                narrow_mode(Path(entry.path), PRIVATE_FILE)
        except FileNotFoundError:
            continue  # gone meanwhile (a reprint replaced it): nothing to do
    return removed


def prepare_data_dir(config: Config) -> None:
    """The data directory 0700 (created so, or narrowed), and what it held from before private.

    Files written from now on are private by their own modes and the process umask.
    """
    config.data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    narrow_mode(config.data_dir, PRIVATE_DIR)
    narrow_mode(config.receipts_path, PRIVATE_DIR)
    for path in (config.key_path, config.counters_path, config.catalogue_cache_path):
        narrow_mode(path, PRIVATE_FILE)


def recover_outbox(config: Config, source: Path) -> SalvageResult:
    """Queue again the submissions of a set-aside outbox (source) in this terminal's outbox.

    Opens the live outbox, and so takes its process lock: OutboxLockedError while the terminal
    runs. Other OutboxErrors for a source that is no outbox, the wrong key, a damaged live outbox.
    """
    prepare_data_dir(config)
    key = load_outbox_key(config.outbox_path, config.key_path, config.outbox_key_store)
    with Outbox(config.outbox_path, key.key) as outbox:
        return recover_set_aside(source, outbox, key.key)


def _open_audit(config: Config, key: Ed25519PrivateKey) -> AuditLog | None:
    """The audit log; a damaged one is logged and left alone rather than keep a citizen from
    being served (its chain shows the break to whoever verifies it)."""
    try:
        return open_audit_log(config.data_dir, key)
    except (sqlite3.Error, OSError, ValueError) as exc:
        log.error("the audit log cannot be opened: %s (%s)", type(exc).__name__, exc)
        return None


def build_parts(config: Config, *, demo: bool, bundled_catalogue: Path | None) -> Parts:
    """Raises NotEnrolled when the terminal has no enrolment for config.platform_url, and
    PlainHttpRefused for a plain-http platform on another computer: nothing is opened then."""
    check_transport(config.platform_url)
    prepare_data_dir(config)
    identity = load_identity(config.data_dir, config.platform_url)
    if identity.terminal_id != config.terminal_id:
        log.info("terminal id %s, as enrolled", identity.terminal_id)
        config = replace(config, terminal_id=identity.terminal_id)
    client = PlatformClient(
        config.platform_url,
        auth=identity.auth(),
        ca_path=str(identity.ca_path) if identity.ca_path is not None else None,
    )
    key = load_outbox_key(config.outbox_path, config.key_path, config.outbox_key_store)
    log.info("outbox key from %s", key.source.value)
    opened = open_outbox(config.outbox_path, key.key)
    audit = _open_audit(config, identity.key)
    outbox = opened.outbox
    sync = SyncEngine(outbox, client)
    if audit is not None:
        # The platform keeps its own checked copy: a log rolled back here shows there as a fork.
        sync.set_audit_uploader(AuditUploader(audit, client))
    # Only a catalogue signed by the platform the terminal enrolled with is taken from it (or
    # from the cache); the bundled one ships with the software and is trusted as code is.
    trusted = signing_keys(identity.enrolment.catalogue_keys().values())
    # The terminals' public keys, as the platform publishes them: receipts checked offline.
    terminal_keys = TerminalKeysStore(config.data_dir / TERMINAL_KEYS_FILE, trusted)
    terminal_keys.load()
    store = CatalogueStore(
        config.catalogue_cache_path,
        bundled_catalogue,
        signing_keys=trusted,
        terminal_keys=terminal_keys,
    )
    catalogue: Catalogue | None = None
    error: CatalogueError | None = None
    fetched_at: float | None = None
    try:
        catalogue = store.load_local()
        fetched_at = store.fetched_at()
    except CatalogueError as exc:
        error = exc
    printer = build_printer(config)  # the settings' printer: PDF file, CUPS queue or ESC/POS
    submitter = Submitter(
        config=config,
        outbox=outbox,
        uploader=sync,
        printer=printer,
        numbers=ReceiptNumbers(config.counters_path, config.terminal_id),
        seal_to=identity.enrolment.sealing_public_key(),
        audit=audit,
        # the receipt's QR: a token signed with this terminal's enrolled key, on the platform's
        # public tracking address announced with the catalogue
        receipt_key=identity.key,
        public_tracking=store.tracking_url,
    )
    corrector = Corrector(
        outbox, seal_to=identity.enrolment.sealing_public_key(), audit=audit, wake=sync.wake
    )
    access_keys = AccessKeys()
    readers: list[CardReader] = build_readers(
        config.card_readers,
        access_keys,
        trust_store=config.passport_trust_store,
        pin_path=config.data_dir / READER_PIN_FILE,
    )
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
        catalogue_fetched_at=fetched_at,
        audit=audit,
        corrector=corrector,
        terminal_keys=terminal_keys,
        lookup=LookupDesk(
            client, LookupCache(config.data_dir / "lookup_cache.sqlite3", cache_key(key.key))
        ),
        ratings=RatingDesk(outbox, sync),
        reprinter=Reprinter(
            config=config, outbox=outbox, printer=printer, catalogue=catalogue, audit=audit
        ),
    )
