"""The `detectflow` command: the parser of every subcommand, and dispatch to its `run`.

Only the chosen subcommand's arguments are built (`add_arguments` of the others is never
called): `train`'s read the trainer's defaults, and the web image, which has no trainer,
still runs `detectflow up` and `detectflow reconcile`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from detectflow import __version__
from detectflow.log import configure_logging

COMMANDS = ("train", "evaluate", "export", "predict", "data", "up", "reconcile", "catalog")

EPILOG = """\
examples:
  detectflow up                                  # web app + pipeline on this machine
  detectflow predict --model models/bccd image.jpg --save-dir out/
  detectflow train --data ../shared/data/bccd --out runs/bccd
  detectflow evaluate --model runs/bccd/bundle --data ../shared/data/bccd --split test --json
  detectflow export --run runs/bccd --formats float32,float16,int8,qat
"""


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(f"detectflow.cli.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with `only` the arguments of that one subcommand."""
    parser = argparse.ArgumentParser(
        prog="detectflow",
        description="Self-hostable object detection: train, quantize, serve.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"detectflow {__version__}")
    parser.add_argument(
        "--log-level", default=os.environ.get("DETECTFLOW_LOG_LEVEL", "INFO"),
        help="logging level (default: %(default)s)",
    )
    parser.add_argument(
        "--log-json", action="store_true", help="log JSON lines (for Cloud Logging) to stderr"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _command_module(name)
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if only is None or only == name:
            module.add_arguments(sub)
    return parser


def chosen_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is one), if any."""
    return next((word for word in argv if word in COMMANDS), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = chosen_command(argv)
    parser = build_parser(only=command or "")
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    configure_logging(args.log_level, args.log_json)
    try:
        result: int = _command_module(args.command).run(args)
    except KeyboardInterrupt:
        return 130
    return result
