"""The shapes of API v1 bodies (pydantic), the status and rating vocabularies, and their texts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from devices.identity import is_valid_id_number

Status = Literal[
    "received", "in_review", "approved", "rejected", "ready_for_collection", "completed"
]
STATUSES: tuple[str, ...] = get_args(Status)

RatingLevel = Literal[
    "very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied"
]
RATING_LEVELS: tuple[str, ...] = get_args(RatingLevel)

Channel = Literal["kiosk", "counter", "rural"]

# What a status means to the citizen, shown on the tracking page and used as the default note.
STATUS_TEXTS: dict[str, dict[str, str]] = {
    "received": {"zh_CN": "已收到申请", "en": "Application received"},
    "in_review": {"zh_CN": "正在审核", "en": "Being reviewed"},
    "approved": {"zh_CN": "审核通过", "en": "Approved"},
    "rejected": {"zh_CN": "未通过", "en": "Not approved"},
    "ready_for_collection": {"zh_CN": "可以领取", "en": "Ready to collect"},
    "completed": {"zh_CN": "已办结", "en": "Completed"},
}
STATUS_NOTES: dict[str, dict[str, str]] = {
    "received": {
        "zh_CN": "您的申请已收到，我们会尽快审核。",
        "en": "We have received your application and will review it soon.",
    },
    "in_review": {
        "zh_CN": "工作人员正在审核您的材料。",
        "en": "Staff are checking your application.",
    },
    "approved": {"zh_CN": "您的申请已审核通过。", "en": "Your application has been approved."},
    "rejected": {
        "zh_CN": "您的申请未通过，请留意短信或到大厅咨询。",
        "en": "Your application was not approved. See your text message or ask at the hall.",
    },
    "ready_for_collection": {
        "zh_CN": "办理结果已可领取。",
        "en": "The result is ready to collect.",
    },
    "completed": {"zh_CN": "本事项已办结。", "en": "This case is complete."},
}


def _uuid_text(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise ValueError("not a UUID") from None
    if str(parsed) != value.lower():
        raise ValueError("not a UUID in its hyphenated form")
    return value


def _rfc3339(value: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an RFC 3339 date-time") from None
    if "T" not in value.upper() or moment.tzinfo is None:
        raise ValueError("not an RFC 3339 date-time with an offset")
    return value


UuidText = Annotated[StrictStr, AfterValidator(_uuid_text)]
Rfc3339 = Annotated[StrictStr, AfterValidator(_rfc3339)]
ShortText = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalisedText(_Strict):
    zh_CN: StrictStr
    en: StrictStr


class Applicant(_Strict):
    """What the card says about the applicant (GB/T 2261.1 sex code, nation name, ISO date)."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=60)]
    id_number: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    sex: StrictStr = ""
    nation: StrictStr = ""
    birth_date: StrictStr = ""
    address: Annotated[StrictStr, Field(max_length=200)] = ""

    def __repr__(self) -> str:
        return "Applicant(<personal data>)"


# What one submission may carry in files (the client's outbox refuses more before saving).
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
MAX_ATTACHMENTS_BYTES = 20 * 1024 * 1024
MAX_ATTACHMENTS = 20


class Attachment(_Strict):
    """A file that goes with a submission: a photographed material, a signature."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    content_type: Annotated[
        StrictStr,
        Field(
            pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$",
            description="a MIME type without parameters, e.g. image/png",
        ),
    ]
    size: Annotated[
        StrictInt,
        Field(ge=1, description=f"bytes of the decoded data; at most {MAX_ATTACHMENT_BYTES}"),
    ]
    sha256: Annotated[
        StrictStr,
        Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the decoded data, lowercase hex"),
    ]
    data_base64: Annotated[
        StrictStr, Field(description="the data, standard base64 with padding (RFC 4648 section 4)")
    ]

    def __repr__(self) -> str:
        return f"Attachment(size={self.size!r})"


class DocumentCheck(_Strict):
    """What the terminal found when it checked a chip document (Passive Authentication)."""

    status: Literal["passed", "failed", "not_checked"]
    reason: Annotated[StrictStr, Field(max_length=64)] = ""
    country: Annotated[StrictStr, Field(max_length=8)] = ""
    signer: Annotated[StrictStr, Field(max_length=300)] = ""


AgentRelation = Literal["spouse", "child", "parent", "sibling", "other_relative", "other"]
SIGNATURE_NAME = "signature.png"


class Agent(_Strict):
    """The person who applied on the applicant's behalf (代办), from their own ID card."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=60)]
    id_number: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    relation: AgentRelation

    def __repr__(self) -> str:
        return "Agent(<personal data>)"


