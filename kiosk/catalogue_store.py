"""Where the catalogue comes from: the platform when it answers, else the last copy, else the
bundled one. A broken copy is never used and never replaces a good one."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from kiosk.catalogue import Catalogue, CatalogueError, load_catalogue_file, parse_catalogue
from kiosk.limits import MAX_CATALOGUE_BYTES

log = logging.getLogger(__name__)


class CatalogueSource(Protocol):
    def get_catalogue(self) -> dict[str, Any]: ...


class CatalogueStore:
    def __init__(self, cache_path: Path, bundled_path: Path | None) -> None:
        self._cache = cache_path
        self._bundled = bundled_path

    def load_local(self) -> Catalogue:
        """The cached copy, or the bundled one; CatalogueError when neither can be used."""
        problems: list[str] = []
        for path in (self._cache, self._bundled):
            if path is None or not path.exists():
                continue
            try:
                return load_catalogue_file(path)
            except CatalogueError as exc:
                log.error("catalogue %s unusable: %s", path.name, exc.detail)
                problems.append(exc.detail)
        raise CatalogueError("; ".join(problems) or "no catalogue available")

    def refresh(self, source: CatalogueSource) -> Catalogue:
        """Fetch, check and cache the platform's catalogue. Raises on any failure, and then the
        cached copy is left as it was."""
        data = source.get_catalogue()
        try:
            catalogue = parse_catalogue(data)
            # Written as it will be read back: a copy the next start would refuse is no copy.
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
        return catalogue


def _encoded(data: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        encoded = text.encode("utf-8")  # a lone surrogate from a \ud800 escape fails here
    except (TypeError, ValueError, RecursionError) as exc:
        raise CatalogueError(f"cannot be stored: {type(exc).__name__}") from exc
    if len(encoded) > MAX_CATALOGUE_BYTES:
        raise CatalogueError(f"larger than {MAX_CATALOGUE_BYTES} bytes once stored")
    return encoded
