"""The `detectflow` command line: the top layer, which may use every other one.

`main.py` builds the parser; each subcommand lives in `<name>.py` with `HELP`, `DESCRIPTION`,
`add_arguments(parser)` and `run(args) -> int`, and imports its heavy dependencies (the web
app, the trainer, TensorFlow) inside `run`, so `detectflow --help` stays instant.
"""

from detectflow.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
