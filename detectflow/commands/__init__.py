"""One module per `detectflow` subcommand (see detectflow/cli.py)."""
