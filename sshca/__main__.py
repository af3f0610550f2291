"""`python -m firecrest_testbuild.sshca --config FILE`: serve the SSH CA."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from firecrest_testbuild.common.wsgi import serve
from firecrest_testbuild.sshca.app import Settings, create_app


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
    serve(app, args.bind, threads=8, timeout=60, access_log=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
