"""The PC/SC backend on the real stack: pcscd with vsmartcard's virtual readers, and emulated
cards that connect to vpcd's socket. Needs the test command's pcscd; fails (never skips) without.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import time

import pytest

from devices.cards.bac import BacKey
from devices.cards.emrtd import EmrtdProfile
from devices.cards.mrz import MrtdIdentity
from devices.identity import Sex
from devices.readers.base import EventKind, ReaderError
from tests.fixtures.emrtd_card import Document, EmrtdChip, UnsupportedChip, VirtualCard, sample_jpeg
from tests.fixtures.pcsc import (
    KeyBox,
    is_error,
    is_kind,
    is_outcome,
    require_pcsc_stack,
    running_backend,
    vpcd_port,
)

pytestmark = pytest.mark.real_device

READER_A, READER_B = "Virtual PCD 00 00", "Virtual PCD 00 01"
# pcscd polls the virtual reader every 0.4 s; a card is noticed within one poll plus a margin.
NOTICED = 2.0


@pytest.fixture(autouse=True)
def _stack() -> None:
    require_pcsc_stack()


def key_for(doc: Document) -> BacKey:
    return BacKey(doc.document_number, doc.birth, doc.expiry)


def test_virtual_readers_appear() -> None:
    with running_backend([EmrtdProfile(KeyBox())], [READER_A, READER_B]) as (backend, log):
        assert backend.readers() == [READER_A, READER_B]
        added = [s.event.reader for s in log.since() if s.event.kind is EventKind.READER_ADDED]
        assert sorted(added) == [READER_A, READER_B]
        assert not [s for s in log.since() if s.event.kind is EventKind.ERROR]
    # Stopped: nothing more is reported, even when a card arrives.
    mark = log.mark()
    with VirtualCard(EmrtdChip(Document()), port=vpcd_port(READER_A)) as card:
        assert card.powered.wait(NOTICED)  # pcscd noticed the card and powered it up
        with pytest.raises(AssertionError):
            log.wait_for(lambda _event: True, 0.3, mark)
    assert card.apdus == []


@pytest.mark.parametrize("kind", ["TD3", "TD1"])
def test_card_read_gives_identity_and_photo(kind: str) -> None:
    from PIL import Image

    photo = sample_jpeg()
    doc = Document(kind=kind, photo=photo)
    keys = KeyBox({READER_A: key_for(doc)})
    with running_backend([EmrtdProfile(keys)], [READER_A]) as (_backend, log):
        mark = log.mark()
        card = VirtualCard(EmrtdChip(doc), port=vpcd_port(READER_A))
        card.insert()
        try:
            present = log.wait_for(is_kind(EventKind.CARD_PRESENT, READER_A), NOTICED, mark)
            outcome = log.wait_for(is_outcome(READER_A), 5.0, mark)
            assert outcome.event.kind is EventKind.IDENTITY, outcome.event
            assert outcome.at - present.at < 1.0
        finally:
            card.remove()
        removed = log.wait_for(is_kind(EventKind.CARD_REMOVED, READER_A), NOTICED, mark)
        kinds = [s.event.kind for s in log.since(mark, READER_A)]
        assert kinds == [EventKind.CARD_PRESENT, EventKind.IDENTITY, EventKind.CARD_REMOVED]
        assert removed.at > outcome.at

    identity = outcome.event.identity
    assert isinstance(identity, MrtdIdentity)
    assert identity.name == "HUANG XIAO MING"
    assert identity.sex is Sex.MALE
    assert identity.birth_date == dt.date(1990, 1, 15)
    assert identity.valid_until == dt.date(2035, 6, 30)
    assert identity.id_number == doc.document_number
    assert identity.source == READER_A
    assert identity.mrz.format == kind
    assert identity.mrz.lines == tuple(
        doc.mrz()[i : i + len(identity.mrz.lines[0])]
        for i in range(0, len(doc.mrz()), len(identity.mrz.lines[0]))
    )
    assert identity.photo == photo
    assert identity.photo_format == "jpeg"
    assert Image.open(io.BytesIO(identity.photo)).size == (120, 160)
    # The chip really ran BAC and secure messaging: plain file access was never needed.
    assert card.apdus[1][:2] == b"\x00\x84"
    assert all(apdu[0] == 0x0C for apdu in card.apdus[3:])


def test_wrong_mrz_is_access_denied_then_retry_reads() -> None:
    doc = Document()
    keys = KeyBox({READER_A: BacKey(doc.document_number, doc.birth, "350701")})
    with running_backend([EmrtdProfile(keys)], [READER_A]) as (backend, log):
        mark = log.mark()
        with VirtualCard(EmrtdChip(doc), port=vpcd_port(READER_A)) as card:
            denied = log.wait_for(is_outcome(READER_A), NOTICED + 2, mark)
            assert denied.event.error is ReaderError.ACCESS_DENIED, denied.event
            assert card.chip.failed_authentications == 1  # type: ignore[attr-defined]
            # Staff correct the expiry date; the card is read again without lifting it.
            keys.put(READER_A, key_for(doc))
            mark = log.mark()
            backend.retry(READER_A)
            read = log.wait_for(is_outcome(READER_A), 3.0, mark)
            assert read.event.kind is EventKind.IDENTITY, read.event
        log.wait_for(is_kind(EventKind.CARD_REMOVED, READER_A), NOTICED, mark)


def test_no_mrz_data_asks_for_it() -> None:
    doc = Document()
    keys = KeyBox()
    with running_backend([EmrtdProfile(keys)], [READER_A]) as (backend, log):
        mark = log.mark()
        with VirtualCard(EmrtdChip(doc), port=vpcd_port(READER_A)):
            needed = log.wait_for(is_outcome(READER_A), NOTICED + 2, mark)
            assert needed.event.error is ReaderError.ACCESS_KEY_NEEDED, needed.event
            keys.put(READER_A, key_for(doc))
            mark = log.mark()
            backend.retry(READER_A)
            read = log.wait_for(is_outcome(READER_A), 3.0, mark)
            assert read.event.identity is not None
            assert read.event.identity.id_number == doc.document_number
        log.wait_for(is_kind(EventKind.CARD_REMOVED, READER_A), NOTICED, mark)


def test_unsupported_card() -> None:
    with running_backend([EmrtdProfile(KeyBox())], [READER_A]) as (_backend, log):
        mark = log.mark()
        with VirtualCard(UnsupportedChip(), port=vpcd_port(READER_A)) as card:
            outcome = log.wait_for(is_outcome(READER_A), NOTICED + 2, mark)
            assert outcome.event.error is ReaderError.UNSUPPORTED_CARD, outcome.event
            assert "6A82" in outcome.event.detail
            assert card.apdus[0] == bytes.fromhex("00A4040C07A0000002471001")
            # After a failed read the backend checks the card is still there.
            assert card.apdus[1:] == [bytes.fromhex("0084000008")]
        log.wait_for(is_kind(EventKind.CARD_REMOVED, READER_A), NOTICED, mark)


def test_silent_chip_times_out_and_the_reader_recovers() -> None:
    doc = Document(photo=sample_jpeg())
    keys = KeyBox({READER_A: key_for(doc)})
    call_timeout = 0.5
    with running_backend([EmrtdProfile(keys)], [READER_A], call_timeout=call_timeout) as (
        _backend,
        log,
    ):
        mark = log.mark()
        card = VirtualCard(EmrtdChip(doc), port=vpcd_port(READER_A), mute_at=5)
        card.insert()
        try:
            assert card.muted.wait(NOTICED + 2)
            silent_since = time.monotonic()
            timed_out = log.wait_for(is_outcome(READER_A), call_timeout + 1.5, mark)
            assert timed_out.event.error is ReaderError.TIMEOUT, timed_out.event
            assert timed_out.at - silent_since < call_timeout + 0.5
        finally:
            card.remove()
        log.wait_for(is_kind(EventKind.CARD_REMOVED, READER_A), NOTICED + 2, mark)
        outcomes = [s for s in log.since(mark, READER_A) if is_outcome(READER_A)(s.event)]
        assert len(outcomes) == 1  # the stuck call's late failure was not reported as well

        mark = log.mark()
        with VirtualCard(EmrtdChip(doc), port=vpcd_port(READER_A)):
            again = log.wait_for(is_outcome(READER_A), NOTICED + 2, mark)
            assert again.event.kind is EventKind.IDENTITY, again.event


def test_two_readers_read_at_once() -> None:
    docs = {
        READER_A: Document(document_number="A00000001", photo=sample_jpeg(seed=1)),
        READER_B: Document(document_number="B00000002", photo=sample_jpeg(seed=2)),
    }
    keys = KeyBox({reader: key_for(doc) for reader, doc in docs.items()})
    with running_backend([EmrtdProfile(keys)], [READER_A, READER_B]) as (_backend, log):
        mark = log.mark()
        cards = [VirtualCard(EmrtdChip(d), port=vpcd_port(r)) for r, d in docs.items()]
        threads = [threading.Thread(target=c.insert) for c in cards]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            for reader, doc in docs.items():
                outcome = log.wait_for(is_outcome(reader), NOTICED + 2, mark)
                assert outcome.event.identity is not None, outcome.event
                assert outcome.event.identity.id_number == doc.document_number
                assert outcome.event.identity.photo == doc.photo
        finally:
            for card in cards:
                card.remove()
        for reader in docs:
            log.wait_for(is_kind(EventKind.CARD_REMOVED, reader), NOTICED, mark)
        assert not [s for s in log.since(mark) if is_error(READER_A, ReaderError.OTHER)(s.event)]
