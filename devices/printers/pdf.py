"""A receipt printer that writes an 80 mm roll receipt as a one-page PDF.

The page is as long as its content, the way a thermal printer cuts its roll, so the same file can be
sent to a roll printer through CUPS, kept as a record, or shown on screen.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import logging
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import qrcode
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from devices.printers.linebreak import wrap_paragraph
from devices.printing import PrintResult, PrintStatus, ReceiptDocument

log = logging.getLogger(__name__)

MM = 72.0 / 25.4
PAGE_WIDTH = 80 * MM
MARGIN = 4 * MM
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN  # 72 mm: what an 80 mm roll printer can reach
QR_MIN_SYMBOL = 34 * MM  # phone cameras read this from arm's length; 30 mm is the floor
QR_MIN_MODULE = 0.5 * MM  # four dots of a 203 dpi print head
QR_QUIET_MODULES = 4

# Fonts with TrueType outlines that reportlab can embed, most suitable first.
DEFAULT_FONT_PATHS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),
    Path("C:/Windows/Fonts/simhei.ttf"),
    Path("C:/Windows/Fonts/msyh.ttc"),
)
CID_FALLBACK_FONT = "STSong-Light"

# PrintResult.detail codes.
FONT_NOT_EMBEDDED = "font_not_embedded"  # printed, but the viewer has to supply the Chinese font
RENDER_FAILED = "render_failed"
WRITE_FAILED = "write_failed"

_UNSAFE_FILE_CHARS = re.compile(r"[^0-9A-Za-z_-]+")
# A receipt holds only masked values, yet names a service a person applied for: private to the
# terminal's user, like the rest of the data directory.
RECEIPT_FILE_MODE = 0o600
RECEIPT_DIR_MODE = 0o700

# Kinsoku: characters that may not begin or end a line.

_font_lock = threading.Lock()
_registered_fonts: dict[tuple[str, int], str] = {}  # registration parses the whole font: once


@dataclass(frozen=True, slots=True)
class ReceiptFont:
    name: str
    embedded: bool


def find_font(candidates: Sequence[Path]) -> ReceiptFont:
    """Register the first loadable TrueType font of candidates, or fall back to a CID font.

    Registered fonts are remembered for the life of the process, so only the first receipt pays.
    """
    with _font_lock:
        for path in candidates:
            key = (str(path), 0)
            name = _registered_fonts.get(key)
            if name is not None:
                return ReceiptFont(name, embedded=True)
            if not path.is_file():
                continue
            name = f"HallReceipt-{len(_registered_fonts)}"
            try:
                pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=0))
            except Exception as exc:  # reportlab raises several types for an unusable font
                log.warning("font %s not usable: %s", path, type(exc).__name__)
                continue
            _registered_fonts[key] = name
            return ReceiptFont(name, embedded=True)
        if CID_FALLBACK_FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(CID_FALLBACK_FONT))
        return ReceiptFont(CID_FALLBACK_FONT, embedded=False)


def receipt_file_name(receipt_number: str) -> str:
    """A file name that cannot leave its folder, whatever the receipt number contains."""
    stem = _UNSAFE_FILE_CHARS.sub("_", receipt_number).strip("_")[:100]
    return f"{stem or 'receipt'}.pdf"


class PdfReceiptPrinter:
    """ReceiptPrinter writing <out_dir>/<receipt number>.pdf atomically."""

    def __init__(
        self,
        out_dir: Path,
        font_path: Path | None = None,
        *,
        fallback_font_paths: Sequence[Path] = DEFAULT_FONT_PATHS,
    ) -> None:
        self._out_dir = out_dir
        self._font_candidates = ((font_path,) if font_path else ()) + tuple(fallback_font_paths)
        self._font: ReceiptFont | None = None

    @property
    def out_dir(self) -> Path:
        return self._out_dir

    def font(self) -> ReceiptFont:
        """The font receipts use. The first call registers it (slow): keep it off the GUI thread."""
        if self._font is None:
            self._font = find_font(self._font_candidates)
        return self._font

    def render(self, doc: ReceiptDocument) -> bytes:
        """The PDF bytes of one receipt."""
        return _render(doc, self.font().name)

    def status(self) -> PrintStatus:
        """A file printer has no paper to run out of: the folder is checked when writing."""
        return PrintStatus.OK

    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        try:
            font = self.font()
            data = _render(doc, font.name)
        except Exception:  # a document we cannot lay out must not take the terminal down
            log.exception("receipt rendering failed")
            return PrintResult(PrintStatus.ERROR, RENDER_FAILED)
        target = self._out_dir / receipt_file_name(doc.receipt_number)
        try:
            self._out_dir.mkdir(mode=RECEIPT_DIR_MODE, parents=True, exist_ok=True)
            _write_atomically(target, data)
        except OSError as exc:
            code = errno.errorcode.get(exc.errno or 0, "unknown")
            log.warning("receipt file not written (%s)", code)
            return PrintResult(PrintStatus.ERROR, f"{WRITE_FAILED}:{code}")
        return PrintResult(PrintStatus.OK, "" if font.embedded else FONT_NOT_EMBEDDED, path=target)


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".receipt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), RECEIPT_FILE_MODE)  # mkstemp's 0600 today; the rename keeps it
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if hasattr(os, "O_DIRECTORY"):  # the rename itself is durable only once the folder is synced
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --- text measurement and wrapping -------------------------------------------------------------


class _Metrics:
    """String widths for one font, cached per character: CJK wrapping measures every glyph."""

    def __init__(self, font_name: str) -> None:
        self.font_name = font_name
        self._unit: dict[str, float] = {}

    def width(self, text: str, size: float) -> float:
        unit = self._unit
        total = 0.0
        for ch in text:
            w = unit.get(ch)
            if w is None:
                w = pdfmetrics.stringWidth(ch, self.font_name, 1000.0) / 1000.0
                unit[ch] = w
            total += w
        return total * size


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def wrap_text(text: str, metrics: _Metrics, size: float, width: float) -> list[str]:
    """Lines of text no wider than width, broken between CJK characters or at Latin spaces."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines.extend(
            wrap_paragraph(paragraph, _is_wide, functools.partial(metrics.width, size=size), width)
        )
    return lines


