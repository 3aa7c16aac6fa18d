"""``trellis serve`` and ``trellis worker`` tune the garbage collector for a long run."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from trellis_actors import cli


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_a_node_freezes_its_start_up_heap_and_collects_young_objects_less_often() -> None:
    gc.unfreeze()
    kept = [object() for _ in range(10)]  # alive at start-up: frozen with the rest
    cli._tune_gc()
    assert gc.get_threshold() == (10_000, 10, 10)
    assert gc.get_freeze_count() > len(kept)
    assert not any(o is kept for o in gc.get_objects())  # no longer tracked as collectable
