"""Turning a checked draft into a saved submission, an upload attempt and a printed receipt.

Runs off the GUI thread. The order is the promise to the citizen: the submission is on disk
(fsync'd) before anything tells them it is accepted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from devices.cards.mrz import MrtdIdentity
from devices.identity import Identity
from devices.printing import PrintResult, PrintStatus, ReceiptPrinter
from kiosk.catalogue import Service
from kiosk.config import Config
from kiosk.errors import UserFacingError
from kiosk.i18n import N_, pick
from kiosk.identity import mask_id_number, mask_name
from kiosk.platform_client import attachment_json
from kiosk.receipt import build_receipt
from kiosk.receipt_numbers import ReceiptNumbers
from kiosk.receipt_token import ReceiptClaim, make_token, tracking_link
from kiosk.session import Draft
from kiosk.trust import SealError, seal
from offline_queue.errors import AttachmentLimitError, OutboxError
from offline_queue.outbox import Attachment, State, new_item_id

log = logging.getLogger(__name__)

SUBMISSION_KIND = "submission"


_SAVE_FAILED = N_(
    "Your application could not be saved on this terminal, so it has not been "
    "submitted. Your answers are still here. Please ask staff for help."
)


class SaveFailedError(UserFacingError):
    """Nothing was stored: the citizen must not be told the application is accepted."""

    def __init__(self, message: str = _SAVE_FAILED) -> None:
        super().__init__(message)


class AttachmentsRefusedError(SaveFailedError):
    """The files break the outbox's limits (size of one, size together, or how many)."""

    def __init__(self) -> None:
        super().__init__(
            N_(
                "The attached files are too large or too many to save, so your application has "
                "not been submitted. Your answers are still here. Please ask staff for help."
            )
        )


