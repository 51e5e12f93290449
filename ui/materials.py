"""The counter form's materials: files staff attach from disk or photograph with a document camera.

The list and its limits are kiosk/materials.py; this module shows them. A chosen file is read on a
worker (the GUI thread never waits on the disk) and added when it comes back, unless the list was
wiped meanwhile. A refusal is shown in the panel and handed to the voice through `say`. The file
dialog is Qt's own (not the desktop's), so it works by keyboard on any platform the terminal runs
on. "Take a photo" appears only while a camera is connected.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QShortcut, QShowEvent
from PySide6.QtMultimedia import (
    QCamera,
    QCameraDevice,
    QImageCapture,
    QMediaCaptureSession,
    QMediaDevices,
)
from PySide6.QtMultimediaWidgets import QVideoWidget
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from kiosk.errors import message_for
from kiosk.i18n import _
from kiosk.materials import (
    Material,
    MaterialList,
    MaterialRefusedError,
    jpeg_from_rgb,
    megabytes,
    read_material,
    size_text,
)
from ui.background import Background
from ui.widgets import button, label

log = logging.getLogger(__name__)

# Case matters to Qt's file dialog on Linux; the content decides in the end, not the name.
FILE_PATTERNS = " ".join(
    f"*.{ext}" for suffix in ("pdf", "png", "jpg", "jpeg") for ext in (suffix, suffix.upper())
)
COLUMNS = 3  # name, kind, size


def jpeg_from_image(image: QImage, max_file_bytes: int) -> bytes:
    """A captured frame as JPEG bytes within the file limit; on a worker (a QImage is not a
    QObject, and Qt lets a worker read a copy of one)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    return jpeg_from_rgb(
        rgb.width(), rgb.height(), bytes(rgb.constBits()), rgb.bytesPerLine(), max_file_bytes
    )


