"""Cloud Run function: detect objects in a prepared image with the int8 model (LiteRT).

Entry point `detect_objects`, triggered by the prepared-images topic. The model bundle comes
from the models bucket, loaded once per instance on first use and swapped when a newer
version is published (no TensorFlow import: cold start matters). Configuration comes from
the environment: see detectflow/settings.py.
"""

import logging
import os

import functions_framework
from cloudevents.http import CloudEvent

from detectflow.log import configure_logging
from detectflow.pipeline import runtime

if not logging.getLogger().handlers:  # JSON lines for Cloud Logging, unless a host configured it
    configure_logging(os.environ.get("DETECTFLOW_LOG_LEVEL", "INFO"), json_format=True)


@functions_framework.cloud_event
def detect_objects(event: CloudEvent) -> None:
    """Run the detector on a prepared image; write results/<image_id>.json."""
    runtime.handlers().infer_event(event["type"], event.get_data())
