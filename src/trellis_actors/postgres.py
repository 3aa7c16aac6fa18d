"""Enqueue inside your own PostgreSQL transaction: the task exists if and only if it commits.

::

    from trellis_actors import postgres

    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("INSERT INTO orders ...")
        task_id = postgres.enqueue(conn, send_receipt, Receipt(order_id=42))

    async with await psycopg.AsyncConnection.connect(url) as aconn:
        async with aconn.transaction():
            task_id = await postgres.enqueue_async(aconn, send_receipt, Receipt(order_id=42))

The task is written on the caller's connection, in the caller's transaction, with the rows
a node's store would write (the same statements, built by the same code), and nothing is
committed or rolled back here: the caller's commit makes the task, the caller's rollback
unmakes it. On a connection in autocommit mode, outside a transaction block, the task is
written in a transaction of its own. A ``NOTIFY`` on the channel the nodes listen on goes
with it, so nodes wake as it commits rather than at their next poll.

``task`` is a handle from ``@app.task`` (which brings its type's queue, attempts and
payload contract) or a type name, which gets the defaults: queue ``"default"``, 3 attempts,
no contract. Give ``queue=`` with a name whose type runs on another queue. Options are
:class:`~trellis_actors.rules.SubmitOptions`, checked as ``Runtime.submit`` checks them;
an idempotency key already stored returns the stored task's id.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    contextmanager,
    nullcontext,
)
from typing import Any, overload

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from typing_extensions import Unpack

from . import _producing
from .contracts import P, R, TaskHandle
from .lifecycle import NewTask
from .rules import SubmitOptions
from .stores._sqllogic import Steps, wakes_workers
from .stores.base import arrive
from .stores.postgres import _PostgresLogic

__all__ = ["enqueue", "enqueue_async", "enqueue_many", "enqueue_many_async"]

#: The NOTIFY payload of a task enqueued here: no store's own, so every node wakes.
ORIGIN = "enqueue"
_logic = _PostgresLogic(ORIGIN)
#: What a plan leaves to write once its steps are answered: statements and parameters.
_Writes = list[tuple[str, dict[str, Any]]]


@overload
def enqueue(
    conn: psycopg.Connection[Any],
    task: TaskHandle[P, R],
    payload: P,
    /,
    **options: Unpack[SubmitOptions],
) -> str: ...
@overload
def enqueue(
    conn: psycopg.Connection[Any],
    task: str,
    payload: Any = None,
    /,
    **options: Unpack[SubmitOptions],
) -> str: ...
def enqueue(
    conn: psycopg.Connection[Any],
    task: TaskHandle[Any, Any] | str,
    payload: Any = None,
    /,
    **options: Unpack[SubmitOptions],
) -> str:
    """Write one task in ``conn``'s transaction; returns its id (see the module docstring).

    Raises ValidationError (naming the field) or UnknownTaskType before anything is sent;
    ConfigurationError on a database without Trellis's tables (then roll back: PostgreSQL
    has ended the transaction with the error).
    """
    tasks, now = _producing.one(task, payload, options)
    return _run(conn, tasks, now)[0]


def enqueue_many(conn: psycopg.Connection[Any], items: Iterable[Mapping[str, Any]]) -> list[str]:
    """Write many tasks in ``conn``'s transaction (``{"type", "payload", ...}`` each, a
    handle or a name as ``type``); returns their ids, in order. All are checked first."""
    tasks, now = _producing.many(items)
    return _run(conn, tasks, now)


@overload
async def enqueue_async(
    conn: psycopg.AsyncConnection[Any],
    task: TaskHandle[P, R],
    payload: P,
    /,
    **options: Unpack[SubmitOptions],
) -> str: ...
@overload
async def enqueue_async(
    conn: psycopg.AsyncConnection[Any],
    task: str,
    payload: Any = None,
    /,
    **options: Unpack[SubmitOptions],
) -> str: ...
async def enqueue_async(
    conn: psycopg.AsyncConnection[Any],
    task: TaskHandle[Any, Any] | str,
    payload: Any = None,
    /,
    **options: Unpack[SubmitOptions],
) -> str:
    """:func:`enqueue` on an async connection."""
    tasks, now = _producing.one(task, payload, options)
    return (await _run_async(conn, tasks, now))[0]


async def enqueue_many_async(
    conn: psycopg.AsyncConnection[Any], items: Iterable[Mapping[str, Any]]
) -> list[str]:
    """:func:`enqueue_many` on an async connection."""
    tasks, now = _producing.many(items)
    return await _run_async(conn, tasks, now)


def _plan(tasks: list[NewTask], now: float) -> Steps[tuple[list[str], _Writes]]:
    """The store's enqueue as steps any driver runs: the keyed inserts answered one by
    one, then the rest written without waiting for answers (one round trip)."""
    submitted, moves, plain = yield from _logic.arrivals(tasks, now)
    q = _logic.q
    writes = [(q["insert_task"], row) for row in plain]
    writes += [(q["insert_event"], _logic.event_row(move.event)) for move in moves]
    if wakes_workers(moves):
        writes.append((q["notify"], {"origin": ORIGIN}))
    return [s.task.id for s in submitted], writes


def _alone(tasks: list[NewTask]) -> bool:
    """Whether ``tasks`` is one task without an idempotency key: nothing to ask the
    database first, so its rows and the wake-up go as one statement (:func:`_statement`)."""
    return len(tasks) == 1 and tasks[0].idempotency_key is None


def _statement(task: NewTask, now: float) -> tuple[str, str, dict[str, Any]]:
    """``task``'s id, and the one statement (with its parameters) that writes its row, its
    events and the wake-up: the rows and the decision are the store's (``arrive``)."""
    moves = arrive(task, now)
    params = _logic.row(moves[-1].task)
    for n, move in enumerate(moves):
        for name, value in _logic.event_row(move.event).items():
            params[f"e{n}_{name}"] = value
    params["origin"] = ORIGIN
    params["wake"] = wakes_workers(moves)
    return moves[-1].task.id, _enqueue_task(len(moves)), params


