"""The first hour with the ``stelae`` command, run as a person runs it: a subprocess, stdout
piped.

- Stdout is data only: every command's stdout is exactly its data (the vkey line, a fingerprint,
  a signature, one JSON document with --json, JSON lines from monitor), diagnostics on stderr.
- Errors name what the user typed (the option, the environment variable, the file).
- ``get`` shows what rekor-cli shows: LogID, Index, IntegratedTime (RFC 3339), UUID, Body.
- ``monitor`` takes --json, and SIGTERM ends it as Ctrl-C does.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stelae.tiles.notekeys import parse_vkey
from stelae.tiles.timestamp import v1_log_id
from tests.support.cli import failed, ok, read_stderr_until, reaped, run_stelae, spawn_stelae

SERVING = re.compile(r"serving \S+ on (http://\S+)")
VKEY_LINE = re.compile(r"[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*\n")


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_stelae(*args, cwd=cwd, env={"STELAE_STATE_DIR": str(cwd / "state"), **(env or {})})


def usage_error(proc: subprocess.CompletedProcess[str], status: int = 2) -> str:
    err = failed(proc, status)
    assert proc.stdout == ""  # an error prints nothing a pipe would take for data
    return err


@dataclass
class World:
    dir: Path
    url: str
    vkey: str
    env: dict[str, str]
    uuid: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A log served by ``stelae serve`` (its stdout piped too), holding one signed entry."""
    d = tmp_path_factory.mktemp("people")
    init = ok(run("init", "--data", "log", "--origin", "people.test/log", cwd=d))
    # stdout is the verifier key line alone, so it can be redirected into a --vkey @FILE.
    assert VKEY_LINE.fullmatch(init.stdout), init.stdout
    assert "people.test/log" in init.stderr and "created" in init.stderr
    (d / "vkey.txt").write_text(init.stdout)
    vkey = init.stdout.strip()
    again = ok(run("init", "--data", "log", "--origin", "people.test/log", cwd=d))
    assert again.stdout == init.stdout and "existing" in again.stderr

    serve = ("serve", "--data", "log", "--listen", "127.0.0.1:0")
    proc = spawn_stelae(*serve, cwd=d, stdout=subprocess.PIPE)
    try:
        lines = read_stderr_until(proc, lambda line: SERVING.search(line) is not None)
        url = SERVING.findall(lines[-1])[0]
        env = {"STELAE_SERVER": url, "STELAE_LOG_URL": url, "STELAE_VKEY": "@vkey.txt"}

        (d / "app.txt").write_text("hello, log\n")
        keygen = ok(run("keygen", "--out", "signer", cwd=d))
        assert re.fullmatch(r"[0-9a-f]{64}\n", keygen.stdout), keygen.stdout
        assert "signer.key" in keygen.stderr and "keep it secret" in keygen.stderr
        sign = ok(run("sign", "--key", "signer.key", "--artifact", "app.txt", cwd=d))
        assert (
            base64.b64decode(sign.stdout.strip(), validate=True) == (d / "app.txt.sig").read_bytes()
        )
        assert "app.txt.sig" in sign.stderr
        upload = ok(
            run(
                "upload",
                *("--artifact", "app.txt", "--signature", "app.txt.sig"),
                *("--public-key", "signer.pub", "--json"),
                cwd=d,
                env=env,
            )
        )
        uuid = json.loads(upload.stdout)["uuid"]
        yield World(d, url, vkey, env, uuid)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert out == ""  # serve prints nothing on stdout: it has no data to give


# -- stdout is data only ----------------------------------------------------------------------

# Every command that prints data, with --json: stdout must be exactly one JSON document.
JSON_COMMANDS = [
    ("init", "--data", "log", "--origin", "people.test/log", "--json"),
    ("upload", "--artifact", "app.txt", "--signature", "app.txt.sig", "--public-key", "signer.pub"),
    ("get", "--log-index", "0"),
    ("verify", "--artifact", "app.txt", "--signature", "app.txt.sig", "--public-key", "signer.pub"),
    ("search", "--artifact", "app.txt"),
    ("loginfo",),
    ("logproof", "--first-size", "1"),
    ("fsck",),
]


@pytest.mark.parametrize("args", JSON_COMMANDS, ids=lambda a: a[0])
def test_with_json_stdout_is_one_json_document(world: World, args: tuple[str, ...]) -> None:
    extra = () if "--json" in args else ("--json",)
    proc = ok(run(*args, *extra, cwd=world.dir, env=world.env))
    json.loads(proc.stdout)  # a diagnostic line mixed in would make this fail


def test_the_vkey_init_printed_works_as_an_at_file(world: World) -> None:
    """`stelae init > vkey.txt` then `--vkey @vkey.txt`: the first-hour path."""
    proc = ok(run("loginfo", "--log-url", world.url, "--vkey", "@vkey.txt", cwd=world.dir))
    assert proc.stdout.startswith("Origin: people.test/log\n")


def test_text_stdout_holds_no_diagnostics(world: World) -> None:
    state = {"STELAE_STATE_DIR": str(world.dir / "fresh-state")}
    loginfo = ok(run("loginfo", cwd=world.dir, env={**world.env, **state}))
    assert "first checkpoint seen" in loginfo.stderr  # the diagnostic is there ...
    assert "first checkpoint" not in loginfo.stdout  # ... but not in the data
    assert loginfo.stdout.startswith("Origin: ")
    search = ok(run("search", "--artifact", "app.txt", cwd=world.dir, env=world.env))
    assert search.stdout == f"{world.uuid} 0\n"


