"""Receipts: the document built from a submission, and the PDF an 80 mm roll printer would print.

The PDF is read back the way a person or a phone would meet it: its text through pdfminer, its
page rasterised by poppler's pdftoppm and the QR code decoded by zxing-cpp.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from pdfminer.high_level import extract_pages, extract_text
from pdfminer.layout import LTTextLine
from pdfminer.pdfdocument import PDFDocument
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser
from pdfminer.pdftypes import resolve1
from PIL import Image

from devices.printers.pdf import (
    CONTENT_WIDTH,
    FONT_NOT_EMBEDDED,
    MARGIN,
    MM,
    PAGE_WIDTH,
    QR_QUIET_MODULES,
    WRITE_FAILED,
    PdfReceiptPrinter,
    _Metrics,
    find_font,
    qr_matrix,
    receipt_file_name,
    wrap_text,
)
from devices.printing import PrintResult, PrintStatus, ReceiptDocument, ReceiptPrinter
from kiosk.i18n import set_language
from kiosk.receipt import build_receipt, format_datetime

FULL_NAME = "张小三"
MASKED_NAME = "张*三"
FULL_ID = "11010519491231002X"
MASKED_ID = "110105********002X"
RECEIPT_NUMBER = "K01-20261123-0007"
TRACKING_URL = "http://127.0.0.1:8000/track/0192f0c4-5e1a-7b3c-9d2e-0a1b2c3d4e5f"
SERVICE = {"zh_CN": "居住证申领（首次申领，含随迁子女信息登记）", "en": "Residence permit"}
ZENHEI = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
MICROHEI = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def make_receipt(
    language: str = "zh_CN",
    *,
    delivered: bool = True,
    receipt_number: str = RECEIPT_NUMBER,
) -> ReceiptDocument:
    set_language(language)
    return build_receipt(
        service_name=SERVICE[language],
        receipt_number=receipt_number,
        submitted_at=datetime(2026, 11, 23, 14, 32, 5),
        applicant_name=FULL_NAME,
        id_number=FULL_ID,
        tracking_url=TRACKING_URL,
        delivered=delivered,
        terminal_id="K01",
        hall_name="北京市朝阳区政务服务中心",
        channel="kiosk",
        time_limit_text="15个工作日" if language == "zh_CN" else "15 working days",
        collection_text="窗口领取" if language == "zh_CN" else "At the counter",
    )


def print_ok(printer: PdfReceiptPrinter, doc: ReceiptDocument) -> Path:
    result = printer.print_receipt(doc)
    assert result.status is PrintStatus.OK, result
    assert result.path is not None
    assert result.path.is_file()
    return result.path


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def page_fonts(pdf: Path) -> list[dict[str, Any]]:
    with pdf.open("rb") as fh:
        document = PDFDocument(PDFParser(fh))
        fonts: list[dict[str, Any]] = []
        for page in PDFPage.create_pages(document):
            for ref in resolve1(page.resources["Font"]).values():
                font = dict(resolve1(ref))
                descriptor = resolve1(font.get("FontDescriptor"))
                if descriptor is None and "DescendantFonts" in font:
                    descendant = resolve1(resolve1(font["DescendantFonts"])[0])
                    descriptor = resolve1(descendant.get("FontDescriptor"))
                font["_descriptor"] = dict(descriptor or {})
                fonts.append(font)
        return fonts


def page_sizes(pdf: Path) -> list[tuple[float, float]]:
    with pdf.open("rb") as fh:
        pages = PDFPage.create_pages(PDFDocument(PDFParser(fh)))
        return [(p.mediabox[2] - p.mediabox[0], p.mediabox[3] - p.mediabox[1]) for p in pages]


def rasterise(pdf: Path, dpi: int) -> Image.Image:
    out = pdf.with_suffix("")
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(pdf), str(out)],
        check=True,
        timeout=60,
    )
    with Image.open(out.with_suffix(".png")) as image:
        return image.convert("L")


@pytest.fixture
def printer(tmp_path: Path) -> PdfReceiptPrinter:
    return PdfReceiptPrinter(tmp_path / "receipts")


# --- the document --------------------------------------------------------------------------------


def test_document_is_translated_and_masked() -> None:
    doc = make_receipt("zh_CN", delivered=True)
    assert doc.title == "受理回执"
    assert doc.receipt_number_label == "受理编号"
    assert doc.qr_caption == "扫码查询办理进度"
    assert doc.qr_url == TRACKING_URL
    rows = {line.label: line.value for line in doc.lines}
    assert rows == {
        "办理事项": SERVICE["zh_CN"],
        "申请人": MASKED_NAME,
        "证件号码": MASKED_ID,
        "受理时间": "2026年11月23日 14:32",
        "承诺时限": "15个工作日",
        "领取方式": "窗口领取",
    }
    assert doc.notice == "政务服务平台已收到本申请。扫描二维码可在线查询办理进度。"
    assert any("K01" in line and "自助终端" in line for line in doc.footer)
    assert FULL_ID not in repr(doc)
    assert FULL_NAME not in repr(doc)


@pytest.mark.parametrize("channel", ["kiosk", "counter", "rural"])
def test_every_receipt_text_has_a_chinese_translation(
    caplog: pytest.LogCaptureFixture, channel: str
) -> None:
    set_language("zh_CN")
    with caplog.at_level(logging.WARNING, logger="kiosk.i18n"):
        doc = build_receipt(
            service_name="居住证申领",
            receipt_number=RECEIPT_NUMBER,
            submitted_at=datetime(2026, 11, 23, 14, 32),
            applicant_name=FULL_NAME,
            id_number=FULL_ID,
            tracking_url=TRACKING_URL,
            delivered=False,
            terminal_id="K01",
            hall_name="",
            channel=channel,
            time_limit_text="15个工作日",
            collection_text="窗口领取",
        )
    assert [r.getMessage() for r in caplog.records] == []
    assert doc.notice == "本申请已保存在本终端，网络恢复后将自动上传。受理编号现已有效。"
    assert not re.search(r"[A-Za-z]{3,}", doc.title + doc.qr_caption + "".join(doc.footer))


def test_document_in_english() -> None:
    doc = make_receipt("en")
    rows = {line.label: line.value for line in doc.lines}
    assert doc.title == "Application Receipt"
    assert rows["Received at"] == "23 Nov 2026 14:32"
    assert rows["ID number"] == MASKED_ID
    assert any("Self-service terminal" in line for line in doc.footer)


def test_empty_optional_texts_leave_their_lines_out() -> None:
    set_language("zh_CN")
    doc = build_receipt(
        service_name="居住证申领",
        receipt_number=RECEIPT_NUMBER,
        submitted_at=datetime(2026, 1, 5, 9, 7),
        applicant_name=FULL_NAME,
        id_number=FULL_ID,
        tracking_url=TRACKING_URL,
        delivered=True,
        terminal_id="C02",
        hall_name="",
        channel="counter",
    )
    labels = [line.label for line in doc.lines]
    assert "承诺时限" not in labels
    assert "领取方式" not in labels
    assert any("服务窗口" in line for line in doc.footer)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh_CN", "2026年1月5日 09:07"),
        ("en", "5 Jan 2026 09:07"),
    ],
)
def test_date_formats(language: str, expected: str) -> None:
    assert format_datetime(datetime(2026, 1, 5, 9, 7, 59), language) == expected


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_the_receipt_says_whether_the_platform_has_the_application(
    printer: PdfReceiptPrinter, language: str
) -> None:
    waiting = make_receipt(language, delivered=False)
    delivered = make_receipt(language, delivered=True)
    if language == "zh_CN":
        assert "网络恢复后将自动上传" in waiting.notice
        assert "政务服务平台已收到本申请" in delivered.notice
    else:
        assert "uploaded automatically when the network is back" in waiting.notice
        assert "The service platform has received this application" in delivered.notice

    waiting_text = squeeze(extract_text(print_ok(printer, waiting)))
    assert squeeze(waiting.notice) in waiting_text
    assert squeeze(delivered.notice)[:12] not in waiting_text
    delivered_text = squeeze(extract_text(print_ok(printer, delivered)))
    assert squeeze(delivered.notice) in delivered_text
    assert squeeze(waiting.notice)[:12] not in delivered_text


# --- the PDF -------------------------------------------------------------------------------------


def test_pdf_printer_is_a_receipt_printer(printer: PdfReceiptPrinter) -> None:
    as_protocol: ReceiptPrinter = printer
    assert isinstance(as_protocol.print_receipt(make_receipt()), PrintResult)


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_pdf_text_shows_masked_values_only(printer: PdfReceiptPrinter, language: str) -> None:
    pdf = print_ok(printer, make_receipt(language))
    assert pdf == printer.out_dir / f"{RECEIPT_NUMBER}.pdf"
    text = extract_text(pdf)
    flat = squeeze(text)
    assert RECEIPT_NUMBER in text
    assert squeeze(SERVICE[language]) in flat
    assert MASKED_ID in text
    assert MASKED_NAME in text
    assert FULL_ID not in flat
    assert FULL_NAME not in flat
    title = "受理回执" if language == "zh_CN" else "Application Receipt"
    assert title in text


def test_page_is_80_mm_wide_and_as_long_as_its_content(printer: PdfReceiptPrinter) -> None:
    short = print_ok(printer, dataclasses.replace(make_receipt(delivered=True), notice=""))
    [(width, short_height)] = page_sizes(short)
    assert width == pytest.approx(80 * MM, abs=0.01)
    assert short_height > 1.5 * width
    longer = print_ok(printer, make_receipt(delivered=False, receipt_number="K01-X"))
    [(longer_width, longer_height)] = page_sizes(longer)  # the notice adds length, not a page
    assert longer_width == width
    assert longer_height > short_height


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_text_stays_inside_the_printable_72_mm(printer: PdfReceiptPrinter, language: str) -> None:
    doc = make_receipt(language, delivered=False)
    pdf = print_ok(printer, doc)
    lines = [
        element
        for page in extract_pages(pdf)
        for box in page
        if hasattr(box, "__iter__")
        for element in box
        if isinstance(element, LTTextLine)
    ]
    assert len(lines) > 10
    for line in lines:
        assert line.x0 >= MARGIN - 0.5, line.get_text()
        assert line.x1 <= PAGE_WIDTH - MARGIN + 0.5, line.get_text()


def test_fonts_are_embedded_truetype(printer: PdfReceiptPrinter) -> None:
    pdf = print_ok(printer, make_receipt("zh_CN", delivered=False))
    fonts = page_fonts(pdf)
    assert fonts
    for font in fonts:
        assert "FontFile2" in font["_descriptor"], font.get("BaseFont")
    assert b"/FontFile2" in pdf.read_bytes()


def test_font_path_argument_is_used_first(tmp_path: Path) -> None:
    printer = PdfReceiptPrinter(tmp_path, font_path=MICROHEI)
    result = printer.print_receipt(make_receipt())
    assert result.status is PrintStatus.OK
    assert result.detail == ""
    assert result.path is not None
    names = {str(font.get("BaseFont")) for font in page_fonts(result.path)}
    assert any("MicroHei" in name for name in names), names


def test_without_an_embeddable_font_it_falls_back_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "broken.ttf").write_bytes(b"not a font at all")
    printer = PdfReceiptPrinter(
        tmp_path / "out",
        font_path=tmp_path / "missing.ttc",
        fallback_font_paths=(tmp_path / "broken.ttf",),
    )
    result = printer.print_receipt(make_receipt())
    assert result.status is PrintStatus.OK
    assert result.detail == FONT_NOT_EMBEDDED
    assert result.path is not None
    text = extract_text(result.path)
    assert RECEIPT_NUMBER in text
    assert MASKED_ID in text
    assert all("FontFile2" not in font["_descriptor"] for font in page_fonts(result.path))


def test_font_registration_is_remembered() -> None:
    first = find_font((ZENHEI,))
    again = find_font((Path("/nonexistent/font.ttc"), ZENHEI))
    assert first.embedded
    assert again == first


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_qr_code_decodes_to_the_tracking_url(printer: PdfReceiptPrinter, language: str) -> None:
    dpi = 300
    pdf = print_ok(printer, make_receipt(language, delivered=False))
    image = rasterise(pdf, dpi)
    codes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [code.text for code in codes] == [TRACKING_URL]
    code = codes[0]
    assert code.ec_level == "M"
    pos = code.position
    side_px = pos.top_right.x - pos.top_left.x
    assert side_px * 25.4 / dpi >= 30.0
    # The quiet zone: four modules of white on every side of the symbol.
    module_px = side_px / (len(qr_matrix(TRACKING_URL)) - 2 * QR_QUIET_MODULES)
    band = range(2, int(4 * module_px) - 1)
    pixels = image.load()
    assert pixels is not None
    left, right = pos.top_left.x, pos.top_right.x
    top, bottom = pos.top_left.y, pos.bottom_left.y
    for offset in band:
        for x in range(left - offset, right + offset):
            assert pixels[x, top - offset] > 200
            assert pixels[x, bottom + offset] > 200
        for y in range(top - offset, bottom + offset):
            assert pixels[left - offset, y] > 200
            assert pixels[right + offset, y] > 200


def test_no_temporary_files_are_left_behind(printer: PdfReceiptPrinter) -> None:
    print_ok(printer, make_receipt())
    print_ok(printer, make_receipt())  # a reprint replaces the file
    assert sorted(p.name for p in printer.out_dir.iterdir()) == [f"{RECEIPT_NUMBER}.pdf"]


@pytest.mark.parametrize(
    "number",
    ["../../escaped", "..\\..\\escaped", "/var/escaped", "a/../../escaped", "..", ".hidden", ""],
)
def test_receipt_number_cannot_escape_the_folder(tmp_path: Path, number: str) -> None:
    out_dir = tmp_path / "a" / "b" / "receipts"
    printer = PdfReceiptPrinter(out_dir)
    pdf = print_ok(printer, make_receipt(receipt_number=number))
    assert pdf.parent == out_dir
    assert pdf.resolve().parent == out_dir.resolve()
    assert not pdf.name.startswith(".")
    everything = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert everything == {pdf.relative_to(tmp_path)}


def test_receipt_file_name() -> None:
    assert receipt_file_name(RECEIPT_NUMBER) == f"{RECEIPT_NUMBER}.pdf"
    assert "/" not in receipt_file_name("../x/y")
    assert receipt_file_name("///") == "receipt.pdf"


def test_unwritable_out_dir_is_an_error_result(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the receipts folder should be")
    for out_dir in (blocker, blocker / "receipts"):
        result = PdfReceiptPrinter(out_dir).print_receipt(make_receipt())
        assert result.status is PrintStatus.ERROR
        assert result.detail.startswith(f"{WRITE_FAILED}:")
        assert result.path is None
    assert blocker.read_text() == "a file where the receipts folder should be"


# --- wrapping ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics() -> _Metrics:
    return _Metrics(find_font((ZENHEI,)).name)


def test_cjk_text_wraps_by_width(metrics: _Metrics) -> None:
    text = "本申请已保存在本终端，网络恢复后将自动上传。受理编号现已有效，请妥善保管本回执。"
    lines = wrap_text(text, metrics, 10, 40 * MM)
    assert len(lines) > 2
    assert "".join(lines) == text
    for line in lines:
        assert metrics.width(line, 10) <= 40 * MM + 0.01
        assert line[0] not in "，。、"


def test_latin_text_breaks_between_words(metrics: _Metrics) -> None:
    text = "This application is saved on this terminal and will be uploaded automatically"
    lines = wrap_text(text, metrics, 10, CONTENT_WIDTH / 2)
    assert len(lines) > 1
    assert " ".join(lines) == text
    assert all(metrics.width(line, 10) <= CONTENT_WIDTH / 2 + 0.01 for line in lines)


def test_a_word_longer_than_the_line_is_broken(metrics: _Metrics) -> None:
    lines = wrap_text(TRACKING_URL, metrics, 10, 30 * MM)
    assert len(lines) > 1
    assert "".join(lines) == TRACKING_URL
    assert all(metrics.width(line, 10) <= 30 * MM + 0.01 for line in lines)
