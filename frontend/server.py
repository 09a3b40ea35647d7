"""Serving the app with uvicorn, with limits for slow, idle and too many clients.

uvicorn on its own leaves a connection open for as long as a client likes while it sends its
headers half-way, pauses in the middle of a body, or connects and says nothing: a few hundred
such sockets tie up the server. `GuardedH11Protocol` is uvicorn's h11 protocol with three
deadlines and a cap, read from FrontendSettings:

- the request head must arrive within `header_timeout_seconds` of the connection (or of the
  first byte of the next request on a kept-alive one); a connection that sent nothing is
  closed then, a half-sent head gets a 408;
- while a body is being read, `body_timeout_seconds` may pass between two parts of it (only
  while the server wants them: a pause caused by the app not reading yet does not count);
  past that, a 408 if no answer has started, else the connection is closed;
- idle kept-alive connections close after `keep_alive_seconds` (uvicorn's own timer);
- past `max_connections` open connections, a new one gets a 503 and is closed.

The answers use the app's JSON error shape.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from frontend.config import FrontendSettings

log = logging.getLogger(__name__)


def _raw_error(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


HEAD_TIMEOUT = _raw_error(408, "Request Timeout", "request_timeout",
                          "The request's headers did not arrive in time.")
BODY_TIMEOUT = _raw_error(408, "Request Timeout", "request_timeout",
                          "The request's body stopped arriving; send it again.")
TOO_MANY_CONNECTIONS = _raw_error(503, "Service Unavailable", "too_many_connections",
                                  "The server has too many open connections; try again soon.")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a head deadline, a body pause limit and a connection cap
    (class attributes: `guarded_protocol` makes a subclass with the settings' values)."""

    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 20.0
    max_connections: ClassVar[int] = 1024

    _deadline: asyncio.TimerHandle | None = None
    _deadline_kind: str | None = None
    _head_bytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        if len(self.connections) > self.max_connections:
            log.warning("connection refused: too many open", extra={
                "connections": len(self.connections), "limit": self.max_connections})
            self.transport.write(TOO_MANY_CONNECTIONS)
            self.transport.close()
            return
        self._arm("head", self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._head_bytes += len(data)
        super().data_received(data)
        self._follow_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive timer for an idle wait
        self._follow_state()

    def _follow_state(self) -> None:
        """Which deadline applies now, from where the request stands."""
        if self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._head_bytes and self._deadline_kind != "head":
                # The next request has begun on a kept-alive connection: its head has
                # header_timeout from its first byte, however slowly the rest trickles in.
                # (Between requests, uvicorn's keep-alive timer applies.)
                self._arm("head", self.header_timeout)
        elif state is h11.SEND_BODY:
            self._head_bytes = 0
            self._arm("body", self.body_timeout)  # from the latest part
        else:
            self._head_bytes = 0
            self._disarm()  # the app has the whole request: its own time limits apply

    def _arm(self, kind: str, seconds: float) -> None:
        self._disarm()
        self._deadline_kind = kind
        self._deadline = self.loop.call_later(seconds, self._expired, kind)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._deadline_kind = None, None

    def _expired(self, kind: str) -> None:
        self._deadline, self._deadline_kind = None, None
        if self.transport.is_closing():
            return
        if kind == "body" and self.flow.read_paused:
            self._arm("body", self.body_timeout)  # we stopped reading, not the client
            return
        answered = self.cycle is not None and self.cycle.response_started and \
            not self.cycle.response_complete
        if kind == "head" and not self._head_bytes:
            reply = b""  # connected and never said anything: just close
        else:
            reply = b"" if answered else (HEAD_TIMEOUT if kind == "head" else BODY_TIMEOUT)
        log.info("slow client closed", extra={"waited_for": kind, "client": self.client})
        if self.cycle is not None:
            self.cycle.keep_alive = False
        if reply:
            self.transport.write(reply)
        self.transport.close()


def guarded_protocol(settings: FrontendSettings) -> type[GuardedH11Protocol]:
    attributes: dict[str, Any] = {
        "header_timeout": settings.header_timeout_seconds,
        "body_timeout": settings.body_timeout_seconds,
        "max_connections": settings.max_connections,
    }
    return type("GuardedH11Protocol", (GuardedH11Protocol,), attributes)


def uvicorn_config(app: Any, host: str, port: int, settings: FrontendSettings,
                   log_level: str = "warning") -> uvicorn.Config:
    """uvicorn's configuration for the app, with the settings' timeouts and limits."""
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level,
        http=guarded_protocol(settings),
        timeout_keep_alive=settings.keep_alive_seconds,
    )


def serve(app: Any, host: str, port: int, settings: FrontendSettings,
          log_level: str = "warning") -> None:
    """Serve until stopped (Ctrl-C, SIGTERM), like `uvicorn.run`."""
    uvicorn.Server(uvicorn_config(app, host, port, settings, log_level)).run()