def test_monitor_prints_only_json_lines_and_takes_json(world: World) -> None:
    for extra in ((), ("--json",)):
        proc = ok(
            run(
                "monitor",
                "--once",
                "--watch-key",
                "signer.pub",
                *extra,
                cwd=world.dir,
                env={**world.env, "STELAE_STATE_DIR": str(world.dir / f"m{len(extra)}")},
            )
        )
        lines = proc.stdout.splitlines()
        assert lines, proc.stderr
        alerts = [json.loads(line) for line in lines]
        assert any(a.get("alert") == "watch" for a in alerts), alerts


# -- get shows what rekor-cli shows -------------------------------------------------------------


def test_get_shows_log_id_index_integrated_time_uuid_and_body(world: World) -> None:
    log_id = v1_log_id(parse_vkey(world.vkey).public_key)
    text = ok(run("get", "--uuid", world.uuid, cwd=world.dir, env=world.env)).stdout
    lines = text.splitlines()
    assert lines[0] == f"LogID: {log_id}"
    assert lines[1] == "Index: 0"
    assert re.fullmatch(r"IntegratedTime: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[2]), lines[2]
    assert lines[3] == f"UUID: {world.uuid}"
    assert lines[4] == "Body (JSON): {"
    data = json.loads(
        ok(run("get", "--uuid", world.uuid, "--json", cwd=world.dir, env=world.env)).stdout
    )
    assert data["log_id"] == log_id and data["index"] == 0 and data["uuid"] == world.uuid
    assert data["integrated_time_rfc3339"] == lines[2].split(": ")[1]
    assert data["body"]["kind"] == "hashedrekord"
    # By index too, as rekor-cli get --log-index shows it.
    by_index = ok(run("get", "--log-index", "0", cwd=world.dir, env=world.env)).stdout
    assert by_index.splitlines()[:4] == lines[:4]


# -- errors name what the user typed -----------------------------------------------------------


def test_a_missing_vkey_file_names_the_option(world: World) -> None:
    err = usage_error(
        run("loginfo", "--log-url", world.url, "--vkey", "@missing.txt", cwd=world.dir)
    )
    assert "'--vkey'" in err and "missing.txt does not exist" in err


def test_a_missing_vkey_mentions_the_environment_variable(world: World) -> None:
    err = usage_error(run("loginfo", "--log-url", world.url, cwd=world.dir))
    assert "--vkey" in err and "STELAE_VKEY" in err
    err = usage_error(run("loginfo", "--vkey", world.vkey, cwd=world.dir))
    assert "--log-url" in err and "STELAE_LOG_URL" in err


def test_a_private_key_as_public_key_says_so(world: World) -> None:
    err = usage_error(
        run(
            "upload",
            *("--artifact", "app.txt", "--signature", "app.txt.sig", "--public-key", "signer.key"),
            cwd=world.dir,
            env=world.env,
        )
    )
    assert "'--public-key'" in err and "signer.key holds a private key" in err


def test_the_artifact_as_signature_says_so(world: World) -> None:
    (world.dir / "big.bin").write_bytes(os.urandom(100_000))
    cases = {"app.txt": "app.txt is the artifact itself", "big.bin": "too long for a signature"}
    for given, expected in cases.items():
        err = usage_error(
            run(
                "upload",
                *("--artifact", "app.txt", "--signature", given, "--public-key", "signer.pub"),
                cwd=world.dir,
                env=world.env,
            )
        )
        assert "'--signature'" in err and expected in err
        assert "signature.content" not in err  # not a field of a request the user never wrote


def test_a_url_without_scheme_suggests_http(world: World) -> None:
    bare = world.url.removeprefix("http://")
    err = usage_error(run("loginfo", "--log-url", bare, cwd=world.dir, env=world.env))
    assert "'--log-url'" in err and f"did you mean http://{bare}?" in err
    err = usage_error(
        run(
            "upload",
            *("--artifact", "app.txt", "--signature", "app.txt.sig", "--public-key", "signer.pub"),
            *("--server", bare),
            cwd=world.dir,
            env=world.env,
        )
    )
    assert "'--server'" in err and f"did you mean http://{bare}?" in err


def test_a_busy_listen_address_is_named(world: World) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        proc = run("serve", "--data", "log", "--listen", address, cwd=world.dir)
    assert proc.returncode == 1 and proc.stdout == ""
    assert f"couldn't listen on {address}: the address is already in use" in proc.stderr
    assert "--listen" in proc.stderr and "Traceback" not in proc.stderr


# -- monitor: SIGTERM ends it as Ctrl-C does ---------------------------------------------------


def test_monitor_sigterm_stops_like_ctrl_c(world: World) -> None:
    state = world.dir / "monitor-state"
    monitor = ("monitor", "--interval", "60", "--json")
    env = {**world.env, "STELAE_STATE_DIR": str(state)}
    with reaped(spawn_stelae(*monitor, cwd=world.dir, env=env, stdout=subprocess.PIPE)) as proc:
        # Wait for the first round's report: then the state is saved.
        read_stderr_until(proc, lambda line: "audited entries" in line or "no new entries" in line)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert "interrupted; the audit resumes from its last saved state" in rest
    assert "Traceback" not in rest
    assert any(state.rglob("*")), "the audit state was saved"
