"""The operator routes over the Quart test client: what a read-only session sees and may
do, the API document for a session, the 404 page, and the live stream's scope."""

from __future__ import annotations

from typing import Any

from quart_trio import QuartTrio
from tests.unit.ui.test_sessions import ADMIN, READER, Browser, app, runtime, to_login

from trellis_actors import Runtime

__all__ = ["app", "runtime"]  # the fixtures, shared with test_sessions


async def schedule_id(runtime: Runtime) -> str:
    return (await runtime.add_schedule("nightly", "echo", None, every="1h")).id


class TestReadOnlySession:
    async def test_schedule_page_without_edit_form(self, app: QuartTrio, runtime: Runtime) -> None:
        """A read session sees the schedule and its tasks but no form, and a POST is refused."""
        ident = await schedule_id(runtime)
        reader = Browser(app)
        await reader.login(READER)
        page = await (await reader.open(f"/ui/schedules/{ident}")).get_data(as_text=True)
        assert "Tasks it fired" in page
        assert "Edit schedule" not in page and "Save changes" not in page
        refused = await reader.post(f"/ui/schedules/{ident}")
        assert refused.status_code == 403
        assert (await runtime.get_schedule(ident)).every == 3600

    async def test_admin_sees_the_edit_form(self, app: QuartTrio, runtime: Runtime) -> None:
        ident = await schedule_id(runtime)
        admin = Browser(app)
        await admin.login(ADMIN)
        page = await (await admin.open(f"/ui/schedules/{ident}")).get_data(as_text=True)
        assert "Save changes" in page and 'value="3600s"' in page

    async def test_edit_needs_a_csrf_token(self, app: QuartTrio, runtime: Runtime) -> None:
        ident = await schedule_id(runtime)
        admin = Browser(app)
        await admin.login(ADMIN)
        form = {"name": "renamed", "task_type": "echo", "kind": "every", "when": "2h"}
        refused = await admin.open(f"/ui/schedules/{ident}", "POST", form=form)
        assert refused.status_code == 403
        assert (await runtime.get_schedule(ident)).name == "nightly"


class TestApiDocument:
    async def test_a_session_reads_the_document(self, app: QuartTrio) -> None:
        reader = Browser(app)
        await reader.login(READER)
        response = await reader.open("/ui/openapi.json")
        assert response.status_code == 200
        assert "/tasks" in (await response.get_json())["paths"]

    async def test_without_a_session_it_is_the_login(self, app: QuartTrio) -> None:
        assert to_login(await Browser(app).open("/ui/openapi.json"))
        assert to_login(await Browser(app).open("/ui/live"))


class TestNotFound:
    async def test_unknown_ui_path_is_the_ui_404_page(self, app: QuartTrio) -> None:
        response: Any = await Browser(app).open("/ui/no/such/page")
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        assert "Page not found" in await response.get_data(as_text=True)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]

    async def test_api_paths_keep_the_json_404(self, app: QuartTrio) -> None:
        bearer = {"Authorization": f"Bearer {ADMIN}"}
        response: Any = await Browser(app).open("/no/such/endpoint", headers=bearer)
        assert response.status_code == 404
        assert (await response.get_json())["error"]["code"] == "not_found"

    async def test_wrong_method_is_still_405(self, app: QuartTrio) -> None:
        response: Any = await Browser(app).open("/ui/tasks/x/cancel")
        assert response.status_code == 405
