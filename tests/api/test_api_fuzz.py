"""Fuzzing both write endpoints: no input may produce a 5xx or a dropped connection.

Valid v1 and v2 requests (hashedrekord and DSSE, as tests/api/test_api_errors.py builds them) are
mutated by hypothesis — bytes flipped, fields deleted, values swapped for other JSON types, huge
numbers, deep nesting, long strings, arbitrary Unicode — and posted. Most examples go through
``handle_event`` in-process (what the Lambda runs; the sequencer is a real local log), a smaller
number over real HTTP to a ``stelae serve`` child on 127.0.0.1. Each answer must be one of the
statuses the API gives for a request it judged (201/200 for one that survived the mutation).
"""

from __future__ import annotations

import copy
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stelae.api.gateway import handle_event
from stelae.api.http import Request, Response
from stelae.api.service import WriteService
from stelae.api.submit import InProcessSubmitter
from stelae.api.wiring import write_service
from stelae.kinds import canonical
from stelae.sequencer.logdir import init_log
from stelae.server.app import open_batcher
from tests.api.test_api_errors import GOOD_DSSE_V1, GOOD_DSSE_V2, GOOD_V1, GOOD_V2
from tests.support.api import ORIGIN, start_serve

V1, V2 = "/api/v1/log/entries", "/api/v2/log/entries"
BASES: list[tuple[str, dict[str, Any]]] = [
    (V1, GOOD_V1),
    (V2, GOOD_V2),
    (V1, GOOD_DSSE_V1),
    (V2, GOOD_DSSE_V2),
]
#: What the API answers a request it has judged: accepted, duplicate, refused as bad input.
JUDGED = {200, 201, 202, 400, 409, 413, 415, 422}

# -- mutations ------------------------------------------------------------------------------------


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _paths(value, (*prefix, i))
    return out


