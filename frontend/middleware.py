"""Pure ASGI middleware (no per-request task overhead), each deciding before the body is read:
who may call (API key; Host and Origin when there is no key), how large a body may be, and
the headers every answer carries (CSP on every HTML page, no foreign host in redirects).

They answer in the one JSON error shape of frontend/errors.py, with `Connection: close` when
the body was left unread.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontend.deps import API_KEY_HEADER, key_problem

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _too_large_message(limit: int) -> str:
    return f"The request is larger than this server accepts ({limit / 1e6:.0f} MB)."


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413, before they are read or stored.

    A declared Content-Length over the limit is answered at once; chunked bodies are counted
    as they stream in, and the read that crosses the limit raises, which the app's error
    handler turns into the same 413 JSON answer.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await send_error(send, 413, "request_too_large", _too_large_message(self.max_bytes),
                             [{"content_length": declared, "limit": self.max_bytes}])
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, _too_large_message(self.max_bytes))
            return message

        await self.app(scope, counting_receive, send)


class ApiKeyGuard:
    """401 for an `/api` request without the right X-API-Key, answered from the headers alone:
    a keyless 100 MB upload is refused before its first body byte is read, and a client that
    stalls its body still gets its answer. `public` paths (the upload limits) need no key."""

    def __init__(self, app: ASGIApp, api_key: str | None,
                 public: frozenset[str] = frozenset({"/api/limits"})) -> None:
        self.app = app
        self.api_key = api_key
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._guarded(scope):
            problem = key_problem(self.api_key, _header(scope, API_KEY_HEADER.lower()))
            if problem is not None:
                await send_error(send, 401, "unauthorized", problem,
                                 headers=[(b"www-authenticate", API_KEY_HEADER.encode())])
                return
        await self.app(scope, receive, send)

    def _guarded(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return (self.api_key is not None and scope["method"] != "OPTIONS"
                and (path == "/api" or path.startswith("/api/")) and path not in self.public)


class HostGuard:
    """Refuse a request whose Host is not one of `trusted_hosts` (400), and, when
    `check_origin`, a state-changing request from a page of another site (403).

    Without an API key, a page on any web site can make the visitor's browser call the app:
    a form POST from `https://evil.example` (Origin check), or, after DNS rebinding, any
    request under a name the attacker controls that resolves to 127.0.0.1 (Host check).
    `trusted_hosts=None` skips the Host check; entries are host names (`*.example.org` for
    sub-domains, `*` for any), ports ignored. Origins allowed: the request's own host, and
    `allowed_origins` (the CORS setting).
    """

    def __init__(self, app: ASGIApp, trusted_hosts: Iterable[str] | None, check_origin: bool,
                 allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.trusted = None if trusted_hosts is None else [h.lower() for h in trusted_hosts]
        self.check_origin = check_origin
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = _header(scope, "host") or ""
            if self.trusted is not None and not host_matches(_host_name(host), self.trusted):
                await send_error(send, 400, "untrusted_host",
                                 "This server does not answer to that host name. Use the "
                                 "address it serves on, or add the name to "
                                 "DETECTFLOW_TRUSTED_HOSTS.")
                return
            if self.check_origin and scope["method"] in STATE_CHANGING and \
                    not self._same_site(scope, host):
                await send_error(send, 403, "cross_origin_refused",
                                 "Requests that change data are not accepted from pages of "
                                 "other sites. Set DETECTFLOW_API_KEY, or list the site in "
                                 "DETECTFLOW_CORS_ORIGINS.")
                return
        await self.app(scope, receive, send)

    def _same_site(self, scope: Scope, host: str) -> bool:
        origin = _header(scope, "origin")
        if origin is None:
            # Browsers send Origin on cross-site POSTs; Sec-Fetch-Site covers the rest.
            return _header(scope, "sec-fetch-site") in (None, "same-origin", "none")
        origin = origin.rstrip("/").lower()
        if origin in self.allowed_origins or "*" in self.allowed_origins:
            return True
        return origin != "null" and urlsplit(origin).netloc == host.lower()


def host_matches(name: str, trusted: list[str]) -> bool:
    for pattern in trusted:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def _host_name(host: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RelativeRedirects:
    """Redirects to the app itself (Starlette's trailing-slash redirect builds an absolute URL
    from the Host header) go out as a path: a forged Host is never echoed into Location."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = (_header(scope, "host") or "").lower()

        async def send_relative(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message = {**message, "headers": [
                    (name, _relative(value, host) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])]}
            await send(message)

        await self.app(scope, receive, send_relative)


