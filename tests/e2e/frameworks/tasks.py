"""The task types the framework apps submit and a ``trellis serve`` node runs.

Served with ``trellis serve --app tests.e2e.frameworks.tasks:app``; the apps import
``ship_order`` and its models to submit with, as a real project would share them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from trellis_actors import App, TaskContext

app = App(builtins=False)

#: Items that fit in one parcel.
PARCEL_SIZE = 10


class OrderPayload(BaseModel):
    """An order to ship: ``reference`` is the order's own key, unique per order."""

    reference: str = Field(min_length=1)
    item: str = Field(min_length=1)
    quantity: int = Field(gt=0)


class Shipped(BaseModel):
    reference: str
    parcels: int


@app.task(max_attempts=1)
async def ship_order(ctx: TaskContext, order: OrderPayload) -> Shipped:
    """Pack an order into parcels: a task whose payload and result are models."""
    return Shipped(reference=order.reference, parcels=-(-order.quantity // PARCEL_SIZE))
