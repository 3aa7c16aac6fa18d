"""The clients' bulk methods against a real ``trellis serve``: a filter, checked locally
by the server's rules, and a count back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from tests.e2e.kit import Server

from trellis_actors import TaskStatus, ValidationError
from trellis_actors.client import AsyncClient, Client
from trellis_actors.client._calls import Request, bulk
from trellis_actors.decisions import Bulk


class TestClientBulk:
    def test_cancel_requeue_purge_many(self, server: Server) -> None:
        queue = f"bulk-{uuid.uuid4().hex[:8]}"
        with Client(server.url) as client:
            tasks = [client.submit("echo", i, queue=queue, delay=3600) for i in range(3)]
            other = client.submit("echo", queue=queue + "-other", delay=3600)
            since = datetime(2000, 1, 1, tzinfo=UTC)
            assert client.cancel_many(queue=queue, created_after=since, dry_run=True) == 3
            assert client.cancel_many(queue=queue, status=TaskStatus.PENDING) == 3
            assert {client.get(task.id).status for task in tasks} == {TaskStatus.CANCELLED}
            assert client.get(other.id).status is TaskStatus.PENDING
            assert client.requeue_many(queue=queue) == 0  # none is dead
            assert client.purge_many(queue=queue, status=["cancelled"]) == 3
            assert client.list(queue=queue).items == []

    def test_a_bad_filter_is_refused_before_it_is_sent(self, server: Server) -> None:
        with Client(server.url) as client, pytest.raises(ValidationError, match="touches only"):
            client.requeue_many(status="running")

    async def test_async_client(self, server: Server) -> None:
        queue = f"bulk-{uuid.uuid4().hex[:8]}"
        async with AsyncClient(server.url) as client:
            for i in range(2):
                await client.submit("echo", i, queue=queue, delay=3600)
            assert await client.cancel_many(queue=queue) == 2
            assert await client.purge_many(queue=queue, dry_run=True) == 2


class TestBulkCall:
    def test_the_request(self) -> None:
        """Times go as ISO 8601; a requeue is sent again only if never sent."""
        call = bulk(Bulk.REQUEUE, {"type": "t", "created_before": 0.0}, False)
        request = next(call)
        assert request == Request(
            "POST",
            "/tasks/bulk/requeue",
            body={"dry_run": False, "type": "t", "created_before": "1970-01-01T00:00:00Z"},
            retry="connect",
        )
        with pytest.raises(StopIteration) as done:
            call.send({"touched": 7, "dry_run": False})
        assert done.value.value == 7
        cancel = next(bulk(Bulk.CANCEL, {"status": "queued"}, True))
        assert (cancel.body, cancel.retry) == ({"dry_run": True, "status": ["queued"]}, "always")
