"""What a card reader's event means for the visit in progress: the card journey's rules.

Pure: given the event, where the visit stands and the terminal's rules, say what to do. The Qt
part (ui/card.py) only carries the answer out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from devices.cards.document_check import CheckStatus
from devices.cards.mrz import MrtdIdentity
from devices.identity import is_valid_id_number
from devices.readers.base import EventKind, ReaderError, ReaderEvent
from kiosk.i18n import N_
from kiosk.session import Step

READER_ADVICE = {
    ReaderError.UNSUPPORTED_CARD: N_(
        "This card cannot be read here. Please use your resident ID card, or ask staff for help."
    ),
    ReaderError.CARD_MOVED: N_(
        "The card was moved before reading finished. "
        "Please place it on the reader again and keep it still."
    ),
    ReaderError.READER_GONE: N_("The card reader is not connected. Please ask staff for help."),
    ReaderError.SAM_FAULT: N_("The card reader has a fault. Please ask staff for help."),
    ReaderError.TIMEOUT: N_("Reading the card took too long. Please place it on the reader again."),
    ReaderError.BAD_DATA: N_(
        "The card could not be read properly. Please try again or ask staff for help."
    ),
    ReaderError.OTHER: N_("The card could not be read. Please try again or ask staff for help."),
    ReaderError.ACCESS_KEY_NEEDED: N_(
        "This document's chip needs the data from its machine readable zone. Staff: please type "
        "the document number, date of birth and date of expiry."
    ),
    ReaderError.ACCESS_DENIED: N_(
        "The document data entered does not match this document's chip. Please check the "
        "document number, date of birth and date of expiry."
    ),
    ReaderError.READER_MISMATCH: N_(
        "The card reader cannot be used at the moment. Please ask staff for help."
    ),
    ReaderError.READER_PIN_DAMAGED: N_(
        "The card reader cannot be used at the moment. Please ask staff for help."
    ),
}

# Reader problems only staff can put right: shown to them until dismissed, in every mode.
STAFF_NOTICES = {
    ReaderError.READER_MISMATCH: N_(
        "For staff: a card reader answered that is not the one this terminal recorded (it is on "
        "another port, or the device on its port is a different one), so it is not used. If the "
        "reader was changed on purpose, close the terminal, run it once with --forget-reader-pin, "
        "then start it again: it records the reader it finds."
    ),
    ReaderError.READER_PIN_DAMAGED: N_(
        "For staff: the record of this terminal's card reader is damaged, so no card reader is "
        "used. Close the terminal, run it once with --forget-reader-pin, then start it again: it "
        "records the reader it finds."
    ),
}


DOCUMENT_NOT_GENUINE = N_(
    "For staff: this travel document's chip did not pass the authenticity check, so its data "
    "may have been altered. Check the document itself before going on."
)


DOCUMENT_NOT_CHECKED = N_(
    "For staff: this travel document's chip could not be checked for authenticity (it uses a "
    "method this terminal does not support). Check the document itself before going on."
)


def staff_notice(event: ReaderEvent) -> str:
    """The message id of a notice for staff that event calls for, or "" for none."""
    if event.kind is EventKind.ERROR and event.error is not None:
        return STAFF_NOTICES.get(event.error, "")
    identity = event.identity
    if not isinstance(identity, MrtdIdentity):
        return ""
    check = identity.document_check
    if check.status is CheckStatus.FAILED:
        return DOCUMENT_NOT_GENUINE
    # Only a terminal without a trust store may say nothing: otherwise "not checked" is what a
    # forger gets by choosing an algorithm the check does not know, and staff must look.
    if check.status is CheckStatus.NOT_CHECKED and check.reason != "no_trust_store":
        return DOCUMENT_NOT_CHECKED
    return ""


READING = N_("Reading your card. Please keep it still on the reader…")


class Act(Enum):
    NOTHING = "nothing"
    READING = "reading"  # a card landed: say it is being read
    CLEAR = "clear"  # taken away before it was read: withdraw the "reading" line
    ADVISE = "advise"  # tell the person what went wrong (advice names the message)
    ASK_MRZ = "ask_mrz"  # staff type the document's MRZ data
    IDENTITY = "identity"  # a card was read: the visit starts (or the same card is back)
    END_VISIT = "end_visit"  # the card went: the visit ends and is wiped
    ASK_STAFF = "ask_staff"  # the card went: staff decide whether to go on


@dataclass(frozen=True, slots=True)
class Decision:
    act: Act
    advice: str = ""  # a message id (N_), translated when shown
    forget_mrz: bool = False  # MRZ data typed for this reader is no longer needed


@dataclass(frozen=True, slots=True)
class Where:
    """Where the visit stands, as far as the card rules care."""

    step: Step
    active: bool  # a card was read for this visit
    # A relative applies for the applicant (代办): the applicant's card comes off the reader
    # and the agent's own goes on and off again; none of that ends or questions the visit.
    swapping_cards: bool = False

    @property
    def waiting_for_card(self) -> bool:
        return self.step is Step.WELCOME and not self.active

    @property
    def in_visit(self) -> bool:
        return self.active and self.step not in (Step.DONE, Step.WELCOME)


def _removed(where: Where, *, removal_ends_visit: bool) -> Decision:
    if where.waiting_for_card:
        return Decision(Act.CLEAR, forget_mrz=True)
    if where.swapping_cards or not where.in_visit:
        return Decision(Act.NOTHING, forget_mrz=True)
    return Decision(Act.END_VISIT if removal_ends_visit else Act.ASK_STAFF, forget_mrz=True)


def decide(
    event: ReaderEvent, where: Where, *, removal_ends_visit: bool, staff_view: bool
) -> Decision:
    kind = event.kind
    if kind is EventKind.IDENTITY and event.identity is not None:
        identity = event.identity
        if not isinstance(identity, MrtdIdentity) and not is_valid_id_number(identity.id_number):
            if where.step is Step.WELCOME:
                return Decision(Act.ADVISE, READER_ADVICE[ReaderError.BAD_DATA], forget_mrz=True)
            return Decision(Act.NOTHING, forget_mrz=True)
        return Decision(Act.IDENTITY, forget_mrz=True)
    if kind is EventKind.CARD_PRESENT:
        return Decision(Act.READING, READING) if where.waiting_for_card else Decision(Act.NOTHING)
    if kind is EventKind.CARD_REMOVED:
        return _removed(where, removal_ends_visit=removal_ends_visit)
    if kind is EventKind.ERROR and event.error is not None:
        if where.step is not Step.WELCOME:
            return Decision(Act.NOTHING)
        if event.error in (ReaderError.ACCESS_KEY_NEEDED, ReaderError.ACCESS_DENIED):
            if staff_view:
                return Decision(Act.ASK_MRZ, READER_ADVICE[event.error])
            # a kiosk cannot ask a citizen for the MRZ: send the holder to a counter
            return Decision(Act.ADVISE, READER_ADVICE[ReaderError.UNSUPPORTED_CARD])
        return Decision(Act.ADVISE, READER_ADVICE[event.error])
    if kind is EventKind.READER_REMOVED and where.step is Step.WELCOME:
        return Decision(Act.ADVISE, READER_ADVICE[ReaderError.READER_GONE])
    return Decision(Act.NOTHING)
