"""The browser explorer (stelae/explorer/) in a real headless Chromium against ``stelae serve``.

One log served by ``stelae serve`` as a child process with three entries, one browser for the
module (fresh profile). Misbehaving logs are copies of its directory served by a tiny static HTTP
server (with CORS, like the CDN), which the page reads with ``?log=URL``: one tampered tile, a
checkpoint signed by another key, a validly signed checkpoint inconsistent with the one the page
remembered. The page's verification code is also run over the published vectors and compared,
case by case, with the Python implementation's verdicts.

Screenshots of each view go to tests/e2e/browser/screenshots/ (git-ignored; the path is printed).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from stelae import kinds
from stelae.client import signing
from stelae.errors import StelaeError
from stelae.kinds import from_body, minisign, sshsig
from stelae.tiles.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from stelae.tiles.errors import VerificationError
from stelae.tiles.hashing import leaf_hash, root_from_leaf_hashes
from stelae.tiles.indexkeys import entry_keys
from stelae.tiles.indexrun import BatchEntryKeys, batch_records, build_run
from stelae.tiles.layout import TileID
from stelae.tiles.manifest import Manifest
from stelae.tiles.note import Note, open_note, sign_note
from stelae.tiles.notekeys import Ed25519CosignatureSigner, Ed25519NoteSigner, parse_vkey
from stelae.tiles.policy import Policy
from stelae.tiles.proof import verify_consistency, verify_inclusion
from stelae.tiles.proofbundle import ProofBundle
from stelae.tiles.proofbundle import verify as verify_bundle
from tests.e2e.browser.chromium import Chromium, chromium_path
from tests.support import certificates
from tests.support.api import ServeProcess, start_serve, stelae_command
from tests.support.vectors import load_vectors
from tests.tiles.test_merkle import V as MERKLE
from tests.tiles.test_merkle import _cons, _consistency_mutations, _incl, _inclusion_mutations

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium_path() is None and not os.environ.get("CI"),
        reason="chromium is not installed (tests/e2e/browser/install.sh); required in CI",
    ),
]

SHOTS = Path(__file__).parent / "screenshots"
ARTIFACTS = [b"explorer artifact %d\n" % i for i in range(3)]
CERT_ARTIFACT = b"explorer artifact signed under a certificate\n"
JSON_HEADERS = {"Content-Type": "application/json"}


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    data = tmp_path_factory.mktemp("explorer") / "stelae-data"
    proc = start_serve(data)
    try:
        key = signing.generate_key("ecdsa-p256")
        for artifact in ARTIFACTS:
            digest = signing.digest(key, artifact)[1]
            body = signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
            reply = proc.log.request(
                "POST",
                "/api/v2/log/entries",
                json.dumps(body).encode(),
                {"Content-Type": "application/json"},
            )
            assert reply.status == 201, reply.body
        # Entry 3: Rekor v1, signed under a certificate (subject, issuer, SANs to show).
        cert = certificates.self_signed_certificate(
            key, "Signer@Example.COM", uri="https://ci.example/wf"
        )
        v1 = signing.build_v1_hashedrekord(
            signing.sign_artifact(key, CERT_ARTIFACT), cert, artifact=CERT_ARTIFACT
        )
        reply = proc.log.request(
            "POST",
            "/api/v1/log/entries",
            json.dumps(v1).encode(),
            {"Content-Type": "application/json"},
        )
        assert reply.status == 201, reply.body
        yield proc
    finally:
        if proc.proc.poll() is None:
            status, _ = proc.terminate()
            assert status == 0


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    b = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def shots(request: pytest.FixtureRequest) -> Path:
    SHOTS.mkdir(exist_ok=True)
    # Written past pytest's output capture, so a person running the suite sees where to look.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\nexplorer screenshots: {SHOTS}")
    return SHOTS


class _CorsHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        # no-store, not no-cache: the server's If-Modified-Since check has one-second resolution,
        # so a file tampered with in the second it was written would be revalidated as unchanged.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def static_copy(served: ServeProcess, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A copy of the log directory and the URL of a plain static server over it."""
    copy = tmp_path / "log"
    shutil.copytree(served.log.log_dir, copy)
    handler = functools.partial(_CorsHandler, directory=str(copy))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield copy, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def page(served: ServeProcess, fragment: str = "", **query: str) -> str:
    params = {"vkey": served.log.vkey, **query}
    qs = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return f"{served.log.url}/?{qs}{fragment}"


