"""Correcting a submission the platform refused for its answers, under the same submission id.

The terminal cannot read a queued submission back (it is sealed to the platform's key), but it
keeps the platform's refusal: the fields it named and the JSON Schema keyword each failed. Staff
read those as the form's own questions and sentences, type new values for exactly those fields,
and the values go to the platform sealed, as a "correction" row of the outbox that the sync
engine sends (kiosk/sync.py). The platform merges them into the submission it kept and checks the
whole of it again; accepted, the original row becomes delivered with the platform's receipt.

Every method of Corrector touches the disk; the UI calls them through its background helper.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from kiosk.catalogue import Question, Service
from kiosk.errors import UserFacingError

# The sentences the citizen's own form shows for each failed keyword (kiosk/forms.py).
from kiosk.forms import _BY_FORMAT, _BY_KEYWORD, _BY_TYPE, _FALLBACK
from kiosk.i18n import N_, _, pick
from kiosk.sync import CORRECTION_KIND
from kiosk.trust import SealError, seal
from offline_queue.errors import OutboxError
from offline_queue.outbox import Outbox, State, new_item_id

log = logging.getLogger(__name__)

__all__ = [
    "CORRECTION_KIND",
    "CorrectionError",
    "Corrector",
    "FieldProblem",
    "Problem",
    "explain",
    "problem_text",
    "refused_fields",
]

ANSWERS_PREFIX = "answers."
_LOOKS_WRONG = N_("This does not look right. Please check it.")
_PROBLEM = N_("{label}: {reason}")


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """A form field the platform refused and the JSON Schema keyword it failed."""

    field: str
    code: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A refused field as staff read it: the question's label and what is wrong, in words."""

    field: str
    code: str
    label: str
    reason: str
    question: Question | None


class CorrectionError(UserFacingError):
    """The correction cannot be queued; nothing was stored."""


_NOT_REJECTED = N_("This submission is not waiting for a correction (any more).")
_PENDING = N_("A correction of this submission is already waiting to upload.")
_FIELDS = N_("Only the answers the platform refused can be changed.")
_NO_SEAL = N_(
    "This terminal has no key to seal a correction to the platform: enrol it again "
    "(hall-terminal --enrol)."
)
_NOT_SAVED = N_("The correction could not be saved on this terminal. Please try again.")


def refused_fields(response: bytes | None) -> tuple[FieldProblem, ...]:
    """The form fields a stored 422 validation_failed answer names, in its order, once each;
    "answers.phone" (pydantic's spelling) is the field phone. Nothing for any other answer,
    and nothing for problems that are not one field of the form (the form as a whole, files)."""
    if not response:
        return ()
    try:
        body = json.loads(response)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ()
    if not isinstance(body, dict) or body.get("error") != "validation_failed":
        return ()
    entries = body.get("fields")
    found: list[FieldProblem] = []
    seen: set[str] = set()
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        name, code = entry.get("field"), entry.get("code")
        if not isinstance(name, str) or not isinstance(code, str):
            continue
        field = name.removeprefix(ANSWERS_PREFIX)
        if not field or "." in field or field in seen or len(field) > 64:
            continue
        seen.add(field)
        found.append(FieldProblem(field, code[:64]))
    return tuple(found)


def explain(problems: Iterable[FieldProblem], service: Service | None) -> list[Problem]:
    """Each refused field as the question's label and a plain sentence, in the active
    language (call it again after a language switch)."""
    explained = []
    for problem in problems:
        question = _question(service, problem.field)
        label = pick(question.label) if question is not None else problem.field
        reason = _reason(service, question, problem)
        explained.append(Problem(problem.field, problem.code, label, reason, question))
    return explained


def problem_text(problem: Problem) -> str:
    """'联系电话：号码应为11位数字'."""
    return _(_PROBLEM).format(label=problem.label, reason=problem.reason)


def _question(service: Service | None, field: str) -> Question | None:
    if service is None:
        return None
    for question in service.questions:
        if question.field == field:
            return question
    return None