class CameraDialog(QDialog):
    """The document camera's picture and one button to take it; emits the frame taken."""

    captured = Signal(QImage)

    def __init__(self, device: QCameraDevice, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("camera_dialog")
        self.setModal(True)
        self.session = QMediaCaptureSession(self)
        self.camera = QCamera(device, self)
        self.image_capture = QImageCapture(self)
        self.viewfinder = QVideoWidget(self)
        self.viewfinder.setMinimumSize(960, 540)
        self.session.setCamera(self.camera)
        self.session.setImageCapture(self.image_capture)
        self.session.setVideoOutput(self.viewfinder)
        self.message = label(name="field_error")
        self.message.hide()
        self.take_button = button("", self.take, name="primary")
        self.take_button.setEnabled(False)
        self.cancel_button = button("", self.reject)
        actions = QHBoxLayout()
        actions.addStretch(1)
        actions.addWidget(self.cancel_button)
        actions.addWidget(self.take_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.viewfinder, 1)
        layout.addWidget(self.message)
        layout.addLayout(actions)
        self.image_capture.readyForCaptureChanged.connect(self.take_button.setEnabled)
        self.image_capture.imageCaptured.connect(self._image_captured)
        self.image_capture.errorOccurred.connect(self._capture_failed)
        self.camera.errorOccurred.connect(self._camera_failed)
        self.retranslate()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Photograph a material"))
        self.take_button.setText(_("Take the photo"))
        self.take_button.setAccessibleName(_("Take the photo"))
        self.cancel_button.setText(_("Cancel"))
        self.cancel_button.setAccessibleName(_("Cancel"))
        self.viewfinder.setAccessibleName(_("The document camera's picture"))

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.camera.start()
        if self.camera.error() != QCamera.Error.NoError:
            # Set before anything was connected (a camera unplugged since it was listed).
            log.error("document camera failed: %s", self.camera.errorString())
            self._show_error()

    def done(self, result: int) -> None:
        self.camera.stop()
        super().done(result)

    def take(self) -> None:
        if self.image_capture.isReadyForCapture():
            self.take_button.setEnabled(False)
            self.image_capture.capture()

    def _image_captured(self, _request: int, image: QImage) -> None:
        self.captured.emit(image)
        self.accept()

    def _show_error(self) -> None:
        self.message.setText(_("The document camera is not working. Please check it."))
        self.message.show()

    def _capture_failed(self, _request: int, _error: object, detail: str) -> None:
        log.error("document camera capture failed: %s", detail)
        self._show_error()
        self.take_button.setEnabled(self.image_capture.isReadyForCapture())

    def _camera_failed(self, _error: object, detail: str) -> None:
        log.error("document camera failed: %s", detail)
        self._show_error()


class MaterialsPanel(QWidget):
    """The materials going with the submission: a list, "add from file", "take a photo",
    "remove"; `changed` when the list changed, `say` with a sentence to speak."""

    changed = Signal()
    say = Signal(str)

    def __init__(
        self,
        materials: MaterialList,
        background: Background,
        parent: QWidget | None = None,
        *,
        start_dir: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("materials")
        self.materials = materials
        self._background = background
        self._start_dir = start_dir if start_dir is not None else Path.home()
        self._generation = 0  # a read started before a wipe is not added after it
        self._reading = 0
        self._photos = 0
        self.heading = label(name="question")
        self.limits = label(name="help")
        self.table = QTableWidget(0, COLUMNS, self)
        self.table.setObjectName("materials_list")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)
        rows = self.table.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Colours come from the window's style; this only gives the cells room around the text.
        self.table.setStyleSheet("QTableView::item { padding: 6px 10px; }")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        # Delete on the list removes the selected file, as the button does.
        self._delete_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.table)
        self._delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        self._delete_key.activated.connect(self.remove_selected)
        self.status = label(name="help")
        self.error = label(name="field_error")
        self.error.hide()
        self.add_button = button("", self.choose_file)
        self.camera_button = button("", self.take_photo)
        self.remove_button = button("", self.remove_selected)
        self.remove_button.setEnabled(False)
        actions = QHBoxLayout()
        actions.setSpacing(12)
        for widget in (self.add_button, self.camera_button, self.remove_button):
            actions.addWidget(widget)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.heading)
        layout.addWidget(self.limits)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addLayout(actions)
        self._devices = QMediaDevices(self)
        self._devices.videoInputsChanged.connect(self._cameras_changed)
        self._cameras_changed()
        self.retranslate()

    # -- words -------------------------------------------------------------------------------

    def retranslate(self) -> None:
        limits = self.materials.limits
        self.heading.setText(_("Materials"))
        self.limits.setText(
            _("At most {count} files, {mb} MB each, {total} MB in all.").format(
                count=limits.max_files,
                mb=megabytes(limits.max_file_bytes),
                total=megabytes(limits.max_total_bytes),
            )
        )
        self.table.setHorizontalHeaderLabels([_("Name"), _("Kind"), _("Size")])
        self.table.setAccessibleName(_("Attached materials"))
        self.add_button.setText(_("Add from file…"))
        self.add_button.setAccessibleName(_("Add from file…"))
        self.camera_button.setText(_("Photograph a material"))
        self.camera_button.setAccessibleName(_("Photograph a material"))
        self.remove_button.setText(_("Remove"))
        self.remove_button.setAccessibleName(_("Remove the selected material"))
        self._refresh()

    def _refresh(self) -> None:
        """The table from the list, and the line under it; the selected row stays selected."""
        selected = self.selected_index()
        self.table.setRowCount(0)
        for row, material in enumerate(self.materials):
            self.table.insertRow(row)
            for column, text in enumerate(_cells(material)):
                item = QTableWidgetItem(text)
                if column == 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(row, column, item)
        count = len(self.materials)
        if selected is not None and selected < count:
            self.table.selectRow(selected)
        if self._reading:
            self.status.setText(_("Reading the file…"))
        elif count:
            size = size_text(self.materials.total_bytes)
            if count == 1:
                self.status.setText(_("1 file, {size} in all.").format(size=size))
            else:
                self.status.setText(
                    _("{count} files, {size} in all.").format(count=count, size=size)
                )
        else:
            self.status.setText(_("No materials attached."))
        self._selection_changed()

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))
        if text:
            self.say.emit(text)

    # -- adding from a file ------------------------------------------------------------------

    def choose_file(self) -> None:
        """Qt's own file dialog (by keyboard too), pictures and PDF files only."""
        dialog = QFileDialog(self, _("Add materials"), str(self._start_dir))
        dialog.setObjectName("materials_file_dialog")
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        kinds = _("Pictures and PDF files")
        dialog.setNameFilters([f"{kinds} ({FILE_PATTERNS})"])
        labels = QFileDialog.DialogLabel
        dialog.setLabelText(labels.LookIn, _("Look in:"))
        dialog.setLabelText(labels.FileName, _("File name:"))
        dialog.setLabelText(labels.FileType, _("Files of type:"))
        dialog.setLabelText(labels.Accept, _("Add"))
        dialog.setLabelText(labels.Reject, _("Cancel"))
        _widen_columns(dialog)
        dialog.filesSelected.connect(self.add_paths)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def add_paths(self, paths: Sequence[str]) -> None:
        for path in paths:
            self.add_path(Path(path))

    def add_path(self, path: Path) -> None:
        """Read the file on a worker and add it when it comes back (or say why not)."""
        self._show_error("")
        self._reading += 1
        self._refresh()
        op = functools.partial(read_material, Path(path), self.materials.limits.max_file_bytes)
        self._background.run(
            op,
            functools.partial(self._read, self._generation),
            functools.partial(self._not_read, self._generation),
        )

    def _read(self, generation: int, material: Material) -> None:
        if generation != self._generation:
            return
        self._reading -= 1
        try:
            self.materials.add(material)
        except MaterialRefusedError as exc:
            self._refresh()
            self._show_error(exc.user_message())
            return
        self._refresh()
        self.table.selectRow(len(self.materials) - 1)
        self.changed.emit()

    def _not_read(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._reading -= 1
        if not isinstance(exc, MaterialRefusedError):
            log.error("a material could not be read: %s", type(exc).__name__)
        self._refresh()
        self._show_error(message_for(exc))

    # -- the document camera -----------------------------------------------------------------

    def _cameras_changed(self) -> None:
        self.camera_button.setVisible(bool(QMediaDevices.videoInputs()))

    def take_photo(self) -> None:
        device = QMediaDevices.defaultVideoInput()
        if device.isNull():
            self._cameras_changed()
            return
        dialog = CameraDialog(device, self)
        dialog.captured.connect(self.add_photo)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def add_photo(self, image: QImage) -> None:
        """A frame from the document camera: made a JPEG on a worker, then added."""
        self._show_error("")
        self._reading += 1
        self._refresh()
        op = functools.partial(jpeg_from_image, image, self.materials.limits.max_file_bytes)
        self._background.run(
            op,
            functools.partial(self._photo_made, self._generation),
            functools.partial(self._not_read, self._generation),
        )

    def _photo_made(self, generation: int, jpeg: bytes) -> None:
        if generation != self._generation:
            return
        self._reading -= 1
        self._photos += 1
        name = _("Material photo {number}.jpg").format(number=self._photos)
        try:
            self.materials.add_image(name, jpeg)
        except MaterialRefusedError as exc:
            self._refresh()
            self._show_error(exc.user_message())
            return
        self._refresh()
        self.table.selectRow(len(self.materials) - 1)
        self.changed.emit()

    # -- removing and wiping -----------------------------------------------------------------

    def selected_index(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _selection_changed(self) -> None:
        self.remove_button.setEnabled(self.selected_index() is not None)

    def remove_selected(self) -> None:
        index = self.selected_index()
        if index is None or index >= len(self.materials):
            return
        self.materials.remove(index)
        self._show_error("")
        self._refresh()
        if len(self.materials):
            self.table.selectRow(min(index, len(self.materials) - 1))
        self.changed.emit()

    @property
    def busy(self) -> bool:
        """A file is being read or a photo made."""
        return self._reading > 0

    def wipe(self) -> None:
        """Forget every file, drop reads under way, close an open dialog (the visit is over)."""
        self._generation += 1
        self._reading = 0
        self._photos = 0
        for dialog in self.findChildren(QDialog):
            dialog.reject()
        self.materials.wipe()
        self._show_error("")
        self._refresh()
        self.table.clearSelection()
        self.changed.emit()


def _widen_columns(dialog: QFileDialog) -> None:
    """Room for the size, kind and date of each file at a staff screen's type size (the dialog
    gives them 100 px, which its own text outgrows)."""
    view = dialog.findChild(QTreeView)
    if view is None:
        return
    header = view.header()
    header.setStretchLastSection(False)
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    metrics = view.fontMetrics()
    for column, sample in enumerate(("000.00 KiB", "PDF document", "00/00/0000 00:00"), 1):
        if column < header.count():
            header.resizeSection(column, metrics.horizontalAdvance(sample) + 24)


def _cells(material: Material) -> tuple[str, str, str]:
    return material.name, material.kind(), size_text(material.size)