class Assistance(_Strict):
    """Staff filled the form in; the applicant, or their agent when the applicant was not there,
    read it and signed. The signature is the submission's file named signature.png."""

    assisted: Literal[True]
    citizen_present: StrictBool
    agent: Agent | None = None
    signed_by: Literal["applicant", "agent"]
    signature_sha256: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]

    @model_validator(mode="after")
    def _who_signed(self) -> Assistance:
        if self.citizen_present != (self.agent is None):
            raise PydanticCustomError(
                "agent_mismatch", "an agent exactly when the citizen was not present"
            )
        if self.signed_by != ("applicant" if self.citizen_present else "agent"):
            raise PydanticCustomError("signer_mismatch", "signed by whoever was present")
        return self


class SubmissionRequest(_Strict):
    submission_id: UuidText = Field(description="UUIDv7 made by the terminal; the idempotency key")
    service_id: ShortText
    catalogue_version: ShortText
    receipt_number: ShortText
    channel: Channel
    terminal_id: ShortText
    operator_id: ShortText | None = None
    created_at: Rfc3339
    applicant: Applicant
    document_check: DocumentCheck | None = Field(
        default=None, description="for a chip document: whether its data proved genuine"
    )
    answers: dict[str, Any]
    attachments: list[Attachment] = Field(
        default_factory=list,
        description=(
            f"files that go with the submission, at most {MAX_ATTACHMENTS} and"
            f" {MAX_ATTACHMENTS_BYTES} bytes together"
        ),
    )
    assistance: Assistance | None = Field(
        default=None,
        description="made by staff for the applicant (counter or service point): who confirmed",
    )

    @field_validator("assistance")
    @classmethod
    def _assisted_by_staff(
        cls, assistance: Assistance | None, info: ValidationInfo
    ) -> Assistance | None:
        channel = info.data.get("channel")
        if assistance is None:
            if channel in ("counter", "rural"):
                # staff typed it: the applicant (or their agent) confirmed and signed
                raise PydanticCustomError(
                    "confirmation_required", "an application made by staff carries its confirmation"
                )
            return None
        if channel == "kiosk" or not info.data.get("operator_id"):
            raise PydanticCustomError(
                "operator_required", "an assisted application names its staff member"
            )
        agent, applicant = assistance.agent, info.data.get("applicant")
        if agent is not None and (
            not is_valid_id_number(agent.id_number)
            or (applicant is not None and agent.id_number == applicant.id_number)
        ):
            raise PydanticCustomError(
                "agent_invalid", "the agent's own valid ID card, not the applicant's"
            )
        files = info.data.get("attachments", [])
        if not any(
            f.name == SIGNATURE_NAME
            and f.content_type == "image/png"
            and f.sha256 == assistance.signature_sha256
            for f in files
        ):
            raise PydanticCustomError("signature_missing", "the signature file is not attached")
        return assistance

    def __repr__(self) -> str:
        return f"SubmissionRequest(submission_id={self.submission_id!r})"


class SubmissionReceipt(BaseModel):
    submission_id: str
    receipt_number: str
    status: Status
    received_at: str
    tracking_url: str


class HistoryItem(BaseModel):
    status: Status
    at: str
    note: LocalisedText


class SubmissionState(BaseModel):
    submission_id: str
    receipt_number: str
    service_id: str
    status: Status
    history: list[HistoryItem]


MAX_BATCH = 100


class BatchRequest(_Strict):
    """Many submissions in one request; each is handled as POST /submissions would handle it."""

    submissions: Annotated[
        list[SubmissionRequest],
        Field(min_length=1, max_length=MAX_BATCH, description="each submission_id is its key"),
    ]


class BatchResult(BaseModel):
    submission_id: str | None = Field(description="the item's submission_id (null if it has none)")
    status: int = Field(description="the HTTP status POST /submissions would have answered")
    body: dict[str, Any] = Field(description="the body POST /submissions would have answered")


class BatchAnswer(BaseModel):
    results: list[BatchResult] = Field(description="one per submission, in the request's order")


RatingReason = Literal["long_wait", "complicated", "unclear_materials", "staff_attitude", "other"]
UNHAPPY_LEVELS = frozenset({"dissatisfied", "very_dissatisfied"})


