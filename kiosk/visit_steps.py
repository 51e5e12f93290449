"""The steps of a visit and the ways it ends: names the first screen needs before the rest of
the application (forms, schemas) has loaded."""

from __future__ import annotations

from enum import Enum


class Step(Enum):
    WELCOME = "welcome"
    SERVICES = "services"
    GUIDE = "guide"
    QUESTION = "question"
    REVIEW = "review"
    FORM = "form"  # at a counter or service point: every question on one page, typed by staff
    CONFIRM = "confirm"  # the citizen (or their agent) reads the summary and signs
    SUBMITTING = "submitting"
    DONE = "done"


class EndReason(Enum):
    FINISHED = "finished"
    IDLE = "idle"
    CARD_REMOVED = "card_removed"
    CANCELLED = "cancelled"
