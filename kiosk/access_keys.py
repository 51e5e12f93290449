"""The MRZ data staff type to unlock a travel document's chip, held for one read per reader.

The PC/SC backend asks for a key on its device thread and must not wait for a person, so staff's
entry is stored here first and the reader is then told to try again. A key is forgotten once the
card is read or taken away: it is personal data (document number, birth date).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from kiosk.errors import UserFacingError
from kiosk.i18n import N_

if TYPE_CHECKING:  # the ciphers behind it load only when a chip is read
    from devices.cards.bac import BacKey


class AccessKeyInputError(UserFacingError):
    def __init__(self) -> None:
        super().__init__(
            N_(
                "Please check the entry: the document number uses letters and digits, and both "
                "dates are six digits (year, month, day: YYMMDD)."
            )
        )


def parse_access_key(document_number: str, birth_date: str, expiry_date: str) -> BacKey:
    """What staff typed, as a key; AccessKeyInputError for anything the chip could never take."""
    from devices.cards.bac import BacKey

    try:
        return BacKey(document_number.strip(), birth_date.strip(), expiry_date.strip())
    except ValueError:
        raise AccessKeyInputError() from None


class AccessKeys:
    """Callable as the eMRTD profile's access-key source (reader name → key or None)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, BacKey] = {}

    def __call__(self, reader: str) -> BacKey | None:
        with self._lock:
            return self._keys.get(reader)

    def provide(self, reader: str, key: BacKey) -> None:
        with self._lock:
            self._keys[reader] = key

    def forget(self, reader: str | None = None) -> None:
        """Drop the key for one reader (its card was read or went away), or every key."""
        with self._lock:
            if reader is None:
                self._keys.clear()
            else:
                self._keys.pop(reader, None)
