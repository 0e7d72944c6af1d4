"""``emailqueue dashboard``: a small web app to watch and operate queues.

An ASGI app (Starlette, served by uvicorn) with its HTML, JavaScript and CSS shipped in
``static/`` (no build step). It reads everything live from Redis, keeps an in-memory ring
buffer of samples for the charts, and acts on a queue (retry, remove, pause, resume) only
for an authenticated user, outside read-only mode. docs/dashboard.md describes it.

Importing this package does not import Starlette or uvicorn: ``command`` adds the CLI
subcommand and imports the web stack only when the dashboard runs.
"""

from __future__ import annotations

from .config import DashboardConfig, load_dashboard_config

__all__ = ["DashboardConfig", "load_dashboard_config"]
