"""A Flask + SQLAlchemy app, served by werkzeug over real HTTP, submits ``ship_order`` to a
real ``trellis serve``: over HTTP with ``Client``, in its own PostgreSQL transaction with
``trellis_actors.postgres.enqueue``, and into a SQLite node's file with
``trellis_actors.sqlite.enqueue``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import Engine
from tests.e2e.frameworks.conftest import TASKS_APP, sqlalchemy_url
from tests.e2e.frameworks.flask_app import close_app, count_orders, create_app
from tests.e2e.frameworks.hosting import WsgiThread
from tests.e2e.kit import Server

from trellis_actors import TaskStatus
from trellis_actors.client import Client

WAIT = 30.0


def order(**changes: Any) -> dict[str, Any]:
    """An order's JSON body with a reference of its own."""
    return {"reference": f"ord-{uuid.uuid4().hex[:12]}", "item": "teapot", "quantity": 12} | (
        changes
    )


def tasks_for(trellis: Client, reference: str) -> list[str]:
    """The ids of the node's ``ship_order`` tasks for the order ``reference``."""
    page = trellis.list(type="ship_order", limit=200, include=["payload"])
    assert page.next_cursor is None, "more ship_order tasks than one page holds"
    return [t.id for t in page.items if t.payload["reference"] == reference]


@pytest.fixture(scope="module")
def trellis(pg_node: Server) -> Iterator[Client]:
    """The test's own client of the node, to check what the app did."""
    with Client(pg_node.url) as client:
        yield client


@pytest.fixture(scope="module")
def flask_app(pg_node: Server, shop_database: str) -> Iterator[Flask]:
    app = create_app(pg_node.url, database_url=sqlalchemy_url(shop_database))
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def shop(flask_app: Flask) -> Iterator[httpx.Client]:
    """An HTTP client of the Flask app, served for real."""
    with WsgiThread(flask_app) as served, httpx.Client(base_url=served.url) as http:
        yield http


@pytest.fixture
def engine(flask_app: Flask) -> Engine:
    engine: Engine = flask_app.extensions["engine"]
    return engine


