"""One contract, three blob stores: local folder, GCS (fake-gcs-server), S3 (moto's server).

The GCS and S3 stores talk HTTP to real servers started here, through the same client
libraries a deployment uses (google-cloud-storage, boto3).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from detectflow.storage import (
    BlobNotFound,
    BlobStore,
    GcsBlobStore,
    LocalBlobStore,
    PreconditionFailed,
    S3BlobStore,
)
from detectflow.storage.gcs import make_gcs_client
from detectflow.storage.s3 import make_s3_client

_bucket_counter = iter(range(10_000))


@pytest.fixture(params=["local", pytest.param("gcs", marks=pytest.mark.emulators), "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    name = f"test-bucket-{next(_bucket_counter)}"
    if request.param == "local":
        return LocalBlobStore(tmp_path / name, bucket=name)
    if request.param == "gcs":
        url = request.getfixturevalue("gcs_url")
        gcs = GcsBlobStore(make_gcs_client("test-project", url), name)
        gcs.create_bucket()
        return gcs
    endpoint = request.getfixturevalue("s3_endpoint")
    s3 = S3BlobStore(make_s3_client(endpoint, "us-east-1"), name)
    s3.create_bucket()
    return s3


def test_put_get_stat_roundtrip(store: BlobStore) -> None:
    info = store.put("a/b/c.jpg", b"\xff\xd8pixels", content_type="image/jpeg",
                     metadata={"filename": "blood cells ✓ 血液.jpg"})
    assert info.key == "a/b/c.jpg" and info.size == 8 and info.generation
    assert store.get("a/b/c.jpg") == b"\xff\xd8pixels"
    stat = store.stat("a/b/c.jpg")
    assert stat is not None
    assert stat.content_type == "image/jpeg"
    assert stat.metadata == {"filename": "blood cells ✓ 血液.jpg"}  # unicode survives (S3!)
    assert stat.size == 8


def test_missing_objects(store: BlobStore) -> None:
    assert store.stat("nope.json") is None
    with pytest.raises(BlobNotFound):
        store.get("nope.json")
    store.delete("nope.json")  # deleting what is not there is not an error


def test_overwrite_changes_generation(store: BlobStore) -> None:
    first = store.put("k.json", b"1")
    second = store.put("k.json", b"22")
    assert store.get("k.json") == b"22"
    assert second.generation != first.generation


def test_if_absent_refuses_to_overwrite(store: BlobStore) -> None:
    store.put("result.json", b'{"first": true}', if_absent=True)
    with pytest.raises(PreconditionFailed):
        store.put("result.json", b'{"second": true}', if_absent=True)
    assert store.get("result.json") == b'{"first": true}'


def test_if_absent_race_has_exactly_one_winner(store: BlobStore) -> None:
    """Eight writers race for one key: the exactly-once result write relies on this."""
    winners: list[int] = []
    losers: list[int] = []
    barrier = threading.Barrier(8)

    def write(index: int) -> None:
        barrier.wait()
        try:
            store.put("race.json", f"writer {index}".encode(), if_absent=True)
            winners.append(index)
        except PreconditionFailed:
            losers.append(index)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(losers) == 7
    assert store.get("race.json") == f"writer {winners[0]}".encode()


def test_list_by_prefix_and_delete(store: BlobStore) -> None:
    for key in ("img1/a.jpg", "img1/b.jpg", "img2/a.jpg", "top.json"):
        store.put(key, key.encode())
    assert sorted(i.key for i in store.list("img1/")) == ["img1/a.jpg", "img1/b.jpg"]
    assert sorted(i.key for i in store.list()) == ["img1/a.jpg", "img1/b.jpg", "img2/a.jpg",
                                                   "top.json"]
    store.delete("img1/a.jpg")
    assert [i.key for i in store.list("img1/")] == ["img1/b.jpg"]
    # a prefix is a string prefix, not a folder: partial names match too
    assert sorted(i.key for i in store.list("img")) == ["img1/b.jpg", "img2/a.jpg"]
    assert [i.key for i in store.list("img2/a")] == ["img2/a.jpg"]
    assert list(store.list("nothing/")) == []


def test_binary_payload_is_byte_exact(store: BlobStore) -> None:
    payload = bytes(range(256)) * 1000
    store.put("blob.bin", payload)
    assert store.get("blob.bin") == payload


@pytest.mark.parametrize(
    "backend", ["local", pytest.param("gcs", marks=pytest.mark.emulators), "s3"])
def test_make_buckets_builds_the_four_roles_from_settings(backend: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest
                                                          ) -> None:
    from detectflow.settings import load_settings
    from detectflow.storage import make_buckets

    suffix = next(_bucket_counter)
    names = {f"{role}_bucket": f"df-{role}-{suffix}"
             for role in ("uploads", "work", "results", "models")}
    if backend == "local":
        settings = load_settings(storage="local", data_dir=tmp_path)
    elif backend == "gcs":
        settings = load_settings(storage="gcs", project="p", **names,
                                 storage_emulator_host=request.getfixturevalue("gcs_url"))
    else:
        settings = load_settings(storage="s3", **names,
                                 s3_endpoint_url=request.getfixturevalue("s3_endpoint"))
    buckets = make_buckets(settings, create=True)
    for role in ("uploads", "work", "results", "models"):
        store = getattr(buckets, role)
        store.put("probe.txt", role.encode())
        assert store.get("probe.txt") == role.encode()
        if backend != "local":
            assert store.bucket == names[f"{role}_bucket"]
    assert [i.key for i in buckets.results.list()] == ["probe.txt"]  # roles are separate
