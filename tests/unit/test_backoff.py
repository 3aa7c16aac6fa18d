"""compute_backoff and the Backoff policy."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trellis_actors import Backoff, compute_backoff

policies = st.builds(
    Backoff,
    initial=st.floats(0.0, 100.0),
    maximum=st.floats(0.0, 1000.0),
    multiplier=st.floats(1.0, 10.0),
    jitter=st.floats(0.0, 1.0),
)
attempts = st.integers(1, 10_000)
draws = st.floats(0.0, 1.0, exclude_max=True)


def base(policy: Backoff, attempt: int) -> float:
    """The delay before jitter: the exponential curve, capped."""
    return compute_backoff(
        Backoff(policy.initial, policy.maximum, policy.multiplier, 0), attempt, 0
    )


class TestBackoff:
    def test_defaults(self) -> None:
        """100 ms doubling up to 30 s, with 20 % jitter."""
        assert Backoff() == Backoff(initial=0.1, maximum=30.0, multiplier=2.0, jitter=0.2)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"initial": -1}, "backoff delays must be >= 0"),
            ({"maximum": -1}, "backoff delays must be >= 0"),
            ({"multiplier": 0.5}, "backoff multiplier must be >= 1"),
            ({"jitter": 1.5}, "backoff jitter must be between 0 and 1"),
            ({"jitter": -0.1}, "backoff jitter must be between 0 and 1"),
        ],
    )
    def test_rejects_bad_values(self, options: dict[str, float], message: str) -> None:
        """Out-of-range settings are refused, naming the rule."""
        with pytest.raises(ValueError, match=message):
            Backoff(**options)

    def test_delay_draws_from_rng(self) -> None:
        """delay() is compute_backoff with the rng's next draw."""
        policy = Backoff(initial=1.0, maximum=10.0, jitter=0.5)

        assert policy.delay(3, random.Random(5)) == compute_backoff(
            policy, 3, random.Random(5).random()
        )

    def test_delay_without_rng(self) -> None:
        """Without an rng, delay() still stays within its bounds."""
        policy = Backoff(initial=1.0, maximum=10.0, jitter=0.5)

        assert 2.0 <= policy.delay(3) <= 4.0


class TestComputeBackoff:
    def test_exponential(self) -> None:
        """Without jitter the delays are initial * multiplier ** (attempt - 1)."""
        policy = Backoff(initial=0.5, maximum=100.0, multiplier=3.0, jitter=0.0)

        assert [compute_backoff(policy, n, 0.7) for n in range(1, 6)] == [
            0.5,
            1.5,
            4.5,
            13.5,
            40.5,
        ]

    def test_capped(self) -> None:
        """Delays stop growing at the maximum."""
        policy = Backoff(initial=1.0, maximum=5.0, multiplier=2.0, jitter=0.0)

        assert [compute_backoff(policy, n, 0.0) for n in range(1, 6)] == [1, 2, 4, 5, 5]

    def test_jitter_shortens(self) -> None:
        """A draw of d takes off the fraction jitter * d."""
        policy = Backoff(initial=10.0, maximum=10.0, jitter=0.5)

        assert compute_backoff(policy, 1, 0.0) == 10.0
        assert compute_backoff(policy, 1, 0.5) == 7.5
        assert compute_backoff(policy, 1, 0.999) == pytest.approx(5.005)

    def test_huge_attempt(self) -> None:
        """An attempt count far past overflow still gives the cap."""
        policy = Backoff(initial=1.0, maximum=60.0, multiplier=10.0, jitter=0.0)

        assert compute_backoff(policy, 10**9, 0.0) == 60.0

    @pytest.mark.parametrize("attempt", [0, -1])
    def test_attempt_starts_at_one(self, attempt: int) -> None:
        """Attempts are counted from 1."""
        with pytest.raises(ValueError, match=f"attempt must be >= 1, got {attempt}"):
            compute_backoff(Backoff(), attempt, 0.0)

    @given(policy=policies, attempt=attempts, draw=draws)
    def test_never_above_the_cap(self, policy: Backoff, attempt: int, draw: float) -> None:
        """No delay exceeds the maximum."""
        assert compute_backoff(policy, attempt, draw) <= policy.maximum

    @given(policy=policies, attempt=attempts, draw=draws)
    def test_jitter_bounds(self, policy: Backoff, attempt: int, draw: float) -> None:
        """Every delay lies between (1 - jitter) * base and base."""
        delay = compute_backoff(policy, attempt, draw)
        expected = base(policy, attempt)

        assert (1 - policy.jitter) * expected <= delay
        assert delay <= expected

    @given(policy=policies, attempt=attempts)
    def test_base_is_monotone(self, policy: Backoff, attempt: int) -> None:
        """Without jitter a later attempt never waits less."""
        assert base(policy, attempt) <= base(policy, attempt + 1)

    @given(policy=policies, attempt=attempts, draw=draws)
    def test_no_initial_delay_means_none(self, policy: Backoff, attempt: int, draw: float) -> None:
        """A zero initial delay stays zero however many attempts follow."""
        policy = Backoff(0.0, policy.maximum, policy.multiplier, policy.jitter)

        assert compute_backoff(policy, attempt, draw) == 0.0

    @given(policy=policies, attempt=attempts, draw=draws)
    def test_pure(self, policy: Backoff, attempt: int, draw: float) -> None:
        """The same inputs give the same delay."""
        assert compute_backoff(policy, attempt, draw) == compute_backoff(policy, attempt, draw)
