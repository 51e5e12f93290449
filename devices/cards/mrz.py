"""Machine readable zones (ICAO 9303 Parts 3-6): check digits, TD1/TD2/TD3 parsing, and how a
travel document's MRZ becomes an Identity.

Mapping to Identity (a passport or ICAO-format residence card is not a resident ID card):
- name: the primary identifier then the secondary identifier, fillers as spaces
  ("ERIKSSON ANNA MARIA"), as printed in the MRZ (Latin transliteration);
- sex: M male, F female, X or filler unspecified;
- nation: empty. Identity.nation is the GB 3304 ethnic group, which travel documents do not
  state; nationality is a different thing and stays in MrzData.nationality (ICAO 3-letter code);
- id_number: the document number (fillers removed). It is not a GB 11643 number, so an
  application that checks resident ID numbers tells the two apart by MrtdIdentity.mrz;
- issuing_authority: the issuing state or organisation code (e.g. "CHN"), the nearest thing the
  MRZ has to an authority;
- valid_from: None (the MRZ has no issue date); valid_until: the date of expiry;
- address: empty (not in the MRZ);
- every MRZ field stays available as MrtdIdentity.mrz (MrzData).
Two-digit years: a birth year is the latest one not in the future; an expiry year is 20YY unless
that is more than 50 years ahead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from devices.cards.document_check import NOT_CHECKED, DocumentCheck
from devices.identity import Identity, Sex

_WEIGHTS = (7, 3, 1)
_FORMATS = {90: ("TD1", 30), 72: ("TD2", 36), 88: ("TD3", 44)}
_EXPIRY_HORIZON_YEARS = 50


class MrzError(ValueError):
    """The MRZ is malformed or a check digit does not match."""


def char_value(ch: str) -> int:
    if "0" <= ch <= "9":
        return ord(ch) - ord("0")
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    if ch == "<":
        return 0
    raise MrzError(f"character {ch!r} is not allowed in an MRZ")


def check_digit(text: str) -> str:
    """ICAO 9303 Part 3 §4.9: weights 7, 3, 1 repeating, sum modulo 10."""
    return str(sum(char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(text)) % 10)


def _verify(name: str, text: str, digit: str) -> None:
    # A field that is entirely filler may carry a filler check digit (optional data).
    if digit == "<" and set(text) <= {"<"}:
        return
    if check_digit(text) != digit:
        raise MrzError(f"check digit of {name} does not match")


@dataclass(frozen=True, slots=True)
class MrzData:
    """Every field of a TD1, TD2 or TD3 machine readable zone, fillers kept out of names."""

    format: str  # "TD1", "TD2" or "TD3"
    document_code: str  # "P", "I", "ID", "AC", ...
    issuing_state: str
    primary_identifier: str  # surname(s), fillers as spaces
    secondary_identifier: str  # given names, fillers as spaces
    document_number: str  # fillers removed
    nationality: str
    birth_date: dt.date
    birth_date_raw: str  # YYMMDD as printed
    sex: str  # "M", "F" or "<" / "X"
    expiry_date: dt.date
    expiry_date_raw: str
    optional_data: str  # TD3 personal number or TD1/TD2 optional data 1, fillers stripped
    optional_data_2: str  # TD1 only
    lines: tuple[str, ...]

    def __repr__(self) -> str:
        return f"MrzData(format={self.format!r}, document_code={self.document_code!r})"

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.primary_identifier, self.secondary_identifier) if p)


def _date(raw: str, what: str) -> tuple[int, int, int]:
    if len(raw) != 6 or not raw.isdigit():
        raise MrzError(f"{what} is not a YYMMDD date")
    return int(raw[:2]), int(raw[2:4]), int(raw[4:6])


def birth_date(raw: str, today: dt.date) -> dt.date:
    yy, mm, dd = _date(raw, "birth date")
    try:
        candidate = dt.date(2000 + yy, mm, dd)
        if candidate > today:
            candidate = dt.date(1900 + yy, mm, dd)
    except ValueError as exc:
        raise MrzError("birth date is not a calendar date") from exc
    return candidate


def expiry_date(raw: str, today: dt.date) -> dt.date:
    yy, mm, dd = _date(raw, "expiry date")
    year = 2000 + yy
    if year > today.year + _EXPIRY_HORIZON_YEARS:
        year -= 100
    try:
        return dt.date(year, mm, dd)
    except ValueError as exc:
        raise MrzError("expiry date is not a calendar date") from exc


def _names(field: str) -> tuple[str, str]:
    primary, _, secondary = field.partition("<<")
    return (
        " ".join(primary.replace("<", " ").split()),
        " ".join(secondary.replace("<", " ").split()),
    )


def _code(field: str) -> str:
    return field.replace("<", "")


def split_lines(text: str) -> tuple[str, ...]:
    """The MRZ lines of text given as lines or as one run of characters (as DG1 stores it)."""
    compact = "".join(text.split()).upper()
    shape = _FORMATS.get(len(compact))
    if shape is None:
        raise MrzError(f"an MRZ of {len(compact)} characters is neither TD1, TD2 nor TD3")
    _fmt, width = shape
    return tuple(compact[i : i + width] for i in range(0, len(compact), width))


def parse(text: str, today: dt.date | None = None) -> MrzData:
    """Parse and check a TD1 (3x30), TD2 (2x36) or TD3 (2x44) MRZ; MrzError if anything is off."""
    lines = split_lines(text)
    for ch in "".join(lines):
        char_value(ch)
    day = today or dt.date.today()
    if len(lines) == 3:
        return _parse_td1(lines, day)
    return _parse_two_line(lines, day)


def _parse_two_line(lines: tuple[str, ...], today: dt.date) -> MrzData:
    l1, l2 = lines
    fmt = "TD3" if len(l1) == 44 else "TD2"
    number, number_cd = l2[0:9], l2[9]
    birth, birth_cd = l2[13:19], l2[19]
    expiry, expiry_cd = l2[21:27], l2[27]
    document_number = number
    if fmt == "TD3":
        optional, optional_cd, composite_cd = l2[28:42], l2[42], l2[43]
        _verify("personal number", optional, optional_cd)
        composite = l2[0:10] + l2[13:20] + l2[21:43]
    else:
        optional, composite_cd = l2[28:35], l2[35]
        optional_cd = ""
        composite = l2[0:10] + l2[13:20] + l2[21:35]
        # Document numbers over 9 characters continue in the optional data (Part 6 §4.2.4).
        document_number, number_cd, optional = _long_number(number, number_cd, optional)
    _verify("document number", document_number, number_cd)
    _verify("birth date", birth, birth_cd)
    _verify("expiry date", expiry, expiry_cd)
    _verify("composite", composite, composite_cd)
    primary, secondary = _names(l1[5:])
    return MrzData(
        format=fmt,
        document_code=_code(l1[0:2]),
        issuing_state=_code(l1[2:5]),
        primary_identifier=primary,
        secondary_identifier=secondary,
        document_number=_code(document_number),
        nationality=_code(l2[10:13]),
        birth_date=birth_date(birth, today),
        birth_date_raw=birth,
        sex=l2[20],
        expiry_date=expiry_date(expiry, today),
        expiry_date_raw=expiry,
        optional_data=optional.rstrip("<"),
        optional_data_2="",
        lines=lines,
    )


def _long_number(number: str, check: str, optional: str) -> tuple[str, str, str]:
    """(document number, its check digit, the optional data left) when a "<" check digit says the
    number runs on into the optional data; the fields unchanged otherwise."""
    if check != "<":
        return number, check, optional
    extra, _, _rest = optional.partition("<")
    if len(extra) < 2:
        raise MrzError("long document number has no check digit")
    return number + extra[:-1], extra[-1], optional[len(extra) :]


def _parse_td1(lines: tuple[str, ...], today: dt.date) -> MrzData:
    l1, l2, l3 = lines
    number, number_cd = l1[5:14], l1[14]
    optional = l1[15:30]
    # Document numbers over 9 characters continue in optional data 1 (Part 5 §4.2.2).
    document_number, number_cd, optional = _long_number(number, number_cd, optional)
    birth, birth_cd = l2[0:6], l2[6]
    expiry, expiry_cd = l2[8:14], l2[14]
    _verify("document number", document_number, number_cd)
    _verify("birth date", birth, birth_cd)
    _verify("expiry date", expiry, expiry_cd)
    _verify("composite", l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29])
    primary, secondary = _names(l3)
    return MrzData(
        format="TD1",
        document_code=_code(l1[0:2]),
        issuing_state=_code(l1[2:5]),
        primary_identifier=primary,
        secondary_identifier=secondary,
        document_number=_code(document_number),
        nationality=_code(l2[15:18]),
        birth_date=birth_date(birth, today),
        birth_date_raw=birth,
        sex=l2[7],
        expiry_date=expiry_date(expiry, today),
        expiry_date_raw=expiry,
        optional_data=optional.strip("<"),
        optional_data_2=l2[18:29].rstrip("<"),
        lines=lines,
    )


_SEXES = {"M": Sex.MALE, "F": Sex.FEMALE}


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class MrtdIdentity(Identity):
    """An Identity read from a machine readable travel document, with its whole MRZ.

    document_check says whether the chip's data was shown to come from its issuer (Passive
    Authentication, devices/cards/passive_auth.py). A document that failed is still an identity:
    staff are shown the check and the submission records it.
    """

    mrz: MrzData
    document_check: DocumentCheck = NOT_CHECKED


def to_identity(
    mrz: MrzData,
    *,
    photo: bytes | None = None,
    photo_format: str = "",
    source: str = "",
    document_check: DocumentCheck = NOT_CHECKED,
) -> MrtdIdentity:
    """The Identity an MRZ states; see the module docstring for how each field is chosen."""
    return MrtdIdentity(
        name=mrz.name,
        sex=_SEXES.get(mrz.sex, Sex.UNSPECIFIED),
        nation="",
        birth_date=mrz.birth_date,
        address="",
        id_number=mrz.document_number,
        issuing_authority=mrz.issuing_state,
        valid_from=None,
        valid_until=mrz.expiry_date,
        photo=photo,
        photo_format=photo_format,
        source=source,
        mrz=mrz,
        document_check=document_check,
    )
