"""The web app under uvicorn as `detectflow up` configures it (frontend.server's protocol,
timeouts and limits), over local folders, on a free port in a thread of the test process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from detectflow.catalog.sqlite import SqliteCatalog
from detectflow.launcher.testing import free_port
from detectflow.storage import Buckets
from frontend import FrontendSettings, create_app
from frontend.server import uvicorn_config


@contextmanager
def serving_app(folder: Path, settings: FrontendSettings) -> Iterator[int]:
    """Yield the port the app answers on; stop the server and close its catalog after."""
    catalog = SqliteCatalog(folder / "catalog.sqlite3")
    app = create_app(Buckets.local(folder / "buckets"), catalog, lambda: None, settings,
                     served_on="127.0.0.1")
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)
        catalog.close()