class RatingRequest(_Strict):
    level: RatingLevel
    comment: Annotated[StrictStr, Field(max_length=500)] = ""
    # Why a dissatisfied citizen was, and whether they asked to be called back (on the phone
    # number of the case: none travels with the rating). Only with dissatisfied levels.
    reason: RatingReason | None = None
    call_back: StrictBool = False

    @model_validator(mode="after")
    def _reason_only_when_unhappy(self) -> RatingRequest:
        if self.level not in UNHAPPY_LEVELS and (self.reason is not None or self.call_back):
            raise ValueError("only a dissatisfied rating carries a reason or a call back")
        return self


class RatingAnswer(BaseModel):
    submission_id: str
    level: RatingLevel
    rated_at: str


HelpPlace = Annotated[StrictStr, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]


class HelpRequest(_Strict):
    """A citizen at a terminal asked for a person. It names the terminal and the kind of page
    they were on, never who they are or what they typed."""

    help_request_id: UuidText = Field(
        description="UUIDv7 made by the terminal; the idempotency key"
    )
    terminal_id: ShortText
    hall: Annotated[StrictStr, Field(max_length=100)] = ""
    channel: Channel
    page: HelpPlace = Field(description="the kind of page, e.g. question or review")
    language: Literal["zh_CN", "en"]
    requested_at: Rfc3339


class HelpAnswer(BaseModel):
    help_request_id: str
    terminal_id: str
    page: str
    requested_at: str
    received_at: str
    status: Literal["open"]


class HelpList(BaseModel):
    help_requests: list[HelpAnswer]


class StatusChange(_Strict):
    """Administration: move a case along. note defaults to the status's standard text."""

    status: Status
    note: LocalisedText | None = None


class FieldError(BaseModel):
    field: str
    code: str


class ErrorBody(BaseModel):
    error: str
    detail: str
    fields: list[FieldError] | None = None


class Health(BaseModel):
    status: Literal["ok"]
    api_version: Literal["1"]


class Option(BaseModel):
    value: str
    label: LocalisedText


class Question(BaseModel):
    field: str
    label: LocalisedText
    help: LocalisedText
    widget: Literal["text", "phone", "id_number", "date", "choice", "yesno", "number", "address"]
    prefill: str | None
    readonly: bool
    error: LocalisedText | None = None
    options: list[Option] | None = None


class Guide(BaseModel):
    audience: LocalisedText
    materials: list[LocalisedText]
    fee: LocalisedText
    time_limit: LocalisedText
    time_limit_days: int = Field(description="working days")
    collection: LocalisedText


class Service(BaseModel):
    id: str
    name: LocalisedText
    summary: LocalisedText
    department: LocalisedText
    guide: Guide
    form: dict[str, Any] = Field(description="JSON Schema 2020-12 of the answers")
    questions: list[Question]


class AttachmentLimits(BaseModel):
    """What one submission may carry in files; terminals hold their materials to it."""

    max_files: Annotated[StrictInt, Field(ge=1)]
    max_file_bytes: Annotated[StrictInt, Field(ge=1)]
    max_total_bytes: Annotated[StrictInt, Field(ge=1)]


class Tracking(BaseModel):
    """Where citizens follow a case: the receipt's QR is this address with ?t=<signed token>."""

    public_url: str


class Catalogue(BaseModel):
    version: str
    services: list[Service]
    attachment_limits: AttachmentLimits | None = None
    tracking: Tracking | None = None


# pydantic error types in the words of JSON Schema, so every 422 speaks one vocabulary.
_PYDANTIC_CODES = {
    "missing": "required",
    "extra_forbidden": "additionalProperties",
    "literal_error": "enum",
    "enum": "enum",
    "string_too_short": "minLength",
    "string_too_long": "maxLength",
    "string_pattern_mismatch": "pattern",
    "value_error": "format",
    # an assisted application's own rules (Assistance, SubmissionRequest.assistance)
    "agent_mismatch": "agent_mismatch",
    "signer_mismatch": "signer_mismatch",
    "operator_required": "operator_required",
    "signature_missing": "signature_missing",
    "confirmation_required": "confirmation_required",
    "agent_invalid": "agent_invalid",
}


def keyword_of(pydantic_error_type: str) -> str:
    """The JSON Schema keyword closest to a pydantic error type ("type" for type mismatches)."""
    return _PYDANTIC_CODES.get(pydantic_error_type, "type")
