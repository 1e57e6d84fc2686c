"""``polewatch config check FILE | show [--config PATH] | defaults``: check, print or create a config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge import config
from edge.errors import ConfigError

EXIT_OK = 0
EXIT_INVALID = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("config", help="check, show or create the configuration file")
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION")
    actions.required = True

    check = actions.add_parser("check", help="validate a config file; exit 1 listing every problem")
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(func=run_check)

    show = actions.add_parser("show", help="print the effective config (file values plus defaults) as TOML")
    show.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"config file (default: {config.DEFAULT_CONFIG_PATH} if it exists, else the built-in defaults)",
    )
    show.set_defaults(func=run_show)

    defaults = actions.add_parser("defaults", help="print a commented config file with every default value")
    defaults.set_defaults(func=run_defaults)


def run_check(args: argparse.Namespace) -> int:
    try:
        config.load_config(args.file)
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_INVALID
    print(f"{args.file}: ok")
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    path: Path | None = args.config
    if path is None and not config.DEFAULT_CONFIG_PATH.exists():
        header = f"No {config.DEFAULT_CONFIG_PATH}: these are the built-in defaults."
        print(config.config_to_toml(config.Config(), header=header), end="")
        return EXIT_OK
    path = path or config.DEFAULT_CONFIG_PATH
    try:
        effective = config.load_config(path)
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_INVALID
    header = f"Effective configuration: {path}, with built-in defaults for keys it does not set."
    print(config.config_to_toml(effective, header=header), end="")
    return EXIT_OK


def run_defaults(args: argparse.Namespace) -> int:
    header = (
        f"polewatch configuration. Copy to {config.DEFAULT_CONFIG_PATH}, set unit.id, change what you need;\n"
        "a key left out takes its default. Check the file with: polewatch config check FILE"
    )
    print(config.config_to_toml(config.Config(), header=header), end="")
    return EXIT_OK


def _print_problems(error: ConfigError) -> None:
    prefix = f"{error.source}: " if error.source else ""
    for problem in error.problems:
        print(prefix + problem, file=sys.stderr)
