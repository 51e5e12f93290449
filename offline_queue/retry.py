"""The retry schedule: capped exponential backoff with full jitter, and the Retry-After header."""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
from collections.abc import Callable

DEFAULT_BASE_S = 2.0
DEFAULT_CAP_S = 900.0
# A peer may ask us to wait, but not to stall a queued submission for days.
MAX_RETRY_AFTER_S = 3600.0
# A Retry-After of 0 from a failing peer must not turn the sync loop into a busy loop.
MIN_RETRY_AFTER_S = 1.0


def backoff_delay(
    attempts: int,
    *,
    base_s: float = DEFAULT_BASE_S,
    cap_s: float = DEFAULT_CAP_S,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after the attempts-th failed attempt: uniform in [0, min(cap, base*2^(n-1))).

    Full jitter spreads the terminals of a hall that all lost the network at the same moment.
    """
    if base_s <= 0 or cap_s <= 0:
        raise ValueError("base_s and cap_s must be positive")
    exponent = max(0, attempts - 1)
    # 2**exponent overflows a float long before the cap stops mattering; stop doubling early.
    ceiling = cap_s if exponent >= 64 else min(cap_s, base_s * math.ldexp(1.0, exponent))
    return rng() * ceiling


def retry_delay(
    attempts: int,
    retry_after_s: float | None = None,
    *,
    base_s: float = DEFAULT_BASE_S,
    cap_s: float = DEFAULT_CAP_S,
    rng: Callable[[], float] = random.random,
    max_retry_after_s: float = MAX_RETRY_AFTER_S,
) -> float:
    """The delay before the next attempt: the peer's Retry-After when it gave one, else backoff."""
    if retry_after_s is not None and math.isfinite(retry_after_s):
        return min(max(retry_after_s, MIN_RETRY_AFTER_S), max_retry_after_s)
    return backoff_delay(attempts, base_s=base_s, cap_s=cap_s, rng=rng)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), else None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses as naive; RFC 9110 dates are GMT in any case
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)
