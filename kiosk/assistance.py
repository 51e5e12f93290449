"""An assisted application: staff filled the form in, the citizen (or the relative applying for
them, 代办) read it and signed. What is recorded with the submission, and its rules.

The staff member is never typed: it is whoever is signed in (kiosk.staff). The agent comes from
their own ID card, read at the confirmation step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from devices.identity import Identity
from kiosk.catalogue import AttachmentLimits
from kiosk.errors import UserFacingError
from kiosk.i18n import N_
from offline_queue.outbox import Attachment

SIGNATURE_NAME = "signature.png"
SIGNATURE_TYPE = "image/png"
# The most a signature can take: a greyscale PNG of at most 1200x400 (ui/signature_pad.py), one
# byte a pixel and a filter byte a row even if nothing compressed, with room for its chunks.
SIGNATURE_MAX_BYTES = 1200 * 401 + 64 * 1024

# How the agent is related to the applicant: codes the platform knows (docs/api.md).
RELATIONS = {
    "spouse": N_("Spouse"),
    "child": N_("Son or daughter"),
    "parent": N_("Parent"),
    "sibling": N_("Sibling"),
    "other_relative": N_("Relative"),
    "other": N_("Other"),
}


class AssistanceError(UserFacingError):
    """What is missing before the citizen's confirmation can go with the submission."""


NO_SIGNATURE = N_("Please ask the person to sign in the box.")
NO_AGENT_CARD = N_("The citizen is not here: please read the agent's own ID card.")
NO_RELATION = N_("Please choose how the agent is related to the applicant.")
AGENT_IS_APPLICANT = N_(
    "This is the applicant's own card. The agent must present their own ID card."
)


@dataclass(frozen=True, slots=True)
class Agent:
    """The person applying on the citizen's behalf, from their own ID card."""

    name: str
    id_number: str
    relation: str

    def __repr__(self) -> str:  # no personal data in logs
        return f"Agent(relation={self.relation!r})"


@dataclass(frozen=True, slots=True)
class Assistance:
    citizen_present: bool
    agent: Agent | None
    signature_png: bytes

    def __repr__(self) -> str:
        return f"Assistance(citizen_present={self.citizen_present!r})"

    @property
    def signed_by(self) -> str:
        return "applicant" if self.citizen_present else "agent"

    def signature(self) -> Attachment:
        return Attachment(name=SIGNATURE_NAME, content_type=SIGNATURE_TYPE, data=self.signature_png)

    def record(self) -> dict[str, Any]:
        """The `assistance` member of the submission body (docs/api.md)."""
        agent = self.agent
        return {
            "assisted": True,
            "citizen_present": self.citizen_present,
            "agent": None
            if agent is None
            else {"name": agent.name, "id_number": agent.id_number, "relation": agent.relation},
            "signed_by": self.signed_by,
            "signature_sha256": hashlib.sha256(self.signature_png).hexdigest(),
        }


def room_for_materials(limits: AttachmentLimits) -> AttachmentLimits:
    """What the materials of an assisted application may take: the platform's limits less the
    signature, which goes with them (so a full list is refused while it is built, not after the
    citizen has signed)."""
    return AttachmentLimits(
        max_files=max(1, limits.max_files - 1),
        max_file_bytes=limits.max_file_bytes,
        max_total_bytes=max(1, limits.max_total_bytes - SIGNATURE_MAX_BYTES),
    )


def agent_from_card(applicant: Identity, card: Identity, relation: str) -> Agent:
    """The agent named by their own card; never the applicant's card a second time."""
    if card.id_number == applicant.id_number:
        raise AssistanceError(AGENT_IS_APPLICANT)
    return Agent(name=card.name, id_number=card.id_number, relation=relation)


def agent_of(
    *, citizen_present: bool, agent_card: Identity | None, applicant: Identity, relation: str
) -> Agent | None:
    """Who applies for the applicant (None: the applicant is here), or AssistanceError naming
    what staff still need: the agent's own card, how they are related."""
    if citizen_present:
        return None
    if agent_card is None:
        raise AssistanceError(NO_AGENT_CARD)
    if relation not in RELATIONS:
        raise AssistanceError(NO_RELATION)
    return agent_from_card(applicant, agent_card, relation)


def confirmed(
    *,
    citizen_present: bool,
    agent_card: Identity | None,
    applicant: Identity,
    relation: str,
    signature_png: bytes | None,
) -> Assistance:
    """The confirmation as it will be recorded, or AssistanceError naming what is missing."""
    agent = agent_of(
        citizen_present=citizen_present,
        agent_card=agent_card,
        applicant=applicant,
        relation=relation,
    )
    if not signature_png:
        raise AssistanceError(NO_SIGNATURE)
    return Assistance(citizen_present=citizen_present, agent=agent, signature_png=signature_png)
