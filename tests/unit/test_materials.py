"""Materials attached at the counter: what a file is (by its bytes), the limits, the refusals."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from reportlab.pdfgen.canvas import Canvas

from kiosk.catalogue import AttachmentLimits
from kiosk.i18n import set_language
from kiosk.materials import (
    JPEG,
    MB,
    PDF,
    PHOTO_MAX_SIDE,
    PNG,
    Material,
    MaterialList,
    MaterialRefusedError,
    jpeg_from_rgb,
    material_name,
    megabytes,
    read_material,
    size_text,
    sniff,
)
from offline_queue.outbox import Attachment, Outbox

LIMITS = AttachmentLimits()  # the outbox's own: 20 files, 5 MB each, 20 MB in all


def pdf_bytes(text: str = "Certificate") -> bytes:
    """A real one-page PDF, as a scanner would write one."""
    out = io.BytesIO()
    canvas = Canvas(out)
    canvas.drawString(72, 720, text)
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, fmt)
    return out.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def refusal(call: Any, *args: Any) -> MaterialRefusedError:
    with pytest.raises(MaterialRefusedError) as caught:
        call(*args)
    return caught.value


# -- what a file is ----------------------------------------------------------------------------


def test_the_kind_comes_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    listed = MaterialList(LIMITS)
    pdf = listed.add_file(write(tmp_path / "scan.PNG", pdf_bytes()))
    png = listed.add_file(write(tmp_path / "出生证明", image_bytes("PNG")))
    jpeg = listed.add_file(write(tmp_path / "photo.pdf", image_bytes("JPEG")))
    assert [(m.name, m.content_type) for m in listed] == [
        ("scan.PNG", PDF),
        ("出生证明", PNG),
        ("photo.pdf", JPEG),
    ]
    assert [m.kind() for m in listed] == ["PDF 文件", "PNG 图片", "JPEG 图片"]
    assert pdf.data == (tmp_path / "scan.PNG").read_bytes()
    assert listed.total_bytes == pdf.size + png.size + jpeg.size


@pytest.mark.parametrize(
    "data",
    [
        image_bytes("GIF"),
        image_bytes("BMP"),
        b"PK\x03\x04" + b"\x00" * 40,  # a zip (an office document), named .pdf below
        "身份证号 110105194912310021".encode(),
        b" %PDF-1.7",  # the header must be at the start
    ],
)
def test_anything_but_pdf_png_and_jpeg_is_refused(tmp_path: Path, data: bytes) -> None:
    listed = MaterialList(LIMITS)
    error = refusal(listed.add_file, write(tmp_path / "material.pdf", data))
    assert error.reason == MaterialRefusedError.NOT_ALLOWED
    assert str(error) == "只能添加图片（JPEG 或 PNG）和 PDF 文件。"
    assert len(listed) == 0


def test_sniff() -> None:
    assert sniff(pdf_bytes()) == PDF
    assert sniff(image_bytes("PNG")) == PNG
    assert sniff(image_bytes("JPEG")) == JPEG
    assert sniff(b"\x89PNG") is None  # the signature is eight bytes
    assert sniff(b"") is None


# -- limits ------------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_naming_the_limit_in_mb(tmp_path: Path) -> None:
    big = write(tmp_path / "big.pdf", b"%PDF-1.4\n" + b"0" * (5 * MB))
    listed = MaterialList(LIMITS)
    error = refusal(listed.add_file, big)
    assert error.reason == MaterialRefusedError.TOO_LARGE
    assert str(error) == "这个文件超过 5 MB，不能添加。"
    set_language("en")
    assert str(error) == "This file is larger than 5 MB and cannot be added."
    exactly = write(tmp_path / "exact.pdf", b"%PDF-1.4\n" + b"0" * (5 * MB - 9))
    assert listed.add_file(exactly).size == 5 * MB


def test_no_more_than_one_byte_past_the_limit_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the size the file system gives is not the size read (a file that grows)."""
    path = write(tmp_path / "growing.pdf", b"%PDF-1.4\n" + b"0" * 4000)
    asked: list[int] = []
    real_fdopen = os.fdopen

    class Spy:
        def __init__(self, fh: Any) -> None:
            self._fh = fh

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self._fh.close()

        def fileno(self) -> int:
            return int(self._fh.fileno())

        def read(self, n: int) -> bytes:
            asked.append(n)
            data = self._fh.read(n)
            return bytes(data)

    def fdopen(fd: int, mode: str) -> Spy:
        return Spy(real_fdopen(fd, mode))

    real_fstat = os.fstat

    def fstat(fd: int) -> Any:
        info = real_fstat(fd)
        return os.stat_result((info.st_mode, *[0] * 5, 10, *[0] * 3))  # claims 10 bytes

    monkeypatch.setattr(os, "fdopen", fdopen)
    monkeypatch.setattr(os, "fstat", fstat)
    error = refusal(read_material, path, 1000)
    assert error.reason == MaterialRefusedError.TOO_LARGE
    assert asked == [1001]


def test_too_many_files(tmp_path: Path) -> None:
    listed = MaterialList(AttachmentLimits(max_files=2))
    for n in range(2):
        listed.add_file(write(tmp_path / f"{n}.png", image_bytes("PNG")))
    error = refusal(listed.add_file, write(tmp_path / "third.png", image_bytes("PNG")))
    assert error.reason == MaterialRefusedError.TOO_MANY
    assert str(error) == "一份申请最多只能附 2 个文件。"
    assert len(listed) == 2


