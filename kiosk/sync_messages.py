"""Texts for people about the outbox and sync: row states and error codes, translated.

The outbox and the platform client speak in codes; this is the one place that turns them into
sentences for the staff queue screen and the rural assistant's upload view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kiosk.audit_upload import AUDIT_FORK, AUDIT_REFUSED
from kiosk.i18n import N_, _
from kiosk.platform_client import (
    CONNECTION_FAILED,
    RESPONSE_TOO_LARGE,
    TIMEOUT,
    TLS_ERROR,
    TRANSPORT_ERROR,
    UNEXPECTED_ANSWER,
    OutcomeKind,
    SubmitOutcome,
)
from kiosk.sync import (
    HELP_REQUEST_EXPIRED,
    INTERNAL_ERROR,
    PAYLOAD_UNREADABLE,
    UNKNOWN_KIND,
    decode_error,
    encode_error,
)
from offline_queue.outbox import UNDECRYPTABLE, OutboxItemInfo, State
from offline_queue.recovery import OpenedOutbox, QuarantineReason
from offline_queue.salvage import SalvageResult

STATE_TEXT: dict[State, str] = {
    State.QUEUED: N_("Waiting to upload"),
    State.SENDING: N_("Uploading"),
    State.DELIVERED: N_("Delivered"),
    State.REJECTED: N_("Not accepted by the platform"),
    State.NEEDS_ATTENTION: N_("Needs staff attention"),
}

_DAMAGED = N_("The stored submission is damaged and cannot be sent.")
_UNREADABLE = N_("The platform could not read the submission.")
_STORAGE = N_("The terminal's local storage has a problem.")

ERROR_TEXT: dict[str, str] = {
    TIMEOUT: N_("The platform did not answer in time."),
    CONNECTION_FAILED: N_("There is no network connection to the platform."),
    TLS_ERROR: N_("The secure connection to the platform failed (the network may need a sign-in)."),
    TRANSPORT_ERROR: N_("The connection broke off while sending."),
    RESPONSE_TOO_LARGE: N_("The platform's answer was larger than this terminal accepts."),
    UNEXPECTED_ANSWER: N_(
        "The answer did not come from the platform (the network may need a sign-in)."
    ),
    "terminal_revoked": N_(
        "The platform has withdrawn this terminal's access. Submissions stay here; "
        "enrol the terminal again (hall-terminal --enrol)."
    ),
    "terminal_unknown": N_(
        "The platform does not know this terminal. Submissions stay here; "
        "enrol the terminal again (hall-terminal --enrol)."
    ),
    "signature_invalid": N_(
        "The platform did not accept this terminal's signature. Submissions stay here; "
        "enrol the terminal again (hall-terminal --enrol)."
    ),
    "credentials_missing": N_(
        "The platform asks for this terminal's credentials. Submissions stay here; "
        "enrol the terminal (hall-terminal --enrol)."
    ),
    "request_stale": N_("This terminal's clock is wrong: set the date and time."),
    "terminal_mismatch": N_(
        "This submission was queued under another terminal id than the one this terminal is "
        "now enrolled as. It stays here; ask the platform's operators."
    ),
    "sealed_invalid": N_(
        "This submission was sealed for another platform than the one this terminal now sends "
        "to. It stays here; ask the platform's operators."
    ),
    "request_replayed": N_("The platform took a request for a repeat; it will be sent again."),
    "bundle_invalid": N_("The platform could not read this bundle from a village terminal."),
    "bundle_signature_invalid": N_(
        "The platform found this village bundle changed after it was signed; it was not taken."
    ),
    "bundle_signer_unknown": N_(
        "The platform does not know the village terminal this bundle comes from."
    ),
    "bundle_signer_revoked": N_(
        "The village terminal this bundle comes from no longer has access to the platform."
    ),
    "idempotency_conflict": N_(
        "The platform already holds a different submission with this number."
    ),
    "unknown_service": N_("The platform does not offer this service (any more)."),
    "bad_request": _UNREADABLE,
    "idempotency_key_missing": _UNREADABLE,
    "idempotency_key_mismatch": _UNREADABLE,
    PAYLOAD_UNREADABLE: _DAMAGED,
    UNDECRYPTABLE: _DAMAGED,
    UNKNOWN_KIND: N_("This queue entry is of a kind this terminal cannot send."),
    HELP_REQUEST_EXPIRED: N_(
        "This call for staff could not be sent in time and was not sent later."
    ),
    INTERNAL_ERROR: N_("The terminal hit an internal error while sending."),
    "storage_full": N_("The terminal's disk is full."),
    "storage_error": _STORAGE,
    "corrupt": _STORAGE,
    "wrong_key": N_("The key that protects the stored submissions does not fit them."),
    "key_file": N_("The key that protects the stored submissions cannot be read."),
    "keyring_unavailable": N_(
        "The system keyring that holds the terminal's key is locked or not available."
    ),
    "keyring_key_invalid": N_("The key in the system keyring is not a valid key."),
    "key_store_conflict": N_(
        "The configuration asks for the system keyring, but the key is in a key file."
    ),
    "schema_too_new": N_("The stored submissions were written by a newer version of this program."),
    "outbox_locked": N_(
        "Another copy of this program is using the stored submissions (the terminal may be "
        "running already)."
    ),
    "salvage_source": N_(
        "The file to recover is missing, is not a set-aside upload queue, or is too damaged to "
        "read."
    ),
    AUDIT_FORK: N_(
        "The platform holds a different audit record than this terminal: the terminal's audit "
        "log was put back to an older copy. Uploading the audit log has stopped; call technical "
        "support."
    ),
    AUDIT_REFUSED: N_(
        "The platform refused this terminal's audit log: an entry in it was changed. Uploading "
        "the audit log has stopped; call technical support."
    ),
    "http_429": N_("The platform is busy."),
    "http_503": N_("The platform is busy."),
    "unavailable": N_("The platform is busy."),
}

_VALIDATION = N_("The platform found problems in the form: {fields}")
# One refused answer: the question as the form asks it, then what is wrong with the answer.
_FIELD_PROBLEM = N_("{label}: {problem}")
_FIELD_SEPARATOR = N_("; ")
# The platform names what is wrong with a JSON Schema keyword (docs/api.md); staff read a phrase.
_KEYWORD_TEXT: dict[str, str] = {
    "required": N_("missing"),
    "pattern": N_("not in the expected format"),
    "format": N_("not valid"),
    "maxLength": N_("too long"),
    "minLength": N_("too short"),
    "maxItems": N_("too many"),
    "minItems": N_("too few"),
    "maximum": N_("too large"),
    "exclusiveMaximum": N_("too large"),
    "minimum": N_("too small"),
    "exclusiveMinimum": N_("too small"),
    "enum": N_("not one of the choices"),
    "const": N_("not one of the choices"),
    "type": N_("the wrong kind of answer"),
    "additionalProperties": N_("not part of this form"),
}
_KEYWORD_OTHER = N_("not accepted")

# What a refused field is called for staff: a callable (field name -> label, None when it does
# not know the field) or a mapping; unknown fields keep the name the platform used.
FieldLabels = Callable[[str], str | None] | Mapping[str, str]

_SERVER = N_("The platform had a problem (HTTP {status}).")
_CLIENT = N_("The platform refused the submission (HTTP {status}).")
_UNKNOWN = N_("Error code: {code}")
_WILL_RETRY = N_("It will be tried again automatically.")
_STATE_WITH_REASON = N_("{state}: {reason}")
_DELIVERED = N_("Delivered to the platform.")


_RECOVERY_REASON: dict[QuarantineReason, str] = {
    QuarantineReason.NOT_A_DATABASE: N_("the file is not a queue database any more"),
    QuarantineReason.DAMAGED: N_("the database is damaged"),
    QuarantineReason.CHECK_FAILED: N_("the database is damaged"),
    QuarantineReason.WAL_DAMAGED: N_("its write-ahead log is damaged"),
}
_RECOVERED = N_(
    "For staff: this terminal's upload queue could not be used ({reason}) and was set aside as "
    "{file}. New applications are saved and uploaded normally. Applications that were waiting "
    "in the old queue may need recovering: please call technical support and keep that file."
)
_CANNOT_START = N_(
    "This terminal cannot accept applications right now: {problem} "
    "Please ask staff for help. (Code: {code})"
)


_SALVAGED = N_(
    "Recovered from {file}: {recovered} application(s) queued for upload again, {present} "
    "already in the queue, {delivered} delivered before the damage, {unreadable} could not be "
    "read."
)
_SALVAGE_RENAMED = N_("The file was renamed to {file} so that it is not recovered twice.")
_SALVAGE_LOSS = N_("Some applications could not be read: keep the file and call technical support.")
_SALVAGE_FAILED = N_("Nothing was recovered: {problem} (Code: {code})")
_SALVAGE_LOCKED = N_(
    "Nothing was recovered: the terminal program is running and using its upload queue. Close "
    "it, then run the recovery again. (Code: {code})"
)


def describe_salvage(result: SalvageResult) -> str:
    """The summary staff read after recovering a set-aside outbox (one line per fact)."""
    lines = [
        _(_SALVAGED).format(
            file=result.source.name,
            recovered=len(result.recovered),
            present=len(result.already_present),
            delivered=result.delivered,
            unreadable=result.unreadable,
        )
    ]
    renamed = result.renamed_to
    if renamed is not None:
        lines.append(_(_SALVAGE_RENAMED).format(file=renamed.name))
    if result.unreadable:
        lines.append(_(_SALVAGE_LOSS))
    return "\n".join(lines)


def describe_salvage_failure(code: str) -> str:
    """Why a recovery did not start (the terminal is running, the file, the key)."""
    if code == "outbox_locked":
        return _(_SALVAGE_LOCKED).format(code=code)
    return _(_SALVAGE_FAILED).format(problem=describe_error(code), code=code)


def describe_recovery(opened: OpenedOutbox) -> str:
    """The staff notice after a damaged outbox was set aside at start; "" when none was."""
    if opened.reason is None:
        return ""
    name = opened.quarantined.name if opened.quarantined is not None else "-"
    return _(_RECOVERED).format(reason=_(_RECOVERY_REASON[opened.reason]), file=name)


def describe_startup_failure(code: str) -> str:
    """Why the outbox could not be opened at all (the key, a newer schema, the disk)."""
    return _(_CANNOT_START).format(problem=describe_error(code), code=code)


def describe_state(state: State | str) -> str:
    return _(STATE_TEXT[State(state)])


def describe_error(text: str | None, labels: FieldLabels | None = None) -> str:
    """A sentence for an outbox last_error or a SyncStatus.last_error; "" when there is none.

    labels names the form's fields the platform refused (the questions of the row's service).
    """
    code, fields = decode_error(text)
    if code is None:
        return ""
    if code == "validation_failed":
        listed = _(_FIELD_SEPARATOR).join(
            _describe_field(name, keyword, labels) for name, keyword in fields
        )
        return _(_VALIDATION).format(fields=listed or "-")
    known = ERROR_TEXT.get(code)
    if known is not None:
        return _(known)
    if code.startswith("http_") and code[5:].isdigit():
        status = int(code[5:])
        return _(_SERVER if status >= 500 else _CLIENT).format(status=status)
    return _(_UNKNOWN).format(code=code)


def describe_outcome(outcome: SubmitOutcome) -> str:
    """What one delivery attempt came to, for staff."""
    if outcome.kind is OutcomeKind.DELIVERED:
        return _(_DELIVERED)
    fields = tuple((f.field, f.code) for f in outcome.fields)
    text = describe_error(encode_error(outcome.error_code or outcome.kind.value, fields))
    if outcome.kind is OutcomeKind.RETRY:
        return f"{text} {_(_WILL_RETRY)}"
    return text


def describe_item(info: OutboxItemInfo) -> str:
    """One line for a row of the staff queue screen: its state and, if any, why."""
    return describe_row(info.state, info.last_error)


def describe_row(state: State, last_error: str | None, labels: FieldLabels | None = None) -> str:
    """A row's state and, while it is not delivered, why it is where it is."""
    text = describe_state(state)
    if state is State.DELIVERED or not last_error:
        return text
    return _(_STATE_WITH_REASON).format(state=text, reason=describe_error(last_error, labels))


def _describe_field(name: str, keyword: str, labels: FieldLabels | None) -> str:
    problem = _(_KEYWORD_TEXT.get(keyword, _KEYWORD_OTHER))
    if not name:
        return problem  # the platform refused the form as a whole
    return _(_FIELD_PROBLEM).format(label=_field_label(name, labels), problem=problem)


def _field_label(name: str, labels: FieldLabels | None) -> str:
    if labels is None:
        return name
    found = labels.get(name) if isinstance(labels, Mapping) else labels(name)
    return found or name
