"""The counter form's materials panel: files added by keyboard through Qt's file dialog and read on
a worker, refusals shown and spoken, remove, wipe; the document camera only where there is one.

This machine has no camera: the camera tests check that the button stays hidden without one and
that the capture dialog builds and says the camera is not working; taking a photo is not tested.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtMultimedia import QCameraDevice, QMediaDevices
from PySide6.QtMultimediaWidgets import QVideoWidget
from PySide6.QtWidgets import QFileDialog, QLineEdit, QPushButton, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from kiosk.catalogue import AttachmentLimits
from kiosk.materials import JPEG, MB, PDF, PHOTO_MAX_SIDE, PNG, MaterialList
from tests.unit.test_materials import image_bytes, pdf_bytes, write
from ui.background import Background
from ui.materials import CameraDialog, MaterialsPanel
from ui.theme import palette_for, style_for

pytestmark = pytest.mark.qt_log_ignore(
    # The multimedia backend looks for hardware video decoding libraries a test machine lacks.
    "Couldn't (load|resolve) va",
    # The offscreen platform, when the file dialog raises itself and its name completer pops up.
    "This plugin does not support (raise|grabbing the keyboard)",
)

TIMEOUT_MS = 5000


class Counter:
    """The panel where the counter form puts it, on a staff screen's style."""

    def __init__(self, qtbot: QtBot, folder: Path, limits: AttachmentLimits) -> None:
        self.window = QWidget()
        qtbot.addWidget(self.window)
        self.window.setStyleSheet(style_for(palette_for(False), 0))
        self.background = Background(self.window)
        self.materials = MaterialList(limits)
        self.panel = MaterialsPanel(self.materials, self.background, self.window, start_dir=folder)
        layout = QVBoxLayout(self.window)
        layout.addWidget(self.panel)
        self.window.resize(1200, 700)
        self.window.show()
        qtbot.waitExposed(self.window)
        self.qtbot = qtbot
        self.spoken: list[str] = []
        self.panel.say.connect(self.spoken.append)

    def rows(self) -> list[tuple[str, ...]]:
        table = self.panel.table
        cells = [[table.item(r, c) for c in range(3)] for r in range(table.rowCount())]
        return [tuple(item.text() if item else "" for item in row) for row in cells]

    def add(self, path: Path) -> None:
        with self.qtbot.waitSignal(self.panel.changed, timeout=TIMEOUT_MS):
            self.panel.add_path(path)

    def refused(self, path: Path) -> str:
        with self.qtbot.waitSignal(self.panel.say, timeout=TIMEOUT_MS) as said:
            self.panel.add_path(path)
        assert said.args is not None
        return str(said.args[0])

    def idle(self) -> None:
        self.qtbot.waitUntil(self._idle, timeout=TIMEOUT_MS)

    def _idle(self) -> bool:
        return not self.background.busy and not self.panel.busy


@pytest.fixture
def counter(qtbot: QtBot, tmp_path: Path) -> Iterator[Counter]:
    made = Counter(qtbot, tmp_path, AttachmentLimits())
    yield made
    made.background.shutdown()


def test_files_chosen_by_keyboard_in_the_file_dialog_are_read_and_listed(
    counter: Counter, qtbot: QtBot, tmp_path: Path
) -> None:
    pdf = write(tmp_path / "birth-certificate.pdf", pdf_bytes())  # QTest types Latin-1 only
    png = write(tmp_path / "户口本.png", image_bytes("PNG", (800, 600)))
    counter.panel.add_button.setFocus()
    qtbot.keyClick(counter.panel.add_button, Qt.Key.Key_Space)
    dialog = counter.panel.findChild(QFileDialog)
    assert dialog is not None
    assert dialog.testOption(QFileDialog.Option.DontUseNativeDialog)
    assert dialog.nameFilters()[0].startswith("图片和PDF (*.pdf")
    qtbot.waitExposed(dialog)
    name_field = dialog.findChild(QLineEdit, "fileNameEdit")
    assert name_field is not None
    qtbot.keyClicks(name_field, pdf.name)
    with qtbot.waitSignal(counter.panel.changed, timeout=TIMEOUT_MS):
        qtbot.keyClick(name_field, Qt.Key.Key_Return)
    assert counter.panel.findChild(QFileDialog) is None  # closed and deleted
    counter.add(png)  # the panel's own add path, as a dialog's choice of several files takes
    assert [(m.name, m.content_type) for m in counter.materials] == [
        ("birth-certificate.pdf", PDF),
        ("户口本.png", PNG),
    ]
    assert counter.materials[0].data == pdf.read_bytes()
    assert counter.rows() == [
        ("birth-certificate.pdf", "PDF 文件", f"{max(1, round(pdf.stat().st_size / 1024))} KB"),
        ("户口本.png", "PNG 图片", f"{max(1, round(png.stat().st_size / 1024))} KB"),
    ]
    assert counter.panel.status.text().startswith("共 2 个文件")
    assert counter.panel.selected_index() == 1  # the one just added
    assert counter.spoken == []


def test_a_file_too_big_is_refused_with_the_limit_shown_and_spoken(
    counter: Counter, tmp_path: Path
) -> None:
    counter.add(write(tmp_path / "small.png", image_bytes("PNG")))
    big = write(tmp_path / "scan.pdf", b"%PDF-1.4\n" + bytes(5 * MB))
    message = counter.refused(big)
    assert message == "这个文件超过 5 MB，不能添加。"
    assert counter.panel.error.isVisible() and counter.panel.error.text() == message
    assert counter.spoken == [message]
    assert [m.name for m in counter.materials] == ["small.png"]
    assert len(counter.rows()) == 1
    # Not a picture or a PDF: refused for what it is, whatever it is called.
    assert counter.refused(write(tmp_path / "form.pdf", b"PK\x03\x04zip")) == (
        "只能添加图片（JPEG 或 PNG）和 PDF 文件。"
    )
    # The next good file withdraws the message.
    counter.add(write(tmp_path / "photo.jpg", image_bytes("JPEG")))
    assert not counter.panel.error.isVisible()
    assert [m.content_type for m in counter.materials] == [PNG, JPEG]


