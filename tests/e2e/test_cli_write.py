"""The writer commands, run for real: `stelae serve` in its own process on loopback, and
`python -m stelae` keygen → sign → upload (every kind) → verify online → verify offline from the
proof file with the server gone. Usage errors and help run in-process with CliRunner."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stelae.cli.main import main
from stelae.client import signing
from stelae.tiles.notekeys import Ed25519NoteSigner, rekor_v2_log_id
from stelae.tiles.proofbundle import ProofBundle
from tests.support import certificates
from tests.support.cli import failed, ok, read_stderr_until, run_stelae, spawn_stelae

SERVING = re.compile(r"serving \S+ on (http://\S+)")
DEAD_URL = "http://127.0.0.1:9"  # discard port: nothing listens; any fetch fails fast


def stelae(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {"STELAE_STATE_DIR": str(cwd / "state"), **(env or {})}
    return run_stelae(*args, cwd=cwd, env=env, timeout=timeout)


class Server:
    """`stelae serve` in a child process; the URL comes from its "serving … on URL" line."""

    def __init__(self, data: Path, *args: str, config: dict[str, Any] | None = None) -> None:
        init = json.loads(
            ok(
                stelae(
                    "init",
                    "--data",
                    str(data),
                    "--origin",
                    "write.test/log",
                    "--json",
                    cwd=data.parent,
                )
            ).stdout
        )
        self.vkey: str = init["vkey"]
        if config:
            path = data / "config.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
        self.proc = spawn_stelae("serve", "--data", str(data), "--listen", "127.0.0.1:0", *args)
        lines = read_stderr_until(self.proc, lambda line: SERVING.search(line) is not None)
        self.url: str = SERVING.findall(lines[-1])[0]
        assert self.proc.stderr is not None
        # Keep draining stderr so a chatty server never blocks on a full pipe.
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=20) == 0


@dataclass
class Ctx:
    """A working directory with a log's vkey, and the commands run against one server: in a
    child process (``python -m stelae``, the real thing) or, to keep the kind matrix fast,
    in-process through CliRunner (the same click group, the same HTTP to the server process)."""

    dir: Path
    server: Server
    child: bool = False

    def __post_init__(self) -> None:
        (self.dir / "vkey.txt").write_text(self.server.vkey + "\n")

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        env = {
            "STELAE_SERVER": self.server.url,
            "STELAE_LOG_URL": self.server.url,
            "STELAE_VKEY": "@vkey.txt",
            **env,
        }
        if self.child:
            return stelae(*args, cwd=self.dir, env=env)
        with contextlib.chdir(self.dir):
            result = CliRunner().invoke(
                main, list(args), env={"STELAE_STATE_DIR": str(self.dir / "state"), **env}
            )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)

    def json(self, *args: str, **env: str) -> Any:
        return json.loads(ok(self.run(*args, "--json", **env)).stdout)

    def write(self, name: str, data: bytes | str) -> str:
        path = self.dir / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("log") / "data")
    yield s
    s.stop()


@pytest.fixture
def ctx(tmp_path: Path, server: Server) -> Ctx:
    return Ctx(tmp_path, server)


# --- keygen and sign ------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_the_owner_reads_and_never_overwrites(ctx: Ctx) -> None:
    out = ctx.json("keygen", "--out", "signer")
    key, pub = ctx.dir / "signer.key", ctx.dir / "signer.pub"
    assert out["type"] == "ecdsa-p256" and out["private_key"] == "signer.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in key.read_bytes() and b"PUBLIC KEY" in pub.read_bytes()
    before = key.read_bytes()
    err = failed(ctx.run("keygen", "--out", "signer"), 2)
    assert "already exists" in err and key.read_bytes() == before


@pytest.mark.parametrize("key_type", signing.KEY_TYPES)
def test_keygen_and_sign_every_key_type(tmp_path: Path, key_type: str) -> None:
    runner = CliRunner()
    with contextlib.chdir(tmp_path):
        r = runner.invoke(main, ["keygen", "--type", key_type, "--out", "k", "--json"])
        assert r.exit_code == 0, r.output
        Path("a.bin").write_bytes(b"artifact")
        r = runner.invoke(main, ["sign", "--key", "k.key", "--artifact", "a.bin", "--json"])
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        raw = Path("a.bin.sig").read_bytes()
        assert base64.b64decode(out["signature_b64"]) == raw
        key = signing.load_private_key_pem(Path("k.key").read_bytes())
        assert out["digest"].startswith(signing.hash_for(key) + ":")


# --- upload and verify: every kind ----------------------------------------------------------------


def _keygen(ctx: Ctx, key_type: str = "ecdsa-p256") -> None:
    ok(ctx.run("keygen", "--type", key_type, "--out", "signer"))


def _sign(ctx: Ctx, name: str, text: str) -> None:
    """Write the artifact *name* and sign it with signer.key (``stelae sign`` writes name.sig)."""
    ctx.write(name, text)
    ok(ctx.run("sign", "--key", "signer.key", "--artifact", name))


def _signed(name: str) -> list[str]:
    """The arguments naming *name*, the signature _sign wrote and the public key, as upload and
    verify take them."""
    return ["--artifact", name, "--signature", f"{name}.sig", "--public-key", "signer.pub"]


def _cert(ctx: Ctx) -> str:
    key = signing.load_private_key_pem((ctx.dir / "signer.key").read_bytes())
    cert = certificates.self_signed_certificate(key, "release@example.test")
    return ctx.write("signer.crt", signing.certificate_pem(cert))


@pytest.mark.parametrize(
    ("name", "key_type", "sign_args", "upload_args"),
    [
        ("hashedrekord-key-v2", "ecdsa-p256", [], ["--public-key", "signer.pub"]),
        ("hashedrekord-key-v1", "ecdsa-p384", [], ["--public-key", "signer.pub", "--api", "v1"]),
        ("hashedrekord-ed25519", "ed25519", ["--base64"], ["--public-key", "signer.pub"]),
        ("hashedrekord-rsa", "rsa", [], ["--public-key", "signer.pub"]),
        ("hashedrekord-cert", "ecdsa-p256", [], ["--certificate", "CERT"]),
        (
            "rekord-x509",
            "ecdsa-p256",
            ["--type", "rekord"],
            ["--type", "rekord", "--public-key", "signer.pub"],
        ),
        (
            "dsse-v1",
            "ecdsa-p256",
            ["--type", "dsse"],
            ["--type", "dsse", "--public-key", "signer.pub"],
        ),
        (
            "dsse-v2",
            "ed25519",
            ["--type", "dsse"],
            ["--type", "dsse", "--api", "v2", "--public-key", "signer.pub"],
        ),
    ],
)
def test_upload_then_verify_online_and_offline(
    ctx: Ctx, name: str, key_type: str, sign_args: list[str], upload_args: list[str]
) -> None:
    _keygen(ctx, key_type)
    artifact = ctx.write("app.tar.gz", f"release {name}\n")
    ok(ctx.run("sign", "--key", "signer.key", "--artifact", artifact, *sign_args))
    upload_args = [_cert(ctx) if a == "CERT" else a for a in upload_args]
    dsse = "--type" in sign_args and "dsse" in sign_args
    material = (
        ["--envelope", "app.tar.gz.dsse.json"]
        if dsse
        else ["--artifact", artifact, "--signature", "app.tar.gz.sig"]
    )
    bundle = "app.tlog-proof" if "v1" in name else "app.proof.json"
    up = ctx.json("upload", *material, *upload_args, "--bundle", bundle)
    assert up["verified"] is True and up["duplicate"] is False
    assert re.fullmatch(r"[0-9a-f]{64}", up["uuid"])
    kind = name.split("-", maxsplit=1)[0]
    assert up["kind"] == kind
    tle = up["transparency_log_entry"]
    assert tle["logIndex"] == str(up["index"]) and tle["kindVersion"]["kind"] == kind

    # Online, three ways: the signer's files, the UUID, the index.
    key_args = [a for a in upload_args if a != "--api" and a not in ("v1", "v2")]
    key_args = [a for a in key_args if a not in ("--type", "rekord", "dsse")]
    type_args = ["--type", kind]
    by_material = ctx.json("verify", *material, *type_args, *key_args)
    by_uuid = ctx.json("verify", "--uuid", up["uuid"], "--artifact", artifact, *key_args)
    by_index = ctx.json("verify", "--log-index", str(up["index"]))
    for v in (by_material, by_uuid, by_index):
        assert v["verified"] is True and v["mode"] == "online"
        assert v["index"] == up["index"] and v["uuid"] == up["uuid"]
    assert by_uuid["artifact_digests"]

    # Offline, from the proof file, with no log URL that could work.
    off = ctx.json(
        "verify", "--bundle", bundle, "--artifact", artifact, *key_args, STELAE_LOG_URL=DEAD_URL
    )
    assert off["mode"] == "offline" and off["uuid"] == up["uuid"] and off["index"] == up["index"]
    proof = ProofBundle.parse((ctx.dir / bundle).read_bytes())
    assert proof.uuid == up["uuid"]
    if bundle.endswith(".tlog-proof"):
        assert (ctx.dir / bundle).read_text().startswith("c2sp.org/tlog-proof@v1\nextra ")


def test_the_proof_file_holds_rekor_v2s_entry_and_the_tlog_proof(ctx: Ctx) -> None:
    _keygen(ctx)
    _sign(ctx, "a.txt", "proof file\n")
    up = ctx.json("upload", *_signed("a.txt"), "--bundle", "a.proof.json")
    obj = json.loads((ctx.dir / "a.proof.json").read_text())
    assert obj["mediaType"] == "application/vnd.stelae.proof.v1+json"
    assert obj["transparencyLogEntry"] == up["transparency_log_entry"]
    tle = obj["transparencyLogEntry"]
    name, _, rest = ctx.server.vkey.partition("+")
    raw = base64.b64decode(rest.partition("+")[2])[1:]
    assert base64.b64decode(tle["logId"]["keyId"]) == rekor_v2_log_id(name, raw)
    assert tle["integratedTime"] == "0" and tle["inclusionPromise"] is None
    assert tle["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.2"}
    assert obj["tlogProof"].startswith("c2sp.org/tlog-proof@v1\n")
    assert ProofBundle.parse(obj["tlogProof"].encode()).index == up["index"]


def test_a_second_upload_is_a_duplicate_with_the_same_entry(ctx: Ctx) -> None:
    _keygen(ctx)
    _sign(ctx, "a.txt", "twice\n")
    args = ["upload", *_signed("a.txt")]
    first = ctx.json(*args)
    again = ok(ctx.run(*args))
    assert again.stdout.startswith(f"Already in the log: entry {first['index']}")
    assert ctx.json(*args)["duplicate"] is True


def test_verify_finds_nothing_for_an_artifact_never_logged(ctx: Ctx) -> None:
    _keygen(ctx)
    _sign(ctx, "a.txt", "never uploaded\n")
    err = failed(ctx.run("verify", *_signed("a.txt")))
    assert "no entry for this hashedrekord" in err


def test_a_signature_that_does_not_verify_is_refused_before_posting(ctx: Ctx) -> None:
    _keygen(ctx)
    _sign(ctx, "a.txt", "signed\n")
    ctx.write("a.txt", "changed after signing\n")
    err = failed(ctx.run("upload", *_signed("a.txt"), STELAE_SERVER=DEAD_URL))
    assert err.startswith("error:") and "signature" in err and "reach" not in err


def test_an_answer_that_does_not_verify_with_the_vkey_fails(ctx: Ctx) -> None:
    _keygen(ctx)
    _sign(ctx, "a.txt", "wrong vkey\n")
    other = Ed25519NoteSigner.generate("write.test/log").vkey
    args = ["upload", *_signed("a.txt"), "--bundle", "a.proof.json"]
    err = failed(ctx.run(*args, STELAE_VKEY=other))
    assert "no signature from a known key" in err
    assert not (ctx.dir / "a.proof.json").exists()
    proc = ok(ctx.run(*args, "--no-verify", STELAE_VKEY=""))
    assert "NOT verified" in proc.stdout and "warning" in proc.stderr


# --- offline means offline ------------------------------------------------------------------------


def _flip(c: str) -> str:
    return "B" if c == "A" else "A"


# What to change in a tlog-proof, and the reason verification must give.
TAMPERS: dict[str, tuple[Callable[[str], str], str]] = {
    "body": (lambda p: p.replace("extra eyJ", "extra eyI", 1), "does not match expected"),
    "hash": (
        lambda p: re.sub(r"\nindex (\d+)\n(.)", lambda m: f"\nindex {m[1]}\n{_flip(m[2])}", p),
        "does not match expected",
    ),
    "index": (
        lambda p: re.sub(r"\nindex (\d+)\n", lambda m: f"\nindex {int(m[1]) - 1}\n", p),
        "inclusion of leaf 1",
    ),
    "checkpoint": (
        lambda p: re.sub(r"\n\n(.*)\n(\d+)\n", lambda m: f"\n\n{m[1]}\n{int(m[2]) + 1}\n", p),
        "invalid signature",
    ),
    # Past the 4-byte key ID (8 base64 characters): the signature proper.
    "signature": (
        lambda p: re.sub(r"(— \S+ .{10})(.)", lambda m: m[1] + _flip(m[2]), p),
        "invalid signature",
    ),
}


def test_offline_verification_needs_no_server_and_catches_tampering(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    ctx = Ctx(tmp_path, server, child=True)
    _keygen(ctx)
    for i in range(3):  # a tree with a few leaves, so the proof has hashes
        _sign(ctx, f"a{i}.txt", f"offline {i}\n")
        ok(
            ctx.run(
                "upload",
                *_signed(f"a{i}.txt"),
                "--bundle",
                f"a{i}.tlog-proof",
                "--api",
                "v1" if i == 1 else "v2",
            )
        )
    ok(ctx.run("upload", *_signed("a1.txt"), "--bundle", "a1.proof.json", "--api", "v1"))
    server.stop()
    failed(ctx.run("verify", "--log-index", "0"))  # the network really is gone

    for name in ("a0.tlog-proof", "a1.tlog-proof", "a1.proof.json", "a2.tlog-proof"):
        out = ctx.json("verify", "--bundle", name, "--artifact", name[:2] + ".txt")
        assert out["mode"] == "offline"
    v1 = json.loads((ctx.dir / "a1.proof.json").read_text())["transparencyLogEntry"]
    assert v1["inclusionPromise"]["signedEntryTimestamp"]  # the Rekor v1 SET, checked offline
    err = failed(ctx.run("verify", "--bundle", "a1.tlog-proof", "--artifact", "a0.txt"))
    assert "does not commit to this artifact" in err

    ctx.child = False  # the same checks, faster: the verdicts are all in-process logic
    text = (ctx.dir / "a2.tlog-proof").read_text()  # index 2 of 3: the proof has hashes
    for what, (tamper, reason) in TAMPERS.items():
        tampered = tamper(text)
        assert tampered != text, what
        ctx.write(f"t-{what}.tlog-proof", tampered)
        err = failed(ctx.run("verify", "--bundle", f"t-{what}.tlog-proof"))
        assert err.startswith("error:") and reason in err, (what, err)

    proof = json.loads((ctx.dir / "a1.proof.json").read_text())
    proof["transparencyLogEntry"]["inclusionPromise"]["signedEntryTimestamp"] = base64.b64encode(
        bytes(64)
    ).decode()
    ctx.write("t-set.proof.json", json.dumps(proof))
    assert "signed entry timestamp" in failed(ctx.run("verify", "--bundle", "t-set.proof.json"))
    other = Ed25519NoteSigner.generate("write.test/log").vkey
    failed(ctx.run("verify", "--bundle", "a0.tlog-proof", STELAE_VKEY=other))


# --- what the server says -------------------------------------------------------------------------


def test_a_strict_server_answers_409_and_the_entry_is_fetched(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", "--strict-duplicates")
    try:
        ctx = Ctx(tmp_path, server)
        _keygen(ctx)
        _sign(ctx, "a.txt", "strict\n")
        args = ["upload", *_signed("a.txt"), "--bundle", "a.proof.json"]
        first = ctx.json(*args)
        again = ctx.json(*args)
        assert again["duplicate"] is True and again["index"] == first["index"]
        # Fetched through the v1 read API, but shaped as the v2 answer it stands for.
        assert again["transparency_log_entry"]["logId"] == first["transparency_log_entry"]["logId"]
        assert again["transparency_log_entry"]["integratedTime"] == "0"
        ok(ctx.run("verify", "--bundle", "a.proof.json"))
    finally:
        server.stop()


def test_a_queued_entry_is_polled_until_logged(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", "--wait", "0.1", config={"batch_max_age_ms": 1500})
    try:
        ctx = Ctx(tmp_path, server)
        _keygen(ctx)
        _sign(ctx, "a.txt", "queued\n")
        proc = ok(ctx.run("upload", *_signed("a.txt"), "--bundle", "a.proof.json"))
        assert "queued" in proc.stderr and "Logged: entry 0" in proc.stdout
        ok(ctx.run("verify", "--bundle", "a.proof.json", "--artifact", "a.txt"))
    finally:
        server.stop()


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Refuses every entry: 400 with a Rekor-style message, or 503 (overloaded) for keys
    whose name says so."""

    def do_POST(self) -> None:
        body = b'{"code":400,"message":"spec.signature.content: is not what I wanted"}'
        self.send_response(400 if "busy" not in self.path else 503)
        self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_refusal_prints_the_servers_message_and_a_dead_server_one_sentence(ctx: Ctx) -> None:
    _keygen(ctx)
    _sign(ctx, "a.txt", "refused\n")
    args = ["upload", *_signed("a.txt")]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        err = failed(ctx.run(*args, STELAE_SERVER=url))
        assert "HTTP 400" in err and "is not what I wanted" in err
        err = failed(ctx.run(*args, "--timeout", "1", STELAE_SERVER=url + "/busy"))
        assert "busy; retrying" in err and "HTTP 503" in err
    finally:
        httpd.shutdown()
    err = failed(ctx.run(*args, STELAE_SERVER=DEAD_URL))
    assert err.startswith("error: couldn't reach the server") and len(err.splitlines()) == 1


