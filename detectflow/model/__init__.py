"""Model bundles: manifest, numpy decoding, and the LiteRT-backed `Detector`."""

from detectflow.model.detector import Detector, Timings
from detectflow.model.manifest import Manifest

__all__ = ["Detector", "Manifest", "Timings"]
