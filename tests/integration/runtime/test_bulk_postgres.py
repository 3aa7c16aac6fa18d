"""A bulk cancel on one of two PostgreSQL nodes stops the handlers running on both: at
once on the node that asked, at the next lease renewal on the other.

The real clock (PostgreSQL work happens in threads): waits are bounded, never slept out.
"""

from __future__ import annotations

import pytest
import trio
from tests.integration.runtime.test_bulk import Handlers

from trellis_actors import TaskStatus, open_runtime

pytestmark = pytest.mark.postgres

S = TaskStatus
LEASE = 1.5  # renewed every half second
NODE = {"workers": 2, "lease": LEASE, "poll_interval": 0.2, "grace_period": 1.0}


class TestCancelManyOnTwoNodes:
    async def test_the_other_nodes_handlers_stop_at_lease_renewal(self, pg_url: str) -> None:
        handlers = Handlers()
        async with (
            open_runtime(handlers.app(), store=pg_url, node="a", **NODE) as a,
            open_runtime(handlers.app(), store=pg_url, node="b", **NODE) as b,
        ):
            tasks = [await a.submit("block", i) for i in range(4)]
            with trio.fail_after(10):
                await handlers.until(started=4)  # two workers a node: both nodes run two
            # Held by both (running, or claimed with the start report still on its way).
            held = [await a.get(task.id) for task in tasks]
            assert {task.lease_owner for task in held} == {"a", "b"}
            assert await b.cancel_many(type="block", dry_run=True) == 4
            assert handlers.stopped == 0
            assert await a.cancel_many(type="block") == 4
            # a stops its own at once; b finds out at its next renewal, LEASE / 3 apart.
            with trio.fail_after(LEASE * 2):
                await handlers.until(stopped=4)
            for task in tasks:
                assert (await b.get(task.id)).status is S.CANCELLED
