"""The HTTP/1.1 layer of ``stelae serve`` over raw sockets: framing, keep-alive, refusals.

Each case writes bytes to a real server on loopback and reads what comes back, so what is
checked is the wire, not a client library's view of it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stelae.api.service import ServiceConfig
from stelae.client import signing
from stelae.server.http1 import HttpRequest, HttpResponse, HTTPServer
from tests.support.api import LiveLog, served

V2 = "/api/v2/log/entries"


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLog]:
    with served(tmp_path_factory.mktemp("http1") / "data") as live:
        yield live


def exchange(
    log: LiveLog, data: bytes, *, responses: int = 1
) -> list[tuple[str, dict[str, str], bytes]]:
    """Send ``data`` on a fresh connection; read ``responses`` answers (fewer if it closes)."""
    out: list[tuple[str, dict[str, str], bytes]] = []
    with socket.create_connection((log.host, log.port), timeout=10) as sock:
        sock.sendall(data)
        rfile = sock.makefile("rb")
        for _ in range(responses):
            status = rfile.readline().decode("latin-1").rstrip("\r\n")
            if not status:
                break
            headers: dict[str, str] = {}
            while (line := rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = rfile.read(int(headers.get("content-length", "0")))
            out.append((status, headers, body))
            if headers.get("connection") == "close":
                assert rfile.read() == b""  # and it really closes
                break
    return out


def test_keep_alive_serves_pipelined_requests_in_order(log: LiveLog) -> None:
    req = f"GET /checkpoint HTTP/1.1\r\nHost: {log.host}\r\n\r\n".encode()
    replies = exchange(log, req * 3 + b"GET /nope HTTP/1.1\r\n\r\n", responses=4)
    assert [r[0] for r in replies] == ["HTTP/1.1 200 OK"] * 3 + ["HTTP/1.1 404 Not Found"]
    assert replies[0][2] == (log.log_dir / "checkpoint").read_bytes()
    assert all("connection" not in h for _, h, _ in replies)
    assert replies[0][1]["server"] == "stelae" and replies[0][1]["date"].endswith("GMT")


def test_http_1_0_closes_unless_asked_to_keep_alive(log: LiveLog) -> None:
    (reply,) = exchange(log, b"GET /checkpoint HTTP/1.0\r\n\r\n" * 2, responses=2)
    assert reply[1]["connection"] == "close"
    two = exchange(
        log, b"GET /checkpoint HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2, responses=2
    )
    assert len(two) == 2


def test_leading_empty_lines_are_ignored(log: LiveLog) -> None:
    (reply,) = exchange(log, b"\r\n\r\nGET /checkpoint HTTP/1.1\r\n\r\n")
    assert reply[0] == "HTTP/1.1 200 OK"


def test_head_sends_the_length_but_no_body(log: LiveLog) -> None:
    size = len((log.log_dir / "checkpoint").read_bytes())
    with socket.create_connection((log.host, log.port), timeout=10) as sock:
        sock.sendall(b"HEAD /checkpoint HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n")
        rfile = sock.makefile("rb")
        assert rfile.readline() == b"HTTP/1.1 200 OK\r\n"
        head = []
        while (line := rfile.readline()) != b"\r\n":
            head.append(line)
        assert f"Content-Length: {size}\r\n".encode() in head
        # No body follows: the next bytes are the second response.
        assert rfile.readline() == b"HTTP/1.1 404 Not Found\r\n"


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"GARBAGE\r\n\r\n", "400", "malformed request line"),
        (b"GET / HTTP/1.1 extra\r\n\r\n", "400", "malformed request line"),
        (b"GET / FTP/1.1\r\n\r\n", "400", "malformed request line"),
        (b"GET / HTTP/2.0\r\n\r\n", "505", "HTTP/2.0 is not supported"),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", "431", "request line too long"),
        (
            b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
            "431",
            "header section too long",
        ),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", "431", "more than 100 headers"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", "400", "malformed header line"),
        (
            b"POST "
            + V2.encode()
            + b" HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            "400",
            "conflicting Content-Length",
        ),
        (b"POST " + V2.encode() + b" HTTP/1.1\r\n\r\n", "411", "Content-Length is required"),
        (
            b"POST " + V2.encode() + b" HTTP/1.1\r\nContent-Length: 12ab\r\n\r\n",
            "400",  # RFC 9112 §6.3: an invalid length is unrecoverable, not a missing one
            "invalid message framing",
        ),
        (
            b"POST " + V2.encode() + b" HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
            "413",
            "request body too large",
        ),
    ],
)
def test_unparseable_requests_are_refused_and_the_connection_closed(
    log: LiveLog, raw: bytes, status: str, message: str
) -> None:
    before = sorted(p.relative_to(log.log_dir) for p in log.log_dir.rglob("*"))
    (reply,) = exchange(log, raw + b"GET /checkpoint HTTP/1.1\r\n\r\n", responses=2)
    assert reply[0].split()[1] == status
    assert reply[1]["connection"] == "close"
    assert message in json.loads(reply[2])["message"]
    assert sorted(p.relative_to(log.log_dir) for p in log.log_dir.rglob("*")) == before


def test_expect_100_continue_is_answered_before_the_body(log: LiveLog) -> None:
    key = signing.generate_key("ecdsa-p256")
    digest = signing.digest(key, b"expect continue")[1]
    body = json.dumps(
        signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
    ).encode()
    head = (
        f"POST {V2} HTTP/1.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    with socket.create_connection((log.host, log.port), timeout=30) as sock:
        sock.sendall(head)
        rfile = sock.makefile("rb")
        assert rfile.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert rfile.readline() == b"\r\n"
        sock.sendall(body)
        assert rfile.readline().startswith(b"HTTP/1.1 201 ")


def test_methods_the_log_does_not_serve_get_json_and_close(log: LiveLog) -> None:
    (reply,) = exchange(log, b"TRACE /api/v2/log/entries HTTP/1.1\r\n\r\n")
    assert reply[0].startswith("HTTP/1.1 405")
    assert "TRACE is not allowed" in json.loads(reply[2])["message"]
    (reply,) = exchange(log, b"BREW /pot HTTP/1.1\r\n\r\n")
    assert reply[0].startswith("HTTP/1.1 501")  # RFC 9110 §9.1: a method the server doesn't know
    assert reply[1]["connection"] == "close"


def test_a_body_on_a_get_is_read_so_the_next_request_is_in_step(log: LiveLog) -> None:
    replies = exchange(
        log,
        b"GET /checkpoint HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /checkpoint HTTP/1.1\r\n\r\n",
        responses=2,
    )
    assert [r[0] for r in replies] == ["HTTP/1.1 200 OK"] * 2


def test_a_silent_connection_is_closed_after_the_idle_timeout() -> None:
    """A client that connects and sends nothing (or stops after a response) gets EOF once the
    idle timeout passes, so it cannot hold a thread forever; requests still get answered."""

    def app(req: HttpRequest) -> HttpResponse:
        return HttpResponse(200, {"Content-Type": "text/plain"}, b"ok")

    server = HTTPServer(("127.0.0.1", 0), app, max_body=1024, idle_timeout=0.3)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        host, port = server.server_address[:2]
        address = (str(host), int(port))
        with socket.create_connection(address, timeout=10) as silent:
            assert silent.recv(1) == b""  # closed by the server, not by our 10 s timeout
        with socket.create_connection(address, timeout=10) as once:
            once.sendall(b"GET / HTTP/1.1\r\n\r\n")
            data = b""
            while chunk := once.recv(4096):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nok")
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# -- request smuggling / desync (RFC 9112 §5.1, §5.2, §6.1, §6.3) ---------------------------------
#
# Each request carries a body that, if its framing were misread, would swallow or expose the
# pipelined GET behind it. The answer must be one 400 that closes the connection: the next
# request is neither answered (the stream is out of step) nor taken as a body.

_SMUGGLED = b"GET /checkpoint HTTP/1.1\r\n\r\n"


def _post(headers: bytes, body: bytes = b"hello") -> bytes:
    return b"POST " + V2.encode() + b" HTTP/1.1\r\nContent-Type: application/json\r\n" + headers


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_post(b"Content-Length : 5\r\n\r\nhello"), "malformed header line"),
        (_post(b"Content-Length\t: 5\r\n\r\nhello"), "malformed header line"),
        (_post(b"Content-Length: 5\r\n 0\r\n\r\nhello"), "malformed"),  # obs-fold, space
        (_post(b"Content-Length: 5\r\n\t0\r\n\r\nhello"), "malformed"),  # obs-fold, tab
        (_post(b"Content-Length:\r\n 5\r\n\r\nhello"), "malformed"),  # value only folded
        (_post(b"Content-Length: 5\r\nContent-Length: 35\r\n\r\nhello"), "conflicting"),
        (_post(b"Content-Length: 35\r\nContent-Length: 5\r\n\r\nhello"), "conflicting"),
        (_post(b"Content-Length: 5, 35\r\n\r\nhello"), "invalid message framing"),
        (_post("Content-Length: \u00b2\r\n\r\nhello".encode()), "invalid message framing"),
        (_post("Content-Length: \u00b2\r\n\r\nhello".encode("latin-1")), "framing"),
        (_post("Content-Length: \u0665\r\n\r\nhello".encode()), "framing"),  # Arabic-Indic 5
        (_post("Content-Length: \uff15\r\n\r\nhello".encode()), "framing"),  # fullwidth 5
        (_post(b"Content-Length: +5\r\n\r\nhello"), "invalid message framing"),
        (_post(b"Content-Length: -5\r\n\r\nhello"), "invalid message framing"),
        (_post(b"Content-Length: 0x5\r\n\r\nhello"), "invalid message framing"),
        (_post(b"Content-Length: 5_0\r\n\r\nhello"), "invalid message framing"),
        (
            _post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
            "invalid message framing",
        ),
        (
            _post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            "invalid message framing",
        ),
    ],
)
def test_smuggling_framing_is_refused_and_the_next_request_is_not_swallowed(
    log: LiveLog, raw: bytes, message: str
) -> None:
    before = sorted(p.relative_to(log.log_dir) for p in log.log_dir.rglob("*"))
    replies = exchange(log, raw + _SMUGGLED, responses=3)
    assert len(replies) == 1, [r[0] for r in replies]
    status, headers, body = replies[0]
    assert status.split()[1] == "400", (status, body)
    assert headers["connection"] == "close"
    assert message in json.loads(body)["message"]
    assert sorted(p.relative_to(log.log_dir) for p in log.log_dir.rglob("*")) == before


def test_a_refusal_after_pipelined_requests_answers_them_first(log: LiveLog) -> None:
    ok = b"GET /checkpoint HTTP/1.1\r\n\r\n"
    bad = _post(b"Content-Length : 5\r\n\r\nhello")
    replies = exchange(log, ok + ok + bad + ok, responses=5)
    assert [r[0].split()[1] for r in replies] == ["200", "200", "400"]


# -- limits: bodies over the API's limit, connections over the cap --------------------------------


def test_a_body_over_the_api_limit_is_refused_before_it_is_read(log: LiveLog) -> None:
    """The HTTP layer refuses at ServiceConfig.max_request_bytes (4 MiB), not at a larger limit
    of its own: the 413 comes back although none of the body was sent."""
    limit = ServiceConfig().max_request_bytes
    head = _post(f"Content-Length: {limit + 1}\r\n\r\n".encode())
    (reply,) = exchange(log, head)
    assert reply[0].split()[1] == "413"
    assert reply[1]["connection"] == "close"
    assert f"the limit is {limit}" in json.loads(reply[2])["message"]


def test_the_body_limit_follows_the_service_config(tmp_path: Path) -> None:
    with served(tmp_path / "data", ServiceConfig(max_request_bytes=1000)) as small:
        (reply,) = exchange(small, _post(b"Content-Length: 1001\r\n\r\n"))
        assert reply[0].split()[1] == "413"
        assert "the limit is 1000" in json.loads(reply[2])["message"]
        # At the limit the body is read and judged by the API (not JSON: 400), not refused.
        (reply,) = exchange(small, _post(b"Content-Length: 1000\r\n\r\n" + b"x" * 1000))
        assert reply[0].split()[1] == "400"


def _get_status(address: tuple[str, int]) -> tuple[str, dict[str, str], bytes]:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data and (chunk := sock.recv(4096)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        while len(body) < int(headers.get("content-length", "0")):
            chunk = sock.recv(4096)
            if not chunk:
                break
            body += chunk
        return lines[0], headers, body


def test_connections_over_the_cap_get_503_with_retry_after() -> None:
    """Two connections held open fill a cap of two; a third is answered 503 + Retry-After by the
    accepting thread and closed; once one held connection ends, new ones are served again."""

    def app(req: HttpRequest) -> HttpResponse:
        return HttpResponse(200, {"Content-Type": "text/plain"}, b"ok")

    server = HTTPServer(("127.0.0.1", 0), app, max_body=1024, max_connections=2)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    held: list[socket.socket] = []
    try:
        host, port = server.server_address[:2]
        address = (str(host), int(port))
        for _ in range(2):
            sock = socket.create_connection(address, timeout=10)
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")  # accepted and being served
            held.append(sock)
        status, headers, body = _get_status(address)
        assert status == "HTTP/1.1 503 Service Unavailable"
        assert headers["retry-after"] == "1" and headers["connection"] == "close"
        assert "connection limit" in json.loads(body)["message"]
        held.pop().close()
        # The freed slot is returned when that connection's thread sees EOF; wait for it.
        assert server.wait_for_free_slot(timeout=10)
        assert _get_status(address)[0] == "HTTP/1.1 200 OK"
    finally:
        for sock in held:
            sock.close()
        server.shutdown()
        thread.join()
        server.server_close()
