"""The event pipeline: preprocess and infer handlers, shared by the deployed functions and the
embedded in-process pipeline. See detectflow/topology.py for how the stages are wired."""

from detectflow.pipeline.status import ImageStatus, image_status

__all__ = ["ImageStatus", "image_status"]
