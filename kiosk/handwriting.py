"""Recognising one handwritten Chinese character with zinnia (libzinnia0) through ctypes.

A `Recognizer` opens the model once (the Simplified Chinese model of the Debian package
tegaki-zinnia-simplified-chinese unless told otherwise) and classifies the strokes of one
character into ranked candidates. Only the run-time library libzinnia.so.0 is needed.

Thread safety: one Recognizer may be shared by threads; its calls are serialised by a lock, so
`close()` waits for a classification in progress and a classification after `close()` fails.
Every native object it makes (recognizer, character, result) is destroyed before the call that
made it returns, or, for the recognizer, by `close()` (also run by `with`, and as a last resort
when the object is collected).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from kiosk.errors import UserFacingError
from kiosk.i18n import N_

MODEL_ENV = "HALL_ZINNIA_MODEL"
LIBRARY_NAMES = ("libzinnia.so.0", "libzinnia.so")
MODEL_CANDIDATES = (
    Path("/usr/share/tegaki/models/zinnia/handwriting-zh_CN.model"),
    Path("/usr/local/share/tegaki/models/zinnia/handwriting-zh_CN.model"),
)
# Coordinates go to zinnia as integers: the box is scaled to this many units a side first, so a
# small box loses no precision to rounding.
UNITS = 1000
MAX_CANDIDATES = 100

UNAVAILABLE = N_("Handwriting is not available on this terminal. Please use the keyboard.")

Point = tuple[float, float]
Strokes = Sequence[Sequence[Point]]


class HandwritingUnavailable(UserFacingError):
    """The recognition library or its model is missing or unreadable.

    str() is the message for the citizen; `detail` says what was missing, for the log."""

    def __init__(self, detail: str) -> None:
        super().__init__(UNAVAILABLE)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Candidate:
    text: str
    score: float  # zinnia's score: higher is better; comparable within one classification only


_VOID = ctypes.c_void_p
_SIZE = ctypes.c_size_t


class _Zinnia:
    """The few C functions of zinnia.h that recognition needs, with their signatures."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.recognizer_new = _fn(lib.zinnia_recognizer_new, _VOID, [])
        self.recognizer_open = _fn(
            lib.zinnia_recognizer_open, ctypes.c_int, [_VOID, ctypes.c_char_p]
        )
        self.recognizer_strerror = _fn(lib.zinnia_recognizer_strerror, ctypes.c_char_p, [_VOID])
        self.recognizer_destroy = _fn(lib.zinnia_recognizer_destroy, None, [_VOID])
        self.recognizer_classify = _fn(lib.zinnia_recognizer_classify, _VOID, [_VOID, _VOID, _SIZE])
        self.character_new = _fn(lib.zinnia_character_new, _VOID, [])
        self.character_set_width = _fn(lib.zinnia_character_set_width, None, [_VOID, _SIZE])
        self.character_set_height = _fn(lib.zinnia_character_set_height, None, [_VOID, _SIZE])
        self.character_add = _fn(
            lib.zinnia_character_add, ctypes.c_int, [_VOID, _SIZE, ctypes.c_int, ctypes.c_int]
        )
        self.character_destroy = _fn(lib.zinnia_character_destroy, None, [_VOID])
        self.result_value = _fn(lib.zinnia_result_value, ctypes.c_char_p, [_VOID, _SIZE])
        self.result_score = _fn(lib.zinnia_result_score, ctypes.c_float, [_VOID, _SIZE])
        self.result_size = _fn(lib.zinnia_result_size, _SIZE, [_VOID])
        self.result_destroy = _fn(lib.zinnia_result_destroy, None, [_VOID])


def _fn(function: Any, restype: Any, argtypes: list[Any]) -> Any:
    function.restype = restype
    function.argtypes = argtypes
    return function


_loaded: dict[str, _Zinnia] = {}  # the library, once loaded
_load_lock = threading.Lock()


