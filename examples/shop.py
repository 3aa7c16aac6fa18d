"""A small shop's background work: order e-mails and daily sales reports.

Run it from the repository root, which puts ``examples`` on the import path::

    trellis serve --app examples.shop:app --store memory://

then, in another terminal::

    trellis submit send_email --wait \\
        --payload '{"to": "ada@example.com", "template": "order_confirmation", "order_id": 42}'
    trellis submit sales_report --wait --payload '{"day": "2026-01-31"}'

E-mails are simulated: each one is written as a ``.eml`` file to ``$SHOP_OUTBOX``
(default ``./outbox``); reports are CSV files in ``$SHOP_REPORTS`` (default ``./reports``).
A schedule also asks for yesterday's report every night at 02:00 UTC.
"""

from __future__ import annotations

import csv
import io
import os
import random
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import trio

from trellis_actors import App, Backoff, TaskContext, ValidationError

app = App()

TEMPLATES = {
    "order_confirmation": ("Your order #{order_id}", "Thank you! Order #{order_id} is confirmed."),
    "shipped": ("Order #{order_id} is on its way", "Good news: order #{order_id} has shipped."),
}
PRODUCTS = {"teapot": 24.0, "mug": 9.5, "kettle": 39.0, "tea (250 g)": 7.25}


def _folder(variable: str, default: str) -> trio.Path:
    return trio.Path(os.environ.get(variable, default))


@app.task(queue="emails", max_attempts=5, timeout=30, backoff=Backoff(initial=2, maximum=60))
async def send_email(ctx: TaskContext, payload: Any) -> dict[str, str]:
    """Render an e-mail from a template and 'send' it (write it to the outbox)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("to"), str):
        raise ValidationError("send_email needs {'to': address, 'template': name, ...}")
    template = payload.get("template", "order_confirmation")
    if template not in TEMPLATES:
        raise ValidationError(f"unknown template {template!r}; known: {', '.join(TEMPLATES)}")
    subject, body = (text.format(**payload) for text in TEMPLATES[template])
    message = EmailMessage()
    message["From"] = "shop@example.com"
    message["To"] = payload["to"]
    message["Subject"] = subject
    message.set_content(body)
    await trio.sleep(0.05)  # the latency of a real mail server
    outbox = _folder("SHOP_OUTBOX", "outbox")
    await outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{ctx.task_id}.eml"  # one file per task: a retry overwrites, not doubles
    await path.write_bytes(bytes(message))
    ctx.log.info("e-mail sent", to=payload["to"], template=template)
    return {"message_id": ctx.task_id, "path": str(path)}


@app.task(queue="reports", timeout=300, concurrency=2)
async def sales_report(ctx: TaskContext, payload: Any) -> dict[str, Any]:
    """Total a day's (simulated) orders per product and write them as CSV."""
    day = _day(payload.get("day") if isinstance(payload, dict) else None)
    orders = _orders(day)
    totals: dict[str, float] = {}
    for index, (product, quantity) in enumerate(orders, start=1):
        totals[product] = totals.get(product, 0.0) + quantity * PRODUCTS[product]
        if index % 50 == 0 or index == len(orders):
            await ctx.progress(index / len(orders), f"{index} of {len(orders)} orders")
            await trio.sleep(0.01)  # reading the next page of orders
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["product", "revenue"])
    writer.writerows(sorted((name, f"{value:.2f}") for name, value in totals.items()))
    reports = _folder("SHOP_REPORTS", "reports")
    await reports.mkdir(parents=True, exist_ok=True)
    path = reports / f"sales-{day.isoformat()}.csv"
    await path.write_text(text.getvalue())
    return {
        "day": day.isoformat(),
        "orders": len(orders),
        "revenue": round(sum(totals.values()), 2),
        "path": str(path),
    }


app.schedule("nightly-sales-report", "sales_report", {"day": "yesterday"}, cron="0 2 * * *")


def _day(value: Any) -> date:
    if value in (None, "yesterday"):
        return datetime.now(UTC).date() - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationError(f"day must be YYYY-MM-DD or 'yesterday', not {value!r}") from None


def _orders(day: date) -> list[tuple[str, int]]:
    """The same orders for the same day, every time (a stand-in for a database query)."""
    rng = random.Random(day.toordinal())
    names = sorted(PRODUCTS)
    return [(rng.choice(names), rng.randint(1, 3)) for _ in range(rng.randint(100, 300))]