# --- usage ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["upload", "--artifact", "a", "--signature", "s", "--public-key", "k"],  # no --vkey
        ["upload", "--artifact", "a", "--signature", "s", "--vkey", "VKEY"],  # no key
        [
            "upload",
            "--artifact",
            "a",
            "--signature",
            "s",
            "--public-key",
            "k",
            "--certificate",
            "k",
            "--vkey",
            "VKEY",
        ],
        ["upload", "--type", "dsse", "--public-key", "k", "--vkey", "VKEY"],
        [
            "upload",
            "--type",
            "dsse",
            "--envelope",
            "a",
            "--signature",
            "s",
            "--public-key",
            "k",
            "--vkey",
            "VKEY",
        ],
        ["upload", "--artifact", "a", "--public-key", "k", "--vkey", "VKEY"],
        [
            "upload",
            "--type",
            "rekord",
            "--api",
            "v2",
            "--artifact",
            "a",
            "--signature",
            "s",
            "--public-key",
            "k",
            "--vkey",
            "VKEY",
        ],
        [
            "upload",
            "--format",
            "ssh",
            "--artifact",
            "a",
            "--signature",
            "s",
            "--public-key",
            "k",
            "--vkey",
            "VKEY",
        ],
        ["upload", "--artifact", "a", "--signature", "s", "--public-key", "k", "--vkey", "junk"],
        [
            "upload",
            "--artifact",
            "missing",
            "--signature",
            "s",
            "--public-key",
            "k",
            "--vkey",
            "VKEY",
        ],
        ["verify", "--vkey", "VKEY"],
        ["verify", "--bundle", "a", "--log-index", "1", "--vkey", "VKEY"],
        ["verify", "--bundle", "a"],
        ["verify", "--log-index", "1", "--vkey", "VKEY"],  # online without --log-url
        ["verify", "--uuid", "1234", "--log-url", ".", "--vkey", "VKEY"],
        ["keygen"],
        ["keygen", "--type", "dsa", "--out", "x"],
        ["sign", "--key", "k", "--artifact", "missing"],
        ["sign", "--key", "a", "--artifact", "a"],  # not a private key
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    vkey = Ed25519NoteSigner.generate("usage.test/log").vkey
    runner = CliRunner()
    with contextlib.chdir(tmp_path):
        for name in ("a", "s", "k"):
            Path(name).write_text("x")
        env = {
            "STELAE_SERVER": DEAD_URL,
            "STELAE_VKEY": None,
            "STELAE_LOG_URL": None,
            "STELAE_STATE_DIR": str(tmp_path / "state"),
        }
        result = runner.invoke(main, [vkey if a == "VKEY" else a for a in args], env=env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", ["keygen", "sign", "upload", "verify"])
def test_help_has_an_example(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0 and "Example" in result.output
