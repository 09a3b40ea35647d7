"""Generate `infra/terraform/topology.auto.tfvars.json` from `detectflow.topology`.

The pipeline's topology (buckets, topics, subscriptions, functions, retry and dead-letter
settings) is described once, in `detectflow/topology.py`; the local emulator setup creates it
from there, and Terraform reads it from this generated file (Terraform loads `*.auto.tfvars.json`
by itself). The file is committed so that `terraform plan` needs no Python, and
tests/project/test_infra.py fails when it is stale, so local and cloud cannot drift.

    python infra/topology_tfvars.py           # regenerate after changing detectflow/topology.py
    python infra/topology_tfvars.py --check   # exit 1 (and say why) when the file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TFVARS_PATH = Path(__file__).resolve().parent / "terraform" / "topology.auto.tfvars.json"


def render() -> str:
    """The file's exact text: the cloud profile of the one topology, as the `topology` variable."""
    from detectflow.topology import default_topology

    return json.dumps({"topology": default_topology("cloud").to_dict()}, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 when the file is stale"
    )
    args = parser.parse_args(argv)
    expected = render()
    current = TFVARS_PATH.read_text() if TFVARS_PATH.is_file() else None
    if args.check:
        if current != expected:
            sys.stderr.write(
                f"{TFVARS_PATH} is stale: detectflow/topology.py changed. "
                "Run `python infra/topology_tfvars.py` and commit the result.\n"
            )
            return 1
        return 0
    if current != expected:
        TFVARS_PATH.write_text(expected)
    sys.stdout.write(f"{TFVARS_PATH}: {'unchanged' if current == expected else 'written'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
