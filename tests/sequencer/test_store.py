"""The ObjectStore contract, run against every backend, plus what is particular to each.

The contract suite runs on a local directory (tmp_path), on S3 (moto in server mode on loopback,
one fresh bucket per test) and in memory. S3 retries are exercised through a small fault-injecting
HTTP proxy in front of moto, so the real boto3 client sees real 503s, 500s and dropped connections.
"""

from __future__ import annotations

import http.client
import multiprocessing
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stelae.errors import StelaeError
from stelae.sequencer.local import LocalStore, content_version
from stelae.sequencer.s3 import S3Store
from stelae.sequencer.store import (
    ImmutableConflictError,
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
    StoreError,
    TransientStoreError,
    Versioned,
)
from stelae.tiles.errors import FormatError, NotFoundError
from stelae.tiles.paths import ObjectClass, object_class_for_key, validate_key
from tests.support.memory import MemoryStore, WriteEvent
from tests.support.objects import holds

BACKENDS = ["local", "s3", "memory"]

StoreFactory = Callable[[], ObjectStore]


def _new_bucket(moto_server: Any) -> str:
    bucket = f"stelae-{uuid.uuid4().hex[:16]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes stores that all share one underlying storage (two sequencers on one log)."""
    if request.param == "local":
        return lambda: LocalStore(tmp_path / "log")
    if request.param == "s3":
        moto = request.getfixturevalue("moto_server")
        bucket = _new_bucket(moto)
        return lambda: S3Store(bucket, prefix="logs/a", client=moto.client("s3"))
    memory = MemoryStore()
    return lambda: memory


@pytest.fixture
def store(make_store: StoreFactory) -> ObjectStore:
    return make_store()


# ---------------------------------------------------------------------------------------------
# Object classes and the layout


@pytest.mark.parametrize(
    ("key", "cls"),
    [
        ("checkpoint", ObjectClass.CHECKPOINT),
        ("checkpoints/0000000000000042", ObjectClass.CHECKPOINT_HISTORY),
        ("tile/0/000", ObjectClass.TILE),
        ("tile/1/x001/234.p/17", ObjectClass.TILE),
        ("tile/entries/000", ObjectClass.BUNDLE),
        ("tile/entries/x001/273.p/112", ObjectClass.BUNDLE),
        ("index/sha256/ab/abcdef", ObjectClass.INDEX),
        ("index/leaf/" + "ab" * 32, ObjectClass.ENTRY_LEAF_INDEX),
        ("index/leaf", ObjectClass.INDEX),
        (".state/sequencer.json", ObjectClass.STATE),
        ("checkpoint/extra", None),
        ("tile", None),
        ("README", None),
        ("", None),
        ("/checkpoint", None),
        ("tile/../.state/x", None),
        ("tile/0/.000.lock", None),
        ("tile\\0\\000", None),
    ],
)
def test_object_class_for_key(key: str, cls: ObjectClass | None) -> None:
    assert object_class_for_key(key) is cls


def test_object_classes_are_distinct_and_declared_once() -> None:
    # TILE and BUNDLE share every header; they must still be two members, not aliases.
    assert len(ObjectClass) == 10
    immutable = (
        ObjectClass.TILE,
        ObjectClass.BUNDLE,
        ObjectClass.CHECKPOINT_HISTORY,
        ObjectClass.ENTRY_LEAF_INDEX,
    )
    for cls in immutable:
        assert cls.immutable and cls.public
        assert "immutable" in cls.cache_control
    assert ObjectClass.TILE.content_type == "application/octet-stream"
    assert ObjectClass.CHECKPOINT.content_type == "text/plain; charset=utf-8"
    assert ObjectClass.CHECKPOINT.cache_control == "no-cache"
    assert not ObjectClass.CHECKPOINT.immutable
    assert not ObjectClass.STATE.public
    assert not ObjectClass.INDEX.immutable


# ---------------------------------------------------------------------------------------------
# The contract, on every backend


