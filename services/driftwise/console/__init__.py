"""Driftwise Console: a web dashboard of what the server believes about each user.

An aiohttp application that is a gRPC client of a Driftwise server (any role: a call the server
does not implement shows as "not available from this server"). It serves its own pages and
assets (static/: HTML, CSS and JavaScript modules, charts drawn as inline SVG; nothing from the
network), the JSON endpoints the pages read (handlers.py), a server-sent-events stream of a user's
profile (live.py, from WatchProfile) and the feedback buttons' POSTs.

- gateway.py: every gRPC call, and messages.py the messages as JSON: the one place that speaks gRPC;
- pages.py: the pages, the assets and the middleware (Host check, sessions, write checks, headers);
- guard.py, sessions.py: the defences (CSRF, Origin, CSP) and the browser sessions;
- reports.py: the latest `driftwise eval` report;
- app.py: the application, and running it.

docs/console.md says what each page shows, how to run it and how it is kept safe.
"""

from driftwise.console.app import RunningConsole, console_config, running_console, serve_console
from driftwise.console.state import ConsoleConfig

__all__ = ["ConsoleConfig", "RunningConsole", "console_config", "running_console", "serve_console"]