class Enqueuer(Protocol):
    def enqueue(
        self,
        kind: str,
        payload: bytes,
        summary: bytes,
        *,
        item_id: str | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> str: ...

    def check_attachments(self, files: Sequence[Attachment]) -> None: ...

    def state_of(self, item_id: str) -> State | None: ...


class AuditSink(Protocol):
    def append(
        self, kind: str, staff: str = "", details: Mapping[str, Any] | None = None
    ) -> object: ...


class Uploader(Protocol):
    def deliver_now(self, item_id: str, timeout_s: float) -> bool:
        """Try to upload this item at once; True when the platform has confirmed it."""
        ...


@dataclass(frozen=True, slots=True)
class SubmissionResult:
    submission_id: str
    receipt_number: str
    service_name: str
    delivered: bool
    tracking_url: str  # what the receipt's QR code carries: the signed link when there is one
    print_result: PrintResult
    receipt_token: str = ""  # kiosk/receipt_token.py; empty for a terminal without a key
    # The platform answered at once that it does not take it as it is (a 4xx): saved here, set
    # aside for staff to correct in the upload queue, not waiting for a network.
    refused: bool = False

    @property
    def receipt_path(self) -> Path | None:
        return self.print_result.path

    @property
    def printed(self) -> bool:
        return self.print_result.status in (PrintStatus.OK, PrintStatus.PAPER_NEAR_END)


def submission_body(
    *,
    submission_id: str,
    receipt_number: str,
    draft: Draft,
    config: Config,
    created_at: dt.datetime,
    operator_id: str | None = None,
) -> dict[str, Any]:
    """The request body of docs/api.md."""
    person = draft.identity
    return {
        "submission_id": submission_id,
        "service_id": draft.service.id,
        "catalogue_version": draft.catalogue_version,
        "receipt_number": receipt_number,
        "channel": config.mode.value,
        "terminal_id": config.terminal_id,
        "operator_id": operator_id,
        "created_at": created_at.isoformat(timespec="seconds"),
        "applicant": {
            "name": person.name,
            "id_number": person.id_number,
            "sex": person.sex.value,
            "nation": person.nation,
            "birth_date": person.birth_date.isoformat(),
            "address": person.address,
        },
        **_document_check(person),
        **_assistance(draft),
        "answers": draft.answers,
    }


def _assistance(draft: Draft) -> dict[str, Any]:
    """An assisted application says so, with who confirmed it; the signature is its first file."""
    if draft.assistance is None:
        return {}
    return {"assistance": draft.assistance.record()}


def files_of(draft: Draft, attachments: Sequence[Attachment]) -> tuple[Attachment, ...]:
    """The submission's files: the confirmation's signature first, then the materials."""
    if draft.assistance is None:
        return tuple(attachments)
    return (draft.assistance.signature(), *attachments)


def _document_check(person: Identity) -> dict[str, Any]:
    """A chip document's Passive Authentication result goes with the submission."""
    if isinstance(person, MrtdIdentity):
        return {"document_check": person.document_check.as_record()}
    return {}


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def tracking_url(base_url: str, submission_id: str) -> str:
    """The unsigned link of a terminal that has no key to sign with: the case by its id."""
    return f"{base_url.rstrip('/')}/track/{submission_id}"


def public_tracking_url(announced: str | None, platform_url: str) -> str:
    """Where the QR code sends a phone: the tracking page the platform announced with its
    catalogue, or (a catalogue that announced none, such as the bundled copy) its /track."""
    return announced if announced else f"{platform_url.rstrip('/')}/track"


class Submitter:
    def __init__(
        self,
        *,
        config: Config,
        outbox: Enqueuer,
        uploader: Uploader,
        printer: ReceiptPrinter,
        numbers: ReceiptNumbers,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now().astimezone(),
        upload_wait_s: float = 4.0,
        seal_to: X25519PublicKey | None = None,
        audit: AuditSink | None = None,
        receipt_key: Ed25519PrivateKey | None = None,
        public_tracking: Callable[[], str | None] | None = None,
    ) -> None:
        """seal_to: the platform's sealing key. With it, what is queued is the submission (and
        its files) sealed to the platform: this terminal's own key, or anyone who steals the
        terminal, can no longer read it; only the receipt summary stays readable here.

        receipt_key: the terminal's enrolled key; with it the receipt's QR code carries a token
        signed with it (kiosk/receipt_token.py) that any terminal can check offline.
        public_tracking: the tracking page the platform announced with the catalogue in use
        (kiosk.catalogue_store.CatalogueStore.tracking_url), asked at each submission."""
        self._receipt_key = receipt_key
        self._public_tracking = public_tracking
        self._config = config
        self._seal_to = seal_to
        self._audit = audit
        self._outbox = outbox
        self._uploader = uploader
        self._printer = printer
        self._numbers = numbers
        self._now = now
        self._upload_wait_s = upload_wait_s
        self._platform_started: threading.Event | None = None

    def hold_uploads_until(self, started: threading.Event) -> None:
        """The platform is being started beside the terminal (the demo): a submission made
        before it is up waits for it, as it would for a slow network, within the same wait."""
        self._platform_started = started

    def submit(
        self,
        draft: Draft,
        operator_id: str | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> SubmissionResult:
        """Save the submission with its files, try to upload it, print the receipt.

        SaveFailedError (AttachmentsRefusedError for files beyond the outbox's limits) when it
        could not be saved: then nothing was stored and nothing may say it was accepted.
        """
        created_at = self._now()
        submission_id = new_item_id()
        try:
            receipt_number = self._numbers.next(created_at.date())
        except OSError as exc:
            log.error("receipt counter could not be written: %s", type(exc).__name__)
            raise SaveFailedError() from exc
        body = submission_body(
            submission_id=submission_id,
            receipt_number=receipt_number,
            draft=draft,
            config=self._config,
            created_at=created_at,
            operator_id=operator_id,
        )
        token = self._token(receipt_number, submission_id, draft.service.id, created_at)
        url = self._link(submission_id, token)
        # What the queue shows and a reprint prints: nothing unmasked (kiosk/reprint.py). The
        # token is kept so a reprint carries the very QR code the first receipt did.
        summary = {
            "receipt_number": receipt_number,
            "service_id": draft.service.id,
            "created_at": body["created_at"],
            "masked_name": mask_name(draft.identity.name),
            "masked_id": mask_id_number(draft.identity.id_number),
            "tracking_url": url,
        }
        if token:
            summary["receipt_token"] = token
        if operator_id:
            summary["operator_id"] = operator_id  # a staff number: "today's" list at a counter
        if draft.assistance is not None and not operator_id:
            # an assisted application names the staff member who made it, always
            raise SaveFailedError()
        try:
            payload, files = self._payload(submission_id, body, files_of(draft, attachments))
            self._outbox.enqueue(
                SUBMISSION_KIND,
                payload,
                json.dumps(summary, ensure_ascii=False).encode(),
                item_id=submission_id,
                attachments=files,
            )
        except AttachmentLimitError as exc:
            log.error("submission not saved: its attachments break a limit (%s)", exc.code)
            raise AttachmentsRefusedError() from exc
        except (OutboxError, OSError, SealError) as exc:
            log.error("submission could not be saved: %s", type(exc).__name__)
            raise SaveFailedError() from exc
        log.info("submission %s saved", submission_id)
        self._record(submission_id, receipt_number, draft.service.id, operator_id)
        # From here on the submission is the outbox's: nothing that goes wrong may report it as
        # not saved (the citizen would submit again under a new id). An upload that fails is
        # an upload the sync engine makes later.
        try:
            started = self._platform_started
            if started is not None:
                started.wait(self._upload_wait_s)
            delivered = self._uploader.deliver_now(submission_id, self._upload_wait_s)
        except Exception:
            log.exception("immediate upload of %s failed; it stays queued", submission_id)
            delivered = False
        refused = not delivered and self._refused(submission_id)
        printed = self._print(
            service=draft.service,
            draft=draft,
            receipt_number=receipt_number,
            created_at=created_at,
            url=url,
            delivered=delivered,
        )
        return SubmissionResult(
            submission_id=submission_id,
            receipt_number=receipt_number,
            service_name=pick(draft.service.name),
            delivered=delivered,
            tracking_url=url,
            print_result=printed,
            receipt_token=token,
            refused=refused,
        )

    def _token(
        self, receipt_number: str, submission_id: str, service_id: str, created_at: dt.datetime
    ) -> str:
        """The receipt's signed token; empty without a key, or for a time it cannot carry (the
        receipt then has the unsigned link: a receipt is never worth losing a submission)."""
        if self._receipt_key is None:
            return ""
        claim = ReceiptClaim(
            receipt_number=receipt_number,
            submission_id=submission_id,
            service_id=service_id,
            issued_at=created_at.replace(microsecond=0),
            terminal_id=self._config.terminal_id,
        )
        try:
            return make_token(claim, self._receipt_key)
        except ValueError as exc:
            log.error("receipt token not made: %s", exc)
            return ""

    def _link(self, submission_id: str, token: str) -> str:
        if not token:
            return tracking_url(self._config.platform_url, submission_id)
        announced = None
        if self._public_tracking is not None:
            try:
                announced = self._public_tracking()
            except Exception:
                log.exception("the announced tracking page could not be read")
        return tracking_link(public_tracking_url(announced, self._config.platform_url), token)

    def _refused(self, submission_id: str) -> bool:
        try:
            state = self._outbox.state_of(submission_id)
        except Exception:
            log.exception("the state of %s could not be read", submission_id)
            return False
        return state in (State.REJECTED, State.NEEDS_ATTENTION)

    def _record(
        self, submission_id: str, receipt_number: str, service_id: str, operator_id: str | None
    ) -> None:
        """The audit entry of a saved submission: who (a staff number, at a counter), what, when;
        nothing of the citizen. It never turns a saved submission into a failed one."""
        if self._audit is None:
            return
        try:
            self._audit.append(
                "submission",
                operator_id or "",
                {
                    "submission_id": submission_id,
                    "receipt_number": receipt_number,
                    "service_id": service_id,
                    "channel": self._config.mode.value,
                },
            )
        except Exception:
            log.exception("the audit entry of submission %s was not written", submission_id)

    def _payload(
        self, submission_id: str, body: dict[str, Any], attachments: Sequence[Attachment]
    ) -> tuple[bytes, Sequence[Attachment]]:
        """What the outbox keeps: the body and its files as they are, or all of it sealed to the
        platform as {"submission_id": ..., "sealed": envelope} with the files inside."""
        if self._seal_to is None:
            return _dump(body), attachments
        self._outbox.check_attachments(attachments)
        if attachments:
            body = {**body, "attachments": [attachment_json(file) for file in attachments]}
        envelope = seal(_dump(body), self._seal_to, submission_id.encode("utf-8"))
        return _dump({"submission_id": submission_id, "sealed": envelope}), ()

    def _print(
        self,
        *,
        service: Service,
        draft: Draft,
        receipt_number: str,
        created_at: dt.datetime,
        url: str,
        delivered: bool,
    ) -> PrintResult:
        try:  # building the receipt too: nothing here may take the accepted submission with it
            doc = build_receipt(
                service_name=pick(service.name),
                receipt_number=receipt_number,
                submitted_at=created_at,
                applicant_name=draft.identity.name,
                id_number=draft.identity.id_number,
                tracking_url=url,
                delivered=delivered,
                terminal_id=self._config.terminal_id,
                hall_name=self._config.hall_name,
                channel=self._config.mode.value,
                time_limit_text=pick(service.guide.time_limit),
                collection_text=pick(service.guide.collection),
            )
            return self._printer.print_receipt(doc)
        except Exception as exc:
            log.exception("receipt not printed")
            return PrintResult(PrintStatus.ERROR, detail=type(exc).__name__)
