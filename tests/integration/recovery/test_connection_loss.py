"""A runtime on PostgreSQL survives its database connections being killed under it.

``pg_terminate_backend`` ends every session the runtime holds — the pool's, the listening
one (LISTEN/NOTIFY wake-ups) and the leader's (advisory locks) — twice, while tasks run and
while more are submitted. The store reconnects, nothing is lost and every task completes.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import pytest
import trio
from tests.integration.conftest import PG_URL
from tests.integration.recovery.kit import all_finished, submit, until
from tests.integration.recovery.recovery_app import app

from trellis_actors import StoreUnavailable, TaskStatus, open_runtime

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Session:
    pid: int
    query: str
    leads: bool  # holds an advisory lock: the leader's connection

    @property
    def listens(self) -> bool:
        return self.query.startswith("LISTEN")


# The runtime under test names its sessions through libpq's ``options`` (a value with a
# space and an "=", which the store URL must pass on percent-encoded).
APP_NAME = "trellis_under_test"
OPTIONS = f"?options=-c%20application_name%3D{APP_NAME}"

_SESSIONS = """
SELECT a.pid, coalesce(a.query, '') AS query,
       EXISTS (SELECT 1 FROM pg_locks l
               WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted) AS leads
FROM pg_stat_activity a
WHERE a.datname = %s AND a.application_name = %s AND a.pid <> pg_backend_pid()
"""


def sessions(database: str) -> list[Session]:
    """The runtime's sessions: its pool's, its listener's and its leader's."""
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(_SESSIONS, (database, APP_NAME)).fetchall()
        return [Session(*row) for row in rows]


def terminate(pids: list[int]) -> None:
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def naps(count: int) -> list[dict[str, object]]:
    return [{"type": "nap", "payload": {"seconds": 0.02 + 0.03 * (i % 2)}} for i in range(count)]


async def test_every_connection_killed_twice_nothing_lost(pg_url: str) -> None:
    """Pool, listener and leader connections are killed mid-run; every task completes."""
    database = pg_url.rsplit("/", 1)[1]

    async def kill_all_sessions() -> list[Session]:
        """Once the runtime holds a pool, a listening and a leading session: kill them all."""

        async def all_kinds() -> list[Session]:
            found = await trio.to_thread.run_sync(sessions, database)
            kinds = {s.listens for s in found} | {s.leads for s in found}
            return found if kinds == {True, False} and len(found) >= 3 else []

        found = await until("a pool, listening and leading session", all_kinds, timeout=10)
        await trio.to_thread.run_sync(terminate, [s.pid for s in found])
        return found

    # A long poll interval: work another process submits is only found through NOTIFY,
    # so the listening connection must be back for the last batch to run in time.
    async with open_runtime(
        app, store=pg_url + OPTIONS, workers=4, lease=2, janitor_interval=0.2, poll_interval=30
    ) as rt:

        async def completed(count: int) -> bool:
            try:
                return (await rt.counts()).total(TaskStatus.COMPLETED) >= count
            except StoreUnavailable:
                return False  # the sessions were just killed: an outage until the probe

        async def submit_many(items: list[dict[str, object]]) -> list[str]:
            """As a client does on a 503: wait the hinted time and send again."""
            while True:
                try:
                    return [task.id for task in await rt.submit_many(items)]
                except StoreUnavailable as exc:
                    await trio.sleep(exc.retry_after or 0.1)

        first = await submit_many(naps(150))
        await until("some tasks to complete", lambda: completed(20), timeout=20)
        killed = await kill_all_sessions()
        # The pool's dead connections are found and replaced on first use.
        second = await submit_many(naps(100))
        await until("more tasks to complete", lambda: completed(170), timeout=20)
        killed += await kill_all_sessions()  # the listener and the leader came back
        await until("the first two batches", lambda: completed(250), timeout=30, every=0.1)

        async def listening() -> bool:
            found = await trio.to_thread.run_sync(sessions, database)
            return any(s.listens for s in found)

        await until("the listener to reconnect", listening, timeout=10)
        third = await submit(pg_url, naps(50))
        submitted = first + second + third
        await until(
            "the batch from another process (NOTIFY)",
            lambda: all_finished(pg_url, len(submitted)),
            timeout=15,
            every=0.1,
        )
        await until("the store to answer", rt.ping, timeout=10)
        tasks = [await rt.get(task_id) for task_id in submitted]
    assert sum(s.listens for s in killed) == 2 and sum(s.leads for s in killed) == 2, killed
    assert len(killed) >= 6  # and at least one of the pool's each time
    unfinished = [t.id for t in tasks if t.status is not TaskStatus.COMPLETED]
    assert not unfinished, f"{len(unfinished)} tasks did not complete"
