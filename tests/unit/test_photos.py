"""Which card photos a screen can show, and in what form."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from PIL import Image

from kiosk.photos import PhotoSource
from tests.fixtures.gat467_sim import PERSON


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 80), (200, 150, 120)).save(out, format=fmt)
    return out.getvalue()


def test_a_jpeg_from_a_chip_is_shown_as_it_is() -> None:
    jpeg = _image("JPEG")
    person = dataclasses.replace(PERSON, photo=jpeg, photo_format="jpeg")
    assert PhotoSource().image(person) == jpeg


def test_a_jpeg2000_from_a_chip_becomes_a_png() -> None:
    person = dataclasses.replace(PERSON, photo=_image("JPEG2000"), photo_format="jpeg2000")
    png = PhotoSource().image(person)
    assert png is not None and png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (60, 80)


def test_a_broken_jpeg2000_is_a_placeholder_not_a_crash() -> None:
    person = dataclasses.replace(
        PERSON, photo=b"\x00\x00\x00\x0cjP  broken", photo_format="jpeg2000"
    )
    assert PhotoSource().image(person) is None


def test_a_resident_card_photo_needs_the_vendor_decoder() -> None:
    person = dataclasses.replace(PERSON, photo=bytes(1024), photo_format="wlt")
    assert PhotoSource().image(person) is None
    assert PhotoSource(lambda photo: b"BM" + photo[:4]).image(person) == b"BM\x00\x00\x00\x00"


def test_a_decoder_library_that_does_not_load_leaves_the_terminal_working(tmp_path: Path) -> None:
    source = PhotoSource.from_library(tmp_path / "missing.so")
    person = dataclasses.replace(PERSON, photo=bytes(1024), photo_format="wlt")
    assert source.image(person) is None