# --- the page against the real log ---------------------------------------------------------------


def test_page_is_served_with_its_files_and_under_300_kb(served: ServeProcess) -> None:
    total = 0
    for path in ("/", "/explorer/app.js", "/explorer/verify.js", "/explorer/style.css"):
        reply = served.log.request("GET", path, None, {})
        assert reply.status == 200, path
        assert "default-src 'none'" in (reply.header("content-security-policy") or "")
        total += len(reply.body)
    assert served.log.request("GET", "/explorer/../config.json", None, {}).status == 404
    assert served.log.request("GET", "/explorer/nope.js", None, {}).status == 404
    sizes = sum(
        p.stat().st_size
        for p in (Path(__file__).parents[3] / "stelae/explorer").iterdir()
        if p.suffix in (".js", ".html", ".css")
    )
    assert sizes < 300_000, sizes


def test_checkpoint_entries_and_entry_verify(
    served: ServeProcess, browser: Chromium, shots: Path
) -> None:
    browser.load(page(served, "#/entries"))
    assert browser.wait_flag("checkpointVerified") == "true"
    assert browser.wait_flag("treeSize") == "4"
    browser.wait_flag("routed")
    text = browser.text()
    assert "Every entry on this page is proved included" in text
    assert "log signature verified" in text
    if len(Note.parse(served.log.checkpoint_bytes()).signatures) > 1:  # the Rekor v1 hint line
        assert "log signature under Rekor v1's key hint, verified" in text
    assert "unknown key" not in text
    for artifact in [*ARTIFACTS, CERT_ARTIFACT]:
        assert "sha256:" + hashlib.sha256(artifact).hexdigest() in text
    browser.screenshot(shots / "entries.png")

    browser.load(page(served, "#/entry/1"))
    assert browser.wait_flag("checkpointVerified") == "true"
    assert browser.wait_flag("inclusionVerified") == "true"
    body = served.log.client.entry(1).data
    text = browser.text()
    assert leaf_hash(body).hex() in text
    assert "signed entry timestamp verified" in text
    assert "sha256:" + hashlib.sha256(ARTIFACTS[1]).hexdigest() in text
    assert "ECDSA P-256" in text
    browser.screenshot(shots / "entry.png")

    browser.load(page(served, "#/entry/3"))
    assert browser.wait_flag("inclusionVerified") == "true"
    text = browser.text()
    assert "CN=stelae test signer" in text
    assert "signer@example.com" in text.lower() and "https://ci.example/wf" in text
    assert "hashedrekord 0.0.1" in text
    browser.screenshot(shots / "entry-certificate.png")


