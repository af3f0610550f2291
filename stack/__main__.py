"""`python -m firecrest_testbuild.stack [--api v1|v2] --config FILE`: serve
the configured services of one API generation on one address."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flask import Flask

from firecrest_testbuild.common.wsgi import serve
from firecrest_testbuild.stack.app import create_app
from firecrest_testbuild.stack.config import ConfigFileError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m firecrest_testbuild.stack", description=__doc__
    )
    parser.add_argument("--config", type=Path, required=True, help="the stack's YAML file")
    parser.add_argument(
        "--api", choices=("v1", "v2"), default="v1", help="the FirecREST API generation served"
    )
    parser.add_argument("--bind", default="0.0.0.0:8000", help="address:port to listen on")
    parser.add_argument("--threads", type=int, default=32, help="concurrent requests served")
    args = parser.parse_args(argv)
    try:
        app = _v2_app(args.config) if args.api == "v2" else create_app(load(args.config))
    except ConfigFileError as error:
        print(f"✗ stack config: {error.path} cannot be used", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    serve(app, args.bind, args.threads, timeout=120, access_log=False)
    return 0


def _v2_app(path: Path) -> Flask:
    from firecrest_testbuild.stack.v2 import app, config

    return app.create_app(config.load(path))


if __name__ == "__main__":
    sys.exit(main())
