"""Printing a receipt again from the upload queue, for staff at a counter or service point.

The submission itself is sealed to the platform and cannot be read back; its summary keeps what a
receipt shows, already masked (receipt number, service, masked name and ID number, when it was
saved, the tracking link with the receipt's signed token). The receipt is made again from it,
with the very QR code the first one had, saying truthfully whether the platform has the
application now. Every reprint is audited.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from devices.printing import PrintResult, PrintStatus, ReceiptPrinter
from kiosk.catalogue import Catalogue, UnknownServiceError
from kiosk.config import Config
from kiosk.errors import UserFacingError
from kiosk.i18n import N_, pick
from kiosk.receipt import build_receipt
from kiosk.receipt_token import tracking_link
from kiosk.submissions import SUBMISSION_KIND, AuditSink
from offline_queue.outbox import Outbox, State

log = logging.getLogger(__name__)

NOT_REPRINTABLE = N_(
    "This entry has no receipt to print again (it was saved before receipts were kept, or it is "
    "not an application)."
)


# Why a receipt did not come out, for staff.
PRINT_PROBLEMS = {
    PrintStatus.PAPER_OUT: N_("the printer is out of paper"),
    PrintStatus.COVER_OPEN: N_("the printer's cover is open"),
    PrintStatus.OFFLINE: N_("the printer is not connected or not answering"),
    PrintStatus.ERROR: N_("the printer reported a fault"),
}


class NotReprintable(UserFacingError):
    def __init__(self) -> None:
        super().__init__(NOT_REPRINTABLE)


def receipt_record(
    *,
    receipt_number: str,
    service_id: str,
    created_at: str,
    masked_name: str,
    masked_id: str,
    tracking_url: str,
    receipt_token: str = "",
) -> dict[str, str]:
    """What a submission's summary keeps for a reprint: nothing unmasked. tracking_url is the
    QR code's link (with receipt_token in it when the receipt was signed)."""
    record = {
        "receipt_number": receipt_number,
        "service_id": service_id,
        "created_at": created_at,
        "masked_name": masked_name,
        "masked_id": masked_id,
        "tracking_url": tracking_url,
    }
    if receipt_token:
        record["receipt_token"] = receipt_token
    return record


def reprint_link(summary: dict[str, object]) -> str:
    """The QR code's link for a reprint: the first receipt's tracking page with its token (an
    unsigned receipt's link as it was)."""
    link = str(summary["tracking_url"])
    token = summary.get("receipt_token")
    if isinstance(token, str) and token:
        return tracking_link(link.split("?", 1)[0], token)
    return link


class Reprinter:
    def __init__(
        self,
        *,
        config: Config,
        outbox: Outbox,
        printer: ReceiptPrinter,
        catalogue: Catalogue | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self._config = config
        self._outbox = outbox
        self._printer = printer
        self._catalogue = catalogue
        self._audit = audit

    def set_catalogue(self, catalogue: Catalogue | None) -> None:
        """The catalogue in use: the service's name and guide lines on the receipt."""
        self._catalogue = catalogue

    def can_reprint(self, summary: dict[str, object]) -> bool:
        return all(
            isinstance(summary.get(key), str) and summary.get(key)
            for key in ("receipt_number", "service_id", "created_at", "masked_id", "tracking_url")
        )

    def reprint(self, item_id: str, staff: str) -> PrintResult:
        """Print the receipt of this queued or delivered submission again; NotReprintable when
        its summary does not hold one. A printer's failure is the result's status."""
        blob = self._outbox.get_summary(item_id)
        try:
            summary = json.loads(blob) if blob is not None else {}
        except (ValueError, UnicodeDecodeError):
            summary = {}
        if not isinstance(summary, dict) or not self.can_reprint(summary):
            raise NotReprintable()
        kind = summary.get("kind", SUBMISSION_KIND)
        if kind != SUBMISSION_KIND:
            raise NotReprintable()
        catalogue = self._catalogue
        service_name, time_limit, collection = str(summary["service_id"]), "", ""
        if catalogue is not None:
            try:
                service = catalogue.service(str(summary["service_id"]))
            except UnknownServiceError:
                pass
            else:
                service_name = pick(service.name)
                time_limit = pick(service.guide.time_limit)
                collection = pick(service.guide.collection)
        doc = build_receipt(
            service_name=service_name,
            receipt_number=str(summary["receipt_number"]),
            submitted_at=dt.datetime.fromisoformat(str(summary["created_at"])),
            applicant_name=str(summary.get("masked_name", "")),
            id_number=str(summary["masked_id"]),
            tracking_url=reprint_link(summary),
            delivered=self._outbox.state_of(item_id) is State.DELIVERED,
            terminal_id=self._config.terminal_id,
            hall_name=self._config.hall_name,
            channel=self._config.mode.value,
            time_limit_text=time_limit,
            collection_text=collection,
        )
        try:
            result = self._printer.print_receipt(doc)
        except Exception as exc:
            log.exception("receipt not printed again")
            result = PrintResult(PrintStatus.ERROR, detail=type(exc).__name__)
        self._record(item_id, str(summary["receipt_number"]), staff, result)
        return result

    def _record(self, item_id: str, receipt_number: str, staff: str, result: PrintResult) -> None:
        if self._audit is None:
            return
        try:
            self._audit.append(
                "reprint",
                staff,
                {
                    "submission_id": item_id,
                    "receipt_number": receipt_number,
                    "result": result.status.value,
                },
            )
        except Exception:
            log.exception("the audit entry of a reprint was not written")
