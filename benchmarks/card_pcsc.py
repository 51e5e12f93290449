"""Chip card read over PC/SC: an emulated eMRTD is placed on vsmartcard's virtual reader, the
backend runs BAC and reads DG1 (and DG2), and the demo form is prefilled from the identity.

Measured per read, from the moment the card connects to vpcd to the prefilled answers:
`card_prefill_pcsc_ms_*`. pcscd notices a card on the virtual reader only when it polls the
slot, every 0.4 s, and a person places a card at any point of that cycle; so the cards here are
placed at evenly spread points of the cycle (timed from the poll that noticed the previous card's
removal), and the figures include the wait for the poll as a person would see it, without the
noise of random placement. `card_pcsc_read_ms_median` is the part after pcscd reported the card
(connect, BAC, DG1, DG2, prefill). Uses the running pcscd, or starts a private one for the run.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

from devices.cards.bac import BacKey
from devices.cards.emrtd import EmrtdProfile
from devices.readers.base import EventKind
from kiosk.catalogue import load_catalogue_file
from kiosk.forms import prefill
from tests.fixtures.emrtd_card import Document, EmrtdChip, VirtualCard, sample_jpeg
from tests.fixtures.pcsc import (
    KeyBox,
    check_pcsc_stack,
    is_kind,
    is_outcome,
    pcsc_stack,
    running_backend,
    vpcd_port,
)

CATALOGUE = Path(__file__).resolve().parent.parent / "assets" / "catalogue" / "demo_catalogue.json"
POLL_S = 0.4  # pcscd's polling period for readers without card-event support, such as vpcd
WAIT_S = 3.0


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def measure_card_prefill_pcsc(reads: int = 20, seed: int = 4) -> dict[str, float]:
    """Median and 95th percentile of card placed → form prefilled over `reads` (≥ 20) reads."""
    if reads < 20:
        raise ValueError("at least 20 reads")
    service = next(
        s
        for s in load_catalogue_file(CATALOGUE).services
        if any(q.prefill == "identity.name" for q in s.questions)
    )
    doc = Document(photo=sample_jpeg())
    phases = [(k + 0.5) / reads * POLL_S for k in range(reads)]
    random.Random(seed).shuffle(phases)  # noqa: S311 - orders placements, not a secret
    totals_ms: list[float] = []
    reads_ms: list[float] = []
    with pcsc_stack():
        reader = check_pcsc_stack()[0]
        keys = KeyBox({reader: BacKey(doc.document_number, doc.birth, doc.expiry)})
        with running_backend([EmrtdProfile(keys)], [reader]) as (_backend, log):
            last_poll: float | None = None
            for phase in [None, *phases]:  # the first read warms up and is not counted
                if last_poll is not None and phase is not None:
                    # Not waiting for anything: this places the card `phase` seconds into the
                    # polling cycle after the next poll.
                    time.sleep(max(0.0, last_poll + POLL_S + phase - time.monotonic()))
                mark = log.mark()
                card = VirtualCard(EmrtdChip(doc), port=vpcd_port(reader))
                placed = time.monotonic()
                card.insert()
                try:
                    present = log.wait_for(is_kind(EventKind.CARD_PRESENT, reader), WAIT_S, mark)
                    outcome = log.wait_for(is_outcome(reader), WAIT_S, mark)
                    identity = outcome.event.identity
                    if identity is None:
                        raise RuntimeError(f"read failed: {outcome.event.error}")
                    answers = prefill(service, identity)
                    done = time.monotonic()
                finally:
                    card.remove()
                if not any(value == identity.name for value in answers.values()):
                    raise RuntimeError("the form was not prefilled with the name")
                removed = log.wait_for(is_kind(EventKind.CARD_REMOVED, reader), WAIT_S, mark)
                last_poll = removed.at
                if phase is not None:
                    totals_ms.append((done - placed) * 1000.0)
                    reads_ms.append((done - present.at) * 1000.0)
    return {
        "card_prefill_pcsc_ms_median": statistics.median(totals_ms),
        "card_prefill_pcsc_ms_p95": _p95(totals_ms),
        "card_pcsc_read_ms_median": statistics.median(reads_ms),
    }
