"""A Flask application served by gunicorn in one process (the services of the
testbuild: the FirecREST stack, the SSH CA), so that their thread pools and
caches (tasks, JWKS) are shared by every request."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application


def serve(app: Any, bind: str, threads: int, timeout: int, access_log: bool) -> None:
    """Serve `app` on `bind` with `threads` threads until stopped."""
    options = {
        "bind": bind,
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": timeout,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
    }
    _Server(app, options).run()
