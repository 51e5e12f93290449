"""An assisted application over real HTTP: the platform takes it only with the staff member, a
signature file matching its digest and the agent exactly when the applicant was not there; and
the terminal's own rules for the confirmation (kiosk/assistance.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.assistance import (
    AGENT_IS_APPLICANT,
    NO_AGENT_CARD,
    NO_RELATION,
    NO_SIGNATURE,
    AssistanceError,
    confirmed,
)
from kiosk.demo import demo_identities
from kiosk.platform_client import PlatformClient
from refplatform.server import RunningPlatform
from tests.fixtures.platform import DEMO_APPLICANT, demo_submission, signed_client

SIGNATURE = b"\x89PNG\r\n\x1a\n" + bytes(range(200))  # what the platform checks: bytes, digest
AGENT = {"name": "李国强", "id_number": "110101198001010010", "relation": "child"}


def _file(name: str, data: bytes, kind: str = "image/png") -> dict[str, Any]:
    return {
        "name": name,
        "content_type": kind,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "data_base64": base64.b64encode(data).decode(),
    }


def _assisted(**overrides: Any) -> dict[str, Any]:
    body = demo_submission()
    body.update(channel="counter", operator_id="S0012")
    body["attachments"] = [_file("signature.png", SIGNATURE)]
    body["assistance"] = {
        "assisted": True,
        "citizen_present": True,
        "agent": None,
        "signed_by": "applicant",
        "signature_sha256": hashlib.sha256(SIGNATURE).hexdigest(),
    }
    for key, value in overrides.items():
        if key in body["assistance"]:
            body["assistance"][key] = value
        else:
            body[key] = value
    return body


@pytest.fixture
def client(platform_server: RunningPlatform, tmp_path: Path) -> Iterator[PlatformClient]:
    made = signed_client(platform_server, tmp_path / "terminal", "K01")
    yield made
    made.close()


def _problems(client: PlatformClient, body: dict[str, Any]) -> list[tuple[str, str]]:
    outcome = client.submit(body["submission_id"], body)
    assert not outcome.delivered
    # not a form a citizen can correct: a body the terminal should never have sent
    assert outcome.http_status == 400 and outcome.error_code == "bad_request", outcome
    return [(problem.field, problem.code) for problem in outcome.fields]


def test_an_assisted_application_is_kept_with_its_signature(
    client: PlatformClient, platform_server: RunningPlatform
) -> None:
    body = _assisted(citizen_present=False, agent=dict(AGENT), signed_by="agent")
    outcome = client.submit(body["submission_id"], body)
    assert outcome.delivered, outcome
    with sqlite3.connect(platform_server.db_path) as db:
        (request,) = db.execute(
            "SELECT request_json FROM submissions WHERE submission_id = ?",
            (body["submission_id"],),
        ).fetchone()
        (data,) = db.execute(
            "SELECT data FROM attachments WHERE submission_id = ? AND name = 'signature.png'",
            (body["submission_id"],),
        ).fetchone()
    stored = json.loads(request)
    assert stored["assistance"]["agent"] == AGENT and stored["operator_id"] == "S0012"
    assert bytes(data) == SIGNATURE


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"operator_id": None}, "operator_required"),
        ({"channel": "kiosk"}, "operator_required"),
        ({"attachments": []}, "signature_missing"),
        ({"attachments": [_file("signature.png", SIGNATURE, "image/jpeg")]}, "signature_missing"),
        ({"signature_sha256": "0" * 64}, "signature_missing"),
        ({"citizen_present": False, "signed_by": "agent"}, "agent_mismatch"),
        ({"agent": dict(AGENT), "signed_by": "applicant"}, "agent_mismatch"),
        ({"signed_by": "agent"}, "signer_mismatch"),
        ({"citizen_present": False, "signed_by": "agent",
          "agent": {**AGENT, "id_number": "11010119800101001X"}}, "agent_invalid"),
        ({"citizen_present": False, "signed_by": "agent",
          "agent": {**AGENT, "id_number": DEMO_APPLICANT["id_number"]}}, "agent_invalid"),
        ({"assistance": None}, "confirmation_required"),
    ],
    ids=[
        "no-staff",
        "kiosk",
        "no-signature",
        "signature-not-png",
        "signature-digest",
        "absent-without-agent",
        "present-with-agent",
        "wrong-signer",
        "agent-number-invalid",
        "agent-is-applicant",
        "staff-made-without-confirmation",
    ],
)
def test_an_assisted_application_that_breaks_a_rule_is_refused_naming_it(
    client: PlatformClient, overrides: dict[str, Any], code: str
) -> None:
    problems = _problems(client, _assisted(**overrides))
    assert ("assistance", code) in problems


def test_the_agent_must_bring_their_own_card() -> None:
    applicant, other = demo_identities()[:2]
    with pytest.raises(AssistanceError) as missing_card:
        confirmed(
            citizen_present=False,
            agent_card=None,
            applicant=applicant,
            relation="child",
            signature_png=SIGNATURE,
        )
    assert missing_card.value.message == NO_AGENT_CARD
    with pytest.raises(AssistanceError) as own_card:
        confirmed(
            citizen_present=False,
            agent_card=applicant,
            applicant=applicant,
            relation="child",
            signature_png=SIGNATURE,
        )
    assert own_card.value.message == AGENT_IS_APPLICANT
    with pytest.raises(AssistanceError) as no_relation:
        confirmed(
            citizen_present=False,
            agent_card=other,
            applicant=applicant,
            relation="",
            signature_png=SIGNATURE,
        )
    assert no_relation.value.message == NO_RELATION
    with pytest.raises(AssistanceError) as unsigned:
        confirmed(
            citizen_present=True,
            agent_card=None,
            applicant=applicant,
            relation="",
            signature_png=b"",
        )
    assert unsigned.value.message == NO_SIGNATURE
    made = confirmed(
        citizen_present=False,
        agent_card=other,
        applicant=applicant,
        relation="spouse",
        signature_png=SIGNATURE,
    )
    record = made.record()
    assert record["agent"]["id_number"] == other.id_number and record["signed_by"] == "agent"
    assert record["signature_sha256"] == hashlib.sha256(SIGNATURE).hexdigest()
    assert other.name not in repr(made) and other.id_number not in repr(made.agent)
