"""The seam where misbehaviour can be switched on for fault tests; nothing is switched on here.

The submission handler asks its faults object first. An answer replaces the normal handling, so a
later implementation can return 5xx, garbage or 409 bodies, delay, or drop the connection.
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response


class SubmissionFaults(Protocol):
    async def before_submission(self, request: Request) -> Response | None:
        """A response to send instead of handling the submission, or None to handle it."""
        ...


class NoFaults:
    """The default: every submission is handled as the API says."""

    async def before_submission(self, request: Request) -> Response | None:
        return None
