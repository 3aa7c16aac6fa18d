"""The web UI: server-rendered pages with HTMX fragments, mounted on the HTTP app.

``register_ui(app, runtime, auth=...)`` adds the pages under ``/ui``; see ``docs/ui.md``.
"""

from ._register import register_ui as register_ui
from ._sessions import SessionPolicy as SessionPolicy

__all__ = ["SessionPolicy", "register_ui"]