_Op = Callable[[Canvas, float], None]  # draws itself given the page height


class _Layout:
    """Collects drawing operations top-down, so the page height is known before drawing."""

    def __init__(self, font_name: str) -> None:
        self.metrics = _Metrics(font_name)
        self.font_name = font_name
        self.y = MARGIN  # distance from the top of the page
        self.ops: list[_Op] = []

    def gap(self, points: float) -> None:
        self.y += points

    def text(
        self,
        text: str,
        size: float,
        *,
        x: float = MARGIN,
        width: float = CONTENT_WIDTH,
        centre: bool = False,
        bold: bool = False,
        leading: float = 1.3,
    ) -> None:
        for line in wrap_text(text, self.metrics, size, width):
            self.y += size * leading
            baseline = self.y - size * (leading - 1.0) / 2 - size * 0.12
            lx = x + (width - self.metrics.width(line, size)) / 2 if centre else x
            self.ops.append(_text_op(self.font_name, line, size, (lx, baseline), bold=bold))

    def rule(self, *, dashed: bool = True) -> None:
        self.y += 2.5 * MM
        y = self.y

        def draw(c: Canvas, page_h: float) -> None:
            c.setLineWidth(0.6)
            if dashed:
                c.setDash(2, 2)
            c.line(MARGIN, page_h - y, MARGIN + CONTENT_WIDTH, page_h - y)
            c.setDash()

        self.ops.append(draw)
        self.y += 2.5 * MM


def _text_op(font: str, line: str, size: float, at: tuple[float, float], *, bold: bool) -> _Op:
    x, baseline = at

    def draw(c: Canvas, page_h: float) -> None:
        t = c.beginText(x, page_h - baseline)
        t.setFont(font, size)
        if bold:
            # The CJK faces that embed have no bold weight; stroking the outline thickens it.
            c.setLineWidth(size * 0.04)
            t.setTextRenderMode(2)
        t.textOut(line)
        c.drawText(t)

    return draw


def _qr_op(matrix: list[list[bool]], module: float, x: float, top: float) -> _Op:
    def draw(c: Canvas, page_h: float) -> None:
        path = c.beginPath()
        for r, row in enumerate(matrix):
            y = page_h - top - (r + 1) * module
            start = -1
            for col, dark in enumerate([*row, False]):
                if dark and start < 0:
                    start = col
                elif not dark and start >= 0:
                    path.rect(x + start * module, y, (col - start) * module, module)
                    start = -1
        c.setFillGray(0)
        c.drawPath(path, stroke=0, fill=1)

    return draw