def test_files_together_over_the_total_are_refused(tmp_path: Path) -> None:
    limits = AttachmentLimits(max_file_bytes=2 * MB, max_total_bytes=MB * 5 // 2)
    listed = MaterialList(limits)
    first = b"%PDF-1.4\n" + b"1" * (2 * MB - 9)
    listed.add_file(write(tmp_path / "first.pdf", first))
    error = refusal(listed.add_file, write(tmp_path / "second.pdf", first))
    assert error.reason == MaterialRefusedError.TOTAL_TOO_LARGE
    assert str(error) == "加上这个文件，材料总大小会超过 2.5 MB，不能添加。"
    assert listed.total_bytes == 2 * MB
    # A smaller one still fits.
    assert listed.add_file(write(tmp_path / "small.png", image_bytes("PNG"))).content_type == PNG


def test_what_is_not_a_readable_file_is_refused_without_waiting(tmp_path: Path) -> None:
    listed = MaterialList(LIMITS)
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)  # opened for reading without a writer, a plain open() waits for ever
    for path in (fifo, tmp_path / "missing.pdf", tmp_path):
        error = refusal(listed.add_file, path)
        assert error.reason == MaterialRefusedError.UNREADABLE
        assert str(error) == "这个文件无法读取，请检查后再试。"
    empty = refusal(listed.add_file, write(tmp_path / "empty.pdf", b""))
    assert empty.reason == MaterialRefusedError.EMPTY
    assert str(empty) == "这个文件是空的，不能添加。"
    assert len(listed) == 0


def test_a_material_read_elsewhere_is_checked_again_when_added() -> None:
    listed = MaterialList(AttachmentLimits(max_file_bytes=100))
    assert refusal(listed.add, Material("x.png", PNG, image_bytes("JPEG"))).reason == (
        MaterialRefusedError.NOT_ALLOWED
    )
    big = Material("x.pdf", PDF, b"%PDF-" + b"0" * 200)
    assert refusal(listed.add, big).reason == MaterialRefusedError.TOO_LARGE


def test_megabytes_are_never_rounded_up_past_the_limit() -> None:
    assert megabytes(5 * MB) == "5"
    assert megabytes(20 * MB) == "20"
    assert megabytes(MB * 5 // 2) == "2.5"
    assert megabytes(MB * 5 // 2 - 1) == "2.4"
    assert megabytes(300 * 1024) == "0.2"
    assert megabytes(50 * 1024) == "0.04"
    assert size_text(35 * 1024) == "35 KB"
    assert size_text(MB * 6 // 5) == "1.2 MB"


# -- photos, removing, wiping, handing over ------------------------------------------------------


def test_a_document_camera_photo_must_be_a_jpeg() -> None:
    listed = MaterialList(LIMITS)
    photo = listed.add_image("材料照片1.jpg", image_bytes("JPEG"))
    assert (photo.name, photo.content_type) == ("材料照片1.jpg", JPEG)
    error = refusal(listed.add_image, "材料照片2.jpg", image_bytes("PNG"))
    assert error.reason == MaterialRefusedError.NOT_A_PHOTO
    assert len(listed) == 1


def test_a_camera_frame_becomes_a_jpeg_within_a4_at_300_dpi_and_the_file_limit() -> None:
    width, height = 4000, 3000
    frame = Image.radial_gradient("L").resize((width, height)).convert("RGB")
    jpeg = jpeg_from_rgb(width, height, frame.tobytes(), width * 3, 5 * MB)
    assert sniff(jpeg) == JPEG and len(jpeg) <= 5 * MB
    with Image.open(io.BytesIO(jpeg)) as decoded:
        assert max(decoded.size) == PHOTO_MAX_SIDE
        assert decoded.size[0] > decoded.size[1]
    error = refusal(jpeg_from_rgb, width, height, frame.tobytes(), width * 3, 1000)
    assert error.reason == MaterialRefusedError.TOO_LARGE


def test_remove_wipe_and_attachments(tmp_path: Path, outbox: Outbox) -> None:
    listed = MaterialList(LIMITS)
    pdf = listed.add_file(write(tmp_path / "a.pdf", pdf_bytes()))
    png = listed.add_file(write(tmp_path / "b.png", image_bytes("PNG")))
    jpeg = listed.add_image("c.jpg", image_bytes("JPEG"))
    assert listed.remove(1) == png
    assert [m.name for m in listed] == ["a.pdf", "c.jpg"]
    with pytest.raises(IndexError):
        listed.remove(5)
    attachments = listed.as_attachments()
    assert attachments == (
        Attachment("a.pdf", PDF, pdf.data),
        Attachment("c.jpg", JPEG, jpeg.data),
    )
    outbox.check_attachments(attachments)  # the outbox takes what the list took
    listed.wipe()
    assert len(listed) == 0 and listed.total_bytes == 0 and listed.as_attachments() == ()


def test_a_full_list_is_what_the_outbox_takes(outbox: Outbox) -> None:
    limits = outbox.attachment_limits
    listed = MaterialList(AttachmentLimits())
    each = limits.max_total_bytes // limits.max_files
    for n in range(limits.max_files):
        listed.add(Material(f"{n}.pdf", PDF, b"%PDF-" + bytes(each - 5)))
    assert listed.total_bytes == limits.max_total_bytes
    outbox.check_attachments(listed.as_attachments())
    assert refusal(listed.add, Material("one more.pdf", PDF, b"%PDF-1")).reason == (
        MaterialRefusedError.TOO_MANY
    )


def test_names_are_ones_the_outbox_takes() -> None:
    assert material_name("scan\x00\x1f.pdf\n", PDF) == "scan.pdf"
    assert material_name("  \t", JPEG) == "material.jpg"
    long = material_name("证" * 300 + ".jpeg", JPEG)
    assert len(long) == 255 and long.endswith("证.jpeg")
    Attachment(long, JPEG, b"\xff\xd8\xff")
