"""The gallery's API over the catalog: filters and cursor, stats, delete, inline results on
upload, exports; and the clear 4xx (one JSON error shape) for bad input on all of it.

As in test_api.py, the pipeline is not running: tests write what it would write.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api_app import (
    DETECTIONS,
    catalog_of,
    error_of,
    jpeg_bytes,
    make_client,
    upload,
    write_result,
)

from detectflow import layout
from detectflow.detection import Detection
from detectflow.records import ErrorInfo
from detectflow.storage import Buckets

WBC_ONLY = [Detection("WBC", 1, 0.9, (1.0, 1.0, 9.0, 9.0))]


@pytest.fixture
def gallery(client: TestClient, buckets: Buckets) -> dict[str, str]:
    """Five uploads: 0 queued, 1 processing, 2 done (3 classes), 3 done (WBC), 4 failed."""
    ids = {f"{i}": upload(client, (f"{i}.jpg", jpeg_bytes()))[0]["id"] for i in range(5)}
    buckets.work.put(layout.work_key(ids["1"]), b"prepared")
    from detectflow.catalog import upload_entry

    catalog_of(buckets).put(upload_entry(ids["1"], f"{ids['1']}/1.jpg", "processing"))
    write_result(buckets, ids["2"], detections=DETECTIONS, filename="2.jpg")
    write_result(buckets, ids["3"], detections=WBC_ONLY, filename="3.jpg")
    write_result(buckets, ids["4"], status="failed", filename="4.jpg",
                 error=ErrorInfo(code="corrupt", message="The image is damaged."))
    return ids


def listed(client: TestClient, **params: object) -> list[str]:
    response = client.get("/api/images", params=params)
    assert response.status_code == 200, response.text
    return [image["filename"] for image in response.json()["images"]]


def test_filters_by_status_label_and_time(client: TestClient, gallery: dict[str, str]) -> None:
    assert listed(client) == ["4.jpg", "3.jpg", "2.jpg", "1.jpg", "0.jpg"]
    assert listed(client, status="done") == ["3.jpg", "2.jpg"]
    assert listed(client, status="processing") == ["1.jpg"]
    assert listed(client, status="failed") == ["4.jpg"]
    assert listed(client, label="WBC") == ["3.jpg", "2.jpg"]
    assert listed(client, label="Platelets") == ["2.jpg"]
    assert listed(client, label="WBC", status="queued") == []
    images = client.get("/api/images").json()["images"]
    created = {image["filename"]: image["created"] for image in images}
    assert listed(client, since=created["1.jpg"], until=created["3.jpg"]) == ["2.jpg", "1.jpg"]
    done = {i["filename"]: i for i in images}
    assert done["2.jpg"]["class_counts"] == {"RBC": 1, "WBC": 1, "Platelets": 1}
    assert done["2.jpg"]["detection_count"] == 3
    assert done["4.jpg"]["error_code"] == "corrupt"


def test_a_filtered_listing_pages_with_its_cursor(client: TestClient, buckets: Buckets) -> None:
    ids = [upload(client, (f"{i}.jpg", jpeg_bytes()))[0]["id"] for i in range(5)]
    for image_id in ids:
        write_result(buckets, image_id, detections=WBC_ONLY)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, object] = {"label": "WBC", "limit": 2}
        if cursor:
            params["before"] = cursor
        page = client.get("/api/images", params=params).json()
        seen += [image["id"] for image in page["images"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_stats_count_images_by_status_and_detections_by_class(
    client: TestClient, gallery: dict[str, str]
) -> None:
    stats = client.get("/api/stats").json()
    assert stats == {
        "images": {"queued": 1, "processing": 1, "done": 2, "failed": 1},
        "total": 5,
        "detections": {"RBC": 1, "WBC": 2, "Platelets": 1},
    }


def test_delete_removes_everything_and_is_404_afterwards(
    client: TestClient, buckets: Buckets, gallery: dict[str, str]
) -> None:
    image_id = gallery["2"]
    buckets.work.put(f"{image_id}.error.json", b"{}")
    response = client.delete(f"/api/images/{image_id}")
    assert response.status_code == 204 and response.content == b""
    assert not list(buckets.uploads.list(prefix=f"{image_id}/"))
    assert buckets.results.stat(f"{image_id}.json") is None
    assert buckets.work.stat(f"{image_id}.error.json") is None
    assert catalog_of(buckets).get(image_id) is None
    for path in ("", "/original", "/annotated"):
        assert client.get(f"/api/images/{image_id}{path}").status_code == 404
    again = client.delete(f"/api/images/{image_id}")
    assert again.status_code == 404 and error_of(again)["code"] == "not_found"
    assert "2.jpg" not in listed(client)
    stats = client.get("/api/stats").json()
    assert stats["total"] == 4
    assert stats["detections"] == {"RBC": 0, "WBC": 1, "Platelets": 0}


def test_delete_a_file_copied_into_the_bucket(client: TestClient, buckets: Buckets) -> None:
    """An upload whose key has no id (copied in by other means) is found through its result
    and catalog record."""
    from detectflow.catalog import upload_entry

    info = buckets.uploads.put("scans/a b.jpg", jpeg_bytes(), "image/jpeg")
    image_id = layout.image_id_for_upload(info.key, info.generation)
    catalog_of(buckets).put(upload_entry(image_id, info.key, "processing"))
    assert client.delete(f"/api/images/{image_id}").status_code == 204
    assert buckets.uploads.stat("scans/a b.jpg") is None


def test_upload_with_wait_returns_the_results_inline(
    client: TestClient, buckets: Buckets
) -> None:
    def finish_soon() -> None:  # the pipeline, as far as the API can tell
        for _ in range(200):
            images = list(buckets.uploads.list())
            if len(images) == 2:
                for info in images:
                    write_result(buckets, info.key.split("/")[0], detections=DETECTIONS,
                                 filename=info.key.split("/")[1])
                return
            threading.Event().wait(0.01)

    worker = threading.Thread(target=finish_soon)
    worker.start()
    response = client.post("/api/images", params={"wait": 10}, files=[
        ("file", ("a.jpg", jpeg_bytes(), "image/jpeg")),
        ("file", ("b.jpg", jpeg_bytes(), "image/jpeg"))])
    worker.join()
    assert response.status_code == 200, response.text
    images = response.json()["images"]
    assert [i["status"] for i in images] == ["done", "done"]
    assert [i["result"]["filename"] for i in images] == ["a.jpg", "b.jpg"]
    assert len(images[0]["result"]["detections"]) == 3


def test_upload_with_wait_answers_202_when_not_ready(client: TestClient) -> None:
    response = client.post("/api/images", params={"wait": 0.2},
                           files=[("file", ("a.jpg", jpeg_bytes(), "image/jpeg"))])
    assert response.status_code == 202
    (image,) = response.json()["images"]
    assert image["status"] == "queued" and image["result"] is None


def test_csv_export_has_counts_per_image_for_the_filter(
    client: TestClient, gallery: dict[str, str]
) -> None:
    response = client.get("/api/export", params={"format": "csv", "status": "done"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["filename"], r["detections"], r["RBC"], r["WBC"], r["Platelets"])
            for r in rows] == [("3.jpg", "1", "0", "1", "0"), ("2.jpg", "3", "1", "1", "1")]
    everything = list(csv.DictReader(io.StringIO(client.get("/api/export").text)))
    assert len(everything) == 5
    assert {r["filename"]: r["error_code"] for r in everything}["4.jpg"] == "corrupt"


def test_coco_export_is_valid_coco(client: TestClient, gallery: dict[str, str],
                                   tmp_path: Path) -> None:
    response = client.get("/api/export", params={"format": "coco", "label": "Platelets"})
    assert response.status_code == 200
    coco = json.loads(response.text)
    assert [i["file_name"] for i in coco["images"]] == ["2.jpg"]
    assert coco["images"][0]["width"] == 64 and coco["images"][0]["height"] == 48
    assert {c["name"]: c["id"] for c in coco["categories"]} == {"RBC": 1, "WBC": 2,
                                                                "Platelets": 3}
    wbc = next(a for a in coco["annotations"] if a["category_id"] == 2)
    assert wbc["bbox"] == [30.0, 10.0, 30.0, 30.0] and wbc["score"] == 0.93  # xywh pixels
    # pycocotools reads it as detections of that image.
    from pycocotools.coco import COCO

    path = tmp_path / "export.json"
    path.write_text(response.text)
    loaded = COCO(str(path))
    assert len(loaded.getAnnIds(imgIds=[1])) == 3


# --- bad input: clear 4xx, one JSON shape, never a 500 ----------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/api/images", {"status": "finished"}, "invalid_request"),
        ("/api/images", {"status": ""}, "invalid_request"),
        ("/api/images", {"label": "Dog"}, "unknown_label"),
        ("/api/images", {"label": ""}, "invalid_request"),
        ("/api/images", {"label": "x" * 101}, "invalid_request"),
        ("/api/images", {"since": "yesterday"}, "invalid_request"),
        ("/api/images", {"until": "2026-13-45"}, "invalid_request"),
        ("/api/images", {"since": "2026-02-01", "until": "2026-01-01"}, "invalid_range"),
        ("/api/images", {"before": "not-a-cursor"}, "invalid_cursor"),
        ("/api/images", {"before": "99999999999999999999-" + "a" * 32}, "invalid_cursor"),
        ("/api/images", {"limit": 201}, "invalid_request"),
        ("/api/export", {"format": "xlsx"}, "invalid_request"),
        ("/api/export", {"label": "Cat"}, "unknown_label"),
        ("/api/export", {"before": "x"}, None),  # not a parameter of the export: ignored
    ],
)
def test_bad_filters_are_clear_4xx(client: TestClient, path: str, params: dict[str, object],
                                   code: str | None) -> None:
    response = client.get(path, params=params)
    if code is None:
        assert response.status_code == 200
        return
    assert response.status_code == 422, response.text
    assert error_of(response)["code"] == code


@pytest.mark.parametrize("wait", [-1, 31, "soon", "nan"])
def test_wait_out_of_range_is_422(client: TestClient, buckets: Buckets, wait: object) -> None:
    response = client.post("/api/images", params={"wait": wait},
                           files=[("file", ("a.jpg", jpeg_bytes(), "image/jpeg"))])
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_request"
    assert not list(buckets.uploads.list())  # refused before anything was stored


@pytest.mark.parametrize("bad_id", ["123", "G" * 32, "A" * 32, "0" * 33, "..", "a b"])
def test_deleting_a_malformed_id_is_422_and_touches_nothing(
    client: TestClient, buckets: Buckets, bad_id: str
) -> None:
    upload(client, ("keep.jpg", jpeg_bytes()))
    response = client.delete(f"/api/images/{bad_id}")
    assert response.status_code in (404, 422)
    error_of(response)
    assert len(list(buckets.uploads.list())) == 1


def test_deleting_an_unknown_id_is_404(client: TestClient) -> None:
    response = client.delete(f"/api/images/{layout.new_image_id()}")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_delete_needs_the_api_key(buckets: Buckets) -> None:
    client = make_client(buckets, api_key="k")
    image_id = upload_with_key(client)
    assert client.delete(f"/api/images/{image_id}").status_code == 401
    assert client.delete(f"/api/images/{image_id}", headers={"X-API-Key": "k"}).status_code == 204


def upload_with_key(client: TestClient) -> str:
    response = client.post("/api/images", headers={"X-API-Key": "k"},
                           files=[("file", ("a.jpg", jpeg_bytes(), "image/jpeg"))])
    image_id: str = response.json()["images"][0]["id"]
    return image_id