@pytest.mark.postgres
class TestClientRoute:
    def test_submitted_task_completes(self, shop: httpx.Client, trellis: Client) -> None:
        """The view submits with the app's Client; the node runs the task to its result."""
        body = order(quantity=25)
        answer = shop.post("/orders-client", json=body)
        assert answer.status_code == 202, answer.text
        done = trellis.wait(answer.json()["task_id"], timeout=WAIT)
        assert (done.status, done.result) == (
            TaskStatus.COMPLETED,
            {"reference": body["reference"], "parcels": 3},
        )
        assert done.payload == body

    def test_concurrent_submissions_share_one_client(
        self, shop: httpx.Client, trellis: Client
    ) -> None:
        """Requests in werkzeug's threads submit at once through the app's one Client."""
        bodies = [order(quantity=n) for n in range(1, 13)]
        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            answers = list(pool.map(lambda b: shop.post("/orders-client", json=b), bodies))
        assert [a.status_code for a in answers] == [202] * len(bodies)
        done = [trellis.wait(a.json()["task_id"], timeout=WAIT) for a in answers]
        assert [(d.status, d.payload) for d in done] == [(TaskStatus.COMPLETED, b) for b in bodies]

    def test_bad_payload_is_refused_with_its_field(
        self, shop: httpx.Client, trellis: Client
    ) -> None:
        """The handle's contract refuses the payload in the view: 400 naming the field, and
        no task."""
        body = order(quantity=0)
        answer = shop.post("/orders-client", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "payload.quantity"
        assert tasks_for(trellis, body["reference"]) == []


@pytest.mark.postgres
class TestTransactionalRoute:
    def test_committed_order_has_its_task_run(
        self, shop: httpx.Client, trellis: Client, engine: Engine
    ) -> None:
        """The order row and its task commit together; the node runs the task."""
        body = order(quantity=7)
        answer = shop.post("/orders", json=body)
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["task_id"]
        assert count_orders(engine, body["reference"]) == 1
        done = trellis.wait(task_id, timeout=WAIT)
        assert (done.status, done.result) == (
            TaskStatus.COMPLETED,
            {"reference": body["reference"], "parcels": 1},
        )
        assert tasks_for(trellis, body["reference"]) == [task_id]

    def test_concurrent_orders_each_commit_their_own_task(
        self, shop: httpx.Client, trellis: Client, engine: Engine
    ) -> None:
        """Requests in werkzeug's threads, each in its own transaction: every order gets
        exactly its own task, and every task runs."""
        bodies = [order(quantity=n) for n in range(1, 13)]
        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            answers = list(pool.map(lambda b: shop.post("/orders", json=b), bodies))
        assert [a.status_code for a in answers] == [202] * len(bodies)
        for body, answer in zip(bodies, answers, strict=True):
            done = trellis.wait(answer.json()["task_id"], timeout=WAIT)
            assert (done.status, done.payload) == (TaskStatus.COMPLETED, body)
            assert count_orders(engine, body["reference"]) == 1

    def test_rolled_back_order_leaves_no_row_and_no_task(
        self, shop: httpx.Client, trellis: Client, engine: Engine
    ) -> None:
        """A view that fails after its enqueue rolls back the row and the task with it."""
        body = order()
        answer = shop.post("/orders", params={"fail": "1"}, json=body)
        assert answer.status_code == 500, answer.text
        assert "failed after enqueue" in answer.json()["message"]
        assert count_orders(engine, body["reference"]) == 0
        assert tasks_for(trellis, body["reference"]) == []

    def test_task_in_a_rolled_back_savepoint_is_gone(
        self, shop: httpx.Client, trellis: Client, engine: Engine
    ) -> None:
        """A task enqueued in a SAVEPOINT that rolls back goes with it; the order and the
        task enqueued before it commit."""
        body = order(quantity=4)
        answer = shop.post("/orders", params={"gift": "fail"}, json=body)
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["task_id"]
        assert trellis.wait(task_id, timeout=WAIT).status == TaskStatus.COMPLETED
        assert count_orders(engine, body["reference"]) == 1
        assert tasks_for(trellis, body["reference"]) == [task_id]
        assert tasks_for(trellis, f"{body['reference']}-gift") == []

    def test_bad_payload_is_refused_and_nothing_stored(
        self, shop: httpx.Client, trellis: Client, engine: Engine
    ) -> None:
        """enqueue refuses the payload after the row's insert: 400 naming the field, and the
        transaction rolls the row back."""
        body = order(quantity=-1)
        answer = shop.post("/orders", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "payload.quantity"
        assert count_orders(engine, body["reference"]) == 0
        assert tasks_for(trellis, body["reference"]) == []


class TestSqliteRoute:
    def test_task_enqueued_beside_a_sqlite_node_runs(self, tmp_path: Path) -> None:
        """The view writes the task into the node's file from another process; the node,
        watching the file, runs it."""
        path = tmp_path / "tasks.db"
        node = Server("--app", TASKS_APP, "--store", f"sqlite:///{path}")
        try:
            app = create_app(node.url, sqlite_path=str(path))
            try:
                with (
                    WsgiThread(app) as served,
                    httpx.Client(base_url=served.url) as http,
                    Client(node.url) as trellis,
                ):
                    body = order(quantity=30)
                    answer = http.post("/orders-sqlite", json=body)
                    assert answer.status_code == 202, answer.text
                    done = trellis.wait(answer.json()["task_id"], timeout=WAIT)
                    assert (done.status, done.result) == (
                        TaskStatus.COMPLETED,
                        {"reference": body["reference"], "parcels": 3},
                    )
                    bad = http.post("/orders-sqlite", json=order(item=""))
                    assert bad.status_code == 400, bad.text
                    assert bad.json()["field"] == "payload.item"
                    assert len(trellis.list(type="ship_order").items) == 1
            finally:
                close_app(app)
        finally:
            assert node.stop() == 0, "".join(node.stderr)
