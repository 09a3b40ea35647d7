"""Cloud Run functions: preprocess an uploaded image, and record dead-lettered uploads.

Deployed from this folder with entry point `preprocess_image` (trigger: the uploads topic, or
a direct storage `finalized` trigger) and, a second time, with `record_dead_letter` (trigger:
the dead-letter topic). Configuration comes from the environment: see detectflow/settings.py.
The logic lives in detectflow.pipeline; this file only adapts CloudEvents to it.
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
def preprocess_image(event: CloudEvent) -> None:
    """Validate, decode, EXIF-orient and letterbox an upload; publish it for inference."""
    runtime.handlers().preprocess_event(event["type"], event.get_data())


@functions_framework.cloud_event
def record_dead_letter(event: CloudEvent) -> None:
    """Write the error record of an upload whose processing failed every delivery."""
    runtime.handlers().dead_letter_event(event["type"], event.get_data())
