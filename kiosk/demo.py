"""Demonstration identities for the simulated reader (fictitious people, valid check digits)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Protocol

from devices.identity import Identity, Sex


class Presenter(Protocol):
    def present(self, identity: Identity) -> None: ...


DEMO_IDENTITIES = Path(__file__).resolve().parent.parent / "assets" / "demo" / "identities.json"


def _date(value: Any) -> dt.date | None:
    return None if value in (None, "") else dt.date.fromisoformat(str(value))


def demo_identities(path: Path = DEMO_IDENTITIES) -> list[Identity]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    people: list[Identity] = []
    for row in rows:
        birth = _date(row["birth_date"])
        if birth is None:
            raise ValueError("a demo identity needs a birth date")
        people.append(
            Identity(
                name=row["name"],
                sex=Sex(row["sex"]),
                nation=row["nation"],
                birth_date=birth,
                address=row["address"],
                id_number=row["id_number"],
                issuing_authority=row["issuing_authority"],
                valid_from=_date(row.get("valid_from")),
                valid_until=_date(row.get("valid_until")),
            )
        )
    return people


class DemoCards:
    """Places the demo people on the simulated reader in turn (the demo's "present a card")."""

    def __init__(self, reader: Presenter, people: list[Identity]) -> None:
        self._reader = reader
        self._people = people
        self._turn = 0

    def present(self) -> None:
        if not self._people:
            return
        person = self._people[self._turn % len(self._people)]
        self._turn += 1
        self._reader.present(person)
