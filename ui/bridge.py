"""Signals that carry events from device and sync threads onto the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from devices.readers.base import ReaderEvent


class ReaderBridge(QObject):
    """Its emit is safe to call from a reader thread: Qt queues the signal to the GUI thread."""

    event = Signal(object)

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._open = True

    def sink(self, event: ReaderEvent) -> None:
        if self._open:
            self.event.emit(event)

    def close(self) -> None:
        """The terminal stops: events that still arrive from a reader thread are dropped."""
        self._open = False


class StatusBridge(QObject):
    """Carries sync status snapshots from the sync thread."""

    changed = Signal(object)

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._open = True

    def sink(self, status: object) -> None:
        if self._open:
            self.changed.emit(status)

    def close(self) -> None:
        self._open = False
