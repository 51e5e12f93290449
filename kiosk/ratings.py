"""The citizen's satisfaction rating (好差评, GB/T 39735-2020), queued like a submission.

Five levels, each a face and words. "Dissatisfied" and below ask why, from a short list, and
whether the citizen wants a call back; the phone number is never asked here: the platform calls
the number given with the case. A rating goes into the outbox and the sync engine delivers it
once, after the submission it rates (kiosk/sync.py); it says nothing about who gave it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kiosk.i18n import N_

if TYPE_CHECKING:  # the done page draws the faces before the outbox is opened
    from offline_queue.outbox import Outbox

# The outbox kind of a rating (kiosk/sync.py sends it).
RATING_KIND = "rating"

# (level, words): as GB/T 39735 names them, best first.
LEVELS: tuple[tuple[str, str], ...] = (
    ("very_satisfied", N_("Very satisfied")),
    ("satisfied", N_("Satisfied")),
    ("basically_satisfied", N_("Basically satisfied")),
    ("dissatisfied", N_("Dissatisfied")),
    ("very_dissatisfied", N_("Very dissatisfied")),
)
RATING_LEVELS = tuple(code for code, _words in LEVELS)
# These ask for a reason and offer a call back.
UNHAPPY = frozenset({"dissatisfied", "very_dissatisfied"})
REASONS: tuple[tuple[str, str], ...] = (
    ("long_wait", N_("Long waiting time")),
    ("complicated", N_("Too complicated to use")),
    ("unclear_materials", N_("Unclear what to bring")),
    ("staff_attitude", N_("Staff attitude")),
    ("other", N_("Another reason")),
)
REASON_CODES = frozenset(code for code, _words in REASONS)


@dataclass(frozen=True, slots=True)
class RatingChoice:
    level: str
    reason: str = ""  # one of REASON_CODES, for an unhappy level only
    call_back: bool = False  # the citizen asked to be called back (unhappy levels only)

    def __post_init__(self) -> None:
        if self.level not in RATING_LEVELS:
            raise ValueError(f"unknown rating level {self.level!r}")
        if self.level in UNHAPPY:
            if self.reason and self.reason not in REASON_CODES:
                raise ValueError(f"unknown rating reason {self.reason!r}")
        elif self.reason or self.call_back:
            raise ValueError("only a dissatisfied rating carries a reason or a call back")

    @property
    def asks_why(self) -> bool:
        return self.level in UNHAPPY


def rating_body(choice: RatingChoice) -> dict[str, object]:
    """What POST /submissions/{id}/rating is sent: the level, and for an unhappy one its reason
    and whether to call back."""
    body: dict[str, object] = {"level": choice.level, "comment": ""}
    if choice.asks_why:
        body["reason"] = choice.reason or "other"
        body["call_back"] = choice.call_back
    return body


class Delivery(Protocol):
    def wake(self) -> None: ...


class RatingDesk:
    """Queues ratings in the outbox and wakes the sync engine."""

    def __init__(
        self,
        outbox: Outbox,
        delivery: Delivery,
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._outbox = outbox
        self._delivery = delivery
        self._clock = clock or _now

    def queue(self, submission_id: str, choice: RatingChoice) -> str:
        """Keep the rating (fsync'd) and have it sent; its id. Blocks on the disk: run it off
        the GUI thread."""
        from offline_queue.outbox import new_item_id

        if not submission_id:
            raise ValueError("a rating names the submission it rates")
        rating_id = new_item_id()
        payload = {
            "rating_id": rating_id,
            "submission_id": submission_id,
            "rated_at": self._clock().isoformat(timespec="seconds"),
            "body": rating_body(choice),
        }
        summary = {"kind": RATING_KIND, "submission_id": submission_id}
        self._outbox.enqueue(
            RATING_KIND,
            json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            json.dumps(summary).encode("utf-8"),
            item_id=rating_id,
        )
        self._delivery.wake()
        return rating_id


def _now() -> dt.datetime:
    return dt.datetime.now().astimezone()