def _relative(location: bytes, host: str) -> bytes:
    parts = urlsplit(location.decode("latin-1"))
    if not parts.scheme or parts.netloc.lower() != host:
        return location  # already relative, or a deliberate redirect elsewhere
    path = parts.path or "/"
    if path.startswith("//"):  # never turn it into a protocol-relative URL
        path = "/" + path.lstrip("/")
    return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")


# --- security headers -------------------------------------------------------------------------

# The page loads only its own scripts, styles and images (blob: URLs for fetched images).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Swagger UI and ReDoc, from fastapi-offline's files, each allowed what Chromium showed it
# needs (tests/integration/test_browser_csp.py): Swagger's page starts the UI with an inline
# script (allowed by its hash, computed from the page as sent) and its CSS draws icons from
# data: URLs; ReDoc injects its styles at run time (styled-components: 'unsafe-inline' for
# styles only), draws data: images and builds its search index in a worker from a blob: URL.
# Anything from other sites stays blocked (ReDoc's footer asks cdn.redoc.ly for a logo).
_DOCS_BASE = ("default-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
              "form-action 'self'; frame-ancestors 'none'")
SWAGGER_CSP = _DOCS_BASE + "; img-src 'self' data:; style-src 'self'; script-src 'self'{hashes}"
REDOC_CSP = (_DOCS_BASE + "; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
             "script-src 'self'{hashes}; worker-src 'self' blob:")
DOCS_CSP = {"/docs": SWAGGER_CSP, "/docs/oauth2-redirect": SWAGGER_CSP, "/redoc": REDOC_CSP}
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def docs_csp(path: str, html: bytes) -> str:
    """The CSP of a docs page: its policy, with the hash of each inline script it has."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html))
    return DOCS_CSP[path].format(hashes=hashes)


class SecurityHeaders:
    """`nosniff` and `no-referrer` everywhere (uploads are served back); a CSP with
    `frame-ancestors 'none'` (and X-Frame-Options for older browsers) on every HTML answer,
    whatever its route: the page's strict one, or the docs' one for Swagger UI and ReDoc."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        is_docs = path in DOCS_CSP
        held: list[Message] = []  # a docs page is held until its inline script can be hashed

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []),
                           (b"x-content-type-options", b"nosniff"),
                           (b"referrer-policy", b"no-referrer")]
                message = {**message, "headers": headers}
                if _is_html(headers):
                    headers += [(b"x-frame-options", b"DENY")]
                    if not is_docs:
                        headers.append((b"content-security-policy", PAGE_CSP.encode()))
                    else:
                        held.append(message)
                        return
            elif held and message["type"] == "http.response.body":
                held.append(message)
                if message.get("more_body", False):
                    return
                await _send_held_docs_page(send, held, path)
                return
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _send_held_docs_page(send: Send, held: list[Message], path: str) -> None:
    start, bodies = held[0], held[1:]
    html = b"".join(m.get("body", b"") for m in bodies)
    headers = [*start["headers"], (b"content-security-policy", docs_csp(path, html).encode())]
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": html, "more_body": False})


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"content-type" and value.lower().startswith(b"text/html")
               for name, value in headers)


# --- helpers ----------------------------------------------------------------------------------


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", ()):
        if key == wanted:
            return str(value.decode("latin-1"))
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, "content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


async def send_error(send: Send, status: int, code: str, message: str,
                     details: list[dict[str, object]] | None = None,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """The JSON error shape, from middleware (before any route); closes the connection, as
    the request body may be left unread."""
    payload = json.dumps({"error": {"code": code, "message": message,
                                    "details": details or []}}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),
            *(headers or []),
        ],
    })
    await send({"type": "http.response.body", "body": payload})
