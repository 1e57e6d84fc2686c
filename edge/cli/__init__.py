"""``polewatch`` command line: one module per sub-command, each with ``register(subparsers)``.

Errors the user can act on (:class:`edge.errors.PolewatchError`, ``OSError``) print one line and exit non-zero;
``--debug`` (or ``POLEWATCH_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from edge import __version__
from edge.errors import ConfigError, PolewatchError

SUBCOMMANDS = ("config_cmd", "detect_cmd", "demo_cmd", "run_cmd", "evaluate_cmd", "verify_cmd", "survey_cmd")

EXIT_USAGE = 2
EXIT_FAILURE = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polewatch", description="Acoustic gunshot-detection pole unit.")
    parser.add_argument("--version", action="version", version=f"polewatch {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--log-level", default=None, help="debug, info, warning or error (default: warning)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        import_module(f"edge.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Before numpy loads (sub-commands import it): BLAS threads fighting over a Pi's cores cost far more than
    # the small matrix products they would share.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(args.debug or os.environ.get("POLEWATCH_DEBUG"))
    level = "debug" if debug else (args.log_level or "warning")
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        if debug:
            raise
        where = f"{exc.source}: " if exc.source else ""
        for problem in exc.problems:
            print(f"polewatch: config error: {where}{problem}", file=sys.stderr)
        return EXIT_FAILURE
    except (PolewatchError, OSError) as exc:
        if debug:
            raise
        print(f"polewatch: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return code


if __name__ == "__main__":
    sys.exit(main())
