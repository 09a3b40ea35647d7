"""One contract, two catalogs: SQLite (a file) and Firestore (Google's emulator, through the
google-cloud-firestore client a deployment uses)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from detectflow.catalog import Catalog, CatalogQuery, CatalogRecord, Cursor
from detectflow.catalog.sqlite import SqliteCatalog

_collections = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulators)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        store: Catalog = SqliteCatalog(tmp_path / "catalog.sqlite3")
    else:
        from detectflow.catalog.firestore import FirestoreCatalog

        host = request.getfixturevalue("firestore_host")
        store = FirestoreCatalog("detectflow-test", f"images-{next(_collections)}",
                                 emulator_host=host)
    yield store
    store.close()


def record(n: int, status: str = "queued", **fields: object) -> CatalogRecord:
    """Record n: created n seconds after an epoch, so a higher n is newer."""
    image_id = f"{n:016x}{n:016x}"
    return CatalogRecord(image_id=image_id, upload_key=f"{image_id}/img-{n}.jpg",
                         filename=f"img-{n}.jpg", created_ms=1_700_000_000_000 + n * 1000,
                         status=status, updated=1_000.0 + n, **fields)  # type: ignore[arg-type]


def done(n: int, **counts: int) -> CatalogRecord:
    return record(n, "done", model_name="bccd", model_version="1", class_counts=counts,
                  detection_count=sum(counts.values()))


def ids(records: list[CatalogRecord]) -> list[str]:
    return [r.image_id for r in records]


def test_put_get_delete(catalog: Catalog) -> None:
    assert catalog.get(record(1).image_id) is None
    catalog.put(record(1))
    assert catalog.get(record(1).image_id) == record(1)
    catalog.put(done(1, WBC=2, RBC=1))
    got = catalog.get(record(1).image_id)
    assert got is not None and got.status == "done" and got.class_counts == {"WBC": 2, "RBC": 1}
    catalog.delete(record(1).image_id)
    catalog.delete(record(1).image_id)  # idempotent
    assert catalog.get(record(1).image_id) is None


def test_a_finished_record_keeps_its_upload_time(catalog: Catalog) -> None:
    """The result of a file copied in by other means does not know when it was uploaded;
    the time the earlier record has stays."""
    catalog.put(record(5, "processing"))
    catalog.put(dataclasses.replace(done(5, WBC=1), created_ms=42))
    got = catalog.get(record(5).image_id)
    assert got is not None and got.status == "done"
    assert got.created_ms == record(5).created_ms


def test_pages_newest_first_with_a_cursor(catalog: Catalog) -> None:
    catalog.put_many([record(n) for n in range(7)])
    seen: list[str] = []
    cursor: Cursor | None = None
    for _ in range(4):
        page = catalog.page(CatalogQuery(limit=3, before=cursor))
        seen += ids(page.records)
        cursor = page.next
        if cursor is None:
            break
    assert seen == ids([record(n) for n in reversed(range(7))])
    assert cursor is None


def test_filters_status_label_and_time(catalog: Catalog) -> None:
    catalog.put_many([record(0), record(1, "processing"), done(2, WBC=1), done(3, RBC=4),
                      done(4, WBC=2, Platelets=1), record(5, "failed", error_code="corrupt")])
    def page(**query: object) -> list[str]:
        return ids(catalog.page(CatalogQuery(**query)).records)  # type: ignore[arg-type]

    assert page(status="done") == ids([done(4), done(3), done(2)])
    assert page(status="failed") == ids([record(5)])
    assert page(label="WBC") == ids([done(4), done(2)])
    assert page(label="WBC", status="done") == ids([done(4), done(2)])
    assert page(label="WBC", status="queued") == []
    assert page(label="nothing") == []
    since, until = record(2).created_ms, record(4).created_ms
    assert page(since_ms=since, until_ms=until) == ids([record(3), record(2)])
    assert page(status="done", since_ms=since + 1) == ids([done(4), done(3)])
    first = catalog.page(CatalogQuery(label="WBC", limit=1))
    assert ids(first.records) == ids([done(4)]) and first.next is not None
    assert page(label="WBC", before=first.next) == ids([done(2)])


def test_stats_follow_every_change(catalog: Catalog) -> None:
    catalog.put_many([record(0), record(1), done(2, WBC=1, RBC=3)])
    catalog.put(done(0, WBC=2))
    catalog.put(record(1, "failed", error_code="corrupt"))
    stats = catalog.stats(["WBC", "RBC", "Platelets"])
    assert stats.images_by_status == {"done": 2, "failed": 1}
    assert {k: v for k, v in stats.detections_by_class.items() if v} == {"WBC": 3, "RBC": 3}
    catalog.delete(done(2).image_id)
    stats = catalog.stats(["WBC", "RBC"])
    assert stats.images_by_status == {"done": 1, "failed": 1}
    assert stats.detections_by_class == {"WBC": 2, "RBC": 0}


def test_stuck_lists_old_pending_records_oldest_first(catalog: Catalog) -> None:
    catalog.put_many([record(0), record(1, "processing"), done(2, WBC=1), record(3)])
    stuck = catalog.stuck(updated_before=1_003.0)
    assert ids(stuck) == ids([record(0), record(1)])
    assert ids(catalog.stuck(updated_before=2_000.0, limit=1)) == ids([record(0)])


def test_scan_sees_every_record(catalog: Catalog) -> None:
    catalog.put_many([record(n) for n in range(4)] + [done(4, WBC=1)])
    assert sorted(ids(list(catalog.scan()))) == sorted(ids([record(n) for n in range(5)]))
    assert sorted(catalog.states()) == sorted(
        [(record(n).image_id, "queued") for n in range(4)] + [(record(4).image_id, "done")])


def test_sqlite_never_moves_a_finished_record_back(tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / "c.sqlite3")
    catalog.put(done(1, WBC=1))
    catalog.put(record(1, "processing"))
    got = catalog.get(record(1).image_id)
    assert got is not None and got.status == "done"
    assert catalog.stats().images_by_status == {"done": 1}


def test_sqlite_is_shared_between_threads_and_connections(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "c.sqlite3"
    writers = [threading.Thread(target=lambda n=n: SqliteCatalog(path).put_many(
        [record(n * 100 + i) for i in range(50)])) for n in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    assert SqliteCatalog(path).stats().images_by_status == {"queued": 200}
