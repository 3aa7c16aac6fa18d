"""A typed application: what the example files submit."""

from __future__ import annotations

import pydantic

import trellis_actors as ta

app = ta.App()


class Email(pydantic.BaseModel):
    to: str
    subject: str


class Receipt(pydantic.BaseModel):
    words: int


@app.task(queue="mail", max_attempts=5)
async def send_email(ctx: ta.TaskContext, email: Email) -> Receipt:
    return Receipt(words=len(email.subject.split()))


@app.task
def count(ctx: ta.TaskContext, n: int) -> list[int]:
    return list(range(n))
