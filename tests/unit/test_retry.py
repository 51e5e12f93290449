"""The retry schedule: capped exponential backoff with full jitter, and Retry-After."""

from __future__ import annotations

import email.utils
import random

import pytest

from offline_queue.retry import (
    MAX_RETRY_AFTER_S,
    MIN_RETRY_AFTER_S,
    backoff_delay,
    parse_retry_after,
    retry_delay,
)


def test_ceiling_doubles_from_base() -> None:
    top = lambda: 1.0  # noqa: E731 - the largest value jitter can draw
    assert [backoff_delay(n, base_s=2.0, cap_s=900.0, rng=top) for n in range(1, 6)] == [
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
    ]


def test_cap_holds_for_any_attempt_count() -> None:
    top = lambda: 1.0  # noqa: E731 - the largest value jitter can draw
    assert backoff_delay(10, base_s=2.0, cap_s=900.0, rng=top) == 900.0
    assert backoff_delay(10_000, base_s=2.0, cap_s=900.0, rng=top) == 900.0
    assert backoff_delay(0, base_s=2.0, rng=top) == 2.0  # a first attempt counts as one


def test_full_jitter_spans_zero_to_ceiling() -> None:
    rng = random.Random(7)  # noqa: S311 - a seeded draw for jitter, not for secrets
    draws = [backoff_delay(4, base_s=2.0, cap_s=900.0, rng=rng.random) for _ in range(2000)]
    assert all(0.0 <= d < 16.0 for d in draws)
    assert min(draws) < 1.0 and max(draws) > 15.0  # the whole range is used, not a narrow band
    assert len(set(draws)) > 1900  # terminals that fail together do not retry together


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        backoff_delay(1, base_s=0.0)


def test_retry_after_seconds_and_dates() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0 ", now) == 0.0
    date = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(90.0, abs=1.0)
    past = email.utils.formatdate(now - 90, usegmt=True)
    assert parse_retry_after(past, now) == 0.0
    for junk in (None, "", "soon", "-5", "1.5", "１２"):
        assert parse_retry_after(junk, now) is None


def test_retry_delay_honours_retry_after_within_bounds() -> None:
    never = lambda: 0.0  # noqa: E731 - jitter drawn at its lowest
    assert retry_delay(1, 120.0, rng=never) == 120.0
    assert retry_delay(1, 0.0, rng=never) == MIN_RETRY_AFTER_S  # no busy loop on "Retry-After: 0"
    assert retry_delay(1, 10 * 86400.0, rng=never) == MAX_RETRY_AFTER_S
    assert retry_delay(3, None, rng=lambda: 0.5) == backoff_delay(3, rng=lambda: 0.5)
    assert retry_delay(3, float("nan"), rng=lambda: 0.5) == backoff_delay(3, rng=lambda: 0.5)
