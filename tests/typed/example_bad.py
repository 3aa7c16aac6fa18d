"""Typed use that mypy --strict refuses: each line marked ``# wrong`` is an error."""

from __future__ import annotations

from tests.typed.typed_app import Email, Receipt, count, send_email

import trellis_actors as ta


async def produce(rt: ta.Runtime) -> None:
    await rt.submit(send_email, {"to": "a@b.c"})  # wrong: a dict is not an Email
    await rt.submit(count, "three")  # wrong: the payload is an int
    await rt.submit(send_email, Email(to="a", subject="b"), priorty=3)  # wrong: no such option
    await rt.submit(count, 3, priority="high")  # wrong: priority is an int
    await rt.submit("echo", None, delay="soon")  # wrong: delay is a number
    task = await rt.submit(count, 3)
    done = await rt.wait(task)
    receipt: Receipt | None = done.result  # wrong: the result is a list[int]
    print(receipt)
