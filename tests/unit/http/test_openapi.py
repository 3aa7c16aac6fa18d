"""``/openapi.json`` describes every endpoint; ``/docs`` renders it."""

from __future__ import annotations

import re
from typing import Any

HIDDEN = {"/openapi.json", "/docs", "/docs/static/<path:filename>"}


class TestOpenAPI:
    async def test_every_route(self, client: Any) -> None:
        """Every route of the app (but the docs themselves and the web UI) is in the document."""
        spec = await (await client.get("/openapi.json")).get_json()
        documented = {
            (path, method.upper()) for path, ops in spec["paths"].items() for method in ops
        }
        for rule in client.app.url_map.iter_rules():
            if rule.rule in HIDDEN or rule.rule == "/" or rule.rule.startswith("/ui"):
                continue
            path = re.sub(r"<(?:[^:>]*:)?([^>]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method) in documented, (path, method)

    async def test_responses_documented(self, client: Any) -> None:
        """Each operation documents a success, and errors in the shared shape."""
        spec = await (await client.get("/openapi.json")).get_json()
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                codes = set(operation["responses"])
                assert codes & {"200", "201", "202", "204"}, (path, method)
                assert "default" in codes, (path, method)
                assert operation.get("summary"), (path, method)

    async def test_media_types(self, client: Any) -> None:
        """/metrics is text and /events a server-sent event stream."""
        spec = await (await client.get("/openapi.json")).get_json()
        metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        events = spec["paths"]["/events"]["get"]["responses"]["200"]["content"]
        assert "text/plain" in metrics
        assert list(events) == ["text/event-stream"]
        assert "TransitionOut" in spec["components"]["schemas"]

    async def test_docs_page(self, client: Any) -> None:
        """/docs serves the interactive documentation page."""
        response = await client.get("/docs")
        assert response.status_code == 200
        assert "swagger-ui" in await response.get_data(as_text=True)

    async def test_docs_page_loads_nothing_from_elsewhere(self, client: Any) -> None:
        """/docs loads Swagger UI from this server, under a CSP that allows no other host."""
        response = await client.get("/docs")
        page = await response.get_data(as_text=True)
        assert "https://" not in page and "//cdn" not in page
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js"):
            assert f"/docs/static/{asset}" in page
            served = await client.get(f"/docs/static/{asset}")
            assert served.status_code == 200, asset
        for other in ("README.md", "swagger-ui.LICENSE", "../docs.py", "nope.js"):
            assert (await client.get(f"/docs/static/{other}")).status_code == 404, other
