"""A citizen asks for a person: the request goes to the platform through the outbox.

It is queued like a submission, so it survives a lost network or a restart and reaches staff
exactly once; the platform keeps it under its id. It says which terminal and which kind of page,
never who is there or what they typed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kiosk.config import Config
from kiosk.sync import HELP_REQUEST_KIND
from offline_queue.outbox import Outbox, new_item_id

# How long a citizen is kept waiting for the platform to confirm that staff were told.
CONFIRM_TIMEOUT_S = 5.0
PAGE_KINDS = frozenset(
    {"welcome", "services", "guide", "question", "review", "busy", "done", "message", "other"}
)


class Delivery(Protocol):
    def wake(self) -> None: ...

    def deliver_now(self, item_id: str, timeout_s: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class HelpOutcome:
    help_request_id: str
    reached_staff: bool  # the platform confirmed it; otherwise it waits in the outbox


class HelpDesk:
    """Queues help requests and asks the sync engine to send them at once."""

    def __init__(
        self,
        outbox: Outbox,
        delivery: Delivery,
        config: Config,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
    ) -> None:
        self._outbox = outbox
        self._delivery = delivery
        self._config = config
        self._clock = clock or _now
        self._timeout = confirm_timeout_s

    def body(self, help_request_id: str, page: str, language: str) -> dict[str, object]:
        return help_request_body(self._config, help_request_id, page, language, self._clock())

    def request(self, page: str, language: str) -> HelpOutcome:
        """Queue a request and wait a few seconds for the platform to confirm it. Blocks: run it
        off the GUI thread."""
        help_request_id = new_item_id()
        payload = json.dumps(self.body(help_request_id, page, language), ensure_ascii=False)
        summary = json.dumps({"kind": HELP_REQUEST_KIND, "page": page})
        self._outbox.enqueue(
            HELP_REQUEST_KIND,
            payload.encode("utf-8"),
            summary.encode("utf-8"),
            item_id=help_request_id,
        )
        reached = self._delivery.deliver_now(help_request_id, self._timeout)
        return HelpOutcome(help_request_id, reached)


def help_request_body(
    config: Config, help_request_id: str, page: str, language: str, at: dt.datetime
) -> dict[str, object]:
    """What the platform is told: the terminal, the kind of page, the language, the time."""
    return {
        "help_request_id": help_request_id,
        "terminal_id": config.terminal_id,
        "hall": config.hall_name[:100],
        "channel": config.mode.value,
        "page": page if page in PAGE_KINDS else "other",
        "language": language if language in ("zh_CN", "en") else "zh_CN",
        "requested_at": at.isoformat(timespec="seconds"),
    }


def _now() -> dt.datetime:
    return dt.datetime.now().astimezone()
