"""The materials staff attach at the counter: scanned files and document-camera photos.

A file is read once, no more than one byte past the size a single file may have, and taken only
when its first bytes say it is a PDF, a PNG or a JPEG picture (whatever its name says). The list
keeps to the limits the platform announced in its catalogue, so a file is refused when it is
added, with a sentence that names the limit, not when the submission is saved. Reading a file
(`read_material`) touches the disk and belongs on a worker; the list itself is plain memory.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from kiosk.catalogue import AttachmentLimits
from kiosk.errors import UserFacingError
from kiosk.i18n import N_, _
from offline_queue.outbox import MAX_ATTACHMENT_NAME_CHARS, Attachment

MB: Final = 1024 * 1024
PDF: Final = "application/pdf"
PNG: Final = "image/png"
JPEG: Final = "image/jpeg"

# The first bytes of each kind taken; nothing else is.
_MAGIC: Final = (
    (b"%PDF-", PDF),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
)
_KINDS: Final = {
    PDF: N_("PDF document"),
    PNG: N_("PNG picture"),
    JPEG: N_("JPEG picture"),
}
_SUFFIXES: Final = {PDF: ".pdf", PNG: ".png", JPEG: ".jpg"}


class MaterialRefusedError(UserFacingError):
    """A file that cannot be added; reason is one of the constants below, for the log and tests."""

    TOO_LARGE: Final = "too_large"
    TOTAL_TOO_LARGE: Final = "total_too_large"
    TOO_MANY: Final = "too_many"
    NOT_ALLOWED: Final = "not_allowed"
    EMPTY: Final = "empty"
    UNREADABLE: Final = "unreadable"
    NOT_A_PHOTO: Final = "not_a_photo"

    def __init__(self, reason: str, message: str, /, **params: object) -> None:
        super().__init__(message, **params)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Material:
    """One attached file: a name to show, its sniffed content type and its bytes."""

    name: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    def kind(self) -> str:
        """What it is, in the active language ("PDF document")."""
        return _(_KINDS[self.content_type])

    def as_attachment(self) -> Attachment:
        return Attachment(name=self.name, content_type=self.content_type, data=self.data)


def megabytes(size: int) -> str:
    """A byte count in MB as a person reads it: 5 MB, 2.5 MB (never rounded up past it)."""
    tenths = size * 10 // MB
    if tenths == 0:  # a limit this small is for tests; hundredths, at least one
        return f"0.0{max(1, size * 100 // MB)}"
    whole, tenth = divmod(tenths, 10)
    return f"{whole}.{tenth}" if tenth else str(whole)


def size_text(size: int) -> str:
    """A file's size for a list: 35 KB, 1.2 MB."""
    if size < MB:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / MB:.1f} MB"


def sniff(head: bytes) -> str | None:
    """The content type that the first bytes of a file show, if it is one that is taken."""
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    return None


def material_name(raw: str, content_type: str) -> str:
    """A name the outbox takes: no control characters, at most its length, never empty."""
    name = "".join(c for c in raw if ord(c) >= 0x20 and ord(c) != 0x7F).strip()
    if not name:
        name = "material" + _SUFFIXES[content_type]
    if len(name) > MAX_ATTACHMENT_NAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        if dot and 0 < len(suffix) <= 8:
            name = stem[: MAX_ATTACHMENT_NAME_CHARS - len(suffix) - 1] + "." + suffix
        else:
            name = name[:MAX_ATTACHMENT_NAME_CHARS]
    return name


def _too_large(max_file_bytes: int) -> MaterialRefusedError:
    return MaterialRefusedError(
        MaterialRefusedError.TOO_LARGE,
        N_("This file is larger than {mb} MB and cannot be added."),
        mb=megabytes(max_file_bytes),
    )


def _unreadable() -> MaterialRefusedError:
    return MaterialRefusedError(
        MaterialRefusedError.UNREADABLE,
        N_("This file could not be read. Please check it and try again."),
    )