def _replace(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(obj)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _delete(obj: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return {}
    out = copy.deepcopy(obj)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


#: Raw JSON number texts spliced in where a value was: beyond int()'s 4,300-digit limit, beyond
#: 2**53, overflowing a double, and ordinary ones.
HUGE_NUMBERS = [
    "1" * 400,
    "-" + "9" * 5000,
    "1" * 400 + ".5",
    "1e400",
    "-1e99999",
    str(2**53),
    str(2**64),
    "1" + "0" * 4300,
    "0.000001",
    "-0",
    "1E308",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid request with one to three mutations; returns (path, body bytes)."""
    path, base = draw(st.sampled_from(BASES))
    obj: Any = copy.deepcopy(base)
    spliced: str | None = None  # raw JSON text replacing a marker string after serialization
    for _ in range(draw(st.integers(1, 3))):
        obj, spliced = _mutate_once(draw, obj, spliced)
    raw = json.dumps(obj, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if spliced is not None:
        raw = raw.replace(b'"\\u0000SPLICE\\u0000"', spliced.encode()).replace(
            b'"\x00SPLICE\x00"', spliced.encode()
        )
    for _ in range(draw(st.integers(0, 2))):  # byte flips
        if raw:
            at = draw(st.integers(0, len(raw) - 1))
            raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
    return path, raw


def _mutate_once(draw: st.DrawFn, obj: Any, spliced: str | None) -> tuple[Any, str | None]:
    """One mutation of ``obj`` at a drawn place; returns the new value and the raw JSON text
    to splice in for its marker string (at most one splice per request)."""
    where = draw(st.sampled_from(_paths(obj)))
    kind = draw(
        st.sampled_from(["delete", "type", "number", "nest", "long", "unicode", "add", "noop"])
    )
    if kind == "delete":
        return _delete(obj, where), spliced
    if kind == "type":
        return _replace(obj, where, draw(json_values)), spliced
    if kind == "number" and spliced is None:
        spliced = draw(st.sampled_from(HUGE_NUMBERS))
        return _replace(obj, where, "\x00SPLICE\x00"), spliced
    if kind == "nest":
        return _nest(draw, obj, where, spliced)
    if kind == "long":
        text = draw(st.sampled_from(["A", "é", "\U0001f600", "/"]))
        return _replace(obj, where, text * draw(st.sampled_from([300, 70_000, 300_000]))), spliced
    if kind == "unicode":
        return _replace(obj, where, draw(st.text(min_size=1, max_size=30))), spliced
    if kind == "add" and isinstance(_get(obj, where), dict):
        return _replace(obj, (*where, draw(st.text(max_size=10))), draw(json_values)), spliced
    return obj, spliced


def _nest(
    draw: st.DrawFn, obj: Any, where: tuple[Any, ...], spliced: str | None
) -> tuple[Any, str | None]:
    """Wrap the value at ``where`` in arrays and objects, up to 100,000 deep."""
    depth = draw(st.sampled_from([2, 50, 1000, 100_000]))
    value: Any = _get(obj, where)
    for _ in range(min(depth, 500)):  # deeper nesting is spliced as text below
        value = [value] if draw(st.booleans()) else {"a": value}
    obj = _replace(obj, where, value)
    if depth > 500 and spliced is None:
        spliced = "[" * depth + "1" + "]" * depth
        obj = _replace(obj, where, "\x00SPLICE\x00")
    return obj, spliced


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


# -- in-process, through handle_event -------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WriteService]:
    local, _ = init_log(tmp_path_factory.mktemp("fuzz") / "data", ORIGIN, batch_max_age_ms=1)
    batcher = open_batcher(local)
    batcher.start()
    try:
        yield write_service(InProcessSubmitter(batcher), local.store, local.config.vkey)
    finally:
        batcher.stop()
        batcher.sequencer.close()


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(case=mutated())
def test_fuzzed_writes_in_process_are_never_5xx(
    service: WriteService, case: tuple[str, bytes]
) -> None:
    path, raw = case
    request = Request("POST", path, {"content-type": "application/json"}, {}, raw)
    answer = Response.from_apigw_v2(handle_event(service, request.to_apigw_v2()))
    assert answer.status in JUDGED, (answer.status, answer.body[:300], raw[:300])
    if answer.status >= 400:
        assert json.loads(answer.body)["message"]


def test_an_event_body_with_no_utf8_form_is_a_400(service: WriteService) -> None:
    """A text event body holding a lone surrogate (JSON's "\\ud800" escape, which a direct
    invocation can send) has no bytes: a 400 naming that, not an exception the runtime makes a
    5xx."""
    event = Request("POST", V2, {"content-type": "application/json"}).to_apigw_v2()
    event["body"], event["isBase64Encoded"] = '{"a": "\ud800"}', False
    answer = Response.from_apigw_v2(handle_event(service, event))
    assert answer.status == 400, answer.body
    assert "not UTF-8" in json.loads(answer.body)["message"]


def test_inputs_that_answered_500_are_400(service: WriteService) -> None:
    """Found before or by the fuzzer: numbers that escaped load_json as ValueError (int()'s
    4,300-digit limit) or as infinities, and nesting that the C parser accepts but the v2 name
    mapping recursed into until RecursionError — each a 400 naming the problem, wherever it sits
    in a v1 or v2 request."""
    for path, base in BASES:
        for text in HUGE_NUMBERS[:5]:
            for where in _paths(base)[1:]:
                raw = json.dumps(_replace(base, where, "\x00SPLICE\x00")).encode()
                raw = raw.replace(b'"\\u0000SPLICE\\u0000"', text.encode())
                request = Request("POST", path, {"content-type": "application/json"}, {}, raw)
                answer = service.handle(request)
                assert answer.status == 400, (path, where, text[:10], answer.body)
    answer = service.handle(
        Request(
            "POST", V2, {"content-type": "application/json"}, {}, b'{"n": ' + b"7" * 5000 + b"}"
        )
    )
    assert answer.status == 400
    assert "not a safe integer" in json.loads(answer.body)["message"]
    assert canonical.load_json(b"[9007199254740991]") == [2**53 - 1]
    deep = b"[" * 900 + b"]" * 900
    for path in (V1, V2):
        raw = b'{"hashedRekordRequestV002": {"x": ' + deep + b"}, " + b'"spec": ' + deep + b"}"
        answer = service.handle(
            Request("POST", path, {"content-type": "application/json"}, {}, raw)
        )
        assert answer.status == 400, answer.body
        assert "nested too deeply" in json.loads(answer.body)["message"]


# -- over real HTTP, against stelae serve ---------------------------------------------------------


@pytest.fixture(scope="module")
def serve_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    served = start_serve(tmp_path_factory.mktemp("fuzz-http") / "data")
    try:
        yield served.log.host, served.log.port
    finally:
        status, err = served.terminate()
        assert status == 0, err
        assert "Traceback" not in err and "internal error" not in err, err


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(case=mutated())
def test_fuzzed_writes_over_http_are_answered_and_never_5xx(
    serve_url: tuple[str, int], case: tuple[str, bytes]
) -> None:
    path, raw = case
    conn = http.client.HTTPConnection(*serve_url, timeout=30)
    try:
        conn.request("POST", path, body=raw, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()  # a dropped connection raises here
        body = resp.read()
    except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise AssertionError(f"no answer for {raw[:200]!r}: {err!r}") from err
    finally:
        conn.close()
    assert resp.status in JUDGED, (resp.status, body[:300], raw[:300])