def load_library(names: Sequence[str] | None = None) -> _Zinnia:
    """libzinnia, by the given file names, else by its usual names (loaded once per process)."""
    with _load_lock:
        if names is None and "zinnia" in _loaded:
            return _loaded["zinnia"]
        tried = list(LIBRARY_NAMES if names is None else names)
        found = ctypes.util.find_library("zinnia") if names is None else None
        if found and found not in tried:
            tried.append(found)
        for name in tried:
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                continue
            try:
                zinnia = _Zinnia(lib)
            except AttributeError as exc:  # a library of that name without zinnia's C API
                raise HandwritingUnavailable(f"{name} lacks the zinnia C API: {exc}") from exc
            if names is None:
                _loaded["zinnia"] = zinnia
            return zinnia
        raise HandwritingUnavailable(
            f"the zinnia library is not installed (tried {', '.join(tried)}; Debian: libzinnia0)"
        )


def find_model(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The model file: the one given, else $HALL_ZINNIA_MODEL, else the packaged one."""
    if explicit is not None:
        candidates: tuple[Path, ...] = (Path(explicit),)
    elif os.environ.get(MODEL_ENV):
        candidates = (Path(os.environ[MODEL_ENV]),)
    else:
        candidates = MODEL_CANDIDATES
    for path in candidates:
        if path.is_file():
            return path
    raise HandwritingUnavailable(
        "no zinnia model at "
        + ", ".join(str(p) for p in candidates)
        + " (Debian: tegaki-zinnia-simplified-chinese)"
    )


class Recognizer:
    """One opened zinnia model; HandwritingUnavailable when the library or model is missing."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        library_names: Sequence[str] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self.model_path = find_model(model_path)
        self._zinnia = load_library(library_names)
        handle = self._zinnia.recognizer_new()
        if not handle:
            raise HandwritingUnavailable("zinnia_recognizer_new returned NULL")
        # Destroys the native recognizer if close() is never called; close() runs it at once.
        self._finalizer = weakref.finalize(self, self._zinnia.recognizer_destroy, handle)
        if not self._zinnia.recognizer_open(handle, os.fsencode(self.model_path)):
            reason = self._zinnia.recognizer_strerror(handle) or b""
            self._finalizer()
            raise HandwritingUnavailable(
                f"zinnia cannot open {self.model_path}: {reason.decode(errors='replace')}"
            )
        self._handle: int | None = handle

    @property
    def closed(self) -> bool:
        return self._handle is None

    def classify(
        self, strokes: Strokes, width: float, height: float, count: int = 10
    ) -> list[Candidate]:
        """The best `count` candidates for the strokes of one character, best first.

        Strokes are in writing order, each a sequence of (x, y) points in a box of width × height
        with the origin at the top left. Points outside the box are moved to its edge; empty
        strokes are skipped; no stroke at all gives no candidates."""
        if width <= 0 or height <= 0:
            raise ValueError(f"the writing box must have a size, got {width}×{height}")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        count = min(count, MAX_CANDIDATES)
        z = self._zinnia
        with self._lock:
            if self._handle is None:
                raise RuntimeError("the recognizer is closed")
            character = z.character_new()
            if not character:
                raise MemoryError("zinnia_character_new returned NULL")
            try:
                z.character_set_width(character, UNITS)
                z.character_set_height(character, UNITS)
                stroke_id = 0
                for stroke in strokes:
                    if not stroke:
                        continue
                    for x, y in stroke:
                        z.character_add(character, stroke_id, _units(x, width), _units(y, height))
                    stroke_id += 1
                if stroke_id == 0:
                    return []
                result = z.recognizer_classify(self._handle, character, count)
                if not result:
                    return []
                try:
                    return [
                        Candidate(
                            (z.result_value(result, i) or b"").decode("utf-8", errors="replace"),
                            float(z.result_score(result, i)),
                        )
                        for i in range(z.result_size(result))
                    ]
                finally:
                    z.result_destroy(result)
            finally:
                z.character_destroy(character)

    def close(self) -> None:
        """Destroy the native recognizer (waits for a classification in progress). Idempotent."""
        with self._lock:
            self._handle = None
            self._finalizer()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _units(value: float, size: float) -> int:
    scaled = round(value * UNITS / size)
    return min(max(scaled, 0), UNITS)