@functools.cache
def _enqueue_task(events: int) -> str:
    """The ``enqueue_task`` statement for ``events`` events (one or two, so two texts)."""
    group = (
        "(%(e{n}_task_id)s::uuid, %(e{n}_from_status)s::text, %(e{n}_to_status)s,"
        " %(e{n}_at)s, %(e{n}_attempt)s, %(e{n}_detail)s::text)"
    )
    values = ", ".join(group.replace("{n}", str(n)) for n in range(events))
    return _logic.q["enqueue_task"].replace("{events}", values)


@contextmanager
def _schema_in_place() -> Iterator[None]:
    """Around the statements: a missing table means a database no node (and no ``trellis
    migrate``) has set up, which ConfigurationError says."""
    try:
        yield
    except psycopg.errors.UndefinedTable as exc:
        raise _producing.no_schema(exc) from exc


def _own_transaction(conn: psycopg.Connection[Any]) -> AbstractContextManager[Any]:
    """A transaction of our own only in autocommit mode outside a transaction block."""
    idle = conn.info.transaction_status == TransactionStatus.IDLE
    return conn.transaction() if conn.autocommit and idle else nullcontext()


def _run(conn: psycopg.Connection[Any], tasks: list[NewTask], now: float) -> list[str]:
    if not tasks:
        return []
    if _alone(tasks):
        with _producing.traced(tasks), _schema_in_place():
            task_id, query, params = _statement(tasks[0], now)
            conn.execute(query, params)
        return [task_id]
    with (
        _producing.traced(tasks),
        _schema_in_place(),
        conn.cursor(row_factory=dict_row) as cur,
        conn.pipeline() as pipeline,
        _own_transaction(conn),
    ):
        plan, answer = _plan(tasks, now), None
        try:
            while True:
                step = plan.send(answer)
                cur.execute(step.query, step.params)
                pipeline.sync()
                answer = cur.fetchall() if step.rows else cur.rowcount
        except StopIteration as done:
            ids: list[str] = done.value[0]
            writes: _Writes = done.value[1]
        for query, params in writes:
            cur.execute(query, params)
    return ids


def _own_transaction_async(
    conn: psycopg.AsyncConnection[Any],
) -> AbstractAsyncContextManager[Any]:
    idle = conn.info.transaction_status == TransactionStatus.IDLE
    return conn.transaction() if conn.autocommit and idle else nullcontext()


async def _run_async(
    conn: psycopg.AsyncConnection[Any], tasks: list[NewTask], now: float
) -> list[str]:
    if not tasks:
        return []
    if _alone(tasks):
        with _producing.traced(tasks), _schema_in_place():
            task_id, query, params = _statement(tasks[0], now)
            await conn.execute(query, params)
        return [task_id]
    with _producing.traced(tasks), _schema_in_place():
        async with (
            conn.cursor(row_factory=dict_row) as cur,
            conn.pipeline() as pipeline,
            _own_transaction_async(conn),
        ):
            plan, answer = _plan(tasks, now), None
            try:
                while True:
                    step = plan.send(answer)
                    await cur.execute(step.query, step.params)
                    await pipeline.sync()
                    answer = await cur.fetchall() if step.rows else cur.rowcount
            except StopIteration as done:
                ids: list[str] = done.value[0]
                writes: _Writes = done.value[1]
            for query, params in writes:
                await cur.execute(query, params)
    return ids
