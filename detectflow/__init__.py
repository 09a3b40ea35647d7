"""detectflow: self-hostable, serverless-style object detection.

This package holds the runtime core (the top-level modules and model/, storage/, bus/,
pipeline/, catalog/: what the deployed functions ship) and, each in its own subpackage, the
layers above it: datasets/, evaluation/, launcher/ and cli/. What each layer may import (the
core: only itself, never TensorFlow) is in docs/architecture.md, "Where things live", and
tests/project/test_layering.py checks it.
"""

__version__ = "0.1.0"
