"""Task types with contracts, at module level so that pool processes can import them:
a pydantic model, a TypedDict, a dataclass and a plain type, on each executor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic
from typing_extensions import TypedDict

from trellis_actors import App, TaskContext

app = App()


class Email(pydantic.BaseModel):
    to: str = pydantic.Field(pattern=r"^[^@\s]+@[^@\s]+$")
    subject: str
    retries: int = 0


class Receipt(pydantic.BaseModel):
    to: str
    words: int


class Resize(TypedDict):
    width: int
    height: int


@dataclass
class Point:
    x: float
    y: float


@app.task
async def send_email(ctx: TaskContext, email: Email) -> Receipt:
    """An async handler taking and giving pydantic models."""
    assert isinstance(email, Email)  # parsed, not a dict
    return Receipt(to=email.to, words=len(email.subject.split()))


@app.task
def send_email_in_thread(ctx: TaskContext, email: Email) -> Receipt:
    assert isinstance(email, Email)
    return Receipt(to=email.to, words=len(email.subject.split()))


@app.task(executor="process")
def send_email_in_process(ctx: Any, email: Email) -> Receipt:
    assert isinstance(email, Email)
    return Receipt(to=email.to, words=len(email.subject.split()))


@app.task
async def area(ctx: TaskContext, size: Resize) -> int:
    return size["width"] * size["height"]


@app.task
async def norm(ctx: TaskContext, point: Point) -> float:
    assert isinstance(point, Point)
    return (point.x**2 + point.y**2) ** 0.5


@app.task
async def double(ctx: TaskContext, n: int) -> int:
    return n * 2


@app.task
async def liar(ctx: TaskContext, n: int) -> int:
    """Says it returns an int; does not."""
    return "not a number"  # type: ignore[return-value]  # the broken promise under test


@app.task
async def untyped(ctx, payload):  # type: ignore[no-untyped-def]  # no annotations: any JSON
    return payload
