"""Exponential backoff with jitter and a cap: one pure function for restarts and retries."""

from __future__ import annotations

import random as _random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """An exponential backoff policy.

    The ``n``-th delay (``n`` starting at 1) is ``initial * multiplier ** (n - 1)``, capped at
    ``maximum``, then reduced by a random fraction of at most ``jitter`` so that many clients
    backing off together spread out. The cap is never exceeded.
    """

    initial: float = 0.1
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ValueError("backoff delays must be >= 0")
        if self.multiplier < 1:
            raise ValueError("backoff multiplier must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be between 0 and 1")

    def delay(self, attempt: int, rng: _random.Random | None = None) -> float:
        """The delay before try number ``attempt + 1``, drawing jitter from ``rng``."""
        return compute_backoff(self, attempt, (rng or _random).random())


def compute_backoff(policy: Backoff, attempt: int, draw: float) -> float:
    """The delay after the ``attempt``-th failure, given a uniform ``draw`` in [0, 1).

    Pure: the same inputs always give the same delay, so it can be tested exhaustively.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    # Cap the exponent so huge attempt counts do not overflow a float.
    exponent = min(attempt - 1, 1024)
    try:
        base = policy.initial * policy.multiplier**exponent
    except OverflowError:
        base = policy.maximum if policy.initial > 0 else 0.0  # zero times anything is zero
    base = min(base, policy.maximum)
    return base * (1.0 - policy.jitter * draw)
