"""The printed receipt's QR code, end to end: the platform announces its tracking page and
publishes the terminals' keys over real HTTP; a terminal signs the receipt, the PDF is rasterised
by pdftoppm and the code decoded by zxing-cpp; another terminal checks it offline with the kept
keys; the platform's tracking page shows the case for the token, and refuses a changed one."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import zxingcpp
from PIL import Image

from devices.identity import Identity, Sex
from devices.printers.pdf import MM, PdfReceiptPrinter, qr_matrix
from kiosk.catalogue_store import TERMINAL_KEYS_FILE, CatalogueStore, TerminalKeysStore
from kiosk.config import Config
from kiosk.platform_client import PlatformClient
from kiosk.receipt_numbers import ReceiptNumbers
from kiosk.receipt_token import (
    ReceiptClaim,
    ReceiptTokenError,
    make_token,
    token_from_link,
    tracking_link,
)
from kiosk.reprint import Reprinter
from kiosk.session import Draft
from kiosk.submissions import Submitter
from kiosk.terminal_auth import TerminalIdentity
from kiosk.trust import signing_keys
from offline_queue.outbox import Outbox
from refplatform.models import STATUS_TEXTS
from refplatform.server import RunningPlatform
from tests.fixtures.platform import DEMO_ANSWERS, enrol_terminal

DPI = 203  # a thermal print head's resolution


class Platform(PlatformClient):
    """The platform client with the call that fetches the published keys."""

    def get_terminal_keys(self) -> dict[str, Any]:
        return self._get_json("/terminals/keys")


class NotNow:
    def deliver_now(self, item_id: str, timeout_s: float) -> bool:
        return False


def client_for(platform: RunningPlatform, identity: TerminalIdentity) -> Platform:
    return Platform(platform.base_url, auth=identity.auth())


def rasterise(pdf: Path, dpi: int = DPI) -> Image.Image:
    out = pdf.with_suffix("")
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(pdf), str(out)],
        check=True,
        timeout=60,
    )
    with Image.open(out.with_suffix(".png")) as image:
        return image.convert("L")


def decoded(pdf: Path) -> zxingcpp.Barcode:
    [code] = zxingcpp.read_barcodes(rasterise(pdf))
    assert code.format == zxingcpp.BarcodeFormat.QRCode
    return code


def qr_version(text: str) -> int:
    modules = len(qr_matrix(text)) - 8  # without the quiet zone
    return (modules - 17) // 4


def applicant() -> Identity:
    return Identity(
        name="王秀英",
        sex=Sex.FEMALE,
        nation="汉",
        birth_date=dt.date(1949, 12, 31),
        address="本市幸福路12号3栋502室",
        id_number="11010519491231002X",
        issuing_authority="本市公安局",
        valid_from=None,
        valid_until=None,
    )


def revoke(platform: RunningPlatform, terminal_id: str) -> None:
    answer = requests.post(
        f"{platform.base_url}/api/v1/terminals/{terminal_id}/revoke",
        headers=platform.back_office_headers,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_the_printed_code_is_checked_with_the_keys_the_platform_publishes(
    platform_server: RunningPlatform, tmp_path: Path
) -> None:
    k01 = enrol_terminal(platform_server, tmp_path / "k01", "K01")
    k02 = enrol_terminal(platform_server, tmp_path / "k02", "K02")
    revoke(platform_server, "K02")
    trusted = signing_keys(k01.enrolment.catalogue_keys().values())
    client = client_for(platform_server, k01)
    keys = TerminalKeysStore(tmp_path / "k01" / TERMINAL_KEYS_FILE, trusted)
    store = CatalogueStore(
        tmp_path / "k01" / "catalogue.json", None, signing_keys=trusted, terminal_keys=keys
    )
    catalogue = store.refresh(client)
    # The platform announces its tracking page with the catalogue (here: its own address).
    assert store.tracking_url() == f"{platform_server.base_url}/track"
    assert catalogue.tracking_url == store.tracking_url()
    published = keys.current()
    assert set(published.active) == {"K01"} and published.revoked == {"K02"}

    config = Config(data_dir=tmp_path / "k01", platform_url=platform_server.base_url)
    box = Outbox(tmp_path / "k01" / "outbox.sqlite3", bytes(32))
    printer = PdfReceiptPrinter(tmp_path / "receipts")
    try:
        submitter = Submitter(
            config=config,
            outbox=box,
            uploader=NotNow(),
            printer=printer,
            numbers=ReceiptNumbers(tmp_path / "k01" / "counter.json", "K01"),
            receipt_key=k01.key,
            public_tracking=store.tracking_url,
        )
        service = catalogue.service("residence-permit")
        draft = Draft(service, applicant(), dict(DEMO_ANSWERS[service.id]), catalogue.version)
        result = submitter.submit(draft)
        assert result.printed and result.receipt_path is not None
        assert result.tracking_url == tracking_link(
            f"{platform_server.base_url}/track", result.receipt_token
        )

        # What a phone (or another terminal's scanner) reads off the paper.
        code = decoded(result.receipt_path)
        assert code.text == result.tracking_url
        assert code.ec_level == "M"
        version = qr_version(code.text)
        assert version <= 9, version
        # Another terminal, offline, with the copy of the keys it kept.
        elsewhere = TerminalKeysStore(tmp_path / "k01" / TERMINAL_KEYS_FILE, trusted).load()
        claim = elsewhere.verify(token_from_link(code.text))
        assert claim.receipt_number == result.receipt_number
        assert claim.submission_id == result.submission_id
        assert claim.service_id == "residence-permit" and claim.terminal_id == "K01"
        summary = json.loads(box.get_summary(result.submission_id) or b"{}")
        assert claim.time == summary["created_at"]
        assert summary["receipt_token"] == result.receipt_token
        token = token_from_link(code.text)
        changed = token[:50] + ("B" if token[50] != "B" else "C") + token[51:]
        with pytest.raises(ReceiptTokenError):
            elsewhere.verify(changed)

        # The tracking page: genuine but not uploaded yet, then the case itself.
        page = requests.get(code.text, timeout=10)
        assert page.status_code == 200
        assert result.receipt_number in page.text and "等待上传" in page.text
        refused = requests.get(
            tracking_link(f"{platform_server.base_url}/track", changed), timeout=10
        )
        assert refused.status_code == 404 and result.receipt_number not in refused.text
        item = box.claim_next()
        assert item is not None and item.id == result.submission_id
        outcome = client.submit(item.id, json.loads(item.payload))
        assert outcome.delivered
        box.mark_delivered(item.id, b"{}")
        page = requests.get(code.text, timeout=10)
        assert page.status_code == 200
        assert result.receipt_number in page.text and "等待上传" not in page.text
        assert STATUS_TEXTS["received"]["zh_CN"] in page.text

        # A reprint at the counter carries the very same code.
        again = Reprinter(config=config, outbox=box, printer=printer).reprint(
            result.submission_id, "S0001"
        )
        assert again.path is not None
        assert decoded(again.path).text == code.text
        # The printed symbol is at least 30 mm wide, quiet zone aside.
        assert qr_matrix(code.text) and len(qr_matrix(code.text)) - 8 <= 30 * MM / (0.5 * MM)
    finally:
        box.close()
        client.close()

    # A receipt of the revoked terminal is no longer trusted, here or on the platform's page.
    revoked_claim = ReceiptClaim(
        receipt_number="K02-20261129-0001",
        submission_id="0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        service_id="residence-permit",
        issued_at=dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC),
        terminal_id="K02",
    )
    revoked_token = make_token(revoked_claim, k02.key)
    with pytest.raises(ReceiptTokenError) as caught:
        published.verify(revoked_token)
    assert caught.value.code == ReceiptTokenError.REVOKED_TERMINAL
    link = tracking_link(f"{platform_server.base_url}/track", revoked_token)
    assert requests.get(link, timeout=10).status_code == 404


def test_the_tracking_page_announced_is_the_platforms_public_one(tmp_path: Path) -> None:
    from refplatform.app import DEFAULT_CATALOGUE
    from refplatform.server import start_in_thread

    public = "https://zwfw.example.gov.cn/hall"
    with start_in_thread(
        tmp_path / "platform.sqlite3", DEFAULT_CATALOGUE, public_url=public
    ) as platform:
        k01 = enrol_terminal(platform, tmp_path / "k01", "K01")
        trusted = signing_keys(k01.enrolment.catalogue_keys().values())
        client = client_for(platform, k01)
        try:
            store = CatalogueStore(tmp_path / "k01" / "catalogue.json", None, signing_keys=trusted)
            store.refresh(client)
        finally:
            client.close()
        assert store.tracking_url() == f"{public}/track"
        # The kept copy says the same after a restart, offline.
        again = CatalogueStore(tmp_path / "k01" / "catalogue.json", None, signing_keys=trusted)
        assert again.load_local().tracking_url == f"{public}/track"
    # The longest usual link still makes a small code: measured, version 9 at level M.
    claim = ReceiptClaim(
        receipt_number="K01-20261129-0001",
        submission_id="0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        service_id="pension-certification",
        issued_at=dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC),
        terminal_id="K01",
    )
    assert qr_version(tracking_link(f"{public}/track", make_token(claim, k01.key))) <= 9
