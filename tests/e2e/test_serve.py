"""``stelae serve`` as a real child process: first run, CDN headers on static reads, no path
escapes, and SIGTERM with uploads in flight (every 201 survives, exit status 0).

The process is waited on, never slept on.
"""

from __future__ import annotations

import gzip
import http.client
import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stelae.client import signing
from stelae.sequencer.logdir import LogConfig
from tests.support.api import ORIGIN, ServeProcess, check_v2, start_serve

V2 = "/api/v2/log/entries"
IMMUTABLE = "public, max-age=31536000, immutable"


def v2_request(key: signing.PrivateKey, artifact: bytes) -> bytes:
    digest = signing.digest(key, artifact)[1]
    return json.dumps(
        signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
    ).encode()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    data = tmp_path_factory.mktemp("serve") / "stelae-data"
    proc = start_serve(data)
    try:
        yield proc
    finally:
        if proc.proc.poll() is None:
            status, _ = proc.terminate()
            assert status == 0


def test_first_run_creates_the_log_and_prints_the_verifier_key(serve: ServeProcess) -> None:
    stderr = "".join(serve.stderr_lines)
    assert f"created log {ORIGIN}" in stderr
    config = LogConfig.from_json((serve.log.data / "config.json").read_text())
    assert serve.log.vkey == config.vkey
    assert config.vkey.startswith(ORIGIN + "+")
    # The key is the log's: the (empty) checkpoint served verifies with it.
    assert serve.log.client.checkpoint().checkpoint.size == 0


@pytest.fixture(scope="module")
def with_entries(serve: ServeProcess) -> ServeProcess:
    key = signing.generate_key("ecdsa-p256")
    for i in range(3):
        reply = serve.log.request(
            "POST", V2, v2_request(key, b"static %d" % i), {"Content-Type": "application/json"}
        )
        check_v2(serve.log, reply, "hashedrekord", "0.0.2")
    return serve


