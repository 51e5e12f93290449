"""Staff are told when a travel document's chip fails Passive Authentication, and only then."""

from __future__ import annotations

import datetime as dt

import pytest

from devices.cards.document_check import CheckStatus, DocumentCheck
from devices.cards.mrz import parse, to_identity
from devices.readers.base import EventKind, ReaderEvent
from kiosk.card_rules import DOCUMENT_NOT_CHECKED, DOCUMENT_NOT_GENUINE, staff_notice
from kiosk.submissions import submission_body

TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n"
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
)


def _passport(check: DocumentCheck) -> ReaderEvent:
    identity = to_identity(parse(TD3, dt.date(2010, 1, 1)), document_check=check)
    return ReaderEvent(EventKind.IDENTITY, "Virtual PCD 00 00", identity=identity)


@pytest.mark.parametrize(
    ("check", "told"),
    [
        (DocumentCheck(CheckStatus.FAILED, "dg_hash_mismatch"), True),
        (DocumentCheck(CheckStatus.FAILED, "unknown_csca"), True),
        (DocumentCheck(CheckStatus.PASSED), False),
        (DocumentCheck(CheckStatus.NOT_CHECKED, "no_trust_store"), False),
    ],
)
def test_staff_are_told_of_a_chip_that_failed(check: DocumentCheck, told: bool) -> None:
    assert (staff_notice(_passport(check)) == DOCUMENT_NOT_GENUINE) is told


@pytest.mark.parametrize("reason", ["unsupported_algorithm", "check_error"])
def test_a_chip_that_could_not_be_checked_is_not_passed_over_in_silence(reason: str) -> None:
    notice = staff_notice(_passport(DocumentCheck(CheckStatus.NOT_CHECKED, reason)))
    assert notice == DOCUMENT_NOT_CHECKED


def test_the_check_goes_with_the_submission() -> None:
    from pathlib import Path

    from kiosk.catalogue import load_catalogue_file
    from kiosk.config import Config
    from kiosk.session import Draft

    root = Path(__file__).resolve().parents[2]
    service = load_catalogue_file(root / "assets" / "catalogue" / "demo_catalogue.json").services[0]
    event = _passport(DocumentCheck(CheckStatus.FAILED, "dg_hash_mismatch", "UT", "CN=DS"))
    assert event.identity is not None
    draft = Draft(service=service, identity=event.identity, answers={}, catalogue_version="1")
    body = submission_body(
        submission_id="x",
        receipt_number="K01-1",
        draft=draft,
        config=Config(),
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    assert body["document_check"] == {
        "status": "failed",
        "reason": "dg_hash_mismatch",
        "country": "UT",
        "signer": "CN=DS",
    }
