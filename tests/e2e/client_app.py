"""Task types for the client's black-box tests, typed by pydantic models.

Served with ``trellis serve --app tests.e2e.client_app:app``; the tests import the same
handles to submit with."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from trellis_actors import App, TaskContext
from trellis_actors.builtin_tasks import echo, sleep

app = App(builtins=False)
app.task(echo, name="echo")
app.task(sleep, name="sleep")


class Email(BaseModel):
    to: str = Field(pattern="@")
    subject: str


class Sent(BaseModel):
    to: str
    words: int


@app.task(max_attempts=1)
async def send_email(ctx: TaskContext, email: Email) -> Sent:
    """Count the subject's words: a task whose payload and result are models."""
    return Sent(to=email.to, words=len(email.subject.split()))


@app.task(max_attempts=1)
async def fail(ctx: TaskContext, payload: Any) -> None:
    """Fail at once: a task that ends dead."""
    raise RuntimeError("failed on purpose")
