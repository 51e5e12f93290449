"""Where the catalogue comes from: the platform when it answers, else the last copy, else the
bundled one. A broken copy is never used and never replaces a good one.

Given the platform's signing keys, the store takes only a catalogue whose signature verifies:
from the platform before it is parsed, and from the cached copy (kept with its signature) every
time it is read, so a copy changed on disk is refused like one changed on the way. The bundled
copy ships with the software and is trusted as the code is.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.catalogue import (
    Catalogue,
    CatalogueError,
    load_catalogue_file,
    parse_catalogue,
    read_catalogue_bytes,
)
from kiosk.limits import MAX_CATALOGUE_BYTES, MAX_RESPONSE_BYTES
from kiosk.receipt_token import TerminalKeys, TerminalKeysError, parse_terminal_keys
from kiosk.trust import verify_catalogue

log = logging.getLogger(__name__)


TERMINAL_KEYS_FILE: Final = "terminal_keys.json"


class CatalogueSource(Protocol):
    def get_catalogue(self) -> dict[str, Any]: ...


@runtime_checkable
class TerminalKeysSource(Protocol):
    def get_terminal_keys(self) -> dict[str, Any]:
        """GET /api/v1/terminals/keys as sent (docs/api.md), checked by the store."""
        ...


class CatalogueStore:
    def __init__(
        self,
        cache_path: Path,
        bundled_path: Path | None,
        signing_keys: Mapping[str, Ed25519PublicKey] | None = None,
        terminal_keys: TerminalKeysStore | None = None,
    ) -> None:
        """signing_keys: the platform's catalogue keys by key id (kiosk.trust.signing_keys);
        None takes catalogues unsigned, as terminals did before they were enrolled.
        terminal_keys: refreshed with the catalogue, from a source that offers them."""
        self._cache = cache_path
        self._bundled = bundled_path
        self._keys = None if signing_keys is None else dict(signing_keys)
        self._from_cache = False  # the catalogue last loaded came from the platform's copy
        self._terminal_keys = terminal_keys
        self._tracking_url: str | None = None

    def tracking_url(self) -> str | None:
        """The public tracking page the catalogue last loaded or refreshed announced; None when
        it announced none. Read from any thread (a receipt is made on the saving worker)."""
        return self._tracking_url

    def load_local(self) -> Catalogue:
        """The cached copy, or the bundled one; CatalogueError when neither can be used."""
        problems: list[str] = []
        # The bundled copy is checked as a catalogue, not for a signature: it came with the code.
        for path, keys in ((self._cache, self._keys), (self._bundled, None)):
            if path is None or not path.exists():
                continue
            try:
                loaded = load_catalogue_file(path) if keys is None else _load_signed(path, keys)
            except CatalogueError as exc:
                log.error("catalogue %s unusable: %s", path.name, exc.detail)
                problems.append(exc.detail)
                continue
            self._from_cache = path == self._cache
            self._tracking_url = loaded.tracking_url
            return loaded
        raise CatalogueError("; ".join(problems) or "no catalogue available")

    def fetched_at(self) -> float | None:
        """When the catalogue last loaded or refreshed was taken from the platform; None when
        it is the bundled one."""
        if not self._from_cache:
            return None
        try:
            return self._cache.stat().st_mtime
        except OSError:
            return None

    def refresh(self, source: CatalogueSource) -> Catalogue:
        """Fetch, check and cache the platform's catalogue. Raises on any failure, and then the
        cached copy is left as it was."""
        data = source.get_catalogue()
        try:
            body = data if self._keys is None else verify_catalogue(data, self._keys)
            catalogue = parse_catalogue(body)
            # Written as it will be read back, signature and all: a copy the next start would
            # refuse is no copy.
            encoded = _encoded(data)
        except CatalogueError as exc:
            log.error("platform catalogue refused, the last good one stays: %s", exc.detail)
            raise
        _write_private(self._cache, encoded)
        self._from_cache = True
        self._tracking_url = catalogue.tracking_url
        self._refresh_terminal_keys(source)
        return catalogue

    def _refresh_terminal_keys(self, source: CatalogueSource) -> None:
        """The keys that check other terminals' receipts; failing to get them costs nothing of
        the catalogue (the copy already kept stays in use)."""
        if self._terminal_keys is None or not isinstance(source, TerminalKeysSource):
            return
        try:
            self._terminal_keys.refresh(source)
        except Exception as exc:
            log.warning("terminal keys not refreshed: %s", type(exc).__name__)


class TerminalKeysStore:
    """The platform's published terminal keys, kept so receipts are checked offline.

    The copy on disk keeps the platform's signature and is verified every time it is read, as
    the catalogue is; a list that does not verify is never kept and never used.
    """

    def __init__(self, cache_path: Path, signing_keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._cache = cache_path
        self._signing_keys = dict(signing_keys)
        self._lock = threading.Lock()
        self._current = TerminalKeys()

    def current(self) -> TerminalKeys:
        """The keys last loaded or refreshed (none before that)."""
        with self._lock:
            return self._current

    def load(self) -> TerminalKeys:
        """The kept copy; an empty list when there is none or it no longer verifies."""
        try:
            data = _read_capped(self._cache, MAX_RESPONSE_BYTES)
            keys = parse_terminal_keys(_decoded(data, self._cache.name), self._signing_keys)
        except FileNotFoundError:
            keys = TerminalKeys()
        except (OSError, CatalogueError, TerminalKeysError) as exc:
            log.error("kept terminal keys unusable: %s", exc)
            keys = TerminalKeys()
        with self._lock:
            self._current = keys
        return keys

    def refresh(self, source: TerminalKeysSource) -> TerminalKeys:
        """Fetch, check and keep the platform's list. Raises on any failure (TerminalKeysError
        for a list that does not verify), and then the kept copy is left as it was."""
        data = source.get_terminal_keys()
        keys = parse_terminal_keys(data, self._signing_keys)
        try:
            encoded = _encoded(data, MAX_RESPONSE_BYTES)
        except CatalogueError as exc:
            raise TerminalKeysError(exc.detail) from exc
        _write_private(self._cache, encoded)
        with self._lock:
            self._current = keys
        return keys


def _write_private(path: Path, encoded: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # 0600 whatever the process umask, like everything in the data directory
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
        fh.write(encoded)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_capped(path: Path, cap: int) -> bytes:
    with path.open("rb") as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise OSError(f"{path.name}: larger than {cap} bytes")
    return data


def _load_signed(path: Path, keys: Mapping[str, Ed25519PublicKey]) -> Catalogue:
    value = _decoded(read_catalogue_bytes(path), path.name)
    return parse_catalogue(verify_catalogue(value, keys))


def _decoded(data: bytes, source: str) -> dict[str, Any]:
    """The JSON object in data, as kiosk.catalogue decodes a file, before anything is checked."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{source}: {type(exc).__name__}") from exc
    except RecursionError as exc:  # json nests by recursion: thousands of brackets end it
        raise CatalogueError(f"{source}: nested too deeply") from exc
    if not isinstance(value, dict):
        raise CatalogueError(f"{source}: not a JSON object")
    return value


def _encoded(data: dict[str, Any], cap: int = MAX_CATALOGUE_BYTES) -> bytes:
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        encoded = text.encode("utf-8")  # a lone surrogate from a \ud800 escape fails here
    except (TypeError, ValueError, RecursionError) as exc:
        raise CatalogueError(f"cannot be stored: {type(exc).__name__}") from exc
    if len(encoded) > cap:
        raise CatalogueError(f"larger than {cap} bytes once stored")
    return encoded