def read_material(path: Path, max_file_bytes: int) -> Material:
    """The file at path as a Material; MaterialRefusedError when it is not one that is taken.

    At most max_file_bytes + 1 bytes are read, whatever the file claims; anything but a regular
    file (a pipe, a device, a folder) is refused without reading, as opening a pipe could wait
    for ever. Runs on a worker: it reads the disk.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _unreadable() from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _unreadable()
        if info.st_size > max_file_bytes:
            raise _too_large(max_file_bytes)
        with os.fdopen(fd, "rb") as fh:
            fd = -1  # closed with fh from here on
            data = fh.read(max_file_bytes + 1)
    except OSError as exc:
        raise _unreadable() from exc
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > max_file_bytes:  # it grew after fstat
        raise _too_large(max_file_bytes)
    if not data:
        raise MaterialRefusedError(
            MaterialRefusedError.EMPTY, N_("This file is empty and cannot be added.")
        )
    content_type = sniff(data)
    if content_type is None:
        raise MaterialRefusedError(
            MaterialRefusedError.NOT_ALLOWED,
            N_("Only pictures (JPEG or PNG) and PDF files can be added."),
        )
    return Material(material_name(path.name, content_type), content_type, data)


class MaterialList:
    """The files going with one submission, in the order they were added, within the limits."""

    def __init__(self, limits: AttachmentLimits) -> None:
        self.limits = limits
        self._items: list[Material] = []

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Material]:
        return iter(tuple(self._items))

    def __getitem__(self, index: int) -> Material:
        return self._items[index]

    @property
    def total_bytes(self) -> int:
        return sum(item.size for item in self._items)

    def add_file(self, path: Path) -> Material:
        """Read the file at path and add it (reads the disk: call it off the GUI thread, or
        read with read_material on a worker and add() the result)."""
        return self.add(read_material(path, self.limits.max_file_bytes))

    def add_image(self, name: str, jpeg_bytes: bytes) -> Material:
        """Add a photo taken with the document camera (JPEG bytes)."""
        if sniff(jpeg_bytes) != JPEG:
            raise MaterialRefusedError(
                MaterialRefusedError.NOT_A_PHOTO,
                N_("The picture from the document camera could not be used. Please take it again."),
            )
        return self.add(Material(material_name(name, JPEG), JPEG, bytes(jpeg_bytes)))

    def add(self, material: Material) -> Material:
        """Add a file already read; MaterialRefusedError when it breaks one of the limits."""
        limits = self.limits
        if not material.data:
            raise MaterialRefusedError(
                MaterialRefusedError.EMPTY, N_("This file is empty and cannot be added.")
            )
        if material.content_type not in _KINDS or sniff(material.data) != material.content_type:
            raise MaterialRefusedError(
                MaterialRefusedError.NOT_ALLOWED,
                N_("Only pictures (JPEG or PNG) and PDF files can be added."),
            )
        if material.size > limits.max_file_bytes:
            raise _too_large(limits.max_file_bytes)
        if len(self._items) >= limits.max_files:
            raise MaterialRefusedError(
                MaterialRefusedError.TOO_MANY,
                N_("At most {count} files can go with one application."),
                count=limits.max_files,
            )
        if self.total_bytes + material.size > limits.max_total_bytes:
            raise MaterialRefusedError(
                MaterialRefusedError.TOTAL_TOO_LARGE,
                N_(
                    "With this file the materials would be larger than {mb} MB in all, "
                    "so it cannot be added."
                ),
                mb=megabytes(limits.max_total_bytes),
            )
        self._items.append(material)
        return material

    def remove(self, index: int) -> Material:
        """Take out the file at index (IndexError when there is none)."""
        return self._items.pop(index)

    def as_attachments(self) -> tuple[Attachment, ...]:
        """The files as the submission carries them, in order."""
        return tuple(item.as_attachment() for item in self._items)

    def wipe(self) -> None:
        """Forget every file (the visit is over)."""
        self._items.clear()


# A document-camera photo is kept at A4 and 300 dpi at most: enough to read a certificate's
# small print, and far below what a file may weigh.
PHOTO_MAX_SIDE: Final = 3508
_PHOTO_QUALITIES: Final = (85, 70, 55, 40)


def jpeg_from_rgb(width: int, height: int, rgb: bytes, stride: int, max_file_bytes: int) -> bytes:
    """A camera frame (8-bit RGB rows of `stride` bytes) as JPEG bytes no larger than a file may
    be: scaled to PHOTO_MAX_SIDE, then at falling quality until it fits. Runs on a worker."""
    from PIL import Image  # loaded where a photo is taken, not at start-up

    image = Image.frombuffer("RGB", (width, height), rgb, "raw", "RGB", stride, 1)
    image.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE))
    for quality in _PHOTO_QUALITIES:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        data = out.getvalue()
        if len(data) <= max_file_bytes:
            return data
    raise _too_large(max_file_bytes)
