"""`python -m firecrest_testbuild.sshca --config FILE`: serve the SSH CA."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gunicorn.app.base import BaseApplication

from firecrest_testbuild.sshca.app import Settings, create_app


class _Server(BaseApplication):
    def __init__(self, app, options: dict) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m firecrest_testbuild.sshca", description=__doc__
    )
    parser.add_argument("--config", type=Path, required=True, help="the service's JSON file")
    parser.add_argument("--bind", default="0.0.0.0:8000", help="address:port to listen on")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_file(args.config)
        app = create_app(settings)
    except (OSError, KeyError, ValueError) as error:
        print(f"✗ sshca config: {args.config} cannot be used: {error!r}", file=sys.stderr)
        return 2
    options = {
        "bind": args.bind,
        "workers": 1,
        "worker_class": "gthread",
        "threads": 8,
        "timeout": 60,
        "accesslog": "-",
        "errorlog": "-",
    }
    _Server(app, options).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
