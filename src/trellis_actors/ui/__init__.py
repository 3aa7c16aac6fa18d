"""The web UI: server-rendered pages with HTMX fragments, mounted on the HTTP app.

``register_ui(app, runtime, token=...)`` adds the pages under ``/ui``; see ``docs/ui.md``.
"""

from ._register import register_ui as register_ui

__all__ = ["register_ui"]
