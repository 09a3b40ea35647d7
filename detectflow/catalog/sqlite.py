"""The catalog in one SQLite file (stdlib `sqlite3`, WAL): the embedded default.

Every query the API makes walks an index in order and stops after a page: newest first by
(created_ms, image_id), by status, or by class (a side table with one row per image and class,
kept in step with the records). Counters for the stats are kept by triggers, so stats cost
O(classes), not O(images). One connection per thread; several processes (`detectflow up`,
`detectflow reconcile`) may share the file: WAL lets readers run beside the one writer, and a
writer waits up to `busy_timeout` for another.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from detectflow.catalog.base import (
    STATUS_RANK,
    CatalogPage,
    CatalogQuery,
    CatalogRecord,
    CatalogStats,
    CatalogStatus,
    Cursor,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    image_id TEXT PRIMARY KEY,
    upload_key TEXT NOT NULL,
    filename TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_rank INTEGER NOT NULL,
    updated REAL NOT NULL,
    upload_generation TEXT,
    model_name TEXT,
    model_version TEXT,
    detection_count INTEGER,
    class_counts TEXT NOT NULL DEFAULT '{}',
    error_code TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS images_newest ON images (created_ms DESC, image_id DESC);
CREATE INDEX IF NOT EXISTS images_by_status
    ON images (status, created_ms DESC, image_id DESC);
CREATE INDEX IF NOT EXISTS images_stuck ON images (status, updated);
CREATE TABLE IF NOT EXISTS image_labels (
    label TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    image_id TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (label, created_ms, image_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS image_labels_of ON image_labels (image_id);
CREATE TABLE IF NOT EXISTS status_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS class_totals (label TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS count_insert AFTER INSERT ON images BEGIN
    INSERT INTO status_counts VALUES (new.status, 1)
        ON CONFLICT(status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS count_update AFTER UPDATE OF status ON images
    WHEN old.status != new.status BEGIN
    UPDATE status_counts SET n = n - 1 WHERE status = old.status;
    INSERT INTO status_counts VALUES (new.status, 1)
        ON CONFLICT(status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS count_delete AFTER DELETE ON images BEGIN
    UPDATE status_counts SET n = n - 1 WHERE status = old.status;
    DELETE FROM image_labels WHERE image_id = old.image_id;
END;
CREATE TRIGGER IF NOT EXISTS label_insert AFTER INSERT ON image_labels BEGIN
    INSERT INTO class_totals VALUES (new.label, new.count)
        ON CONFLICT(label) DO UPDATE SET n = n + new.count;
END;
CREATE TRIGGER IF NOT EXISTS label_delete AFTER DELETE ON image_labels BEGIN
    UPDATE class_totals SET n = n - old.count WHERE label = old.label;
END;
"""

COLUMNS = ("image_id", "upload_key", "filename", "created_ms", "status", "status_rank",
           "updated", "upload_generation", "model_name", "model_version", "detection_count",
           "class_counts", "error_code")
# Upsert: identity columns are kept from the first write; a lower status never wins.
UPSERT = f"""
INSERT INTO images ({", ".join(COLUMNS)}) VALUES ({", ".join("?" for _ in COLUMNS)})
ON CONFLICT(image_id) DO UPDATE SET
    status = excluded.status, status_rank = excluded.status_rank, updated = excluded.updated,
    model_name = excluded.model_name, model_version = excluded.model_version,
    detection_count = excluded.detection_count, class_counts = excluded.class_counts,
    error_code = excluded.error_code,
    upload_generation = COALESCE(images.upload_generation, excluded.upload_generation)
WHERE excluded.status_rank >= images.status_rank
"""
SELECT = f"SELECT {', '.join('i.' + c for c in COLUMNS)} FROM images i"


