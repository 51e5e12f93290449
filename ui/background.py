"""The one way to run work off the GUI thread: the op runs on a worker, callbacks on the GUI thread.

The op gets plain data and gives plain data back. It must not hold a widget or any other QObject
(a bound method of one, a closure over `self` of one): its last reference may drop on the worker,
and a Qt object freed there crashes the terminal. `run` refuses an op that reaches a QObject
through what it is bound to, closes over or was given (a few levels deep; it does not search the
attributes of a plain object it is bound to, so keep ops to plain functions and plain data). The
callbacks never leave the GUI thread: the worker only hands back a ticket number with the result.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

log = logging.getLogger(__name__)

Callbacks = tuple[Callable[[Any], None], Callable[[BaseException], None]]


class QtObjectInWorkError(TypeError):
    """An op handed to a worker holds a Qt object."""


def _holds_qobject(value: object, depth: int = 0) -> bool:
    """Whether a callable reaches a QObject through what it closes over or is bound to."""
    if isinstance(value, QObject):
        return True
    if depth > 3:
        return False
    inner: list[object] = []
    if isinstance(value, functools.partial):
        inner += [value.func, *value.args, *value.keywords.values()]
    bound_to = getattr(value, "__self__", None)
    if bound_to is not None:
        inner.append(bound_to)
    closure = getattr(value, "__closure__", None) or ()
    for cell in closure:
        try:
            inner.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    defaults = getattr(value, "__defaults__", None) or ()
    inner += list(defaults)
    return any(_holds_qobject(item, depth + 1) for item in inner)


class Background(QObject):
    _done = Signal(int, object, object)  # ticket, value, exception

    def __init__(self, parent: QObject, workers: int = 2) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="background")
        # Queued even when the op ends before run() returns (a done future calls back at once):
        # callbacks always come from the event loop, never from inside run().
        self._done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._tickets = itertools.count(1)
        self._callbacks: dict[int, Callbacks] = {}  # touched on the GUI thread only

    def run(
        self,
        op: Callable[[], Any],
        on_success: Callable[[Any], None],
        on_failure: Callable[[BaseException], None],
    ) -> Future[Any]:
        if _holds_qobject(op):
            raise QtObjectInWorkError(f"{op!r} holds a Qt object; give the worker plain data")
        ticket = next(self._tickets)
        self._callbacks[ticket] = (on_success, on_failure)
        done = self._done  # the worker holds the bound signal only, never this QObject's wrapper
        future = self._pool.submit(_call, op)
        future.add_done_callback(functools.partial(_report, done, ticket))
        return future

    @property
    def busy(self) -> bool:
        return bool(self._callbacks)

    def _deliver(self, ticket: int, value: Any, exc: Any) -> None:
        callbacks = self._callbacks.pop(ticket, None)
        if callbacks is None:
            return
        on_success, on_failure = callbacks
        try:
            if exc is not None:
                on_failure(exc)
            else:
                on_success(value)
        except Exception:
            log.exception("a background callback failed")

    def forget_callbacks(self) -> None:
        """The terminal is stopping: results that arrive now go nowhere."""
        self._callbacks.clear()

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=False)


def _call(op: Callable[[], Any]) -> Any:
    return op()


def _report(done: Any, ticket: int, future: Future[Any]) -> None:
    exc = future.exception()
    if exc is None:
        done.emit(ticket, future.result(), None)
    else:
        done.emit(ticket, None, exc)