def _box_op(x: float, top: float, width: float, height: float) -> _Op:
    def draw(c: Canvas, page_h: float) -> None:
        c.setLineWidth(1.0)
        c.roundRect(x, page_h - top - height, width, height, 1.5 * MM, stroke=1, fill=0)

    return draw


def qr_matrix(data: str) -> list[list[bool]]:
    """The QR modules of data at error correction M, quiet zone included."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QR_QUIET_MODULES)
    code.add_data(data)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    return matrix


def _render(doc: ReceiptDocument, font_name: str) -> bytes:
    lay = _Layout(font_name)
    lay.gap(1 * MM)
    lay.text(doc.title, 16, centre=True, bold=True)
    if doc.subtitle:
        lay.gap(0.5 * MM)
        lay.text(doc.subtitle, 10, centre=True)
    lay.rule()
    lay.text(doc.receipt_number_label, 9, centre=True)
    number_size = 18.0
    number_width = lay.metrics.width(doc.receipt_number, number_size)
    if number_width > CONTENT_WIDTH:
        number_size = max(10.0, number_size * CONTENT_WIDTH / number_width)
    lay.text(doc.receipt_number, number_size, centre=True, bold=True, leading=1.25)
    lay.rule()
    _labelled_lines(lay, doc)
    if doc.notice:
        lay.gap(3 * MM)
        pad = 2.5 * MM
        top = lay.y
        lay.gap(pad - 1)
        lay.text(doc.notice, 10, x=MARGIN + pad, width=CONTENT_WIDTH - 2 * pad, leading=1.4)
        lay.gap(pad)
        lay.ops.append(_box_op(MARGIN + 0.5, top, CONTENT_WIDTH - 1, lay.y - top))
    if doc.qr_url:
        lay.rule()
        matrix = qr_matrix(doc.qr_url)
        modules = len(matrix)
        module = max(QR_MIN_SYMBOL / (modules - 2 * QR_QUIET_MODULES), QR_MIN_MODULE)
        module = min(module, CONTENT_WIDTH / modules)
        side = module * modules
        # The matrix carries its quiet zone as white modules: nothing else may be drawn there, so
        # the rule above touches its edge at most and the caption starts below it.
        lay.gap(-2 * MM)
        lay.ops.append(_qr_op(matrix, module, MARGIN + (CONTENT_WIDTH - side) / 2, lay.y))
        lay.gap(side)
        if doc.qr_caption:
            lay.text(doc.qr_caption, 10, centre=True)
    if doc.footer:
        lay.rule()
        for line in doc.footer:
            lay.text(line, 8.5, centre=True)
    lay.gap(MARGIN + 2 * MM)  # room for the cutter

    page_h = lay.y
    buf = io.BytesIO()
    # The initial font would otherwise be Helvetica, referenced by every page and never embedded.
    canvas = Canvas(
        buf,
        pagesize=(PAGE_WIDTH, page_h),
        invariant=True,
        pageCompression=1,
        initialFontName=font_name,
        initialFontSize=10,
    )
    canvas.setTitle(f"{doc.title} {doc.receipt_number}")
    canvas.setFillGray(0)
    canvas.setStrokeGray(0)
    for op in lay.ops:
        op(canvas, page_h)
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


def _labelled_lines(lay: _Layout, doc: ReceiptDocument) -> None:
    size = 10.0
    gutter = 3 * MM
    label_width = max((lay.metrics.width(line.label, size) for line in doc.lines), default=0.0)
    side_by_side = label_width <= CONTENT_WIDTH * 0.38
    value_x = MARGIN + label_width + gutter
    for line in doc.lines:
        lay.gap(0.6 * MM)
        if side_by_side:
            top = lay.y
            lay.text(line.value, size, x=value_x, width=MARGIN + CONTENT_WIDTH - value_x)
            after_value = lay.y
            lay.y = top
            lay.text(line.label, size)
            lay.y = max(lay.y, after_value)
        else:
            lay.text(line.label, size)
            lay.text(line.value, size, x=MARGIN + gutter, width=CONTENT_WIDTH - gutter)
