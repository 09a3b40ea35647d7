"""`python -m detectflow.cli ...` = `detectflow ...`."""

import sys

from detectflow.cli.main import main

sys.exit(main())
