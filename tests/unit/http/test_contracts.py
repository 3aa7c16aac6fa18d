"""Contracts at the HTTP edge: a payload that breaks its type's contract is a 400 naming
the field with nothing stored; ``/task-types`` and ``/openapi.json`` publish each type's
payload and result schema, and the submit body as a union discriminated by ``type``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.integration.contracts import handlers as h

from trellis_actors import App, open_runtime
from trellis_actors.http import create_app


@pytest.fixture
async def api() -> AsyncIterator[Any]:
    app = App()
    for handle in (h.send_email, h.area, h.norm, h.double, h.untyped):
        app.task(handle)  # not the process handler: no pool for these tests
    async with open_runtime(app, workers=1) as rt:
        app = create_app(rt)
        async with app.test_app() as test_app:
            yield test_app.test_client()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "send_email", "payload": {"subject": "x"}}, "payload.to"),
        ({"type": "area", "payload": {"width": 1, "height": "tall"}}, "payload.height"),
        ({"type": "sleep", "payload": {"seconds": -1}}, "payload.seconds"),
        ({"type": "sleep", "payload": {"secs": 1}}, "payload.seconds"),
        ({"type": "sleep"}, "payload"),
        ([{"type": "double", "payload": 1}, {"type": "double", "payload": "x"}], "[1].payload"),
    ],
)
async def test_a_payload_breaking_its_contract_is_a_400_naming_the_field(
    api: Any, body: Any, field: str
) -> None:
    response = await api.post("/tasks", json=body)
    error = (await response.get_json())["error"]
    listed = await (await api.get("/tasks")).get_json()
    assert response.status_code == 400
    assert error["field"] == field
    assert field.split("].")[-1] in error["message"]
    assert listed["items"] == []


async def test_a_good_payload_is_stored_as_its_json_form(api: Any) -> None:
    response = await api.post("/tasks", json={"type": "norm", "payload": {"x": "3", "y": 4}})
    task = await response.get_json()
    assert response.status_code == 201
    assert task["payload"] == {"x": 3.0, "y": 4.0}  # what the contract parsed


async def test_a_schedule_breaking_its_contract_is_a_400(api: Any) -> None:
    response = await api.post(
        "/schedules",
        json={"name": "n", "task_type": "double", "payload": "two", "every": "1m"},
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"]["field"] == "payload"


async def test_task_types_publish_payload_and_result_schemas(api: Any) -> None:
    types = {t["name"]: t for t in (await (await api.get("/task-types")).get_json())["items"]}
    email = types["send_email"]
    assert email["payload_schema"]["properties"]["to"]["pattern"]
    assert email["payload_schema"]["required"] == ["to", "subject"]
    assert email["result_schema"]["properties"]["words"] == {"title": "Words", "type": "integer"}
    assert types["double"]["payload_schema"] == {"type": "integer"}
    assert types["sleep"]["payload_schema"]["properties"]["seconds"]["minimum"] == 0
    assert types["untyped"]["payload_schema"] is None
    assert types["untyped"]["result_schema"] is None


async def test_openapi_documents_submit_as_a_union_discriminated_by_type(api: Any) -> None:
    document = await (await api.get("/openapi.json")).get_json()
    schemas = document["components"]["schemas"]
    union = schemas["SubmitTask"]
    mapping = union["discriminator"]["mapping"]
    assert union["discriminator"]["propertyName"] == "type"
    assert {"send_email", "double", "sleep", "echo"} <= set(mapping)
    assert [v["$ref"] for v in union["oneOf"]] == list(mapping.values())
    email = schemas["SubmitTask_send_email"]["properties"]
    assert email["type"] == {"type": "string", "const": "send_email"}
    assert email["payload"]["required"] == ["to", "subject"]
    assert schemas["SubmitTask_double"]["properties"]["payload"]["type"] == "integer"
    assert "payload" in schemas["SubmitTask_double"]["required"]
    assert "$ref" not in str(schemas["SubmitTask_untyped"]["properties"]["payload"])
