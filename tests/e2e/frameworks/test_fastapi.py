"""A FastAPI app, served by Hypercorn's asyncio worker in a child process, submits
``ship_order`` to a real ``trellis serve``: with ``AsyncClient`` under asyncio (and waits for
the typed result), and in its own psycopg ``AsyncConnection`` transaction with
``trellis_actors.postgres.enqueue_async``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from tests.e2e.frameworks.hosting import AsgiProcess
from tests.e2e.kit import Server

from trellis_actors import TaskStatus
from trellis_actors.client import Client

pytestmark = pytest.mark.postgres

WAIT = 30.0


def order(**changes: Any) -> dict[str, Any]:
    """An order's JSON body with a reference of its own."""
    return {"reference": f"ord-{uuid.uuid4().hex[:12]}", "item": "kettle", "quantity": 12} | (
        changes
    )


def tasks_for(trellis: Client, reference: str) -> list[str]:
    """The ids of the node's ``ship_order`` tasks for the order ``reference``."""
    page = trellis.list(type="ship_order", limit=200, include=["payload"])
    assert page.next_cursor is None, "more ship_order tasks than one page holds"
    return [t.id for t in page.items if t.payload["reference"] == reference]


def count_orders(url: str, reference: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM orders WHERE reference = %s", (reference,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def trellis(pg_node: Server) -> Iterator[Client]:
    """The test's own client of the node, to check what the app did."""
    with Client(pg_node.url) as client:
        yield client


@pytest.fixture(scope="module")
def shop(pg_node: Server, shop_database: str) -> Iterator[httpx.Client]:
    """An HTTP client of the FastAPI app, served by Hypercorn (asyncio) in a child."""
    served = AsgiProcess(
        "tests.e2e.frameworks.fastapi_app:app",
        SHOP_TRELLIS_URL=pg_node.url,
        SHOP_DATABASE_URL=shop_database,
    )
    try:
        with httpx.Client(base_url=served.url, timeout=WAIT + 10) as http:
            yield http
    finally:
        assert served.stop() == 0, "".join(served.log)
    assert "Traceback" not in "".join(served.log), "".join(served.log)


class TestAsyncClientRoute:
    def test_submit_and_wait_answers_the_typed_result(self, shop: httpx.Client) -> None:
        """Under asyncio, the route submits with the lifespan's AsyncClient, waits, and gets
        the result parsed into the handler's return model."""
        body = order(quantity=21)
        answer = shop.post("/orders", params={"wait": "1"}, json=body)
        assert answer.status_code == 202, answer.text
        assert answer.json() | {"task_id": None} == {
            "task_id": None,
            "async_library": "asyncio",
            "status": "completed",
            "result_type": "Shipped",
            "result": {"reference": body["reference"], "parcels": 3},
        }

    def test_concurrent_waits_share_one_client(self, shop: httpx.Client) -> None:
        """Many requests wait at once on the lifespan's one AsyncClient; each gets its own
        task's result."""
        bodies = [order(quantity=n) for n in range(1, 13)]
        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            answers = list(
                pool.map(lambda b: shop.post("/orders", params={"wait": "1"}, json=b), bodies)
            )
        assert [a.status_code for a in answers] == [202] * len(bodies)
        assert [a.json()["result"] for a in answers] == [
            {"reference": b["reference"], "parcels": 1 if b["quantity"] <= 10 else 2}
            for b in bodies
        ]
        assert len({a.json()["task_id"] for a in answers}) == len(bodies)

    def test_submit_without_wait_answers_the_task_id(
        self, shop: httpx.Client, trellis: Client
    ) -> None:
        """Without ``wait`` the route answers at once; the task runs all the same."""
        body = order(quantity=3)
        answer = shop.post("/orders", json=body)
        assert answer.status_code == 202, answer.text
        done = trellis.wait(answer.json()["task_id"], timeout=WAIT)
        assert (done.status, done.result) == (
            TaskStatus.COMPLETED,
            {"reference": body["reference"], "parcels": 1},
        )

    def test_bad_payload_is_refused_with_its_field(
        self, shop: httpx.Client, trellis: Client
    ) -> None:
        """The handle's contract refuses the payload in the route: 400 naming the field."""
        body = order()
        del body["item"]
        answer = shop.post("/orders", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "payload.item"
        assert tasks_for(trellis, body["reference"]) == []


class TestEnqueueAsyncRoute:
    def test_committed_order_has_its_task_run(
        self, shop: httpx.Client, trellis: Client, shop_database: str
    ) -> None:
        """The order row and its task commit together; the node runs the task."""
        body = order(quantity=10)
        answer = shop.post("/orders-tx", json=body)
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["task_id"]
        assert count_orders(shop_database, body["reference"]) == 1
        done = trellis.wait(task_id, timeout=WAIT)
        assert (done.status, done.result) == (
            TaskStatus.COMPLETED,
            {"reference": body["reference"], "parcels": 1},
        )
        assert tasks_for(trellis, body["reference"]) == [task_id]

    def test_rolled_back_order_leaves_no_row_and_no_task(
        self, shop: httpx.Client, trellis: Client, shop_database: str
    ) -> None:
        """A route that fails after its enqueue rolls back the row and the task with it."""
        body = order()
        answer = shop.post("/orders-tx", params={"fail": "true"}, json=body)
        assert answer.status_code == 500, answer.text
        assert "failed after enqueue" in answer.json()["message"]
        assert count_orders(shop_database, body["reference"]) == 0
        assert tasks_for(trellis, body["reference"]) == []

    def test_bad_payload_is_refused_and_nothing_stored(
        self, shop: httpx.Client, trellis: Client, shop_database: str
    ) -> None:
        """enqueue_async refuses the payload after the row's insert: 400 naming the field,
        and the transaction rolls the row back."""
        body = order(quantity=0)
        answer = shop.post("/orders-tx", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "payload.quantity"
        assert count_orders(shop_database, body["reference"]) == 0
        assert tasks_for(trellis, body["reference"]) == []
