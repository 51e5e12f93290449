"""Where the catalogue comes from: the platform when it answers, else the last copy, else the
bundled one. A broken copy is never used and never replaces a good one."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from kiosk.catalogue import Catalogue, CatalogueError, load_catalogue_file, parse_catalogue

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
        """Fetch, check and cache the platform's catalogue. Raises on any failure."""
        data = source.get_catalogue()
        catalogue = parse_catalogue(data)
        self._cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._cache.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._cache)
        return catalogue