def test_the_list_keeps_to_the_announced_count(qtbot: QtBot, tmp_path: Path) -> None:
    counter = Counter(qtbot, tmp_path, AttachmentLimits(max_files=1))
    try:
        assert counter.panel.limits.text() == "最多 1 个文件，每个不超过 5 MB，合计不超过 20 MB。"
        counter.add(write(tmp_path / "a.png", image_bytes("PNG")))
        assert counter.refused(write(tmp_path / "b.png", image_bytes("PNG"))) == (
            "一份申请最多只能附 1 个文件。"
        )
    finally:
        counter.background.shutdown()


def test_remove_the_selected_file(counter: Counter, qtbot: QtBot, tmp_path: Path) -> None:
    assert not counter.panel.remove_button.isEnabled()
    for name, data in (
        ("a.png", image_bytes("PNG")),
        ("b.pdf", pdf_bytes()),
        ("c.jpg", image_bytes("JPEG")),
    ):
        counter.add(write(tmp_path / name, data))
    counter.panel.table.selectRow(1)
    assert counter.panel.remove_button.isEnabled()
    with qtbot.waitSignal(counter.panel.changed, timeout=TIMEOUT_MS):
        qtbot.mouseClick(counter.panel.remove_button, Qt.MouseButton.LeftButton)
    assert [m.name for m in counter.materials] == ["a.png", "c.jpg"]
    assert [row[0] for row in counter.rows()] == ["a.png", "c.jpg"]
    assert counter.panel.selected_index() == 1  # the next one, ready to remove too
    counter.panel.table.setFocus()
    with qtbot.waitSignal(counter.panel.changed, timeout=TIMEOUT_MS):
        qtbot.keyClick(counter.panel.table, Qt.Key.Key_Delete)
    assert [m.name for m in counter.materials] == ["a.png"]
    counter.panel.table.clearSelection()
    assert not counter.panel.remove_button.isEnabled()


def test_a_document_camera_frame_is_added_as_a_jpeg(counter: Counter, qtbot: QtBot) -> None:
    """What the capture dialog hands over (no camera here: the frame is made by the test)."""
    frame = QImage(4000, 3000, QImage.Format.Format_RGB32)
    frame.fill(QColor("#d8d0c0"))
    with qtbot.waitSignal(counter.panel.changed, timeout=TIMEOUT_MS):
        counter.panel.add_photo(frame)
    (photo,) = counter.materials
    assert (photo.name, photo.content_type) == ("材料照片1.jpg", JPEG)
    decoded = QImage.fromData(photo.data)
    assert (decoded.width(), decoded.height()) == (PHOTO_MAX_SIDE, PHOTO_MAX_SIDE * 3 // 4)
    assert counter.rows()[0][:2] == ("材料照片1.jpg", "JPEG 图片")


def test_wipe_forgets_everything_even_a_file_still_being_read(
    counter: Counter, tmp_path: Path
) -> None:
    counter.add(write(tmp_path / "a.pdf", pdf_bytes()))
    counter.panel.choose_file()
    assert counter.panel.findChild(QFileDialog) is not None
    counter.panel.add_path(write(tmp_path / "late.png", image_bytes("PNG")))
    assert counter.panel.busy
    counter.panel.wipe()
    counter.idle()
    assert len(counter.materials) == 0
    assert counter.rows() == []
    assert counter.panel.status.text() == "尚未添加材料。"
    dialog = counter.panel.findChild(QFileDialog)
    assert dialog is None or not dialog.isVisible()


def test_staff_sized_controls_with_names(counter: Counter) -> None:
    buttons = [b for b in counter.panel.findChildren(QPushButton) if b.isVisible()]
    assert {b.accessibleName() for b in buttons} >= {"从文件添加…", "删除选中的材料"}
    for widget in buttons:
        assert widget.height() >= 44, widget.accessibleName()
        assert widget.font().pixelSize() >= 20 or widget.fontInfo().pixelSize() >= 20
    assert counter.panel.table.accessibleName() == "已添加的材料"
    assert counter.panel.table.fontInfo().pixelSize() >= 20


def test_no_camera_no_camera_button(counter: Counter) -> None:
    cameras = QMediaDevices.videoInputs()
    assert counter.panel.camera_button.isVisible() == bool(cameras)
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        assert not cameras, "this test machine is expected to have no camera"


# The offscreen platform gives the video widget's native window no surface to draw on.
@pytest.mark.qt_log_ignore("QBackingStore::flush\\(\\) called for +QVideoWindow")
def test_the_camera_dialog_builds_and_says_when_there_is_no_camera(
    counter: Counter, qtbot: QtBot
) -> None:
    dialog = CameraDialog(QCameraDevice(), counter.panel)
    assert dialog.findChild(QVideoWidget) is dialog.viewfinder
    assert dialog.take_button.text() == "拍照" and not dialog.take_button.isEnabled()
    dialog.open()
    qtbot.waitExposed(dialog)
    assert dialog.message.isVisible()
    assert dialog.message.text() == "高拍仪无法使用，请检查。"
    dialog.reject()
    dialog.deleteLater()
