"""The web page in a real browser: Debian's Chromium driven by Playwright, against
`detectflow up` (web app + embedded pipeline + the bundled BCCD model) on 127.0.0.1.

Upload a BCCD sample, wait for the boxes, check they are the API's detections drawn in the
right place, filter them with the slider and the class toggles, open the large view, upload a
text file with HTML in its name and see the error (as text). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.browser import launched_chromium
from support.paths import REPO_ROOT

from detectflow.launcher.processes import EmulatorUnavailable
from detectflow.launcher.testing import free_port, start_detectflow_up

pytestmark = pytest.mark.browser

ARTIFACTS = REPO_ROOT / "test-artifacts"
SAMPLE = "BloodImage_00031.jpg"  # 24 annotated cells: RBC, WBC and platelets
RESULT_TIMEOUT_MS = 60_000


@contextmanager
def detectflow_up(bundle: Path, data_dir: Path, **env: str) -> Iterator[str]:
    """`detectflow up` on a free port with its own data folder; its whole process group is
    stopped on exit. `env` adds DETECTFLOW_* settings."""
    port = free_port()
    environ = {"DETECTFLOW_MODEL_CACHE_DIR": str(data_dir / "model-cache"), **env}
    try:
        process = start_detectflow_up(port, data_dir / "data", data_dir / "server.log",
                                      model=bundle, env=environ)
    except EmulatorUnavailable as err:
        pytest.fail(str(err))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop(grace=15)


@pytest.fixture(scope="module")
def server(bccd_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with detectflow_up(bccd_bundle, tmp_path_factory.mktemp("detectflow-up")) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as instance:
        yield instance


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("dialog", lambda dialog: errors.append(f"unexpected dialog: {dialog.message}"))
    yield page
    context.close()
    assert not errors, errors  # no script errors, and no alert() from injected markup


# --- helpers ----------------------------------------------------------------------------------


def drawn_boxes(page: Any, card: Any) -> list[dict[str, Any]]:
    """The boxes the page drew on a card, in image pixels, with their on-screen geometry."""
    result: list[dict[str, Any]] = card.locator("svg.overlay rect.box").evaluate_all(
        """rects => rects.map(r => {
             const b = r.getBoundingClientRect();
             return {label: r.dataset.label, score: Number(r.dataset.score),
                     box: ['x', 'y', 'width', 'height'].map(k => Number(r.getAttribute(k))),
                     screen: [b.left, b.top, b.width, b.height]};
           })"""
    )
    return result


def image_geometry(card: Any) -> dict[str, float]:
    """Where the <img> shows the picture on screen (object-fit: contain letterboxes it)."""
    geometry: dict[str, float] = card.locator(".thumb img").evaluate(
        """img => {
             const b = img.getBoundingClientRect();
             const scale = Math.min(b.width / img.naturalWidth, b.height / img.naturalHeight);
             return {scale, left: b.left + (b.width - img.naturalWidth * scale) / 2,
                     top: b.top + (b.height - img.naturalHeight * scale) / 2};
           }"""
    )
    return geometry


def as_xywh(box: list[float]) -> list[float]:
    x0, y0, x1, y1 = box
    return [x0, y0, x1 - x0, y1 - y0]


Key = tuple[str, float, tuple[float, ...]]


def api_key(det: dict[str, Any]) -> Key:
    """Label, score and box (as x, y, w, h) of an API detection. The box is part of the key:
    an int8 model gives few distinct scores, so several boxes can share label and score."""
    return (det["label"], round(det["score"], 4), tuple(round(v, 2) for v in as_xywh(det["box"])))


def drawn_key(rect: dict[str, Any]) -> Key:
    return (rect["label"], round(rect["score"], 4), tuple(round(v, 2) for v in rect["box"]))


def upload_sample(page: Any, samples_dir: Path) -> tuple[Any, str]:
    page.set_input_files("#file-input", str(samples_dir / "JPEGImages" / SAMPLE))
    card = page.locator("article.card", has_text=SAMPLE).first
    card.locator(".badge-done").wait_for(timeout=RESULT_TIMEOUT_MS)
    image_id = card.get_attribute("data-id")
    assert image_id
    card.locator("svg.overlay rect.box").first.wait_for()
    return card, image_id


# --- the test ---------------------------------------------------------------------------------


def test_upload_see_boxes_filter_and_errors(server: str, page: Any, samples_dir: Path) -> None:
    page.goto(server)
    model = httpx.get(f"{server}/api/models").json()["models"][0]
    # The served model, its classes and mAP are on the page.
    header = page.locator("#model")
    header.get_by_text(model["name"], exact=True).wait_for()
    assert f"v{model['version']}" in header.inner_text()
    if model["metrics"]["map50"] is not None:
        assert f"{model['metrics']['map50']:.2f}" in header.inner_text()
    chips = page.locator("#class-toggles .chip")
    assert chips.all_inner_texts() and [c["name"] for c in model["classes"]] == [
        chip.get_attribute("data-label") for chip in chips.all()
    ]

    card, image_id = upload_sample(page, samples_dir)
    detail = httpx.get(f"{server}/api/images/{image_id}").json()
    assert detail["status"] == "done" and detail["filename"] == SAMPLE
    api_dets = detail["detections"]
    assert len(api_dets) >= 5, "the bundled model should find cells in a BCCD image"

    # 1. Every detection the API returned is drawn, at its xyxy box, in the right place.
    threshold = float(page.locator("#threshold").input_value())
    expected = [d for d in api_dets if d["score"] >= threshold]
    drawn = drawn_boxes(page, card)
    assert sorted(drawn_key(d) for d in drawn) == sorted(api_key(d) for d in expected)
    geometry = image_geometry(card)
    for box in drawn:  # each <rect> sits on screen where its box is on the shown image
        want = box["box"]
        on_screen = [
            geometry["left"] + want[0] * geometry["scale"],
            geometry["top"] + want[1] * geometry["scale"],
            want[2] * geometry["scale"],
            want[3] * geometry["scale"],
        ]
        assert box["screen"] == pytest.approx(on_screen, abs=1.5)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-boxes.png"))

    # 2. Moving the confidence slider (keyboard, like a person) hides low scores live.
    scores = sorted(d["score"] for d in expected)
    target = scores[len(scores) // 2]  # the median: strictly fewer boxes above it
    slider = page.locator("#threshold")
    slider.focus()
    steps = round((target - threshold) / 0.01) + 1
    requests_before = _count_requests(page)
    for _ in range(steps):
        page.keyboard.press("ArrowRight")
    new_threshold = float(slider.input_value())
    assert new_threshold > threshold
    remaining = [d for d in expected if d["score"] >= new_threshold]
    assert 0 < len(remaining) < len(expected)
    assert sorted(drawn_key(d) for d in drawn_boxes(page, card)) == sorted(
        api_key(d) for d in remaining
    )
    assert page.locator("#threshold-value").inner_text() == f"{new_threshold:.2f}"
    assert _count_requests(page) == requests_before, "filtering must not call the server"

    # 3. A class toggle hides that class, and brings it back.
    top_label = max(remaining, key=lambda d: d["score"])["label"]
    chip = page.locator(f"#class-toggles .chip[data-label='{top_label}']")
    chip.click()
    assert chip.get_attribute("aria-pressed") == "false"
    assert all(d["label"] != top_label for d in drawn_boxes(page, card))
    chip.click()
    assert len(drawn_boxes(page, card)) == len(remaining)

    # 4. Clicking opens the large view with a table of the (filtered) detections.
    card.locator(".thumb").click()
    viewer = page.locator("#viewer")
    viewer.wait_for(state="visible")
    assert viewer.locator("#viewer-title").inner_text() == SAMPLE
    assert viewer.locator("tbody tr").count() == len(remaining)
    assert viewer.locator("#viewer-overlay rect.box").count() == len(remaining)
    first_row = viewer.locator("tbody tr").first.inner_text()
    best = max(remaining, key=lambda d: d["score"])
    assert best["label"] in first_row and f"{best['score']:.3f}" in first_row
    page.screenshot(path=str(ARTIFACTS / "browser-viewer.png"))
    page.keyboard.press("Escape")
    viewer.wait_for(state="hidden")

    # 5. A text file (with markup in its name) is refused, and the page says why, as text.
    evil_name = 'notes <img src=x onerror="alert(1)">.txt'
    page.set_input_files(
        "#file-input",
        files=[{"name": evil_name, "mimeType": "text/plain", "buffer": b"just some notes\n"}],
    )
    bad = page.locator("article.card[data-status='refused']").first
    bad.wait_for(timeout=15_000)
    assert bad.locator(".error").inner_text() == "The file is not an image we can read."
    assert bad.locator(".name").inner_text() == evil_name
    assert bad.locator(".name img").count() == 0  # rendered as text, not parsed as HTML
    assert bad.locator(".badge").inner_text() == "Not uploaded"
    page.screenshot(path=str(ARTIFACTS / "browser.png"))


def test_gallery_survives_a_reload_and_fits_a_phone(
    server: str, page: Any, samples_dir: Path
) -> None:
    page.goto(server)
    _card, image_id = upload_sample(page, samples_dir)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    card = page.locator(f"article.card[data-id='{image_id}']")
    card.locator("svg.overlay rect.box").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-phone.png"), full_page=True)


def _count_requests(page: Any) -> int:
    """Requests the page made, leaving out /api/stats: the page refreshes the stats on a timer
    after each change (main.js STATS_DELAYS_MS), which can land in the middle of a check."""
    count: int = page.evaluate(
        "() => performance.getEntriesByType('resource')"
        ".filter((e) => !new URL(e.name).pathname.startsWith('/api/stats')).length")
    return count


def test_api_key_is_asked_for_once_and_used_for_everything(
    bccd_bundle: Path, tmp_path: Path, page: Any, samples_dir: Path
) -> None:
    from playwright.sync_api import expect

    with detectflow_up(bccd_bundle, tmp_path, DETECTFLOW_API_KEY="lab-key-42") as base:
        assert httpx.get(f"{base}/api/images").status_code == 401
        page.goto(base)
        form = page.locator("#key-form")
        form.wait_for(state="visible")
        page.fill("#key-input", "wrong")
        page.click("#key-form button")
        expect(page.locator("#key-error")).to_have_text("The API key is not valid.")
        page.fill("#key-input", "lab-key-42")
        page.click("#key-form button")
        form.wait_for(state="hidden")
        card, image_id = upload_sample(page, samples_dir)
        # Images come from /api too: fetched with the key, shown from blob: URLs.
        img = card.locator(".thumb img")
        assert (img.get_attribute("src") or "").startswith("blob:")
        assert img.evaluate("i => i.naturalWidth") == 640
        detail = httpx.get(
            f"{base}/api/images/{image_id}", headers={"X-API-Key": "lab-key-42"}
        ).json()
        assert len(drawn_boxes(page, card)) == len(detail["detections"])
        page.reload()  # the key is remembered by this browser
        page.locator(f"article.card[data-id='{image_id}'] svg.overlay rect.box").first.wait_for()
        expect(page.locator("#key-form")).to_be_hidden()


def test_api_docs_render_without_internet(server: str, page: Any) -> None:
    """Swagger UI at /docs draws every operation with no request leaving the machine."""
    from playwright.sync_api import expect

    outside: list[str] = []

    def block_outside(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", block_outside)
    page.goto(f"{server}/docs")
    upload = page.locator(".opblock-post", has_text="/api/images").first
    upload.wait_for(timeout=20_000)
    spec = httpx.get(f"{server}/openapi.json").json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    expect(page.locator(".opblock")).to_have_count(operations)
    upload.locator(".opblock-summary").click()  # expands: the UI is live, not a static dump
    expect(upload.locator(".opblock-body")).to_be_visible()
    assert outside == [], f"/docs asked the internet for {outside}"


def test_filters_delete_and_export(server: str, page: Any, samples_dir: Path,
                                   tmp_path: Path) -> None:
    """Status and class filters come from the API; the header counts are /api/stats; the
    export downloads the filter's results; delete asks first, then the image is gone."""
    import csv
    import math

    from playwright.sync_api import expect

    page.goto(server)
    model = httpx.get(f"{server}/api/models").json()["models"][0]
    # The slider starts at the served model's threshold (the API's, not a number in the page).
    page.locator("#threshold-value").filter(has_text=".").wait_for()
    floor = math.floor(model["score_threshold"] * 100) / 100
    assert float(page.locator("#threshold").input_value()) == pytest.approx(floor)

    sample = (samples_dir / "JPEGImages" / SAMPLE).read_bytes()
    page.set_input_files("#file-input", files=[
        {"name": "cut.jpg", "mimeType": "image/jpeg", "buffer": sample[:3000]},
        {"name": "whole.jpg", "mimeType": "image/jpeg", "buffer": sample}])
    cut = page.locator("article.card", has_text="cut.jpg").first
    cut.locator(".badge-failed").wait_for(timeout=RESULT_TIMEOUT_MS)
    whole = page.locator("article.card", has_text="whole.jpg").first
    whole.locator(".badge-done").wait_for(timeout=RESULT_TIMEOUT_MS)
    cut_id = cut.get_attribute("data-id")
    assert cut_id

    # Header counts are the API's stats (which may lag a changed gallery by their cache time).
    total = len(httpx.get(f"{server}/api/images", params={"limit": 200}).json()["images"])
    expect(page.locator("#stats")).to_contain_text(f"{total} images")
    assert httpx.get(f"{server}/api/stats").json()["total"] == total

    cards = page.locator("#gallery article.card")

    def shown() -> list[str]:
        return sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.id)"))

    def api_ids(**params: str) -> list[str]:
        listing = httpx.get(f"{server}/api/images", params={"limit": 200, **params}).json()
        return sorted(image["id"] for image in listing["images"])

    page.select_option("#filter-status", "failed")
    expect(cards).to_have_count(len(api_ids(status="failed")))
    assert shown() == api_ids(status="failed") and cut_id in shown()
    page.select_option("#filter-status", "")
    page.select_option("#filter-label", "WBC")
    expect(cards).to_have_count(len(api_ids(label="WBC")))
    assert shown() == api_ids(label="WBC") and cut_id not in shown()
    page.screenshot(path=str(ARTIFACTS / "browser-filters.png"))

    # Export: the download is the filter's CSV.
    with page.expect_download() as info:
        page.click("#export-csv")
    saved = tmp_path / "export.csv"
    info.value.save_as(saved)
    rows = list(csv.DictReader(saved.open()))
    assert sorted(row["id"] for row in rows) == api_ids(label="WBC")
    assert all(int(row["WBC"]) >= 1 for row in rows)

    # Delete: asks first (in the page, not a browser dialog), then removes it everywhere.
    page.select_option("#filter-label", "")
    target = page.locator(f"article.card[data-id='{cut_id}']")
    target.locator(".thumb").click()
    page.locator("#viewer").wait_for(state="visible")
    page.click("#viewer-delete")
    expect(page.locator("#delete-confirm")).to_be_visible()
    page.click("#delete-no")
    expect(page.locator("#delete-confirm")).to_be_hidden()
    assert httpx.get(f"{server}/api/images/{cut_id}").status_code == 200
    page.click("#viewer-delete")
    page.click("#delete-yes")
    page.locator("#viewer").wait_for(state="hidden")
    expect(target).to_have_count(0)
    assert httpx.get(f"{server}/api/images/{cut_id}").status_code == 404
    expect(page.locator("#stats")).to_contain_text(f"{total - 1} images")


def test_scrolling_to_the_end_loads_older_pages(server: str, page: Any, samples_dir: Path
                                                ) -> None:
    from playwright.sync_api import expect

    sample = (samples_dir / "JPEGImages" / SAMPLE).read_bytes()
    files = [("file", (f"scroll-{i}.jpg", sample, "image/jpeg")) for i in range(20)]
    for _ in range(2):  # more than one page (24) in any case
        assert httpx.post(f"{server}/api/images", files=files, timeout=60).status_code == 202
    total = len(httpx.get(f"{server}/api/images", params={"limit": 200}).json()["images"])
    assert total > 24
    page.set_viewport_size({"width": 1280, "height": 700})
    page.goto(server)
    cards = page.locator("#gallery article.card")
    expect(cards).to_have_count(24)
    for _ in range(20):  # to the end, as a person scrolls, until nothing more comes
        page.mouse.wheel(0, 100_000)
        page.wait_for_timeout(500)
        if cards.count() == total:
            break
    expect(cards).to_have_count(total)
    assert page.locator("#more").is_hidden()  # the last page has no cursor
