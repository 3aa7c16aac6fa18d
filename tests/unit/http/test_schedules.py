"""``/schedules``: create, list, read, change, pause, resume, run and delete, and every way a
request can be refused (nothing stored then)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.unit.http.kit import TOKEN

from trellis_actors import Runtime
from trellis_actors.errors import ScheduleNotFound
from trellis_actors.http.errors import from_trellis
from trellis_actors.http.schemas import ScheduleList, ScheduleOut, TaskOut

BEARER = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
HOURLY = {"name": "hourly", "task_type": "echo", "every": "1h"}


async def send(client: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """``body`` as JSON (bytes as they are); the status and the decoded answer."""
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    response = await client.open(path, method=method, data=raw, headers=JSON)
    return response.status_code, await response.get_json()


async def create(client: Any, **fields: Any) -> dict[str, Any]:
    status, body = await send(client, "POST", "/schedules", {**HOURLY, **fields})
    assert status == 201, body
    return dict(body)


async def stored(runtime: Runtime) -> list[dict[str, Any]]:
    return [schedule.to_dict() for schedule in await runtime.list_schedules()]


class TestCreate:
    async def test_every(self, client: Any, runtime: Runtime) -> None:
        """An interval schedule answers 201 with the stored schedule, shaped as documented."""
        status, body = await send(client, "POST", "/schedules", HOURLY)
        assert status == 201
        ScheduleOut.model_validate(body)
        assert (body["name"], body["task_type"], body["every"]) == ("hourly", "echo", 3600.0)
        assert (body["spec"], body["paused"], body["misfire"]) == ("every 3600s", False, "skip")
        assert body["next_run_at"] > body["created_at"]
        assert body["last_run_at"] is None
        assert await stored(runtime) == [body]

    async def test_every_seconds(self, client: Any) -> None:
        """``every`` also takes a number of seconds."""
        body = await create(client, every=90)
        assert (body["every"], body["spec"]) == (90.0, "every 90s")

    async def test_cron_in_a_zone(self, client: Any) -> None:
        """A cron schedule keeps its expression and zone."""
        body = await create(client, every=None, cron="0 9 * * mon-fri", timezone="America/New_York")
        assert (body["cron"], body["timezone"], body["every"]) == (
            "0 9 * * mon-fri",
            "America/New_York",
            None,
        )
        assert body["spec"] == "cron 0 9 * * mon-fri (America/New_York)"

    async def test_at(self, client: Any) -> None:
        """A one-shot takes an ISO 8601 time; a naive one is UTC."""
        body = await create(client, every=None, at="2999-01-02T03:04:05")
        assert body["at"] == body["next_run_at"] == "2999-01-02T03:04:05Z"

    async def test_options(self, client: Any) -> None:
        """Payload, queue, priority, misfire and paused are taken as given."""
        body = await create(
            client,
            payload={"scope": "all"},
            queue="reports",
            priority=7,
            misfire="run_once",
            paused=True,
        )
        assert (body["payload"], body["queue"], body["priority"]) == (
            {"scope": "all"},
            "reports",
            7,
        )
        assert (body["misfire"], body["paused"]) == ("run_once", True)

    async def test_nulls_mean_defaults(self, client: Any) -> None:
        """``null`` for an optional field gives its default."""
        body = await create(client, cron=None, queue=None, priority=None, misfire=None, paused=None)
        assert (body["queue"], body["priority"], body["misfire"], body["paused"]) == (
            None,
            0,
            "skip",
            False,
        )

    @pytest.mark.parametrize(
        ("body", "code", "field"),
        [
            (b"{not json", "malformed_json", None),
            (b"", "malformed_json", None),
            (b'{"name": "n", "task_type": "echo", "every": NaN}', "malformed_json", None),
            (b'[{"name": "n", "task_type": "echo", "every": 60}]', "validation_error", None),
            ({"task_type": "echo", "every": 60}, "validation_error", "name"),
            ({"name": "n", "every": 60}, "validation_error", "task_type"),
            ({"name": "has space", "task_type": "echo", "every": 60}, "validation_error", "name"),
            ({"name": "", "task_type": "echo", "every": 60}, "validation_error", "name"),
            ({"name": 5, "task_type": "echo", "every": 60}, "validation_error", "name"),
            ({"name": "n", "task_type": "echo"}, "validation_error", "every"),
            ({**HOURLY, "cron": "0 * * * *"}, "validation_error", "cron"),
            ({**HOURLY, "at": "2030-01-01T00:00:00Z"}, "validation_error", "at"),
            ({**HOURLY, "every": 0.5}, "validation_error", "every"),
            ({**HOURLY, "every": "soon"}, "validation_error", "every"),
            ({**HOURLY, "every": True}, "validation_error", "every"),
            ({**HOURLY, "every": [60]}, "validation_error", "every"),
            ({**HOURLY, "every": "99999999d"}, "validation_error", "every"),
            (b'{"name": "n", "task_type": "echo", "every": 1e999}', "validation_error", "every"),
            ({**HOURLY, "every": 10**400}, "validation_error", "every"),
            ({**HOURLY, "every": None, "cron": "0 * * *"}, "validation_error", "cron"),
            ({**HOURLY, "every": None, "cron": "61 * * * *"}, "validation_error", "cron"),
            ({**HOURLY, "every": None, "cron": "0 0 30 2 *"}, "validation_error", "cron"),
            ({**HOURLY, "every": None, "cron": 5}, "validation_error", "cron"),
            (
                {**HOURLY, "every": None, "cron": "0 * * * *", "timezone": "Mars/Olympus"},
                "validation_error",
                "timezone",
            ),
            (
                {**HOURLY, "every": None, "cron": "0 * * * *", "timezone": "Etc"},
                "validation_error",
                "timezone",
            ),
            ({**HOURLY, "timezone": "Europe/Paris"}, "validation_error", "timezone"),
            ({**HOURLY, "every": None, "at": "tomorrow"}, "validation_error", "at"),
            ({**HOURLY, "every": None, "at": 1893456000}, "validation_error", "at"),
            (
                {**HOURLY, "every": None, "at": "9999-12-31T23:59:59-23:59"},
                "validation_error",
                "at",
            ),
            ({**HOURLY, "misfire": "sometimes"}, "validation_error", "misfire"),
            ({**HOURLY, "paused": "yes"}, "validation_error", "paused"),
            ({**HOURLY, "priority": 1.5}, "validation_error", "priority"),
            ({**HOURLY, "priority": 99999999999}, "validation_error", "priority"),
            ({**HOURLY, "queue": ""}, "validation_error", "queue"),
            ({**HOURLY, "colour": "red"}, "validation_error", "colour"),
            (
                b'{"name": "n", "task_type": "echo", "every": 60, "payload": 1e999}',
                "validation_error",
                "payload",
            ),
            ({**HOURLY, "payload": "a\u0000b"}, "validation_error", "payload"),
            ({**HOURLY, "task_type": "nope"}, "unknown_task_type", "task_type"),
        ],
    )
    async def test_refused(
        self, client: Any, runtime: Runtime, body: Any, code: str, field: str | None
    ) -> None:
        """Bad input gets a 400 with the error shape, naming the field; nothing is stored."""
        status, answer = await send(client, "POST", "/schedules", body)
        assert status == 400, answer
        assert answer["error"]["code"] == code
        assert answer["error"].get("field") == field
        assert answer["error"]["message"]
        assert await stored(runtime) == []

    async def test_unknown_type_lists_known(self, client: Any) -> None:
        """The message for an unknown task type lists the registered ones."""
        _, answer = await send(client, "POST", "/schedules", {**HOURLY, "task_type": "nope"})
        assert "known types: block, echo, fail" in answer["error"]["message"]

    async def test_never_fires_said(self, client: Any) -> None:
        """A cron expression without a next date is refused as such."""
        body = {**HOURLY, "every": None, "cron": "0 0 31 4 *"}
        _, answer = await send(client, "POST", "/schedules", body)
        assert "never fires" in answer["error"]["message"]

    async def test_name_taken(self, client: Any, runtime: Runtime) -> None:
        """A second schedule of the same name answers 409 naming ``name``; one is stored."""
        first = await create(client)
        status, answer = await send(client, "POST", "/schedules", {**HOURLY, "every": 60})
        assert (status, answer["error"]["code"]) == (409, "already_exists")
        assert answer["error"]["field"] == "name"
        assert "already exists" in answer["error"]["message"]
        assert await stored(runtime) == [first]

    async def test_oversize_body(self, client: Any, runtime: Runtime) -> None:
        """A body over the configured limit answers 413 and stores nothing."""
        status, answer = await send(
            client, "POST", "/schedules", {**HOURLY, "payload": "x" * 70_000}
        )
        assert (status, answer["error"]["code"]) == (413, "payload_too_large")
        assert await stored(runtime) == []


class TestRead:
    async def test_list_by_name(self, client: Any) -> None:
        """The listing holds every schedule, ordered by name."""
        status, empty = await send(client, "GET", "/schedules")
        assert (status, empty) == (200, {"items": []})
        second = await create(client, name="b-second")
        first = await create(client, name="a-first")
        _, listing = await send(client, "GET", "/schedules")
        ScheduleList.model_validate(listing)
        assert listing["items"] == [first, second]

    async def test_get(self, client: Any) -> None:
        """One schedule by id."""
        created = await create(client)
        status, body = await send(client, "GET", f"/schedules/{created['id']}")
        assert (status, body) == (200, created)

    async def test_unknown(self, client: Any) -> None:
        """An unknown id answers 404."""
        status, body = await send(client, "GET", "/schedules/no-such-schedule")
        assert (status, body["error"]["code"]) == (404, "not_found")
        assert "no-such-schedule" in body["error"]["message"]


class TestChange:
    async def test_fields_keep_slots(self, client: Any) -> None:
        """Changing payload, priority or name keeps the slots."""
        created = await create(client)
        changes = {"payload": [1, 2], "priority": -3, "name": "renamed", "queue": "q"}
        status, body = await send(client, "PATCH", f"/schedules/{created['id']}", changes)
        assert status == 200
        ScheduleOut.model_validate(body)
        assert (body["payload"], body["priority"], body["name"]) == ([1, 2], -3, "renamed")
        assert body["next_run_at"] == created["next_run_at"]
        assert body["updated_at"] >= created["updated_at"]

    async def test_new_kind_of_spec(self, client: Any) -> None:
        """A cron spec replaces an interval, and the schedule is planned again."""
        created = await create(client)
        change = {"cron": "30 2 * * *", "timezone": "Europe/Paris"}
        status, body = await send(client, "PATCH", f"/schedules/{created['id']}", change)
        assert status == 200
        assert (body["every"], body["cron"], body["timezone"]) == (
            None,
            "30 2 * * *",
            "Europe/Paris",
        )

    async def test_nulls_clear(self, client: Any) -> None:
        """``null`` clears a nullable field: the queue goes back to the type's."""
        created = await create(client, queue="reports", payload={"a": 1})
        path = f"/schedules/{created['id']}"
        _, body = await send(client, "PATCH", path, {"queue": None, "payload": None})
        assert (body["queue"], body["payload"]) == (None, None)

    async def test_empty_changes(self, client: Any) -> None:
        """An empty object changes nothing."""
        created = await create(client)
        status, body = await send(client, "PATCH", f"/schedules/{created['id']}", {})
        assert status == 200
        assert {**body, "updated_at": None} == {**created, "updated_at": None}

    @pytest.mark.parametrize(
        ("body", "code", "field"),
        [
            (b"{not json", "malformed_json", None),
            (b"[]", "validation_error", None),
            ({"name": None}, "validation_error", "name"),
            ({"name": "bad name"}, "validation_error", "name"),
            ({"task_type": None}, "validation_error", "task_type"),
            ({"priority": None}, "validation_error", "priority"),
            ({"misfire": None}, "validation_error", "misfire"),
            ({"paused": None}, "validation_error", "paused"),
            ({"every": None}, "validation_error", "every"),
            ({"every": "0s"}, "validation_error", "every"),
            ({"every": 60, "cron": "0 * * * *"}, "validation_error", "cron"),
            ({"timezone": "Europe/Paris"}, "validation_error", "timezone"),
            ({"cron": "0 0 30 2 *"}, "validation_error", "cron"),
            ({"cron": "0 0 * * *", "timezone": "__pycache__"}, "validation_error", "timezone"),
            ({"at": "later"}, "validation_error", "at"),
            ({"payload": "a\u0000b"}, "validation_error", "payload"),
            ({"colour": "red"}, "validation_error", "colour"),
            ({"task_type": "nope"}, "unknown_task_type", "task_type"),
        ],
    )
    async def test_refused(
        self, client: Any, runtime: Runtime, body: Any, code: str, field: str | None
    ) -> None:
        """Bad changes get a 400 naming the field, and the schedule stays as it was."""
        created = await create(client)
        status, answer = await send(client, "PATCH", f"/schedules/{created['id']}", body)
        assert status == 400, answer
        assert (answer["error"]["code"], answer["error"].get("field")) == (code, field)
        assert await stored(runtime) == [created]

    async def test_name_taken(self, client: Any, runtime: Runtime) -> None:
        """Renaming to another schedule's name answers 409; to its own name, 200."""
        created = await create(client)
        other = await create(client, name="other")
        path = f"/schedules/{other['id']}"
        status, answer = await send(client, "PATCH", path, {"name": "hourly"})
        assert (status, answer["error"]["code"], answer["error"]["field"]) == (
            409,
            "already_exists",
            "name",
        )
        assert await stored(runtime) == [created, other]
        status, _ = await send(client, "PATCH", path, {"name": "other"})
        assert status == 200

    async def test_unknown(self, client: Any) -> None:
        """An unknown id answers 404."""
        status, body = await send(client, "PATCH", "/schedules/nope", {"priority": 1})
        assert (status, body["error"]["code"]) == (404, "not_found")


