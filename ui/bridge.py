"""Signals that carry events from device and sync threads onto the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from devices.readers.base import ReaderEvent


class ReaderBridge(QObject):
    """Its emit is safe to call from a reader thread: Qt queues the signal to the GUI thread."""

    event = Signal(object)

    def sink(self, event: ReaderEvent) -> None:
        self.event.emit(event)


class StatusBridge(QObject):
    """Carries sync status snapshots from the sync thread."""

    changed = Signal(object)

    def sink(self, status: object) -> None:
        self.changed.emit(status)
