"""GB 11643-1999 ID number rules and the masking of personal values."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.identity import id_check_character, is_valid_id_number
from kiosk.identity import mask_id_number, mask_name

VALID = "11010519491231002X"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "0123456789X"


def _with_check(first17: str) -> str:
    return first17 + id_check_character(first17)


def test_published_example_is_valid() -> None:
    assert id_check_character(VALID[:17]) == "X"
    assert is_valid_id_number(VALID)


@pytest.mark.parametrize("wrong", sorted(set(CHECK_CHARS) - {"X"}))
def test_any_other_check_character_is_invalid(wrong: str) -> None:
    assert not is_valid_id_number(VALID[:17] + wrong)


def test_lower_case_x_is_accepted() -> None:
    assert is_valid_id_number(VALID.lower())


@pytest.mark.parametrize(
    "first17",
    [
        "11010519490230002",  # 30 February
        "11010519491301002",  # month 13
        "11010519490001002",  # month 0
        "11010519491200002",  # day 0
        "11010519000229002",  # 1900 was not a leap year
    ],
)
def test_impossible_birth_dates_are_rejected_even_with_a_right_check(first17: str) -> None:
    assert not is_valid_id_number(_with_check(first17))


def test_a_real_leap_day_is_accepted() -> None:
    assert is_valid_id_number(_with_check("11010520000229002"))


@pytest.mark.parametrize(
    "value",
    [
        "",
        VALID[:17],  # no check character
        VALID + "0",  # 19 characters
        "110105491231002",  # the old 15-digit form is not an 18-character number
        "1101051949123100AX",  # letters in the body
        "X10105194912310021",
        "11010519491231 02X",
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits look right and are not
        "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X",  # other scripts' digits pass str.isdigit
    ],
)
def test_malformed_numbers_are_rejected(value: str) -> None:
    assert not is_valid_id_number(value)


@pytest.mark.parametrize(
    "bad", ["", "1234", "1101051949123100A", "１１０１０５１９４９１２３１００２"]
)
def test_check_character_needs_seventeen_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        id_check_character(bad)


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_satisfies_iso_7064_mod_11_2(first17: str) -> None:
    # The defining property of MOD 11-2: with the check character weighted 1 (X counting 10),
    # the weighted sum of all 18 positions is congruent to 1 modulo 11.
    check = id_check_character(first17)
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    assert (total + CHECK_CHARS.index(check)) % 11 == 1


_first17 = st.builds(
    lambda region, born, seq: f"{region:06d}{born:%Y%m%d}{seq:03d}",
    st.integers(110000, 829999),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)),
    st.integers(0, 999),
)


@given(_first17, st.sampled_from(CHECK_CHARS))
def test_exactly_the_computed_check_character_is_valid(first17: str, check: str) -> None:
    expected = id_check_character(first17)
    assert is_valid_id_number(first17 + check) is (check == expected)


# --- masking -------------------------------------------------------------------------------------


def test_id_number_keeps_region_code_and_last_four() -> None:
    assert mask_id_number(VALID) == "110105********002X"
    assert mask_id_number(VALID.lower()) == "110105********002X"
    assert mask_id_number(f"  {VALID} ") == "110105********002X"


def test_masked_id_number_hides_the_birth_date() -> None:
    masked = mask_id_number(VALID)
    assert "19491231" not in masked
    assert len(masked) == len(VALID)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("", ""),
        ("12", "**"),
        ("E12345678", "E*******8"),  # a passport number keeps only its ends
        ("110105491231002", "110105*****1002"),  # the old 15-digit form
    ],
)
def test_other_document_numbers(value: str, masked: str) -> None:
    assert mask_id_number(value) == masked


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("", ""),
        ("   ", ""),
        ("张", "*"),
        ("张三", "张*"),
        ("张小三", "张*三"),
        ("欧阳娜娜", "欧**娜"),
        (" 张小三 ", "张*三"),
        ("买买提·艾力", "买**·*力"),
        ("John Smith", "J*** S****"),
        ("Jean-Luc Picard", "J***-L** P*****"),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@given(st.text(alphabet=st.characters(categories=["Lo"]), min_size=3, max_size=8))
def test_masked_cjk_name_shows_only_first_and_last(name: str) -> None:
    masked = mask_name(name)
    assert masked == name[0] + "*" * (len(name) - 2) + name[-1]