class TestPauseResume:
    async def test_pause_and_resume(self, client: Any, runtime: Runtime) -> None:
        """Pause answers the paused schedule; resume plans it again from now."""
        created = await create(client)
        status, paused = await send(client, "POST", f"/schedules/{created['id']}/pause")
        assert (status, paused["paused"]) == (200, True)
        ScheduleOut.model_validate(paused)
        assert (await runtime.get_schedule(created["id"])).paused
        status, resumed = await send(client, "POST", f"/schedules/{created['id']}/resume")
        assert (status, resumed["paused"]) == (200, False)
        assert resumed["next_run_at"] >= created["next_run_at"]

    @pytest.mark.parametrize("action", ["pause", "resume", "run"])
    async def test_unknown(self, client: Any, action: str) -> None:
        """An unknown id answers 404."""
        status, body = await send(client, "POST", f"/schedules/nope/{action}")
        assert (status, body["error"]["code"]) == (404, "not_found")


class TestRun:
    async def test_fires_a_task(self, client: Any, runtime: Runtime) -> None:
        """Run answers 201 with a new task of the schedule, which runs; the slots stay."""
        created = await create(client, payload={"from": "schedule"}, queue="default")
        status, task = await send(client, "POST", f"/schedules/{created['id']}/run")
        assert status == 201
        TaskOut.model_validate(task)
        assert (task["type"], task["schedule_id"]) == ("echo", created["id"])
        assert (await runtime.wait(task["id"], timeout=5)).result == {"from": "schedule"}
        after = await runtime.get_schedule(created["id"])
        assert after.to_dict()["next_run_at"] == created["next_run_at"]

    async def test_paused_too(self, client: Any) -> None:
        """A paused schedule can be fired by hand, each call a new task."""
        created = await create(client, paused=True)
        path = f"/schedules/{created['id']}/run"
        (first, one), (second, two) = [await send(client, "POST", path) for _ in range(2)]
        assert (first, second) == (201, 201)
        assert one["id"] != two["id"]


