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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.catalogue import (
    Catalogue,
    CatalogueError,
    load_catalogue_file,
    parse_catalogue,
    read_catalogue_bytes,
)
from kiosk.limits import MAX_CATALOGUE_BYTES
from kiosk.trust import verify_catalogue

log = logging.getLogger(__name__)


class CatalogueSource(Protocol):
    def get_catalogue(self) -> dict[str, Any]: ...


class CatalogueStore:
    def __init__(
        self,
        cache_path: Path,
        bundled_path: Path | None,
        signing_keys: Mapping[str, Ed25519PublicKey] | None = None,
    ) -> None:
        """signing_keys: the platform's catalogue keys by key id (kiosk.trust.signing_keys);
        None takes catalogues unsigned, as terminals did before they were enrolled."""
        self._cache = cache_path
        self._bundled = bundled_path
        self._keys = None if signing_keys is None else dict(signing_keys)
        self._from_cache = False  # the catalogue last loaded came from the platform's copy

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
        self._cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._cache.with_suffix(".tmp")
        # 0600 whatever the process umask, like everything in the data directory
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            fh.write(encoded)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._cache)
        self._from_cache = True
        return catalogue


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


def _encoded(data: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        encoded = text.encode("utf-8")  # a lone surrogate from a \ud800 escape fails here
    except (TypeError, ValueError, RecursionError) as exc:
        raise CatalogueError(f"cannot be stored: {type(exc).__name__}") from exc
    if len(encoded) > MAX_CATALOGUE_BYTES:
        raise CatalogueError(f"larger than {MAX_CATALOGUE_BYTES} bytes once stored")
    return encoded
