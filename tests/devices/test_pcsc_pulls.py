"""A card pulled mid-read, 100 times, on the real stack (pcscd + vpcd): every pull ends in
CARD_MOVED within 2 s, nothing hangs or dies, and the reader reads the next card.

The pulls are spread over every APDU of a whole read (BAC, DG1, DG2), half of them after the
card sent only part of its answer. pcscd polls the virtual slots every 0.4 s, so each pull costs
about two polls; both virtual readers are pulled at once to halve the time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from devices.cards.bac import BacKey
from devices.cards.emrtd import EmrtdProfile
from devices.readers.base import EventKind, ReaderError
from tests.fixtures.emrtd_card import Document, EmrtdChip, VirtualCard, sample_jpeg
from tests.fixtures.pcsc import (
    EventLog,
    KeyBox,
    is_kind,
    is_outcome,
    require_pcsc_stack,
    running_backend,
    vpcd_port,
)

pytestmark = pytest.mark.real_device

READERS = ("Virtual PCD 00 00", "Virtual PCD 00 01")
PULLS = 100
HANG_LIMIT_S = 2.0
NOTICED = 2.0  # pcscd polls every 0.4 s


@dataclass(frozen=True)
class Pull:
    reader: str
    apdu: int
    mid_answer: bool
    outcome: EventKind
    error: ReaderError | None
    delay_s: float  # from the pull to the reported outcome


def whole_read_apdus(doc: Document, log: EventLog, reader: str) -> int:
    mark = log.mark()
    with VirtualCard(EmrtdChip(doc), port=vpcd_port(reader)) as card:
        outcome = log.wait_for(is_outcome(reader), NOTICED + 2, mark)
        assert outcome.event.kind is EventKind.IDENTITY, outcome.event
        count = len(card.apdus)
    log.wait_for(is_kind(EventKind.CARD_REMOVED, reader), NOTICED, mark)
    return count


def pull_series(
    doc: Document, log: EventLog, reader: str, plan: list[tuple[int, bool]], out: list[Pull]
) -> None:
    for apdu, mid_answer in plan:
        mark = log.mark()
        card = VirtualCard(
            EmrtdChip(doc), port=vpcd_port(reader), pull_at=apdu, pull_mid_answer=mid_answer
        )
        card.insert()
        try:
            log.wait_for(is_kind(EventKind.CARD_PRESENT, reader), NOTICED, mark, what="present")
            assert card.pulled.wait(NOTICED), f"the read never reached APDU {apdu}"
            pulled_at = time.monotonic()
            outcome = log.wait_for(is_outcome(reader), HANG_LIMIT_S, mark, what="outcome")
        finally:
            card.remove()
        log.wait_for(is_kind(EventKind.CARD_REMOVED, reader), NOTICED, mark, what="removal")
        out.append(
            Pull(
                reader,
                apdu,
                mid_answer,
                outcome.event.kind,
                outcome.event.error,
                outcome.at - pulled_at,
            )
        )


def test_pull_the_card_mid_read_100_times() -> None:
    require_pcsc_stack()
    doc = Document(photo=sample_jpeg())
    keys = KeyBox({r: BacKey(doc.document_number, doc.birth, doc.expiry) for r in READERS})
    with running_backend([EmrtdProfile(keys)], READERS) as (backend, log):
        total = whole_read_apdus(doc, log, READERS[0])
        assert total >= 12  # SELECT, BAC, DG1 and a DG2 in several chunks

        plan = [(1 + (i * 7) % total, i % 2 == 1) for i in range(PULLS)]
        assert {apdu for apdu, _mid in plan} == set(range(1, total + 1))
        results: dict[str, list[Pull]] = {r: [] for r in READERS}
        failures: list[BaseException] = []

        def run(reader: str, part: list[tuple[int, bool]]) -> None:
            try:
                pull_series(doc, log, reader, part, results[reader])
            except BaseException as exc:  # reported by the test thread below
                failures.append(exc)

        threads = [
            threading.Thread(target=run, args=(reader, plan[i :: len(READERS)]))
            for i, reader in enumerate(READERS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=100)
        assert not any(t.is_alive() for t in threads), "a pull series hung"
        if failures:
            raise failures[0]

        pulls = [p for series in results.values() for p in series]
        assert len(pulls) == PULLS
        wrong = [
            p
            for p in pulls
            if p.outcome is not EventKind.ERROR or p.error is not ReaderError.CARD_MOVED
        ]
        assert not wrong, wrong[:5]
        slowest = max(p.delay_s for p in pulls)
        assert slowest < HANG_LIMIT_S, slowest

        # The backend is still whole: both readers read the next card completely.
        assert sorted(backend.readers()) == list(READERS)
        for reader in READERS:
            assert whole_read_apdus(doc, log, reader) == total
