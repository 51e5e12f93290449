"""What a receipt says: the printable document built from one accepted submission.

Pure functions of their arguments and the active language; the printer only lays the result out.
Every personal value is masked here, so no printer ever sees a full name or ID number.
"""

from __future__ import annotations

from datetime import datetime

from devices.printing import PrintStatus, ReceiptDocument, ReceiptLine
from kiosk.i18n import N_, _, current_language
from kiosk.identity import mask_id_number, mask_name

_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_CHANNEL_NAMES = {
    "kiosk": N_("Self-service terminal"),
    "counter": N_("Service counter"),
    "rural": N_("Village service point"),
}

TITLE = N_("Application Receipt")
RECEIPT_NUMBER = N_("Receipt number")
SERVICE = N_("Service")
APPLICANT = N_("Applicant")
ID_NUMBER = N_("ID number")
SUBMITTED_AT = N_("Received at")
TIME_LIMIT = N_("Time limit")
COLLECTION = N_("Collection")
QR_CAPTION = N_("Scan to check progress")
DELIVERED = N_(
    "The service platform has received this application. Scan the code to follow it online."
)
NOT_DELIVERED = N_(
    "This application is saved on this terminal and will be uploaded automatically when the "
    "network is back. The receipt number is already valid."
)
TERMINAL = N_("Terminal {terminal_id} · {channel}")
KEEP_RECEIPT = N_("Please keep this receipt to check progress and collect the result.")

# What the citizen is told on screen when their receipt did not come out, by what went wrong.
_NOT_PRINTED = {
    PrintStatus.PAPER_OUT: N_("The printer has run out of paper, so your receipt was not printed."),
    PrintStatus.COVER_OPEN: N_("The printer is not ready, so your receipt was not printed."),
    PrintStatus.OFFLINE: N_(
        "The printer is not working right now, so your receipt was not printed."
    ),
}
_NOT_PRINTED_OTHER = N_("The printer had a problem, so your receipt was not printed.")
_NOTHING_CHANGED = N_(
    "This does not change your application. Staff at the counter can print your receipt for "
    "you with your receipt number."
)


def not_printed_text(status: PrintStatus) -> str:
    """What happened to the receipt and what the citizen can do, in the active language."""
    happened = _NOT_PRINTED.get(status, _NOT_PRINTED_OTHER)
    gap = "" if current_language().startswith("zh") else " "  # Chinese runs sentences on
    return f"{_(happened)}{gap}{_(_NOTHING_CHANGED)}"


def format_datetime(value: datetime, language: str) -> str:
    """2026年11月23日 14:32 in Chinese, 23 Nov 2026 14:32 otherwise; the wall time as given."""
    clock = f"{value.hour:02d}:{value.minute:02d}"
    if language.startswith("zh"):
        return f"{value.year}年{value.month}月{value.day}日 {clock}"
    return f"{value.day} {_EN_MONTHS[value.month - 1]} {value.year} {clock}"


def channel_name(channel: str) -> str:
    """The translated name of a submission channel; an unknown one is shown as it is."""
    message = _CHANNEL_NAMES.get(channel)
    return _(message) if message is not None else channel


def build_receipt(
    *,
    service_name: str,
    receipt_number: str,
    submitted_at: datetime,
    applicant_name: str,
    id_number: str,
    tracking_url: str,
    delivered: bool,
    terminal_id: str,
    hall_name: str,
    channel: str,
    time_limit_text: str = "",
    collection_text: str = "",
) -> ReceiptDocument:
    """The receipt for one submission, in the active language, with personal values masked.

    service_name, time_limit_text and collection_text arrive already in the active language
    (they come from the catalogue); empty optional texts leave their line out. tracking_url is
    what the QR code carries: the platform's tracking page with the receipt's signed token
    (kiosk/receipt_token.py) when the terminal signs its receipts.
    """
    rows: list[tuple[str, str]] = [
        (SERVICE, service_name),
        (APPLICANT, mask_name(applicant_name)),
        (ID_NUMBER, mask_id_number(id_number)),
        (SUBMITTED_AT, format_datetime(submitted_at, current_language())),
        (TIME_LIMIT, time_limit_text),
        (COLLECTION, collection_text),
    ]
    lines = tuple(ReceiptLine(_(label), value) for label, value in rows if value.strip())
    footer = (
        _(KEEP_RECEIPT),
        _(TERMINAL).format(terminal_id=terminal_id, channel=channel_name(channel)),
    )
    return ReceiptDocument(
        title=_(TITLE),
        subtitle=hall_name,
        receipt_number_label=_(RECEIPT_NUMBER),
        receipt_number=receipt_number,
        lines=lines,
        qr_url=tracking_url,
        qr_caption=_(QR_CAPTION),
        notice=_(DELIVERED) if delivered else _(NOT_DELIVERED),
        footer=footer,
    )
