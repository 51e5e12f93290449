"""The attachment limits a platform announces in its catalogue: served, signed, parsed, capped."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.catalogue import AttachmentLimits, CatalogueError, parse_catalogue
from kiosk.materials import PDF, Material, MaterialList, MaterialRefusedError
from kiosk.trust import CatalogueSignatureError, signing_keys, verify_catalogue
from offline_queue.outbox import AttachmentLimits as OutboxLimits
from refplatform import models
from refplatform.catalogue import Catalogue as PlatformCatalogue
from refplatform.server import RunningPlatform
from tests.fixtures.platform import signed_client, unsigned_catalogue
from tests.unit.test_forms_and_catalogue import CATALOGUE
from tests.unit.test_trust import signed_by

OUTBOX = OutboxLimits()


def _demo(**members: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    data.update(members)
    return data


def _limits(files: Any, file_bytes: Any, total: Any) -> dict[str, Any]:
    return {"max_files": files, "max_file_bytes": file_bytes, "max_total_bytes": total}


def test_without_the_member_the_outbox_limits_apply() -> None:
    limits = parse_catalogue(_demo()).attachment_limits
    assert limits == AttachmentLimits(
        max_files=OUTBOX.max_files,
        max_file_bytes=OUTBOX.max_file_bytes,
        max_total_bytes=OUTBOX.max_total_bytes,
    )


def test_announced_limits_below_the_outbox_are_taken() -> None:
    announced = _limits(3, 1_000_000, 2_500_000)
    limits = parse_catalogue(_demo(attachment_limits=announced)).attachment_limits
    assert (limits.max_files, limits.max_file_bytes, limits.max_total_bytes) == (
        3,
        1_000_000,
        2_500_000,
    )


def test_announced_limits_above_the_outbox_are_capped_member_by_member() -> None:
    announced = _limits(500, 2, 10**12)
    limits = parse_catalogue(_demo(attachment_limits=announced)).attachment_limits
    assert limits.max_files == OUTBOX.max_files  # the outbox's is smaller
    assert limits.max_file_bytes == 2  # the platform's is smaller
    assert limits.max_total_bytes == OUTBOX.max_total_bytes


@pytest.mark.parametrize(
    "announced",
    [
        [],
        "5 MB",
        _limits(0, 1, 1),
        _limits(1, -5, 1),
        _limits(1, 1, True),
        _limits(1, 1.5, 1),
        _limits(1, "1", 1),
        {"max_files": 3, "max_file_bytes": 1000},
    ],
)
def test_a_malformed_announcement_refuses_the_catalogue(announced: Any) -> None:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(_demo(attachment_limits=announced))
    assert caught.value.detail.startswith("attachment_limits")


def test_the_platform_announces_its_own_limits_whatever_its_file_says() -> None:
    served = PlatformCatalogue(_demo(attachment_limits=_limits(1, 1, 1))).doc
    assert served["attachment_limits"] == {
        "max_files": models.MAX_ATTACHMENTS,
        "max_file_bytes": models.MAX_ATTACHMENT_BYTES,
        "max_total_bytes": models.MAX_ATTACHMENTS_BYTES,
    }


def test_the_limits_are_covered_by_the_signature() -> None:
    key = Ed25519PrivateKey.generate()
    signed = signed_by(_demo(attachment_limits=_limits(2, 1000, 1500)), key)
    trusted = signing_keys([key.public_key()])
    limits = parse_catalogue(verify_catalogue(signed, trusted)).attachment_limits
    assert (limits.max_files, limits.max_file_bytes) == (2, 1000)
    raised = copy.deepcopy(signed)
    raised["attachment_limits"]["max_file_bytes"] = 5_000_000
    with pytest.raises(CatalogueSignatureError) as caught:
        verify_catalogue(raised, trusted)
    assert caught.value.code == CatalogueSignatureError.BAD_SIGNATURE


def test_a_terminal_gets_the_limits_from_the_platform_over_http(
    platform_server: RunningPlatform, tmp_path: Path
) -> None:
    served = signed_client(platform_server, tmp_path / "terminal").get_catalogue()
    catalogue = parse_catalogue(unsigned_catalogue(platform_server, served))
    limits = catalogue.attachment_limits
    assert (limits.max_files, limits.max_file_bytes, limits.max_total_bytes) == (
        min(models.MAX_ATTACHMENTS, OUTBOX.max_files),
        min(models.MAX_ATTACHMENT_BYTES, OUTBOX.max_file_bytes),
        min(models.MAX_ATTACHMENTS_BYTES, OUTBOX.max_total_bytes),
    )
    # And the materials at the counter keep to them.
    materials = MaterialList(limits)
    with pytest.raises(MaterialRefusedError) as caught:
        materials.add(Material("big.pdf", PDF, b"%PDF-" + bytes(limits.max_file_bytes)))
    assert caught.value.reason == MaterialRefusedError.TOO_LARGE