def test_missing_object(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as info:
        store.get("tile/0/000")
    assert isinstance(info.value, NotFoundError)
    assert isinstance(info.value, LookupError)
    assert "tile/0/000" in str(info.value)
    with pytest.raises(ObjectNotFound):
        store.get_versioned("checkpoint")


def test_a_prefix_of_keys_is_not_an_object(store: ObjectStore) -> None:
    store.put_immutable("tile/0/000", b"t", ObjectClass.TILE)
    with pytest.raises(ObjectNotFound):
        store.get("tile/0")


def test_put_immutable_creates(store: ObjectStore) -> None:
    store.put_immutable("tile/0/000", b"\x00" * 8192, ObjectClass.TILE)
    assert store.get("tile/0/000") == b"\x00" * 8192


def test_put_immutable_same_bytes_is_idempotent(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    first.put_immutable("tile/entries/000.p/3", b"bundle", ObjectClass.BUNDLE)
    first.put_immutable("tile/entries/000.p/3", b"bundle", ObjectClass.BUNDLE)
    second.put_immutable("tile/entries/000.p/3", b"bundle", ObjectClass.BUNDLE)
    assert second.get("tile/entries/000.p/3") == b"bundle"


def test_put_immutable_different_bytes_is_loud(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    first.put_immutable("tile/0/000.p/1", b"original", ObjectClass.TILE)
    with pytest.raises(ImmutableConflictError) as info:
        second.put_immutable("tile/0/000.p/1", b"forged", ObjectClass.TILE)
    err = info.value
    assert err.key == "tile/0/000.p/1"
    assert err.existing_sha256 == content_version(b"original")
    assert err.attempted_sha256 == content_version(b"forged")
    assert err.existing_sha256 in str(err) and err.attempted_sha256 in str(err)
    assert first.get("tile/0/000.p/1") == b"original"


def test_put_if_create_if_absent(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    version = first.put_if("checkpoint", b"size 1\n", ObjectClass.CHECKPOINT, None)
    with pytest.raises(PreconditionFailed) as info:
        second.put_if("checkpoint", b"size 1 forked\n", ObjectClass.CHECKPOINT, None)
    assert info.value.expected is None
    assert first.get_versioned("checkpoint").version == version
    assert first.get("checkpoint") == b"size 1\n"


def test_put_if_swaps_and_returns_the_new_version(store: ObjectStore) -> None:
    v1 = store.put_if("checkpoint", b"one\n", ObjectClass.CHECKPOINT, None)
    assert store.get_versioned("checkpoint").version == v1
    v2 = store.put_if("checkpoint", b"two\n", ObjectClass.CHECKPOINT, v1)
    assert v2 != v1
    got = store.get_versioned("checkpoint")
    assert (got.data, got.version) == (b"two\n", v2)
    with pytest.raises(PreconditionFailed):
        store.put_if("checkpoint", b"stale\n", ObjectClass.CHECKPOINT, v1)
    assert store.get("checkpoint") == b"two\n"


def test_put_if_expecting_a_version_of_a_missing_object_loses(store: ObjectStore) -> None:
    other = MemoryStore().put_if("checkpoint", b"x\n", ObjectClass.CHECKPOINT, None)
    for version in ('"d41d8cd98f00b204e9800998ecf8427e"', content_version(b"x\n"), other):
        with pytest.raises(PreconditionFailed):
            store.put_if("checkpoint", b"x\n", ObjectClass.CHECKPOINT, version)
    assert not holds(store, "checkpoint")


def test_two_writers_from_one_version_exactly_one_wins(make_store: StoreFactory) -> None:
    a, b = make_store(), make_store()
    a.put_if("checkpoint", b"size 0\n", ObjectClass.CHECKPOINT, None)
    seen_a = a.get_versioned("checkpoint")
    seen_b = b.get_versioned("checkpoint")
    assert seen_a == seen_b
    a.put_if("checkpoint", b"size 5 from a\n", ObjectClass.CHECKPOINT, seen_a.version)
    with pytest.raises(PreconditionFailed) as info:
        b.put_if("checkpoint", b"size 5 from b\n", ObjectClass.CHECKPOINT, seen_b.version)
    assert info.value.expected == seen_b.version
    assert b.get("checkpoint") == b"size 5 from a\n"


def test_put_if_replaces_any_mutable_class(store: ObjectStore) -> None:
    first = store.put_if("index/sha256/ab", b'{"a": 1}', ObjectClass.INDEX, None)
    second = store.put_if("index/sha256/ab", b'{"a": 2}', ObjectClass.INDEX, first)
    assert store.get_versioned("index/sha256/ab") == Versioned(b'{"a": 2}', second)
    with pytest.raises(PreconditionFailed):
        store.put_if("index/sha256/ab", b'{"a": 3}', ObjectClass.INDEX, first)
    assert store.get("index/sha256/ab") == b'{"a": 2}'


@pytest.mark.parametrize(
    ("key", "cls"),
    [
        ("tile/0/000", ObjectClass.TILE),
        ("tile/entries/000", ObjectClass.BUNDLE),
        ("checkpoints/1", ObjectClass.CHECKPOINT_HISTORY),
        ("index/leaf/00ff", ObjectClass.ENTRY_LEAF_INDEX),
    ],
)
def test_immutable_classes_refuse_overwrite_and_cas(
    store: ObjectStore, key: str, cls: ObjectClass
) -> None:
    assert cls.immutable
    with pytest.raises(FormatError, match="immutable"):
        store.put_if(key, b"data", cls, None)
    assert not holds(store, key)


BAD_KEYS = [
    "",
    "/checkpoint",
    "tile//0/000",
    "tile/0/000/",
    "tile/../checkpoint",
    "../outside",
    "tile/./0",
    "tile\\0\\000",
    "tile/0/.000.lock",
    ".tmp/x",
    "tile/0/\x00",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_refused_before_any_request(store: ObjectStore, key: str) -> None:
    operations: list[Callable[[], object]] = [
        lambda: store.get(key),
        lambda: store.get_versioned(key),
        lambda: store.put_immutable(key, b"x", ObjectClass.TILE),
        lambda: store.put_if(key, b"x", ObjectClass.STATE, None),
    ]
    for op in operations:
        with pytest.raises(FormatError) as info:
            op()
        assert repr(key) in str(info.value) or (key == "" and "empty" in str(info.value))
    assert store.counters.as_dict() == {"GET": 0, "PUT": 0, "HEAD": 0, "DELETE": 0}


def test_class_must_match_the_layout(store: ObjectStore) -> None:
    with pytest.raises(FormatError, match="is a TILE"):
        store.put_immutable("tile/0/000", b"x", ObjectClass.BUNDLE)
    with pytest.raises(FormatError, match="is a CHECKPOINT"):
        store.put_if("checkpoint", b"x", ObjectClass.INDEX, None)
    assert not holds(store, "tile/0/000")
    assert not holds(store, "checkpoint")


def test_empty_objects_are_refused(store: ObjectStore) -> None:
    with pytest.raises(FormatError, match="empty"):
        store.put_immutable("tile/0/000.p/1", b"", ObjectClass.TILE)
    with pytest.raises(FormatError, match="empty"):
        store.put_if("checkpoint", b"", ObjectClass.CHECKPOINT, None)
    assert not holds(store, "tile/0/000.p/1")


def test_counters_count_requests(store: ObjectStore) -> None:
    store.put_immutable("tile/0/000", b"t", ObjectClass.TILE)
    store.get("tile/0/000")
    store.get_versioned("tile/0/000")
    store.put_if("index/a", b"{}", ObjectClass.INDEX, None)
    assert store.counters.as_dict() == {"GET": 2, "PUT": 2, "HEAD": 0, "DELETE": 0}
    assert store.counters["GET"] == 2
    store.counters.reset()
    assert dict(store.counters) == {"GET": 0, "PUT": 0, "HEAD": 0, "DELETE": 0}


def test_errors_are_stelae_errors() -> None:
    for err in (
        ObjectNotFound("k"),
        ImmutableConflictError("k", b"a", b"b"),
        PreconditionFailed("k", None),
        TransientStoreError("k"),
    ):
        assert isinstance(err, StoreError)
        assert isinstance(err, StelaeError)


# Threads racing on one store. Not run on S3: moto's own conditional checks are not atomic under
# concurrent requests, so such a race would test moto. S3's CAS is covered by the sequential
# two-writer test above against moto's (and S3's) documented semantics.
LOCKED_BACKENDS = ["local", "memory"]


@pytest.fixture(params=LOCKED_BACKENDS)
def make_locked_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if request.param == "local":
        return lambda: LocalStore(tmp_path / "log")
    memory = MemoryStore()
    return lambda: memory


def _cas_increment(store: ObjectStore, key: str, times: int) -> list[int]:
    """Increment the counter at ``key`` by CAS ``times`` times; the values this caller wrote."""
    written: list[int] = []
    while len(written) < times:
        current = store.get_versioned(key)
        value = int(current.data) + 1
        try:
            store.put_if(key, str(value).encode(), ObjectClass.STATE, current.version)
        except PreconditionFailed:
            continue
        written.append(value)
    return written


def test_threads_racing_cas_apply_every_increment_once(make_locked_store: StoreFactory) -> None:
    make_locked_store().put_if(".state/counter", b"0", ObjectClass.STATE, None)
    threads, times = 8, 25
    results: list[list[int]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def run(i: int) -> None:
        store = make_locked_store()
        barrier.wait()
        results[i] = _cas_increment(store, ".state/counter", times)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    written = sorted(v for r in results for v in r)
    assert written == list(range(1, threads * times + 1))
    assert make_locked_store().get(".state/counter") == str(threads * times).encode()


def test_threads_racing_to_create_one_immutable_object(make_locked_store: StoreFactory) -> None:
    threads = 8
    outcomes: list[str] = ["" for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def run(i: int) -> None:
        store = make_locked_store()
        barrier.wait()
        try:
            store.put_immutable("tile/0/000", f"writer {i}".encode(), ObjectClass.TILE)
            outcomes[i] = "created"
        except ImmutableConflictError:
            outcomes[i] = "conflict"

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert outcomes.count("created") == 1
    assert outcomes.count("conflict") == threads - 1
    winner = outcomes.index("created")
    assert make_locked_store().get("tile/0/000") == f"writer {winner}".encode()


# ---------------------------------------------------------------------------------------------
# Local directory


def _process_cas_worker(root: str, times: int) -> list[int]:
    return _cas_increment(LocalStore(Path(root)), ".state/counter", times)


def test_local_cas_holds_across_processes(tmp_path: Path) -> None:
    root = tmp_path / "log"
    LocalStore(root).put_if(".state/counter", b"0", ObjectClass.STATE, None)
    processes, times = 4, 40
    # spawn, not fork: the test process runs server threads that fork would copy mid-flight.
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        # A timeout, so that a worker that cannot start (its module failing to import) fails
        # the test instead of leaving the pool waiting for a result forever.
        work = pool.starmap_async(_process_cas_worker, [(str(root), times)] * processes)
        results = work.get(timeout=120)
    written = sorted(v for r in results for v in r)
    assert written == list(range(1, processes * times + 1))
    assert LocalStore(root).get(".state/counter") == str(processes * times).encode()


def test_local_layout_is_plain_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_immutable("tile/entries/x001/234", b"bundle", ObjectClass.BUNDLE)
    store.put_immutable("tile/entries/x001/234", b"bundle", ObjectClass.BUNDLE)
    with pytest.raises(ImmutableConflictError):
        store.put_immutable("tile/entries/x001/234", b"other", ObjectClass.BUNDLE)
    v = store.put_if("checkpoint", b"c1\n", ObjectClass.CHECKPOINT, None)
    store.put_if("checkpoint", b"c2\n", ObjectClass.CHECKPOINT, v)
    assert (tmp_path / "tile" / "entries" / "x001" / "234").read_bytes() == b"bundle"
    assert (tmp_path / "checkpoint").read_bytes() == b"c2\n"
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    # Only the objects and the CAS lock file; every hidden name is outside the served layout.
    assert files == [".checkpoint.lock", "checkpoint", "tile/entries/x001/234"]
    assert object_class_for_key(".checkpoint.lock") is None


def test_local_versions_are_content_hashes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    version = store.put_if(".state/s", b"{}", ObjectClass.STATE, None)
    assert version == content_version(b"{}")
    assert store.get_versioned(".state/s").version == version


# ---------------------------------------------------------------------------------------------
# Memory: the fake's teeth


def test_memory_records_immutable_violations() -> None:
    store = MemoryStore()
    store.put_immutable("tile/0/000", b"a", ObjectClass.TILE)
    with pytest.raises(ImmutableConflictError):
        store.put_immutable("tile/0/000", b"b", ObjectClass.TILE)
    # Even if the code under test swallowed the error, the test can still see it.
    assert [v.key for v in store.violations] == ["tile/0/000"]
    assert store.object("tile/0/000").data == b"a"


def test_memory_versions_are_generations_not_content() -> None:
    store = MemoryStore()
    v1 = store.put_if("checkpoint", b"same\n", ObjectClass.CHECKPOINT, None)
    v2 = store.put_if("checkpoint", b"same\n", ObjectClass.CHECKPOINT, v1)
    assert v1 != v2
    with pytest.raises(PreconditionFailed) as info:
        store.put_if("checkpoint", b"same\n", ObjectClass.CHECKPOINT, v1)
    assert info.value.actual == v2


class _InjectedFaultError(Exception):
    pass


def test_memory_fault_failed_and_not_persisted() -> None:
    def fail_tiles(event: WriteEvent) -> None:
        if event.key.startswith("tile/"):
            raise _InjectedFaultError(event.key)

    store = MemoryStore(before_write=fail_tiles)
    with pytest.raises(_InjectedFaultError):
        store.put_immutable("tile/0/000", b"t", ObjectClass.TILE)
    assert store.keys() == []
    store.put_if("checkpoint", b"c\n", ObjectClass.CHECKPOINT, None)
    assert store.keys() == ["checkpoint"]


def test_memory_fault_failed_but_persisted_then_retried() -> None:
    seen: list[WriteEvent] = []

    def fail_once(event: WriteEvent) -> None:
        seen.append(event)
        if len(seen) == 1:
            raise _InjectedFaultError(event.key)

    store = MemoryStore(after_write=fail_once)
    with pytest.raises(_InjectedFaultError):
        store.put_immutable("tile/0/000", b"t", ObjectClass.TILE)
    assert store.object("tile/0/000").data == b"t"
    # The retry of an idempotent write succeeds without writing again.
    store.put_immutable("tile/0/000", b"t", ObjectClass.TILE)
    assert [e.op for e in seen] == ["put_immutable"]
    assert store.object("tile/0/000").cls is ObjectClass.TILE


# ---------------------------------------------------------------------------------------------
# S3: headers, prefix, and retries through a fault-injecting proxy


@pytest.mark.parametrize(
    ("key", "cls", "write"),
    [
        ("tile/0/000", ObjectClass.TILE, "immutable"),
        ("tile/entries/000.p/2", ObjectClass.BUNDLE, "immutable"),
        ("checkpoints/2", ObjectClass.CHECKPOINT_HISTORY, "immutable"),
        ("checkpoint", ObjectClass.CHECKPOINT, "cas"),
        ("index/digest/ab", ObjectClass.INDEX, "cas"),
        (".state/sequencer", ObjectClass.STATE, "cas"),
        ("index/leaf/00ff", ObjectClass.ENTRY_LEAF_INDEX, "immutable"),
    ],
)
def test_s3_sets_headers_per_class(
    moto_server: Any, key: str, cls: ObjectClass, write: str
) -> None:
    bucket = _new_bucket(moto_server)
    store = S3Store(bucket, prefix="log/", client=moto_server.client("s3"))
    if write == "immutable":
        store.put_immutable(key, b"body", cls)
    else:
        store.put_if(key, b"body", cls, None)
    head = moto_server.client("s3").head_object(Bucket=bucket, Key="log/" + key)
    assert head["ContentType"] == cls.content_type
    assert head["CacheControl"] == cls.cache_control


def test_s3_prefix_isolates_logs(moto_server: Any) -> None:
    bucket = _new_bucket(moto_server)
    client = moto_server.client("s3")
    a = S3Store(bucket, prefix="a", client=client)
    b = S3Store(bucket, prefix="b/", client=client)
    a.put_immutable("tile/0/000", b"a", ObjectClass.TILE)
    b.put_immutable("tile/0/000", b"b", ObjectClass.TILE)
    assert (a.get("tile/0/000"), b.get("tile/0/000")) == (b"a", b"b")
    names = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert names == ["a/tile/0/000", "b/tile/0/000"]
    with pytest.raises(FormatError):
        S3Store(bucket, prefix="../x", client=client)


def test_s3_versions_are_etags(moto_server: Any) -> None:
    bucket = _new_bucket(moto_server)
    client = moto_server.client("s3")
    store = S3Store(bucket, client=client)
    version = store.put_if("checkpoint", b"c\n", ObjectClass.CHECKPOINT, None)
    assert version == client.head_object(Bucket=bucket, Key="checkpoint")["ETag"]


def test_s3_non_transient_errors_are_not_retried(moto_server: Any) -> None:
    sleeps: list[float] = []
    store = S3Store("no-such-bucket", client=moto_server.client("s3"), sleep=sleeps.append)
    with pytest.raises(StoreError, match="NoSuchBucket") as info:
        store.put_immutable("tile/0/000", b"t", ObjectClass.TILE)
    assert not isinstance(info.value, TransientStoreError)
    assert store.counters["PUT"] == 1
    assert sleeps == []


class FaultProxy:
    """An HTTP proxy on loopback in front of moto that misbehaves on request.

    ``faults`` is consumed one per request (requests beyond it are forwarded untouched):
    ``"slowdown"`` answers 503 SlowDown without forwarding, ``"lost"`` forwards the request and
    then answers 500 instead of moto's reply (the write happened, the client doesn't know), and
    ``"drop"`` closes the connection without answering.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.faults: list[str] = []
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.server = _ProxyServer(self)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


class _FaultHandler(BaseHTTPRequestHandler):
    """The proxy's request handler: what :class:`FaultProxy` describes."""

    # HTTP/1.1 so the handler answers botocore's "Expect: 100-continue" at once instead
    # of letting it wait a second for a 100 that never comes.
    protocol_version = "HTTP/1.1"

    @property
    def proxy(self) -> FaultProxy:
        assert isinstance(self.server, _ProxyServer)
        return self.server.proxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        body = self._read_body()
        proxy = self.proxy
        with proxy._lock:
            fault = proxy.faults.pop(0) if proxy.faults else None
            proxy.seen.append((self.command, fault or "forward"))
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "slowdown":
            self._reply(503, {}, _s3_error("SlowDown", "Please reduce your request rate."))
            return
        status, headers, reply = self._forward(body)
        if fault == "lost":
            self._reply(500, {}, _s3_error("InternalError", "We encountered an error."))
            return
        self._reply(status, headers, reply)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _handle  # noqa: N815

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        host = self.proxy.upstream.hostname or "127.0.0.1"
        conn = http.client.HTTPConnection(host, self.proxy.upstream.port, timeout=10)
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "expect")
        }
        headers["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _ProxyServer(ThreadingHTTPServer):
    """A loopback server whose handlers reach the :class:`FaultProxy` they serve."""

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), _FaultHandler)
        self.proxy = proxy


def _s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


class _MaxJitter(random.Random):
    """Always the top of the jitter range, so backoff delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def proxy(moto_server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(moto_server.url) as p:
        yield p


@pytest.fixture
def proxied(moto_server: Any, proxy: FaultProxy) -> tuple[S3Store, list[float]]:
    """A store whose requests go through the proxy, built by S3Store itself (its own client,
    botocore retries off), with the sleeps it asks for recorded instead of slept."""
    sleeps: list[float] = []
    store = S3Store(
        _new_bucket(moto_server),
        endpoint_url=proxy.url,
        region_name=moto_server.region,
        max_attempts=4,
        backoff_base=0.1,
        backoff_cap=0.25,
        sleep=sleeps.append,
        rng=_MaxJitter(),
    )
    return store, sleeps


def test_s3_retries_throttling_with_capped_exponential_backoff(
    proxy: FaultProxy, proxied: tuple[S3Store, list[float]]
) -> None:
    store, sleeps = proxied
    proxy.faults = ["slowdown", "slowdown", "slowdown"]
    store.put_immutable("tile/0/000", b"tile", ObjectClass.TILE)
    assert store.counters["PUT"] == 4
    assert sleeps == [0.1, 0.2, 0.25]
    assert [s for _, s in proxy.seen] == ["slowdown"] * 3 + ["forward"]
    assert store.get("tile/0/000") == b"tile"


def test_s3_retries_dropped_connections_on_reads(
    proxy: FaultProxy, proxied: tuple[S3Store, list[float]]
) -> None:
    store, sleeps = proxied
    store.put_immutable("tile/0/000", b"tile", ObjectClass.TILE)
    proxy.faults = ["drop", "drop"]
    assert store.get("tile/0/000") == b"tile"
    assert store.counters["GET"] == 3
    assert len(sleeps) == 2


def test_s3_gives_up_after_max_attempts(
    proxy: FaultProxy, proxied: tuple[S3Store, list[float]]
) -> None:
    store, sleeps = proxied
    proxy.faults = ["slowdown"] * 4 + ["drop"] * 4
    with pytest.raises(TransientStoreError, match="4 attempts"):
        store.put_immutable("tile/0/000", b"tile", ObjectClass.TILE)
    with pytest.raises(TransientStoreError):
        store.get("tile/0/000")
    assert store.counters.as_dict() == {"GET": 4, "PUT": 4, "HEAD": 0, "DELETE": 0}
    assert len(sleeps) == 6  # no sleep after the last attempt of each
    assert proxy.faults == []


def test_s3_lost_reply_to_an_immutable_write_is_recognised(
    proxy: FaultProxy, proxied: tuple[S3Store, list[float]]
) -> None:
    store, _ = proxied
    # The first PUT lands but its reply is lost; the retry gets 412 and compares bytes.
    proxy.faults = ["lost"]
    store.put_immutable("tile/0/000", b"tile", ObjectClass.TILE)
    assert [c for c, _ in proxy.seen] == ["PUT", "PUT", "GET"]
    assert store.get("tile/0/000") == b"tile"


def test_s3_lost_reply_to_a_cas_is_our_own_win(
    proxy: FaultProxy, proxied: tuple[S3Store, list[float]]
) -> None:
    store, _ = proxied
    v1 = store.put_if("checkpoint", b"one\n", ObjectClass.CHECKPOINT, None)
    proxy.faults = ["lost"]
    v2 = store.put_if("checkpoint", b"two\n", ObjectClass.CHECKPOINT, v1)
    assert store.get_versioned("checkpoint").version == v2 != v1
    assert store.get("checkpoint") == b"two\n"


def test_s3_cas_lost_to_someone_else_after_a_retry_still_loses(
    moto_server: Any, proxy: FaultProxy, proxied: tuple[S3Store, list[float]]
) -> None:
    store, _ = proxied
    rival = S3Store(store.bucket, client=moto_server.client("s3"))
    v1 = store.put_if("checkpoint", b"one\n", ObjectClass.CHECKPOINT, None)
    rival.put_if("checkpoint", b"rival\n", ObjectClass.CHECKPOINT, v1)
    proxy.faults = ["slowdown"]
    with pytest.raises(PreconditionFailed):
        store.put_if("checkpoint", b"two\n", ObjectClass.CHECKPOINT, v1)
    assert store.get("checkpoint") == b"rival\n"


def test_local_group_commit_objects_are_readable_at_once_and_flush_leaves_no_trace(
    tmp_path: Path,
) -> None:
    """Group commit defers durability, never visibility (the syncs:
    tests/sequencer/test_local_sync.py)."""
    store = LocalStore(tmp_path, group_commit=True)
    store.put_immutable("tile/0/000.p/1", b"x" * 32, ObjectClass.TILE)
    store.put_immutable("index/leaf/" + "ab" * 32, b'{"index":0}', ObjectClass.ENTRY_LEAF_INDEX)
    store.put_immutable("tile/0/000.p/1", b"x" * 32, ObjectClass.TILE)  # still idempotent
    with pytest.raises(ImmutableConflictError):
        store.put_immutable("tile/0/000.p/1", b"y" * 32, ObjectClass.TILE)  # still loud
    assert store.get("tile/0/000.p/1") == b"x" * 32
    store.flush()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["index/leaf/" + "ab" * 32, "tile/0/000.p/1"]


def _validate_key_reference(key: str) -> bool:
    """The rules of validate_key, one at a time, as its docstring states them."""
    if not key or key.startswith("/") or "\\" in key:
        return False
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        return False
    for i, segment in enumerate(key.split("/")):
        if not segment or segment in (".", ".."):
            return False
        if segment.startswith(".") and not (i == 0 and segment == ".state"):
            return False
    return True


_KEY_CHARS = st.sampled_from(["a", "0", ".", "/", "\\", "\x00", "\x1f", "\x7f", "é", "-", "state"])


@settings(max_examples=3000)
@given(st.lists(_KEY_CHARS, max_size=12).map("".join) | st.text(max_size=20))
def test_validate_key_agrees_with_a_naive_reference(key: str) -> None:
    """validate_key's one-regex fast path accepts exactly the keys the rules allow."""
    try:
        validate_key(key)
        valid = True
    except FormatError:
        valid = False
    assert valid == _validate_key_reference(key), key
    for prefixed in (".state/" + key, "tile/" + key):
        try:
            validate_key(prefixed)
            valid = True
        except FormatError:
            valid = False
        assert valid == _validate_key_reference(prefixed), prefixed
