"""The journeys' rules without Qt: a held end while saving, stale answer checks, what each card
event means for the visit, and a saved submission never reported as not saved."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from devices.printing import PrintResult, PrintStatus, ReceiptDocument
from devices.readers.base import EventKind, ReaderError, ReaderEvent
from kiosk.card_rules import READER_ADVICE, Act, Where, decide
from kiosk.catalogue import Catalogue, load_catalogue_file
from kiosk.config import Config
from kiosk.forms import validate_field
from kiosk.receipt_numbers import ReceiptNumbers
from kiosk.session import Draft, EndReason, Session, Step, StepError
from kiosk.submissions import Submitter
from offline_queue.outbox import Outbox
from tests.unit.test_forms_and_catalogue import CATALOGUE, PERSON
from tests.unit.test_session import answer_all


@pytest.fixture
def catalogue() -> Catalogue:
    return load_catalogue_file(CATALOGUE)


def at_first_question(catalogue: Catalogue) -> Session:
    session = Session(catalogue)
    session.card_read(PERSON)
    session.choose_service("residence-permit")
    session.start_form()
    return session


def at_review(catalogue: Catalogue) -> Session:
    session = at_first_question(catalogue)
    answer_all(session)  # next_page(): page_to_check, the check, then checked()
    return session


# -- the end of a visit while it is being saved ---------------------------------------------------


def test_an_end_asked_for_while_saving_is_held_until_the_outcome(catalogue: Catalogue) -> None:
    session = at_review(catalogue)
    assert isinstance(session.begin_submit(), Draft)
    assert not session.may_end(EndReason.CARD_REMOVED)
    assert not session.may_end(EndReason.IDLE)  # the first reason is the one kept
    assert session.end_after_outcome is None  # nothing to do until the outcome is known
    assert session.active and session.step is Step.SUBMITTING
    session.submitted("result")
    assert session.end_after_outcome is EndReason.CARD_REMOVED
    assert session.may_end(EndReason.CARD_REMOVED)
    session.end(EndReason.CARD_REMOVED)
    assert session.end_after_outcome is None and not session.active


def test_a_failed_save_with_a_held_end_still_ends(catalogue: Catalogue) -> None:
    session = at_review(catalogue)
    session.begin_submit()
    session.may_end(EndReason.IDLE)
    session.submit_failed()
    assert session.step is Step.REVIEW
    assert session.end_after_outcome is EndReason.IDLE


def test_outside_saving_a_visit_may_end_at_once(catalogue: Catalogue) -> None:
    session = at_review(catalogue)
    assert session.may_end(EndReason.FINISHED)
    assert session.held_end is None


# -- answers checked elsewhere --------------------------------------------------------------------


def test_a_check_of_an_answer_that_changed_meanwhile_is_stale(catalogue: Catalogue) -> None:
    session = at_first_question(catalogue)
    session.set_answer("phone", "12")
    service, field, answers = session.page_to_check()
    session.set_answer("phone", "13800138000")  # typed again while the check ran
    with pytest.raises(StepError):
        session.checked(field, answers, validate_field(service, field, answers))
    assert session.current_question.field == "phone"


def test_a_check_that_comes_back_after_the_page_changed_is_stale(catalogue: Catalogue) -> None:
    session = at_first_question(catalogue)
    session.set_answer("phone", "13800138000")
    _service, field, answers = session.page_to_check()
    session.previous_page()  # back to the guide meanwhile
    with pytest.raises(StepError):
        session.checked(field, answers, None)
    assert session.step is Step.GUIDE


def test_a_refused_answer_stays_on_its_page(catalogue: Catalogue) -> None:
    session = at_first_question(catalogue)
    session.set_answer("phone", "12")
    service, field, answers = session.page_to_check()
    error = session.checked(field, answers, validate_field(service, field, answers))
    assert error is not None and error.field == "phone"
    assert session.current_question.field == "phone"


def test_problems_found_elsewhere_stop_the_submission(catalogue: Catalogue) -> None:
    session = at_review(catalogue)
    service, answers = session.answers_to_check()
    answers["phone"] = "12"
    from kiosk.forms import validate

    problems = validate(service, answers)
    outcome = session.begin_submit(problems)
    assert isinstance(outcome, list) and outcome[0].field == "phone"
    assert session.step is Step.QUESTION and session.current_question.field == "phone"


# -- card events ----------------------------------------------------------------------------------

WAITING = Where(step=Step.WELCOME, active=False)
IN_FORM = Where(step=Step.QUESTION, active=True)
AT_RECEIPT = Where(step=Step.DONE, active=True)
# a relative applies for the applicant: the cards change places on the reader
SWAPPING = Where(step=Step.FORM, active=True, swapping_cards=True)


def event(kind: EventKind, error: ReaderError | None = None) -> ReaderEvent:
    return ReaderEvent(
        kind, "reader", identity=PERSON if kind is EventKind.IDENTITY else None, error=error
    )


@pytest.mark.parametrize(
    ("where", "ends", "expected"),
    [
        (WAITING, True, Act.CLEAR),
        (IN_FORM, True, Act.END_VISIT),
        (IN_FORM, False, Act.ASK_STAFF),
        (AT_RECEIPT, True, Act.NOTHING),  # the receipt page ends by itself
        (SWAPPING, True, Act.NOTHING),  # neither ended nor questioned, even where removal ends
        (SWAPPING, False, Act.NOTHING),
    ],
)
def test_a_card_taken_away(where: Where, ends: bool, expected: Act) -> None:
    decision = decide(
        event(EventKind.CARD_REMOVED), where, removal_ends_visit=ends, staff_view=False
    )
    assert decision.act is expected and decision.forget_mrz


def test_a_card_placed_is_announced_only_while_waiting_for_one() -> None:
    assert (
        decide(
            event(EventKind.CARD_PRESENT), WAITING, removal_ends_visit=True, staff_view=False
        ).act
        is Act.READING
    )
    assert (
        decide(
            event(EventKind.CARD_PRESENT), IN_FORM, removal_ends_visit=True, staff_view=False
        ).act
        is Act.NOTHING
    )


@pytest.mark.parametrize("error", list(ReaderError))
def test_every_reader_error_has_advice(error: ReaderError) -> None:
    kiosk = decide(
        event(EventKind.ERROR, error), WAITING, removal_ends_visit=True, staff_view=False
    )
    staff = decide(
        event(EventKind.ERROR, error), WAITING, removal_ends_visit=False, staff_view=True
    )
    if error in (ReaderError.ACCESS_KEY_NEEDED, ReaderError.ACCESS_DENIED):
        assert kiosk.act is Act.ADVISE
        assert kiosk.advice == READER_ADVICE[ReaderError.UNSUPPORTED_CARD]
        assert staff.act is Act.ASK_MRZ and staff.advice == READER_ADVICE[error]
    else:
        assert kiosk.act is staff.act is Act.ADVISE and kiosk.advice == READER_ADVICE[error]
    assert (
        decide(
            event(EventKind.ERROR, error), IN_FORM, removal_ends_visit=True, staff_view=False
        ).act
        is Act.NOTHING
    )  # a form in progress is not interrupted


def test_a_card_with_a_bad_check_digit_never_starts_a_visit() -> None:
    import dataclasses

    forged = dataclasses.replace(PERSON, id_number=PERSON.id_number[:-1] + "0")
    decision = decide(
        ReaderEvent(EventKind.IDENTITY, "reader", identity=forged),
        WAITING,
        removal_ends_visit=True,
        staff_view=False,
    )
    assert decision.act is Act.ADVISE and decision.advice == READER_ADVICE[ReaderError.BAD_DATA]
    assert (
        decide(event(EventKind.IDENTITY), WAITING, removal_ends_visit=True, staff_view=False).act
        is Act.IDENTITY
    )


# -- after the outbox has the submission ----------------------------------------------------------


class BrokenUploader:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def deliver_now(self, item_id: str, timeout_s: float) -> bool:
        self.asked.append(item_id)
        raise RuntimeError("the sync engine fell over")


class BrokenPrinter:
    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        raise OSError("the printer fell over")


def test_a_saved_submission_is_never_reported_as_not_saved(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.sqlite3", bytes(32))
    try:
        uploader = BrokenUploader()
        submitter = Submitter(
            config=Config(data_dir=tmp_path),
            outbox=box,
            uploader=uploader,
            printer=BrokenPrinter(),
            numbers=ReceiptNumbers(tmp_path / "receipt-counter.json", "K01"),
            now=lambda: dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC),
        )
        session = at_review(catalogue)
        draft = session.begin_submit()
        assert isinstance(draft, Draft)
        result = submitter.submit(draft)  # must not raise: the outbox has it
        assert uploader.asked == [result.submission_id]
        assert not result.delivered and not result.printed
        assert result.print_result.status is PrintStatus.ERROR
        assert box.counts()["queued"] == 1  # it waits for the sync engine, once
        [item] = box.items()
        assert item.id == result.submission_id
        assert json.loads(item.summary)["receipt_number"] == result.receipt_number
    finally:
        box.close()
