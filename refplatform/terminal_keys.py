"""The terminals' public keys, published so any terminal checks any receipt offline, and the
tracking page a receipt's signed QR code opens.

GET /api/v1/terminals/keys answers {"kind": "terminal_keys", "terminals": {terminal id: key},
"revoked": {terminal id: key}, "signature": ...}: each key standard base64 of its raw 32 bytes,
the whole signed with the platform's catalogue key exactly as the catalogue is (kiosk/trust.py),
so a terminal takes the list only from the platform it enrolled with. Nothing in it is secret and
no signature is asked of the caller.

GET /track?t=<token> shows the case once the token verifies (refplatform/tracking.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, Response

from kiosk.receipt_token import KEYS_KIND, LINK_QUERY_NAME, MAX_TOKEN_CHARS

from .catalogue import TRACKING_PATH, Catalogue
from .keys import PlatformKeys
from .storage import Storage, SubmissionRecord
from .terminals import TerminalRegistry
from .tracking import not_found_page, token_page

TERMINAL_KEYS_PATH: Final = "/api/v1/terminals/keys"
_JSON: Final = "application/json"


class TerminalKeysAnswer(BaseModel):
    kind: str = Field(description=f'always "{KEYS_KIND}"')
    terminals: dict[str, str] = Field(
        description="terminal id: standard base64 of its raw Ed25519 public key, in service"
    )
    revoked: dict[str, str] = Field(
        description="terminal id: key, for terminals taken out of service (their receipts are "
        "no longer trusted)"
    )
    signature: dict[str, str] = Field(
        description='{"alg": "Ed25519", "key_id", "value"}: the platform\'s signature over the '
        "rest, as the catalogue's"
    )


@dataclass(frozen=True)
class TerminalKeysRoute:
    """What the two routes need of the platform."""

    terminals: TerminalRegistry
    keys: PlatformKeys
    storage: Storage
    catalogue: Catalogue
    run: Callable[..., Awaitable[Any]]  # the platform's database threads

    def published(self) -> dict[str, Any]:
        active, revoked = self.terminals.published_keys()
        return self.keys.sign_catalogue(
            {"kind": KEYS_KIND, "terminals": active, "revoked": revoked}
        )

    async def get_terminal_keys(self) -> Response:
        """Every enrolled terminal's public key, signed by the platform."""
        document = await self.run(self.published)
        content = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        return Response(content=content.encode("utf-8"), media_type=_JSON)

    def _page(self, token: str) -> tuple[int, str]:
        return token_page(token, self.terminals.key_of, self._record, self._service_name)

    def _record(self, submission_id: str) -> SubmissionRecord | None:
        return self.storage.submission(submission_id)

    def _service_name(self, service_id: str) -> dict[str, str] | None:
        service = self.catalogue.service(service_id)
        return service["name"] if service else None

    async def track_token(self, t: str = "") -> HTMLResponse:
        """The case a receipt's signed QR code names, once its signature verifies."""
        if not t or len(t) > MAX_TOKEN_CHARS:
            return HTMLResponse(not_found_page(), status_code=404)
        status, page = await self.run(self._page, t)
        return HTMLResponse(page, status_code=status)


def add_terminal_key_routes(app: FastAPI, route: TerminalKeysRoute) -> None:
    """GET /api/v1/terminals/keys and GET /track?t= on app."""
    app.add_api_route(
        TERMINAL_KEYS_PATH,
        route.get_terminal_keys,
        response_class=Response,
        responses={
            200: {
                "description": "The terminals' public keys, signed by the platform",
                "content": {_JSON: {"schema": TerminalKeysAnswer.model_json_schema()}},
            }
        },
        tags=["terminals"],
    )
    app.add_api_route(
        TRACKING_PATH,
        route.track_token,
        response_class=HTMLResponse,
        responses={
            404: {
                "content": {"text/html": {}},
                "description": "A code that does not verify, or no such case",
            }
        },
        description=f"The tracking page of a receipt's signed code: ?{LINK_QUERY_NAME}=<token>",
    )
