"""What Passive Authentication found about a travel document's chip (devices/cards/passive_auth.py
does the check); light enough for every reader of an identity to import."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True, slots=True)
class DocumentCheck:
    """The outcome of Passive Authentication, for staff and for the submission's record.

    reason is a short code ("" when passed): no_trust_store, no_sod, sod_unreadable,
    malformed_sod, ds_certificate_missing, unknown_csca, ds_signature_invalid,
    sod_signature_invalid, dg_hash_mismatch, ds_not_valid_now, csca_not_valid_now,
    unsupported_algorithm, check_error. country is the ISO 3166 alpha-2 code of the DS
    certificate's issuer and signer its subject, when the SOD got that far. detail is for logs.
    """

    status: CheckStatus
    reason: str = ""
    country: str = ""
    signer: str = ""
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status is CheckStatus.PASSED

    def as_record(self) -> dict[str, str]:
        """Plain data for a submission or an audit line (no personal data is in a check)."""
        return {
            "status": self.status.value,
            "reason": self.reason,
            "country": self.country,
            "signer": self.signer,
        }


NOT_CHECKED = DocumentCheck(CheckStatus.NOT_CHECKED, "no_trust_store")
