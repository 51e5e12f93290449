"""The receipt's QR code on screen, for a citizen whose receipt did not print: large enough to
photograph from the panel (at least MIN_SIDE_PX with its quiet zone), black on white whatever
the theme, beside the words that say what it is."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ui.widgets import label, named

MIN_SIDE_PX = 300  # with the quiet zone; a phone held at arm's length reads it from the panel
QUIET_MODULES = 4  # the quiet zone ISO/IEC 18004 asks for


def qr_modules(text: str) -> list[list[bool]]:
    """The QR modules of text at error correction M (as printed), quiet zone included."""
    import qrcode  # the printer has usually imported it already; the first screen need not

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QUIET_MODULES)
    code.add_data(text)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    return matrix


def qr_image(text: str, min_side: int = MIN_SIDE_PX) -> QImage:
    """The code of text drawn in whole pixels per module, at least min_side pixels across."""
    matrix = qr_modules(text)
    count = len(matrix)
    module = max(1, -(-min_side // count))
    image = QImage(count * module, count * module, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    try:
        black = QColor("black")
        for row, cells in enumerate(matrix):
            for column, dark in enumerate(cells):
                if dark:
                    painter.fillRect(column * module, row * module, module, module, black)
    finally:
        painter.end()
    return image


class ReceiptQr(QWidget):
    """The code on the left; on the right what happened to the paper receipt and what to do
    with the code (side by side, so the code stays on the first page of a landscape panel)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(24)
        self.code = QLabel(self)
        self.code.setObjectName("receipt_qr")
        self.code.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.problem = label()
        self.caption = label(name="help")
        words = QVBoxLayout()
        words.setSpacing(16)
        words.addWidget(self.problem)
        words.addWidget(self.caption)
        words.addStretch(1)
        row.addWidget(self.code, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(words, 1)
        self.link = ""

    def show_link(self, link: str, problem: str, caption: str, name: str) -> None:
        """Draw the code of link ("" clears it) beside problem and caption; name: what a screen
        reader calls the code."""
        self.link = link
        self.problem.setText(problem if link else "")
        self.caption.setText(caption if link else "")
        if not link:
            self.code.clear()
            named(self.code, "")
            return
        pixmap = QPixmap.fromImage(qr_image(link))
        self.code.setPixmap(pixmap)
        self.code.setFixedSize(pixmap.size())
        named(self.code, name, caption)
