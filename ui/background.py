"""The one way to run work off the GUI thread: the op runs on a worker, callbacks on the GUI thread.

Never touch a widget inside the op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class Background(QObject):
    _done = Signal(object, object, object)  # callback, value, None  |  errback, None, exception

    def __init__(self, workers: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="background")
        self._done.connect(self._deliver)
        self._pending: set[Future[Any]] = set()

    def run(
        self,
        op: Callable[[], Any],
        on_success: Callable[[Any], None],
        on_failure: Callable[[BaseException], None],
    ) -> Future[Any]:
        future = self._pool.submit(op)
        self._pending.add(future)

        def finished(f: Future[Any]) -> None:
            self._pending.discard(f)
            exc = f.exception()
            if exc is None:
                self._done.emit(on_success, f.result(), None)
            else:
                self._done.emit(on_failure, None, exc)

        future.add_done_callback(finished)
        return future

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def _deliver(self, callback: Callable[[Any], None], value: Any, exc: Any) -> None:
        try:
            callback(exc if exc is not None else value)
        except Exception:
            log.exception("a background callback failed")

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=False)
