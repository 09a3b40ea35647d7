"""Every HTML page works in Chromium under the CSP it is served with: the gallery page,
Swagger UI (/docs) and ReDoc (/redoc) from fastapi-offline's files. A violation the browser
reports (a blocked script, style, image, worker or connection) fails the test, and each page
must still render: the CSP allows what they need and nothing was loosened by accident.

The app runs under uvicorn as `detectflow up` configures it (frontend.server), over empty
local folders (no pipeline: these pages need none).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.browser import launched_chromium
from support.serving import serving_app

from frontend import FrontendSettings

pytestmark = pytest.mark.browser

# Collects what the browser reports, from before any script of the page runs.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'}`);
});
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_app(tmp_path_factory.mktemp("csp"), FrontendSettings()) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as instance:
        yield instance


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    yield page
    context.close()


def violations(page: Any, server: str) -> list[str]:
    """What the CSP blocked, except requests to other sites: blocking those is its job (the
    docs must work without internet; ReDoc's footer asks cdn.redoc.ly for a logo)."""
    reported: list[str] = page.evaluate("window.__csp")
    return [v for v in reported if "blocked http" not in v or f"blocked {server}" in v]


def test_swagger_ui_runs_under_its_csp(server: str, page: Any) -> None:
    from playwright.sync_api import expect

    response = page.goto(f"{server}/docs")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    upload = page.locator(".opblock-post", has_text="/api/images").first
    upload.wait_for(timeout=20_000)
    spec = httpx.get(f"{server}/openapi.json").json()
    expect(page.locator(".opblock")).to_have_count(
        sum(len(methods) for methods in spec["paths"].values()))
    upload.locator(".opblock-summary").click()
    expect(upload.locator(".opblock-body")).to_be_visible()
    upload.locator("button.try-out__btn").click()  # "Try it out": the UI's forms work too
    expect(upload.locator("button.execute")).to_be_visible()
    page.wait_for_timeout(500)
    assert violations(page, server) == []


def test_redoc_runs_under_its_csp(server: str, page: Any) -> None:
    from playwright.sync_api import expect

    response = page.goto(f"{server}/redoc")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    expect(page.locator("h1", has_text="detectflow API")).to_be_visible(timeout=20_000)
    search = page.locator("input[placeholder='Search...']")
    search.fill("upload")  # the search index runs in a worker
    expect(page.locator("[data-role='search:results'] li").first).to_be_visible(
        timeout=10_000)
    assert violations(page, server) == []


def test_the_gallery_page_runs_under_its_csp(server: str, page: Any) -> None:
    from playwright.sync_api import expect

    for path in ("/", "/static/index.html"):
        response = page.goto(f"{server}{path}")
        assert "script-src 'self';" in response.headers["content-security-policy"]
        expect(page.locator("#dropzone")).to_be_visible(timeout=20_000)
        page.wait_for_timeout(500)
        assert violations(page, server) == [], path


def test_pages_cannot_be_framed_by_another_site(server: str, page: Any) -> None:
    """A page of another origin that frames /docs gets nothing shown in the frame."""
    page.goto("about:blank")
    page.set_content(f'<iframe id="f" src="{server}/docs"></iframe>')
    page.wait_for_timeout(2000)
    frame = page.frame_locator("#f")
    assert frame.locator(".swagger-ui").count() == 0
