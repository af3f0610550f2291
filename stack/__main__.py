"""`python -m firecrest_testbuild.stack --config FILE`: serve the configured
services on one address."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from firecrest_testbuild.common.wsgi import serve
from firecrest_testbuild.stack.app import create_app
from firecrest_testbuild.stack.config import ConfigFileError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m firecrest_testbuild.stack", description=__doc__
    )
    parser.add_argument("--config", type=Path, required=True, help="the stack's YAML file")
    parser.add_argument("--bind", default="0.0.0.0:8000", help="address:port to listen on")
    parser.add_argument("--threads", type=int, default=32, help="concurrent requests served")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigFileError as error:
        print(f"✗ stack config: {error.path} cannot be used", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    serve(create_app(config), args.bind, args.threads, timeout=120, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