def _reason(service: Service | None, question: Question | None, problem: FieldProblem) -> str:
    """The sentence the citizen's form would show for this keyword (kiosk/forms.py)."""
    code = problem.code
    prop: Mapping[str, Any] = {}
    if service is not None:
        found = service.form.get("properties", {}).get(problem.field)
        prop = found if isinstance(found, Mapping) else {}
    if code in ("pattern", "format"):
        if question is not None and question.error:
            return pick(question.error)
        fmt = _BY_FORMAT.get(str(prop.get("format"))) if code == "format" else None
        return _(fmt or _LOOKS_WRONG)
    if code == "type":
        return _(_BY_TYPE.get(str(prop.get("type")), _FALLBACK))
    message = _BY_KEYWORD.get(code)
    limit = prop.get(code)
    if message is None or ("{limit}" in message and limit is None):
        return _(_FALLBACK)
    return _(message).format(limit=limit)


class AuditSink(Protocol):
    def append(
        self, kind: str, staff: str = "", details: Mapping[str, Any] | None = None
    ) -> object: ...


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Corrector:
    """Reads refusals from the outbox and queues corrections of them."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        seal_to: X25519PublicKey | None,
        audit: AuditSink | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        """seal_to: the platform's sealing key (the terminal's enrolment); wake: the sync
        engine's, so a queued correction goes out at once."""
        self._outbox = outbox
        self._seal_to = seal_to
        self._audit = audit
        self._wake = wake
        # Checking that no correction of a submission waits and queueing one are one step: two
        # corrections of one submission waiting together would both be answered for it.
        self._enqueue_lock = threading.Lock()

    def refused(self) -> dict[str, tuple[FieldProblem, ...]]:
        """Every rejected submission with fields a correction may change, by outbox id."""
        found: dict[str, tuple[FieldProblem, ...]] = {}
        for info in self._outbox.items(limit=1000, states=(State.REJECTED,)):
            if info.kind != "submission":
                continue
            problems = refused_fields(self._outbox.get_response(info.id))
            if problems:
                found[info.id] = problems
        return found

    def pending(self) -> frozenset[str]:
        """The submissions a correction is waiting to upload for."""
        corrected: set[str] = set()
        for info in self._outbox.items(limit=1000, states=(State.QUEUED, State.SENDING)):
            if info.kind != CORRECTION_KIND or info.summary is None:
                continue
            try:
                summary = json.loads(info.summary)
            except (ValueError, UnicodeDecodeError):
                continue
            corrects = summary.get("corrects") if isinstance(summary, dict) else None
            if isinstance(corrects, str):
                corrected.add(corrects)
        return frozenset(corrected)

    def enqueue(self, item_id: str, answers: Mapping[str, Any], staff: str = "") -> str:
        """Queue new values for the refused fields of the rejected submission item_id; the id
        of the correction row. CorrectionError when it cannot be: nothing is stored then (one
        correction of a submission waits at a time)."""
        if self._seal_to is None:
            raise CorrectionError(_NO_SEAL)
        with self._enqueue_lock:
            correction_id = self._enqueue(item_id, answers, self._seal_to)
        log.info("correction %s of %s queued", correction_id, item_id)
        self._record(item_id, sorted(answers), staff)
        if self._wake is not None:
            self._wake()
        return correction_id

    def _enqueue(self, item_id: str, answers: Mapping[str, Any], seal_to: X25519PublicKey) -> str:
        """enqueue's checks and row, under the enqueue lock."""
        if self._outbox.state_of(item_id) is not State.REJECTED:
            raise CorrectionError(_NOT_REJECTED)
        named = {p.field for p in refused_fields(self._outbox.get_response(item_id))}
        if not answers or not set(answers) <= named:
            raise CorrectionError(_FIELDS)
        if item_id in self.pending():
            raise CorrectionError(_PENDING)
        correction_id = new_item_id()
        try:
            sealed = seal(_dump({"answers": dict(answers)}), seal_to, correction_id.encode("utf-8"))
            body = {"correction_id": correction_id, "submission_id": item_id, "sealed": sealed}
            summary = {"kind": CORRECTION_KIND, "corrects": item_id}
            self._outbox.enqueue(
                CORRECTION_KIND, _dump(body), _dump(summary), item_id=correction_id
            )
        except (OutboxError, OSError, SealError) as exc:
            log.error("correction of %s not saved: %s", item_id, type(exc).__name__)
            raise CorrectionError(_NOT_SAVED) from exc
        return correction_id

    def _record(self, item_id: str, fields: list[str], staff: str) -> None:
        """The audit entry: who corrected which submission's which fields; never the values."""
        if self._audit is None:
            return
        try:
            self._audit.append("correction", staff, {"submission_id": item_id, "fields": fields})
        except Exception:
            log.exception("the audit entry of the correction of %s was not written", item_id)
