"""Property: whatever a caller submits, the rules either refuse it with a ValidationError,
or every store keeps it and gives it back as given (as JSON gives it back)."""

from __future__ import annotations

import json
import math
from typing import Any

import trio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from trellis_actors import App, ValidationError, rules
from trellis_actors.stores import NewTask, open_store

NOW = 1_700_000_000.0
APP = App()

#: Text of every kind: NUL, lone surrogates and escapes included.
TEXT = st.text(st.characters(exclude_categories=()), max_size=8) | st.sampled_from(
    ["a\x00b", "\ud800", "\\u0000", "\u2028", "😀", "q" * 129]
)
NUMBERS = (
    st.integers()
    | st.floats()
    | st.sampled_from([2**31 - 1, 2**31, -(2**31), 2**63, 10**3999, 10**4000, 1e300])
)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = TEXT | st.sampled_from([1, None, ("t",)])
    return (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(keys, inner, max_size=4)
        | st.frozensets(st.integers(), max_size=2)
    )


PAYLOADS = st.recursive(SCALARS, _containers, max_leaves=12) | st.integers(60, 70).map(_nested)
TIMES = (
    st.none()
    | st.floats()
    | st.integers(-(2**64), 2**64)
    | st.datetimes()
    | st.sampled_from(
        [
            "2030-01-01T00:00:00Z",
            "0001-01-01T00:00:00+14:00",
            "0001-01-02T00:00:00Z",
            "9999-12-30T00:00:00Z",
            "9999-12-31T23:59:59-14:00",
            "soon",
        ]
    )
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "queue": st.none() | TEXT | st.integers(),
        "priority": st.integers(-(2**65), 2**65) | st.booleans() | st.floats(),
        "delay": st.none() | st.floats() | st.integers(-(2**64), 2**64),
        "run_at": TIMES,
        "max_attempts": st.none() | st.integers(-5, 2**40),
        "timeout": st.none() | st.floats() | st.integers(-5, 2**70),
        "idempotency_key": st.none() | TEXT | st.text(min_size=250, max_size=260),
    },
)
SUBMISSIONS = st.lists(st.tuples(PAYLOADS, FIELDS), min_size=1, max_size=4)


def same_json(given: Any, read: Any) -> bool:
    """``read`` is ``given`` as JSON gives it back: arrays for tuples, and numbers equal
    (PostgreSQL's jsonb gives an integral float back as an integer)."""
    if isinstance(given, bool) or given is None or isinstance(given, str):
        return read is given or (isinstance(read, str) and read == given)
    if isinstance(given, float):
        return isinstance(read, int | float) and not isinstance(read, bool) and float(read) == given
    if isinstance(given, int):
        return type(read) is int and read == given
    if isinstance(given, list | tuple):
        return (
            isinstance(read, list | tuple)
            and len(read) == len(given)
            and all(same_json(g, r) for g, r in zip(given, read, strict=True))
        )
    assert isinstance(given, dict)
    return (
        isinstance(read, dict)
        and read.keys() == given.keys()
        and all(same_json(value, read[key]) for key, value in given.items())
    )


async def store_and_read(store_url: str, tasks: list[NewTask]) -> None:
    store = open_store(store_url)
    await store.open()
    try:
        submitted, _ = await store.enqueue(tasks, NOW)
        for new, (task, created) in zip(tasks, submitted, strict=True):
            if not created:
                continue  # an idempotency key an earlier example used
            read = await store.get(task.id)
            assert read is not None
            assert (read.type, read.queue, read.priority) == (new.type, new.queue, new.priority)
            assert (read.max_attempts, read.timeout) == (new.max_attempts, new.timeout)
            assert read.idempotency_key == new.idempotency_key
            assert read.run_at == (NOW if new.run_at is None else new.run_at)
            assert same_json(new.payload, read.payload), (new.payload, read.payload)
            json.dumps(read.to_dict(), allow_nan=False)  # and it shows
    finally:
        await store.close()


class TestRoundTrip:
    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(submissions=SUBMISSIONS)
    def test_refused_or_kept_as_given(
        self, store_url: str, submissions: list[tuple[Any, dict[str, Any]]]
    ) -> None:
        """Each submission raises ValidationError (and nothing else), or is stored and read
        back equal on every store."""
        accepted = []
        for payload, fields in submissions:
            try:
                accepted.append(rules.new_task(APP, "echo", payload, NOW, **fields))
            except ValidationError as exc:
                assert exc.field in {"payload", *fields}, exc
                event(f"refused: {exc.field}")
                continue
            event("accepted")
            assert rules.EARLIEST <= (accepted[-1].run_at or NOW) <= rules.LATEST
            assert accepted[-1].timeout is None or math.isfinite(accepted[-1].timeout)
        if accepted:
            trio.run(store_and_read, store_url, accepted)