class TestDelete:
    async def test_deleted(self, client: Any, runtime: Runtime) -> None:
        """Delete answers 204 without a body; the schedule is gone, the second time 404."""
        created = await create(client)
        response = await client.delete(f"/schedules/{created['id']}")
        assert response.status_code == 204
        assert await response.get_data() == b""
        assert await stored(runtime) == []
        status, body = await send(client, "DELETE", f"/schedules/{created['id']}")
        assert (status, body["error"]["code"]) == (404, "not_found")

    def test_not_found_maps_to_404(self) -> None:
        """ScheduleNotFound is the API's 404."""
        answer = from_trellis(ScheduleNotFound("x"))
        assert (answer.status, answer.code) == (404, "not_found")


class TestAuth:
    ROUTES = [
        ("GET", "/schedules"),
        ("POST", "/schedules"),
        ("GET", "/schedules/x"),
        ("PATCH", "/schedules/x"),
        ("DELETE", "/schedules/x"),
        ("POST", "/schedules/x/pause"),
        ("POST", "/schedules/x/resume"),
        ("POST", "/schedules/x/run"),
    ]

    @pytest.mark.parametrize(("method", "path"), ROUTES)
    async def test_token_required(
        self, secured: Any, runtime: Runtime, method: str, path: str
    ) -> None:
        """Without the token every schedule endpoint answers 401, and nothing is stored."""
        response = await secured.open(path, method=method, json=HOURLY)
        assert response.status_code == 401
        assert (await response.get_json())["error"]["code"] == "unauthorized"
        assert await stored(runtime) == []

    async def test_with_token(self, secured: Any) -> None:
        """With the token the schedule endpoints answer."""
        response = await secured.post("/schedules", json=HOURLY, headers=BEARER)
        assert response.status_code == 201
        schedule_id = (await response.get_json())["id"]
        response = await secured.delete(f"/schedules/{schedule_id}", headers=BEARER)
        assert response.status_code == 204


class TestDocumented:
    async def test_operations(self, client: Any) -> None:
        """Each schedule operation is in /openapi.json with its request and answers."""
        spec = await (await client.get("/openapi.json")).get_json()
        paths = spec["paths"]
        create = paths["/schedules"]["post"]
        assert set(create["responses"]) >= {"201", "400", "409", "default"}
        assert (
            "requestBody" in create and "requestBody" in paths["/schedules/{schedule_id}"]["patch"]
        )
        delete = paths["/schedules/{schedule_id}"]["delete"]["responses"]
        assert "content" not in delete["204"]
        assert "201" in paths["/schedules/{schedule_id}/run"]["post"]["responses"]
        for action in ("pause", "resume"):
            assert "200" in paths[f"/schedules/{{schedule_id}}/{action}"]["post"]["responses"]

    async def test_task_types_listed(self, client: Any) -> None:
        """``task_type`` lists the server's task types, as ``type`` does for tasks."""
        spec = await (await client.get("/openapi.json")).get_json()
        create = spec["paths"]["/schedules"]["post"]
        change = spec["paths"]["/schedules/{schedule_id}"]["patch"]
        for operation in (create, change):
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert {"echo", "fail", "block"} <= set(schema["properties"]["task_type"]["enum"])
