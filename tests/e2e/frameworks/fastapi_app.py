"""A FastAPI shop under asyncio whose orders are shipped by a Trellis node.

Configured by the environment, as a served ASGI app is: ``SHOP_TRELLIS_URL`` (the node)
and ``SHOP_DATABASE_URL`` (PostgreSQL, for the transactional route). Serve it with
``python -m hypercorn --worker-class asyncio tests.e2e.frameworks.fastapi_app:app``.
Routes:

* ``POST /orders``: submit ``ship_order`` with an ``AsyncClient`` made in the lifespan;
  ``?wait=1`` waits for the task and answers its typed result;
* ``POST /orders-tx``: insert the order row and enqueue ``ship_order`` in one psycopg
  ``AsyncConnection`` transaction (``trellis_actors.postgres.enqueue_async``); ``?fail=1``
  raises after the enqueue, so the transaction rolls back.

A payload that breaks ``ship_order``'s contract answers ``400 {"field", "message"}``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import psycopg
import sniffio
from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse
from tests.e2e.frameworks.tasks import Shipped, ship_order

from trellis_actors import ValidationError, postgres
from trellis_actors.client import AsyncClient

CREATE_ORDERS = (
    "CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, reference text UNIQUE NOT NULL,"
    " item text NOT NULL, quantity integer NOT NULL)"
)
#: How long ``?wait=1`` waits for the task, in seconds.
WAIT = 30.0


class FailedOnPurpose(Exception):
    """Raised by a route after its enqueue, to roll its transaction back."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.database_url = os.environ.get("SHOP_DATABASE_URL")
    if app.state.database_url:
        async with await psycopg.AsyncConnection.connect(
            app.state.database_url, autocommit=True
        ) as conn:
            await conn.execute(CREATE_ORDERS)
    async with AsyncClient(os.environ["SHOP_TRELLIS_URL"]) as client:
        app.state.trellis = client
        yield


app = FastAPI(lifespan=lifespan)


@app.exception_handler(ValidationError)
async def invalid(request: Request, exc: ValidationError) -> JSONResponse:
    return JSONResponse({"field": exc.field, "message": str(exc)}, status_code=400)


@app.exception_handler(FailedOnPurpose)
async def failed(request: Request, exc: FailedOnPurpose) -> JSONResponse:
    return JSONResponse({"message": str(exc)}, status_code=500)


@app.post("/orders", status_code=202)
async def order_by_client(
    request: Request, body: Annotated[Any, Body()], wait: bool = False
) -> dict[str, Any]:
    client: AsyncClient = request.app.state.trellis
    task = await client.submit(ship_order, body)  # Trellis checks the raw JSON
    if not wait:
        return {"task_id": task.id}
    done = await client.wait(task, timeout=WAIT)
    result = done.result
    return {
        "task_id": task.id,
        "async_library": sniffio.current_async_library(),
        "status": str(done.status),
        "result_type": type(result).__name__,
        "result": result.model_dump() if isinstance(result, Shipped) else result,
    }


@app.post("/orders-tx", status_code=202)
async def order_in_transaction(
    request: Request, body: Annotated[Any, Body()], fail: bool = False
) -> dict[str, Any]:
    async with (
        await psycopg.AsyncConnection.connect(request.app.state.database_url) as conn,
        conn.transaction(),
    ):
        await conn.execute(
            "INSERT INTO orders (reference, item, quantity) VALUES (%s, %s, %s)",
            (body.get("reference"), body.get("item"), body.get("quantity")),
        )
        task_id = await postgres.enqueue_async(conn, ship_order, body)
        if fail:
            raise FailedOnPurpose(f"order {body['reference']} failed after enqueue")
    return {"task_id": task_id}
