"""The visit's state machine: order of steps, second cards, and forgetting the person."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kiosk.catalogue import Catalogue, load_catalogue_file
from kiosk.session import Draft, EndReason, SecondCardError, Session, Step, StepError
from tests.unit.test_forms_and_catalogue import CATALOGUE, PERSON


@pytest.fixture
def catalogue() -> Catalogue:
    return load_catalogue_file(CATALOGUE)


def answer_all(session: Session) -> None:
    values = {
        "phone": "13800138000",
        "address": "本市和平路12号3单元401室",
        "reason": "work",
        "residence_start": "2025-06-01",
        "collection": "hall",
    }
    while session.step is Step.QUESTION:
        question = session.current_question
        session.set_answer(question.field, values[question.field])
        assert session.next_page() is None


def test_a_whole_visit(catalogue: Catalogue) -> None:
    session = Session(catalogue)
    session.card_read(PERSON)
    assert session.step is Step.SERVICES
    session.choose_service("residence-permit")
    session.start_form()
    # name and ID number come from the card: they are not asked again
    assert [q.field for q in session.pages][:1] == ["phone"]
    assert session.answers["id_number"] == PERSON.id_number
    answer_all(session)
    assert session.step is Step.REVIEW
    draft = session.begin_submit()
    assert isinstance(draft, Draft)
    assert draft.answers["name"] == "张秀英" and draft.catalogue_version == catalogue.version
    assert session.step is Step.SUBMITTING
    session.submitted("result")
    assert session.step is Step.DONE


def test_a_page_does_not_move_on_with_a_bad_answer(catalogue: Catalogue) -> None:
    session = Session(catalogue)
    session.card_read(PERSON)
    session.choose_service("residence-permit")
    session.start_form()
    session.set_answer("phone", "12")
    error = session.next_page()
    assert error is not None and error.field == "phone"
    assert session.page == 0


def test_submit_with_a_missing_answer_opens_its_page(catalogue: Catalogue) -> None:
    session = Session(catalogue)
    session.card_read(PERSON)
    session.choose_service("residence-permit")
    session.start_form()
    answer_all(session)
    session.edit("reason")
    session.set_answer("reason", None)
    session.step = Step.REVIEW
    problems = session.begin_submit()
    assert isinstance(problems, list) and problems[0].field == "reason"
    assert session.step is Step.QUESTION and session.current_question.field == "reason"
    assert session.answers["phone"] == "13800138000"  # nothing typed is lost


def test_a_second_card_is_refused_and_the_same_card_is_ignored(catalogue: Catalogue) -> None:
    session = Session(catalogue)
    session.card_read(PERSON)
    session.card_read(PERSON)
    other = dataclasses.replace(PERSON, id_number="11010519491231002X", name="阿依古丽")
    with pytest.raises(SecondCardError):
        session.card_read(other)
    assert session.identity is PERSON


def test_ending_forgets_everything(catalogue: Catalogue) -> None:
    session = Session(catalogue)
    session.card_read(PERSON)
    session.choose_service("residence-permit")
    session.start_form()
    session.set_answer("phone", "13800138000")
    assert session.end(EndReason.IDLE) is EndReason.IDLE
    assert session.identity is None and session.answers == {} and session.service is None
    assert session.step is Step.WELCOME and not session.active


def test_steps_out_of_order_are_refused(catalogue: Catalogue) -> None:
    session = Session(catalogue)
    with pytest.raises(StepError):
        session.start_form()
    with pytest.raises(StepError):
        session.choose_service("residence-permit")


def test_back_from_the_first_question_returns_to_the_guide(catalogue: Catalogue) -> None:
    session = Session(catalogue)
    session.card_read(PERSON)
    session.choose_service("pension-certification")
    session.start_form()
    session.previous_page()
    assert session.step is Step.GUIDE


def test_read_only_answers_cannot_be_changed(catalogue: Catalogue, tmp_path: Path) -> None:
    session = Session(catalogue)
    session.card_read(PERSON)
    session.choose_service("residence-permit")
    session.start_form()
    with pytest.raises(StepError):
        session.set_answer("id_number", "11010519491231002X")
