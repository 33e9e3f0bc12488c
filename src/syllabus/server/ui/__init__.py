"""The web UI: server-rendered pages over the same :class:`~syllabus.client.Client` calls
as the CLI, with plotly.js charts served from the installed ``plotly`` package.

``create_ui_router`` gives the routes for a server to mount; ``create_ui_app`` an
application for ``syllabus ui`` on an embedded workspace.
"""

from syllabus.server.ui.app import ANONYMOUS_ADMIN, UI, UIUser, create_ui_app, create_ui_router

__all__ = ["ANONYMOUS_ADMIN", "UI", "UIUser", "create_ui_app", "create_ui_router"]