def get(serve: ServeProcess, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    r = serve.log.request("GET", path, None, headers)
    return r.status, dict(r.headers), r.body


def test_checkpoint_headers(with_entries: ServeProcess) -> None:
    status, headers, body = get(with_entries, "/checkpoint")
    assert status == 200
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["access-control-allow-origin"] == "*"
    assert body == (with_entries.log.log_dir / "checkpoint").read_bytes()


@pytest.mark.parametrize("path", ["/tile/0/000.p/3", "/tile/entries/000.p/3"])
def test_tile_and_bundle_headers(with_entries: ServeProcess, path: str) -> None:
    status, headers, body = get(with_entries, path)
    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    assert headers["cache-control"] == IMMUTABLE
    assert headers["access-control-allow-origin"] == "*"
    assert "content-encoding" not in headers  # not asked for
    assert body == (with_entries.log.log_dir / path.lstrip("/")).read_bytes()


def test_gzip_when_asked(with_entries: ServeProcess) -> None:
    path = "/tile/entries/000.p/3"
    status, headers, body = get(with_entries, path, **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in headers["vary"]
    plain = (with_entries.log.log_dir / path.lstrip("/")).read_bytes()
    assert gzip.decompress(body) == plain
    assert len(body) < len(plain)
    assert int(headers["content-length"]) == len(body)


def test_head_and_options_preflight(with_entries: ServeProcess) -> None:
    head = with_entries.log.request("HEAD", "/checkpoint")
    assert head.status == 200 and head.body == b""
    assert int(head.header("content-length") or "0") > 0
    pre = with_entries.log.request(
        "OPTIONS",
        V2,
        None,
        {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status == 204
    assert pre.header("access-control-allow-origin") == "*"
    assert "POST" in (pre.header("access-control-allow-methods") or "")
    assert "Content-Type" in (pre.header("access-control-allow-headers") or "")


@pytest.mark.parametrize(
    "path",
    [
        "/../config.json",
        "/../signing.key",
        "/.state/intent",
        "/%2e%2e/signing.key",
        "/%2E%2E/config.json",
        "/signing.key",
        "/config.json",
        "/tile/../../signing.key",
        "/index/../../config.json",
        "/tile/entries/../../../signing.key",
        "//etc/passwd",
        "/.checkpoint.lock",
        "/log/checkpoint",
        "/tile",
    ],
)
def test_no_path_escapes(with_entries: ServeProcess, path: str) -> None:
    status, _, body = get(with_entries, path)
    assert status == 404, body
    assert b"PRIVATE" not in body and b"vkey" not in body


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_with_uploads_in_flight_loses_no_acknowledged_entry(
    tmp_path: Path, workers: str
) -> None:
    data = tmp_path / "stelae-data"
    first = start_serve(data, "127.0.0.1:0", "--workers", workers)
    status, _ = first.terminate()
    assert status == 0
    # Batches that wait 3 s, so the uploads are surely queued when SIGTERM arrives.
    config = json.loads((data / "config.json").read_text())
    config["batch_max_age_ms"] = 3000
    (data / "config.json").write_text(json.dumps(config))

    serve = start_serve(data, "127.0.0.1:0", "--workers", workers)
    key = signing.generate_key("ecdsa-p256")
    bodies = [v2_request(key, b"in flight %d" % i) for i in range(16)]
    sent = [threading.Event() for _ in bodies]
    replies: dict[int, tuple[int, bytes]] = {}

    def upload(i: int) -> None:
        conn = http.client.HTTPConnection(serve.log.host, serve.log.port, timeout=30)
        try:
            conn.request("POST", V2, bodies[i], {"Content-Type": "application/json"})
            sent[i].set()
            resp = conn.getresponse()
            replies[i] = (resp.status, resp.read())
        except (OSError, http.client.HTTPException):
            sent[i].set()  # a refused or cut connection is not an acknowledgement
        finally:
            conn.close()

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for e in sent:
        assert e.wait(10)
    # The requests are on the wire; give the server a moment to read and queue them (a batch
    # closes only after 3 s, so nothing is answered yet).
    threading.Event().wait(0.5)
    assert not replies, "answered before SIGTERM: the batch age did not take effect"
    status, stderr = serve.terminate()
    for t in threads:
        t.join(30)
    assert status == 0, stderr
    assert "stopping" in stderr

    acknowledged = [i for i, (s, _) in replies.items() if s == 201]
    assert acknowledged, replies  # the drain answered the queued uploads
    assert {s for s, _ in replies.values()} <= {201, 503}

    again = start_serve(data)
    try:
        size = again.log.client.checkpoint().checkpoint.size
        assert size >= len(acknowledged)
        for i in acknowledged:
            index = int(json.loads(replies[i][1])["logIndex"])
            entry = again.log.client.entry(index)
            assert (
                json.loads(entry.data)["spec"]["hashedRekordV002"]["signature"]["content"]
                == (json.loads(bodies[i])["hashedRekordRequestV002"]["signature"]["content"])
            )
    finally:
        assert again.terminate()[0] == 0


def test_serve_help_mentions_sigterm() -> None:
    from tests.support.api import stelae_command

    done = subprocess.run(
        [*stelae_command(), "serve", "--help"], capture_output=True, text=True, check=True
    )
    assert "SIGTERM" in done.stdout


def test_sigterm_drains_and_exits_even_when_stderr_is_gone(tmp_path: Path) -> None:
    """The parent that read the banner went away (its end of the stderr pipe is closed): the
    "stopping" note then fails with a broken pipe, which must not skip the drain and leave the
    process serving forever with its main thread gone."""
    serve = start_serve(tmp_path / "stelae-data")
    key = signing.generate_key("ecdsa-p256")
    reply = serve.log.request(
        "POST", V2, v2_request(key, b"before the pipe closed"), {"Content-Type": "application/json"}
    )
    assert reply.status == 201
    assert serve.proc.stderr is not None
    serve.proc.stderr.close()
    serve.proc.send_signal(signal.SIGTERM)
    try:
        serve.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        serve.proc.kill()
        serve.proc.wait()
        raise AssertionError("stelae serve ignored SIGTERM once its stderr was closed") from None
    assert serve.proc.returncode == 0