def test_downloaded_proof_bundle_verifies_with_the_cli(
    served: ServeProcess, browser: Chromium, tmp_path: Path
) -> None:
    browser.load(page(served, "#/entry/2"))
    assert browser.wait_flag("inclusionVerified") == "true"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.allow_downloads(downloads)
    browser.evaluate(
        "[...document.querySelectorAll('button')]"
        ".find(b => b.textContent.startsWith('Download proof')).click()"
    )
    browser.wait_download()
    (bundle,) = downloads.iterdir()
    artifact = tmp_path / "artifact"

    artifact.write_bytes(ARTIFACTS[2])
    args = ["--bundle", str(bundle), "--vkey", served.log.vkey, "--artifact", str(artifact)]
    run = subprocess.run(
        [*stelae_command(), "verify", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    # The file is the proof it claims to be: it names entry 2, and another key refuses it.
    proof = ProofBundle.parse(bundle.read_bytes())
    assert proof.index == 2 and proof.body == served.log.client.entry(2).data
    other = Ed25519NoteSigner.generate(proof.tree.origin).verifier
    with pytest.raises(VerificationError):
        verify_bundle(proof, [other], proof.tree.origin)


def test_server_offered_key_is_shown_as_unpinned(
    served: ServeProcess, browser: Chromium, shots: Path
) -> None:
    browser.load(f"{served.log.url}/")
    assert browser.wait_flag("checkpointVerified") == "true"
    assert browser.wait_flag("keySource") == "server"
    assert "Unpinned key" in browser.text()
    browser.screenshot(shots / "home-unpinned.png")


# --- misbehaving logs ----------------------------------------------------------------------------


def test_a_tampered_tile_fails_the_inclusion_proof(
    served: ServeProcess, browser: Chromium, static_copy: tuple[Path, str], shots: Path
) -> None:
    copy, url = static_copy
    tile = copy / TileID(0, 0, served.log.size()).path()
    data = bytearray(tile.read_bytes())
    data[0] ^= 1  # leaf 0's hash: a sibling on entry 1's proof path
    tile.write_bytes(bytes(data))
    browser.load(page(served, "#/entry/1", log=url))
    assert browser.wait_flag("checkpointVerified") == "true"
    assert browser.wait_flag("inclusionVerified") == "false"
    assert "is not proved included in the verified checkpoint" in browser.text()
    browser.screenshot(shots / "tampered-tile.png")


def test_a_checkpoint_signed_by_another_key_is_refused(
    served: ServeProcess, browser: Chromium, static_copy: tuple[Path, str], shots: Path
) -> None:
    copy, url = static_copy
    real = open_checkpoint(
        (copy / "checkpoint").read_bytes(),
        [parse_vkey(served.log.vkey)],
        served.log.vkey.split("+")[0],
    )
    other = Ed25519NoteSigner.generate(real.checkpoint.origin)
    (copy / "checkpoint").write_bytes(sign_checkpoint(real.checkpoint, other))
    browser.load(page(served, "", log=url))
    assert browser.wait_flag("checkpointVerified") == "false"
    assert "does not verify with the trusted key" in browser.text()
    browser.screenshot(shots / "other-key.png")


def test_a_checkpoint_inconsistent_with_the_remembered_one_is_a_fork(
    served: ServeProcess, browser: Chromium, static_copy: tuple[Path, str], shots: Path
) -> None:
    copy, url = static_copy
    browser.load(page(served))  # remembers the real checkpoint (size 3)
    assert browser.wait_flag("checkpointVerified") == "true"
    signer = Ed25519NoteSigner.from_skey((served.log.data / "signing.key").read_text().strip())
    real = open_checkpoint(
        (copy / "checkpoint").read_bytes(), [signer.verifier], signer.name
    ).checkpoint
    forged = Checkpoint(real.origin, real.size, hashlib.sha256(b"another history").digest())
    (copy / "checkpoint").write_bytes(sign_checkpoint(forged, signer))
    browser.load(page(served, "", log=url))
    assert browser.wait_flag("checkpointVerified") == "false"
    text = browser.text()
    assert "not consistent with the one you verified before" in text
    assert real.root_hash.hex() in text and forged.root_hash.hex() in text  # both roots shown
    browser.screenshot(shots / "fork.png")
    # The remembered checkpoint was not replaced: the real log still verifies.
    browser.load(page(served))
    assert browser.wait_flag("checkpointVerified") == "true"


def test_a_pinned_key_is_used_and_a_link_with_another_key_is_refused(
    served: ServeProcess, browser: Chromium, static_copy: tuple[Path, str], shots: Path
) -> None:
    _, url = static_copy  # a log URL of its own, so the pin touches no other test
    browser.load(page(served, "", log=url))
    assert browser.wait_flag("keySource") == "url"
    browser.evaluate(
        "[...document.querySelectorAll('button')].find(b => b.textContent === 'Pin this key')"
        ".click()"
    )
    browser.wait_event("Page.loadEventFired")  # pinning reloads the page
    assert browser.wait_flag("checkpointVerified") == "true"
    assert browser.wait_flag("keySource") == "pinned"
    browser.load(f"{served.log.url}/?log={quote(url, safe='')}")  # no key in the link
    assert browser.wait_flag("checkpointVerified") == "true"
    assert browser.wait_flag("keySource") == "pinned"
    other = Ed25519NoteSigner.generate(served.log.vkey.split("+")[0]).vkey
    browser.load(f"{served.log.url}/?log={quote(url, safe='')}&vkey={quote(other, safe='')}")
    assert browser.wait_flag("checkpointVerified") == "false"
    assert "but you pinned" in browser.text()
    browser.screenshot(shots / "pin-conflict.png")


def test_the_home_view_takes_the_key_from_the_fragment(
    served: ServeProcess, browser: Chromium
) -> None:
    browser.load(f"{served.log.url}/#vkey={served.log.vkey}")
    assert browser.wait_flag("checkpointVerified") == "true"
    assert browser.wait_flag("keySource") == "url"


def test_witness_cosignatures_are_checked_against_a_policy(
    served: ServeProcess, browser: Chromium, static_copy: tuple[Path, str], shots: Path
) -> None:
    copy, url = static_copy
    signer = Ed25519NoteSigner.from_skey((served.log.data / "signing.key").read_text().strip())
    witness = Ed25519CosignatureSigner("witness.example/w1", b"\x07" * 32, lambda: 1_767_225_600)
    absent = Ed25519CosignatureSigner("witness.example/w2", b"\x08" * 32, lambda: 1_767_225_600)
    note = Note.parse((copy / "checkpoint").read_bytes())
    (copy / "checkpoint").write_bytes(sign_note(note.text, [witness], note).to_bytes())
    head = f"log {signer.vkey}\nwitness w1 {witness.vkey}\nwitness w2 {absent.vkey}\n"
    (copy / "met.policy").write_text(head + "group any1 any w1 w2\nquorum any1\n")
    (copy / "unmet.policy").write_text(head + "group both all w1 w2\nquorum both\n")
    browser.load(page(served, "", log=url, policy=url + "met.policy"))
    assert browser.wait_flag("checkpointVerified") == "true"
    text = browser.text()
    assert "witness cosignature verified, 2026-01-01T00:00:00Z" in text
    assert "quorum met" in text
    browser.screenshot(shots / "witnessed.png")
    browser.load(page(served, "", log=url, policy=url + "unmet.policy"))
    assert browser.wait_flag("checkpointVerified") == "false"
    assert "quorum is not met: cosigned by w1" in browser.text()


# --- search ---------------------------------------------------------------------------------------


def test_a_dropped_file_finds_its_entry(
    served: ServeProcess, browser: Chromium, tmp_path: Path, shots: Path
) -> None:
    dropped = tmp_path / "release.tar.gz"
    dropped.write_bytes(ARTIFACTS[1])
    browser.load(page(served, "#/search"))
    assert browser.wait_flag("checkpointVerified") == "true"
    browser.wait_flag("routed")
    box = browser.evaluate(
        "(() => { const el = document.getElementById('drop'); el.scrollIntoView({block: 'center'});"
        " const r = el.getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    data = {"items": [], "files": [str(dropped)], "dragOperationsMask": 1}
    for kind in ("dragEnter", "dragOver", "drop"):
        browser.send("Input.dispatchDragEvent", type=kind, x=box[0], y=box[1], data=data)
    assert browser.wait_flag("searchVerified") == "true"
    assert browser.wait_flag("searchHits") == "1"
    text = browser.text()
    assert "sha256:" + hashlib.sha256(ARTIFACTS[1]).hexdigest() in text
    assert leaf_hash(served.log.client.entry(1).data).hex() in text
    browser.screenshot(shots / "search-dropped-file.png")


def test_requests_the_log_cannot_answer_get_a_sentence(
    served: ServeProcess, browser: Chromium
) -> None:
    browser.load(page(served, "#/entry/99"))
    assert browser.wait_flag("inclusionVerified") == "false"
    assert "Entry 99 is not in the log" in browser.text()
    browser.load(page(served, "#/search?q=not-a-digest"))
    assert browser.wait_flag("searchVerified") == "false"
    assert "Cannot search for that" in browser.text()
    browser.load(page(served, "#/search?q=sha256:" + "0" * 64))  # a digest nobody logged
    assert browser.wait_flag("searchVerified") == "true"
    assert browser.wait_flag("searchHits") == "0"
    assert "No entry of the log mentions" in browser.text()


def _write_verifiable_index(served: ServeProcess, copy: Path) -> None:
    """The docs/index.md objects for the copy's checkpoint, built with the Python core: two
    runs ([0, 1) and [1, 3)), the second in several shards, and the signed manifest."""
    signer = Ed25519NoteSigner.from_skey((served.log.data / "signing.key").read_text().strip())
    cp = open_checkpoint((copy / "checkpoint").read_bytes(), [signer.verifier], signer.name)
    size = cp.checkpoint.size
    entries = []
    for i in range(size):
        e = from_body(served.log.client.entry(i).data)
        keys = entry_keys(e.leaf_hash, e.artifact_digests, e.key_fingerprints, e.identities)
        entries.append(BatchEntryKeys(e.leaf_hash, tuple(k for k in keys if k[0] != "leaf")))
    refs = []
    for a, b in ((0, 1), (1, size)):
        built = build_run(a, b, batch_records(a, entries[a:b]), target=64)
        for path, data in built.objects():
            (copy / path).parent.mkdir(parents=True, exist_ok=True)
            (copy / path).write_bytes(data)
        refs.append(built.ref)
    manifest = Manifest(cp.checkpoint.origin, size, cp.checkpoint.root_hash, tuple(refs))
    (copy / f"index/manifest/{size}").parent.mkdir(parents=True, exist_ok=True)
    (copy / f"index/manifest/{size}").write_bytes(manifest.sign(signer))


def test_search_through_the_verifiable_index_is_complete(
    served: ServeProcess, browser: Chromium, static_copy: tuple[Path, str], shots: Path
) -> None:
    copy, url = static_copy
    _write_verifiable_index(served, copy)
    digest = "sha256:" + hashlib.sha256(ARTIFACTS[2]).hexdigest()
    browser.load(page(served, f"#/search?q={digest}", log=url))
    assert browser.wait_flag("searchVerified") == "true"
    assert browser.wait_flag("searchComplete") == "true"
    assert browser.wait_flag("searchHits") == "1"
    browser.screenshot(shots / "search-index.png")
    # The signer's key fingerprint names all four entries (three under the bare key, one under
    # its certificate), across both runs.
    fingerprint = from_body(served.log.client.entry(0).data).key_fingerprints[0]
    browser.load(page(served, f"#/search?q={fingerprint}", log=url))
    assert browser.wait_flag("searchVerified") == "true"
    assert browser.wait_flag("searchHits") == "4"
    # Shards that are not what the manifest committed to fail the search, with a sentence.
    for shard in (copy / "index/run").glob("1-*/*"):  # whichever shard the key falls in
        data = shard.read_bytes()
        shard.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    browser.load(page(served, f"#/search?q={fingerprint}", log=url))
    assert browser.wait_flag("searchVerified") == "false"
    assert "lookup index failed verification" in browser.text()


# --- the page's code against the published vectors -----------------------------------------------


def _py_verdict(fn: Any, *args: Any) -> str:
    try:
        value = fn(*args)
    except (VerificationError, StelaeError):
        return "reject"
    return "ok" if value is None else str(value)


def _cases() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The cases for run_vectors.js and the Python implementation's verdicts on each."""
    inclusion = [_incl(c) for c in MERKLE["inclusion"]]
    inclusion += [args for c in MERKLE["inclusion"] for _, args in _inclusion_mutations(c)]
    consistency = [_cons(c) for c in MERKLE["consistency"]]
    consistency += [args for c in MERKLE["consistency"] for _, args in _consistency_mutations(c)]
    consistency += [_cons(c) for c in MERKLE["consistency_additional"]]
    notes = load_vectors("notes.json")
    cps = load_vectors("checkpoints.json")
    leaf_inputs = [bytes.fromhex(x) for x in MERKLE["leaf_inputs_hex"]]
    leaves = [leaf_hash(x) for x in leaf_inputs]

    note_cases = [(c["note"], c["vkeys"]) for c in notes["verify"]]
    note_cases.append((notes["invalid_signature"]["note"], notes["invalid_signature"]["vkeys"]))
    vkeys = [*notes["good_vkeys"], *(c["vkey"] for c in notes["bad_vkeys"])]
    signed = [c for c in cps["signed"] if c["log_key"].get("vkey")]
    cp_cases: list[tuple[str, list[str], str, list[str]]] = [
        (c["note"], [c["log_key"]["vkey"]], c["origin"], []) for c in signed
    ]
    cp_cases.append((signed[0]["note"], [signed[0]["log_key"]["vkey"]], "another/origin", []))
    cp_texts = [c["text"] for c in cps["format_only"]] + [c["text"] for c in cps["malformed"]]

    # Witness policies: a checkpoint cosigned by one of two witnesses, under policies it meets
    # and one it does not.
    log = Ed25519NoteSigner(served_origin := "example.test/log", b"\x01" * 32)
    w1 = Ed25519CosignatureSigner("w1.example", b"\x02" * 32, lambda: 1_700_000_000)
    w2 = Ed25519CosignatureSigner("w2.example", b"\x03" * 32, lambda: 1_700_000_000)
    text = Checkpoint(served_origin, 5, hashlib.sha256(b"root").digest()).to_text()
    cosigned = sign_note(text, [log, w1]).to_bytes().decode()
    head = f"log {log.vkey}\nwitness a {w1.vkey}\nwitness b {w2.vkey}\n"
    policies = [
        (head + "group g any a b\nquorum g\n", cosigned, log.vkey, served_origin),
        (head + "quorum a\n", cosigned, log.vkey, served_origin),
        (head + "group g all a b\nquorum g\n", cosigned, log.vkey, served_origin),
        (head + "quorum b\n", cosigned, log.vkey, served_origin),
        (head + "quorum none\n", cosigned, log.vkey, served_origin),
    ]

    def hexed(args: tuple[Any, ...]) -> list[Any]:
        return [
            a.hex() if isinstance(a, bytes) else [p.hex() for p in a] if isinstance(a, list) else a
            for a in args
        ]

    cases = {
        "inclusion": [hexed(a) for a in inclusion],
        "consistency": [hexed(a) for a in consistency],
        "leafInputs": MERKLE["leaf_inputs_hex"],
        "rootInputs": [[h.hex() for h in leaves[:n]] for n in range(1, len(leaves) + 1)],
        "tilePaths": [[lv, i, w] for _, lv, i, w in MERKLE["tile_paths"]["valid"]],
        "notes": note_cases,
        "malformedNotes": [
            c["hex"] if "hex" in c else c["text"].encode().hex() for c in notes["malformed"]
        ],
        "vkeys": vkeys,
        "checkpoints": cp_cases,
        "checkpointTexts": cp_texts,
        "policies": policies,
    }

    def open_names(note: str, keys: list[str]) -> str:
        opened = open_note(note.encode(), [parse_vkey(v) for v in keys])
        return ",".join(s.name for s in opened.verified)

    def open_cp(note: str, keys: list[str], origin: str, _w: list[str]) -> str:
        cp = open_checkpoint(note.encode(), [parse_vkey(v) for v in keys], origin)
        root = __import__("base64").b64encode(cp.checkpoint.root_hash).decode()
        return f"{cp.checkpoint.size} {root} {len(cp.note.cosignatures)}"

    def parse_cp(text: str) -> str:
        c = Checkpoint.parse(text)
        root = __import__("base64").b64encode(c.root_hash).decode()
        return f"{c.origin} {c.size} {root} {len(c.extensions)}"

    def quorum(policy: str, note: str, vkey: str, origin: str) -> None:
        Policy.parse(policy.encode()).check_quorum(note.encode())

    expected = {
        "inclusion": [_py_verdict(verify_inclusion, *a) for a in inclusion],
        "consistency": [_py_verdict(verify_consistency, *a) for a in consistency],
        "leafHashes": [h.hex() for h in leaves],
        "roots": [root_from_leaf_hashes(leaves[:n]).hex() for n in range(1, len(leaves) + 1)],
        "tilePaths": [p for p, *_ in MERKLE["tile_paths"]["valid"]],
        "notes": [_py_verdict(open_names, n, k) for n, k in note_cases],
        "malformed": [
            _py_verdict(lambda h: Note.parse(bytes.fromhex(h)) and None, h)
            for h in cases["malformedNotes"]
        ],
        "vkeys": [_py_verdict(lambda v: f"{parse_vkey(v).key_id:08x}", v) for v in vkeys],
        "checkpoints": [_py_verdict(open_cp, *c) for c in cp_cases],
        "checkpointTexts": [_py_verdict(parse_cp, t) for t in cp_texts],
        "policies": [_py_verdict(quorum, *p) for p in policies],
    }
    return cases, expected


def test_page_verifiers_agree_with_python_on_the_vectors(
    served: ServeProcess, browser: Chromium
) -> None:
    cases, expected = _cases()
    browser.load(f"{served.log.url}/explorer/verify.js")  # same origin as the modules
    runner = (Path(__file__).parent / "run_vectors.js").read_text()
    got = browser.evaluate(f"({runner})({json.dumps(cases)})")
    for name, want in expected.items():
        assert got[name] == want, name
    # Not vacuous: the mutations are rejected and the happy paths accepted.
    assert expected["inclusion"].count("reject") > 50
    assert expected["consistency"].count("ok") >= 5
    assert expected["policies"] == ["ok", "ok", "reject", "reject", "ok"]


def _bodies() -> list[bytes]:
    """Canonical bodies of every kind the page decodes: the published ones and generated ones."""
    published = load_vectors("kinds/rekor_bodies.json")
    out = []
    for case in published.values():
        if isinstance(case, dict) and "body_b64" in case:
            body = base64.b64decode(case["body_b64"])
            try:
                kinds.from_body(body)
            except StelaeError:
                continue  # a shape stelae does not store (an older spec name)
            out.append(body)
    artifact = b"decoded in the browser\n"
    for kind in ("ecdsa-p256", "ecdsa-p384", "ed25519", "rsa"):
        key = signing.generate_key(kind, rsa_bits=2048)
        cert = signing.certificate_pem(
            certificates.self_signed_certificate(
                key, "Signer@Example.COM", uri="https://ci.example/wf"
            )
        )
        for verifier in (signing.public_key_pem(key), cert):
            digest = signing.digest(key, artifact)[1]
            v2 = signing.build_v2_hashedrekord(signing.sign_digest(key, digest), verifier, digest)
            out.append(kinds.from_v2_request(v2).body)
            envelope = signing.dsse_envelope(b"{}", "application/vnd.in-toto+json", [key])
            for version in ("0.0.1", "0.0.2"):
                request = signing.build_dsse(envelope, [verifier], version=version)
                entry = (
                    kinds.from_v2_request(request)
                    if version == "0.0.2"
                    else kinds.from_v1_proposed(request)
                )
                out.append(entry.body)
            if kind != "ed25519":
                sig = signing.sign_artifact(key, artifact)
                v1 = signing.build_v1_hashedrekord(sig, verifier, artifact=artifact)
                out.append(kinds.from_v1_proposed(v1).body)
                out.append(
                    kinds.from_v1_proposed(signing.build_rekord(artifact, sig, verifier)).body
                )
        ssh_key = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
        rekord = signing.build_rekord(
            artifact, sshsig.sign(key, artifact), ssh_key, signature_format="ssh"
        )
        out.append(kinds.from_v1_proposed(rekord).body)
    mkey = Ed25519PrivateKey.generate()
    public = b"untrusted comment: k\n" + minisign.public_key_text(b"\x01" * 8, mkey.public_key())
    sig = minisign.sign(mkey, b"\x01" * 8, artifact)
    rekord = signing.build_rekord(artifact, sig, public + b"\n", signature_format="minisign")
    out.append(kinds.from_v1_proposed(rekord).body)
    try:
        import pysequoia
    except ImportError:
        return out
    tsk = pysequoia.Tsk.generate("Release Signer <Releases@Example.org>")
    sig = pysequoia.sign(tsk.signer(), artifact, mode=pysequoia.SignatureMode.DETACHED)
    cert = str(tsk.extract_certificate()).encode()
    out.append(
        kinds.from_v1_proposed(
            signing.build_rekord(artifact, sig, cert, signature_format="pgp")
        ).body
    )
    return out


def test_page_decodes_the_index_keys_python_derives(
    served: ServeProcess, browser: Chromium
) -> None:
    bodies = _bodies()
    browser.load(f"{served.log.url}/explorer/entry.js")
    got = browser.evaluate(
        """(async (bodies) => {
            const E = await import(new URL("/explorer/entry.js", location.href));
            const out = [];
            for (const b64 of bodies) {
                const body = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                const d = await E.describeEntry(body);
                out.push({kind: `${d.kind} ${d.apiVersion}`, digests: d.digests.sort(),
                          keys: d.keys.sort(), identities: d.identities.sort(),
                          problem: d.problem});
            }
            return out;
        })(BODIES)""".replace("BODIES", json.dumps([base64.b64encode(b).decode() for b in bodies]))
    )
    kinds_seen = set()
    for body, page_facts in zip(bodies, got, strict=True):
        entry = kinds.from_body(body)
        kinds_seen.add(page_facts["kind"])
        assert page_facts == {
            "kind": f"{entry.kind} {entry.api_version}",
            "digests": sorted(entry.artifact_digests),
            "keys": sorted(entry.key_fingerprints),
            "identities": sorted(entry.identities),
            "problem": "",
        }, json.loads(body)
    assert {"hashedrekord 0.0.1", "hashedrekord 0.0.2", "dsse 0.0.1", "dsse 0.0.2"} <= kinds_seen
    assert "rekord 0.0.1" in kinds_seen


def test_growth_is_proved_consistent_from_tiles_and_a_stale_checkpoint_is_not_a_fork(
    served: ServeProcess, browser: Chromium, static_copy: tuple[Path, str], shots: Path
) -> None:
    """Runs late: it grows the log by one entry (the tests above expect four)."""
    copy, older = static_copy  # the log as it is now
    size = served.log.size()
    browser.load(page(served))
    browser.evaluate("localStorage.clear()")  # forget what earlier tests remembered
    browser.load(page(served, "", log=older))
    assert browser.wait_flag("checkpointVerified") == "true"  # remembered: size `size`
    key = signing.generate_key("ed25519")
    digest = signing.digest(key, b"one more")[1]
    request = signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
    reply = served.log.request(
        "POST", "/api/v2/log/entries", json.dumps(request).encode(), JSON_HEADERS
    )
    assert reply.status == 201, reply.body
    browser.load(page(served))
    assert browser.wait_flag("checkpointVerified") == "true"
    assert browser.wait_flag("treeSize") == str(size + 1)
    assert f"consistent with the checkpoint you verified before (size {size})" in browser.text()
    browser.screenshot(shots / "grown.png")
    # The older copy cannot prove its checkpoint is a prefix of the newer one (it lacks the
    # newer tree's tiles): not proved, so not accepted, but not called a fork either.
    browser.load(page(served, "", log=older))
    assert browser.wait_flag("checkpointVerified") == "false"
    text = browser.text()
    assert "Could not prove this checkpoint consistent" in text and "fork" not in text
    # A cache serving the older checkpoint beside current tiles: proved, and not remembered.
    stale = (copy / "checkpoint").read_bytes()
    shutil.copytree(served.log.log_dir, copy, dirs_exist_ok=True)
    (copy / "checkpoint").write_bytes(stale)
    browser.load(page(served, "", log=older))
    assert browser.wait_flag("checkpointVerified") == "true"
    assert f"older than the checkpoint you verified before (size {size + 1})" in browser.text()
    browser.load(page(served))  # the newer one is still the one remembered
    assert browser.wait_flag("checkpointVerified") == "true"
    assert f"(size {size + 1}), proved from tiles" in browser.text()


def test_no_page_raised_an_uncaught_exception(browser: Chromium) -> None:
    """Last in the module: every view above ran without an uncaught error or console error."""
    assert browser.errors == []
