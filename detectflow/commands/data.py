"""`detectflow data` (placeholder until implemented)."""

from __future__ import annotations

import argparse

HELP = "data (not implemented yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    raise SystemExit("detectflow data: not implemented yet")