class SqliteCatalog:
    def __init__(self, path: str | Path, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        with self._connection() as db:
            db.executescript(SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s,
                                 isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never torn
            self._local.db = db
        return db

    # Writes -----------------------------------------------------------------------------
    def put(self, record: CatalogRecord) -> None:
        self.put_many([record])

    def put_many(self, records: Iterable[CatalogRecord]) -> int:
        db = self._connection()
        written = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                written += self._upsert(db, record)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return written

    @staticmethod
    def _upsert(db: sqlite3.Connection, record: CatalogRecord) -> int:
        changed = db.execute(UPSERT, _row(record)).rowcount
        if changed:
            created = db.execute("SELECT created_ms FROM images WHERE image_id = ?",
                                 (record.image_id,)).fetchone()[0]
            db.execute("DELETE FROM image_labels WHERE image_id = ?", (record.image_id,))
            db.executemany("INSERT INTO image_labels VALUES (?, ?, ?, ?)", [
                (label, created, record.image_id, count)
                for label, count in record.class_counts.items() if count > 0])
        return int(changed > 0)

    def delete(self, image_id: str) -> None:
        self._connection().execute("DELETE FROM images WHERE image_id = ?", (image_id,))

    # Reads ------------------------------------------------------------------------------
    def get(self, image_id: str) -> CatalogRecord | None:
        row = self._connection().execute(f"{SELECT} WHERE i.image_id = ?",
                                         (image_id,)).fetchone()
        return None if row is None else _record(row)

    def page(self, query: CatalogQuery) -> CatalogPage:
        if query.label is not None and query.status not in (None, "done"):
            return CatalogPage([], None)  # only done images have detections
        where: list[str] = []
        params: list[Any] = []
        table = "i"
        sql = SELECT
        if query.label is not None:
            sql += " JOIN image_labels l ON l.image_id = i.image_id"
            table = "l"
            where.append("l.label = ?")
            params.append(query.label)
        elif query.status is not None:
            where.append("i.status = ?")
            params.append(query.status)
        if query.since_ms is not None:
            where.append(f"{table}.created_ms >= ?")
            params.append(query.since_ms)
        if query.until_ms is not None:
            where.append(f"{table}.created_ms < ?")
            params.append(query.until_ms)
        if query.before is not None:
            where.append(f"({table}.created_ms, {table}.image_id) < (?, ?)")
            params += [query.before.created_ms, query.before.image_id]
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {table}.created_ms DESC, {table}.image_id DESC LIMIT ?"
        rows = self._connection().execute(sql, [*params, query.limit + 1]).fetchall()
        records = [_record(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return CatalogPage(records, Cursor.of(records[-1]) if more and records else None)

    def stats(self, labels: Iterable[str] = ()) -> CatalogStats:
        db = self._connection()
        by_status = {status: n for status, n in
                     db.execute("SELECT status, n FROM status_counts WHERE n > 0")}
        by_class = dict.fromkeys(labels, 0)
        by_class.update({label: n for label, n in
                         db.execute("SELECT label, n FROM class_totals WHERE n > 0")})
        return CatalogStats(by_status, by_class)

    def stuck(self, updated_before: float, limit: int = 1000) -> list[CatalogRecord]:
        rows = self._connection().execute(
            f"{SELECT} WHERE i.status IN ('queued', 'processing') AND i.updated < ? "
            "ORDER BY i.updated LIMIT ?", (updated_before, limit)).fetchall()
        return [_record(row) for row in rows]

    def scan(self) -> Iterator[CatalogRecord]:
        cursor = self._connection().execute(f"{SELECT} ORDER BY i.image_id")
        for row in cursor:
            yield _record(row)

    def states(self) -> Iterator[tuple[str, CatalogStatus]]:
        yield from self._connection().execute("SELECT image_id, status FROM images")

    def count(self) -> int:
        row = self._connection().execute("SELECT COUNT(*) FROM images").fetchone()
        return int(row[0])

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def _row(record: CatalogRecord) -> tuple[Any, ...]:
    return (record.image_id, record.upload_key, record.filename, record.created_ms,
            record.status, STATUS_RANK[record.status], record.updated, record.upload_generation,
            record.model_name, record.model_version, record.detection_count,
            json.dumps(record.class_counts, sort_keys=True), record.error_code)


def _record(row: tuple[Any, ...]) -> CatalogRecord:
    values = dict(zip(COLUMNS, row, strict=True))
    del values["status_rank"]
    values["class_counts"] = json.loads(values["class_counts"])
    return CatalogRecord(**values)
