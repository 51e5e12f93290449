"""APDUs, the transport a profile speaks through, and the registry that picks a card's profile.

A reader backend hands a profile a CardTransport; the profile never sees PC/SC or sockets. A
failure anywhere below a profile is a CardError naming the ReaderError the person is told about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from devices.identity import Identity
from devices.readers.base import ReaderError

SW_OK = 0x9000


class CardError(Exception):
    """A read failed; `error` says why in terms the application turns into advice."""

    def __init__(self, error: ReaderError, detail: str) -> None:
        super().__init__(f"{error.value}: {detail}")
        self.error = error
        self.detail = detail


class CardTransport(Protocol):
    """Sends one command APDU and returns the whole response (data and status word).

    Raises CardError when the card or reader went away or did not answer in time.
    """

    def transmit(self, apdu: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Response:
    data: bytes
    sw: int

    @classmethod
    def parse(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise CardError(ReaderError.BAD_DATA, f"response of {len(raw)} bytes has no status")
        return cls(raw[:-2], int.from_bytes(raw[-2:], "big"))

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK


def command(
    cla: int, ins: int, p1: int, p2: int, *, data: bytes = b"", le: int | None = None
) -> bytes:
    """A short command APDU (ISO/IEC 7816-4 §5.1); le=256 is encoded as 00."""
    if len(data) > 255:
        raise ValueError("short APDUs carry at most 255 bytes")
    if le is not None and not 1 <= le <= 256:
        raise ValueError("Le must be 1..256")
    apdu = bytes([cla, ins, p1, p2])
    if data:
        apdu += bytes([len(data)]) + data
    if le is not None:
        apdu += bytes([le % 256])
    return apdu


def select_application(aid: bytes) -> bytes:
    """SELECT by DF name, first or only occurrence, no response data (P2 = 0C)."""
    return command(0x00, 0xA4, 0x04, 0x0C, data=aid)


class CardProfile(Protocol):
    """Knows one kind of card: which ATRs it may have, which application to select, how to read.

    read() runs after the registry has selected `aid` (when there is one) and returns the
    identity, or raises CardError.
    """

    @property
    def name(self) -> str: ...

    @property
    def aid(self) -> bytes | None: ...

    def accepts_atr(self, atr: bytes) -> bool: ...

    def read(self, transport: CardTransport, reader: str) -> Identity: ...


# Answers to SELECT meaning "not this application here": try the next profile.
_NOT_HERE = frozenset({0x6A82, 0x6A81, 0x6A86, 0x6D00, 0x6E00, 0x6999})


class ProfileRegistry:
    """Profiles in order of preference; the first whose ATR filter and application fit wins.

    Further ISO 7816 profiles (health cards, social security cards, ...) are added here by the
    code that builds the reader, each with its own dependencies.
    """

    def __init__(self, profiles: Sequence[CardProfile]) -> None:
        self._profiles = tuple(profiles)

    @property
    def profiles(self) -> tuple[CardProfile, ...]:
        return self._profiles

    def choose(self, transport: CardTransport, atr: bytes) -> CardProfile:
        """Select the first fitting profile's application; CardError(UNSUPPORTED_CARD) if none."""
        answers: list[str] = []
        for profile in self._profiles:
            if not profile.accepts_atr(atr):
                continue
            if profile.aid is None:
                return profile
            response = Response.parse(transport.transmit(select_application(profile.aid)))
            if response.ok:
                return profile
            answers.append(f"{profile.name}:{response.sw:04X}")
            if response.sw not in _NOT_HERE:
                # The card knows the application but refuses it (blocked, invalidated, ...).
                raise CardError(
                    ReaderError.UNSUPPORTED_CARD,
                    f"{profile.name} application refused with {response.sw:04X}",
                )
        raise CardError(
            ReaderError.UNSUPPORTED_CARD,
            f"no profile for ATR {atr.hex()} ({', '.join(answers) or 'no ATR match'})",
        )
