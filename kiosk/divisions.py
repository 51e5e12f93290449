"""Administrative divisions (GB/T 2260) for the address picker: provinces, cities, counties.

The register ships as assets/divisions/divisions.json (source, edition and licence inside; built
by scripts/build_divisions.py). It is read once, on first use, and kept: about 3,200 rows, a few
milliseconds. Each division's parent is the one a person names before it, so the municipalities
have no "市辖区" step and counties a province administers directly (仙桃市) sit under the province.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATASET = Path(__file__).resolve().parent.parent / "assets" / "divisions" / "divisions.json"

PROVINCE, PREFECTURE, COUNTY = 1, 2, 3

# Words on older cards and forms that name a level the register does not have.
_FILLERS = ("省直辖县级行政区划", "自治区直辖县级行政区划", "省直辖", "市辖区", "郊县")
# After a short name ("广东", "深圳"), these start a street or a place, not the rest of a name.
_NOT_AFTER_SHORT = frozenset("省市路街道巷弄里号村镇乡桥园苑楼大中东西南北")


@dataclass(frozen=True, slots=True)
class Division:
    code: str
    name: str
    short: str
    parent: str | None
    level: int
    initials: str  # pinyin initials of the full name, one letter per character


@dataclass(frozen=True, slots=True)
class AddressMatch:
    """What a free-text address names: codes at each level (None where it does not say or the
    level does not exist, as for 北京市东城区) and the rest of the text, the street part."""

    province: str | None
    city: str | None
    county: str | None
    street: str

    @property
    def codes(self) -> tuple[str | None, str | None, str | None]:
        return (self.province, self.city, self.county)

    @property
    def deepest(self) -> str | None:
        return self.county or self.city or self.province


class DivisionError(ValueError):
    """The register file is missing or not in the expected shape."""


def matches(division: Division, query: str) -> bool:
    """Pinyin initials ("gd", "sz") match from the start; Chinese text anywhere in the name."""
    query = query.strip().lower()
    if not query:
        return True
    if query.isascii():
        return query.isalpha() and division.initials.startswith(query)
    return query in division.name


class Register:
    """The divisions of one edition, indexed by code and by parent."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        try:
            self.source = str(document["source"])
            self.edition = str(document["edition"])
            self.edition_date = str(document["edition_date"])
            self.licence = str(document["licence"])
            rows = document["divisions"]
            self._by_code: dict[str, Division] = {}
            for row in rows:
                division = Division(
                    code=str(row["code"]),
                    name=str(row["name"]),
                    short=str(row["short"]),
                    parent=None if row["parent"] is None else str(row["parent"]),
                    level=int(row["level"]),
                    initials=str(row["initials"]),
                )
                self._by_code[division.code] = division
        except (KeyError, TypeError, ValueError) as exc:
            raise DivisionError(f"divisions file: {exc!r}") from exc
        children: dict[str | None, list[Division]] = {}
        for division in self._by_code.values():
            children.setdefault(division.parent, []).append(division)
        # Prefectures before the counties a province administers directly, each in code order.
        self._children = {
            parent: tuple(sorted(kids, key=lambda d: (d.level, d.code)))
            for parent, kids in children.items()
        }

    def __len__(self) -> int:
        return len(self._by_code)

    def all(self) -> tuple[Division, ...]:
        return tuple(self._by_code.values())

    def get(self, code: str) -> Division:
        return self._by_code[code]

    def find(self, code: str | None) -> Division | None:
        return None if code is None else self._by_code.get(code)

    def children(self, code: str | None = None) -> tuple[Division, ...]:
        """The divisions directly under `code`, or the provinces for None."""
        return self._children.get(code, ())

    def path(self, code: str) -> tuple[Division, ...]:
        """From the province down to `code`."""
        chain: list[Division] = []
        current = self._by_code.get(code)
        while current is not None:
            chain.append(current)
            current = self._by_code.get(current.parent) if current.parent else None
        return tuple(reversed(chain))

    def full_name(self, codes: str | Sequence[str | None] | None) -> str:
        """广东省深圳市福田区 for (440000, 440300, 440304) or for 440304 alone."""
        if codes is None:
            return ""
        if isinstance(codes, str):
            deepest: str | None = codes
        else:
            deepest = next((c for c in reversed(codes) if c), None)
        if deepest is None:
            return ""
        return "".join(d.name for d in self.path(deepest))

    def is_descendant(self, code: str, ancestor: str) -> bool:
        return any(d.code == ancestor for d in self.path(code)[:-1])

    def search(self, query: str, within: str | None = None) -> tuple[Division, ...]:
        """Divisions matching pinyin initials or Chinese text: provinces first, then cities,
        then counties, each in code order. `within` keeps those under that division."""
        if not query.strip():
            return self.children(within)
        found = [
            d
            for d in self._by_code.values()
            if matches(d, query) and (within is None or self.is_descendant(d.code, within))
        ]
        return tuple(sorted(found, key=lambda d: (d.level, d.code)))

    # -- reading a card address ----------------------------------------------------------------

    def match_address(self, text: str) -> AddressMatch:
        """Longest-prefix match of province, city and county names at the start of an address,
        e.g. 广东省深圳市福田区福华路88号 -> (440000, 440300, 440304, "福华路88号"). A level the
        text does not name stays None and the text from there on is the street part."""
        text = "".join(text.split())
        pos = 0
        province = city = county = None
        hit = self._prefix(text, pos, self.children(None))
        if hit is None:
            # No province: a city or county named alone, when only one in the country has it.
            hit = self._unique_prefix(text, pos, PREFECTURE) or self._unique_prefix(
                text, pos, COUNTY
            )
            if hit is None:
                return AddressMatch(None, None, None, text)
            division, pos = hit
            chain = self.path(division.code)
            province = chain[0].code
            for step in chain[1:]:
                if step.level == PREFECTURE:
                    city = step.code
                else:
                    county = step.code
            if county is None:
                county, pos = self._county_under(text, pos, division.code)
            return AddressMatch(province, city, county, text[pos:])
        division, pos = hit
        province = division.code
        pos = self._skip_fillers(text, pos)
        hit = self._prefix(text, pos, self.children(province))
        if hit is None:
            # "广东省福田区...": a county of the province named without its city.
            hit = self._unique_prefix(text, pos, COUNTY, within=province)
        if hit is None:
            return AddressMatch(province, None, None, text[pos:])
        division, pos = hit
        if division.level == COUNTY:
            if division.parent != province:
                city = division.parent
            return AddressMatch(province, city, division.code, text[pos:])
        city = division.code
        county, pos = self._county_under(text, pos, city)
        return AddressMatch(province, city, county, text[pos:])

    def _county_under(self, text: str, pos: int, city: str) -> tuple[str | None, int]:
        after = self._skip_fillers(text, pos)
        hit = self._prefix(text, after, self.children(city))
        if hit is None:
            return None, pos
        return hit[0].code, hit[1]

    @staticmethod
    def _skip_fillers(text: str, pos: int) -> int:
        for filler in _FILLERS:
            if text.startswith(filler, pos):
                return pos + len(filler)
        return pos

    @staticmethod
    def _names(division: Division) -> tuple[tuple[str, bool], ...]:
        """The names a division goes by at the start of an address: (text, is_short)."""
        names = [(division.name, False)]
        if division.level < COUNTY and len(division.short) >= 2 and division.short != division.name:
            names.append((division.short, True))
            if division.name.endswith("自治州"):
                names.append((division.short + "州", False))  # 凉山州, 延边州
        return tuple(names)

    def _prefix(
        self, text: str, pos: int, candidates: Sequence[Division]
    ) -> tuple[Division, int] | None:
        best: tuple[Division, int] | None = None
        for division in candidates:
            for name, is_short in self._names(division):
                if not text.startswith(name, pos):
                    continue
                end = pos + len(name)
                if (
                    is_short
                    and end < len(text)
                    and text[end] in _NOT_AFTER_SHORT
                    and not self._prefix(text, end, self.children(division.code))
                ):
                    continue  # 北京路..., not 北京
                if best is None or end > best[1]:
                    best = (division, end)
        return best

    def _unique_prefix(
        self, text: str, pos: int, level: int, within: str | None = None
    ) -> tuple[Division, int] | None:
        hits: list[tuple[Division, int]] = []
        for division in self._by_code.values():
            if division.level != level:
                continue
            if within is not None and not self.is_descendant(division.code, within):
                continue
            for name, is_short in self._names(division):
                if not is_short and text.startswith(name, pos):
                    hits.append((division, pos + len(name)))
        if not hits:
            return None
        longest = max(end for _, end in hits)
        best = [hit for hit in hits if hit[1] == longest]
        return best[0] if len(best) == 1 else None


def load(path: Path = DATASET) -> Register:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DivisionError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise DivisionError(f"{path}: not a JSON object")
    return Register(document)


_lock = threading.Lock()
_loaded: list[Register] = []  # the shipped register once read


def register() -> Register:
    """The shipped register, read on first use (from whichever thread asks first)."""
    if not _loaded:
        with _lock:
            if not _loaded:
                _loaded.append(load())
    return _loaded[0]


def children(code: str | None = None) -> tuple[Division, ...]:
    return register().children(code)


def search(query: str, within: str | None = None) -> tuple[Division, ...]:
    return register().search(query, within)


def match_address(text: str) -> AddressMatch:
    return register().match_address(text)


def full_name(codes: str | Sequence[str | None] | None) -> str:
    return register().full_name(codes)
