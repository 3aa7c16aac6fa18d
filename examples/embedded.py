"""Trellis inside a trio program: submit tasks, watch them run, wait for results.

python examples/embedded.py
"""

from __future__ import annotations

import trio

import trellis_actors as ta

app = ta.App()


@app.task(max_attempts=3, timeout=5)
async def resize_image(ctx: ta.TaskContext, payload: dict[str, int]) -> dict[str, int]:
    """Pretend to resize an image, reporting progress as it goes."""
    for step in range(1, 5):
        await trio.sleep(0.05)
        await ctx.progress(step / 4, f"pass {step} of 4")
    return {"width": payload["width"] // 2, "height": payload["height"] // 2}


@app.task(max_attempts=2, backoff=ta.Backoff(initial=0.1, maximum=1.0))
async def flaky(ctx: ta.TaskContext, payload: None) -> str:
    """Fails on its first attempt, succeeds on the second."""
    if ctx.attempt == 1:
        raise ConnectionError("the upstream service hiccuped")
    return f"succeeded on attempt {ctx.attempt}"


async def main() -> None:
    async with ta.open_runtime(app, workers=4) as rt:
        image = await rt.submit("resize_image", {"width": 1024, "height": 768})
        retry = await rt.submit("flaky")
        for task_id in (image.id, retry.id):
            done = await rt.wait(task_id, timeout=10)
            print(f"{done.type}: {done.status} after {done.attempt} attempt(s) -> {done.result}")
        for event in await rt.events(retry.id):
            print(f"  {event.from_status} -> {event.to_status} (attempt {event.attempt})")


if __name__ == "__main__":
    trio.run(main)
