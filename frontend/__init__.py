"""The web app: REST API + web page over the storage buckets the pipeline reads and writes.

`create_app(buckets, model_manifest)` builds it; `detectflow up` serves it next to the pipeline.
"""

from frontend.app import create_app
from frontend.config import FrontendSettings

__all__ = ["FrontendSettings", "create_app"]
