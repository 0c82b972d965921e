"""``--witness-policy`` on the reader commands and on ``verify --bundle``, run as subprocesses:
a checkpoint without the policy's quorum of cosignatures is exit 1, naming who signed and who is
missing (https://c2sp.org/tlog-policy)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stelae import kinds
from stelae.client import signing
from stelae.tiles.checkpoint import Checkpoint, sign_checkpoint
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.note import Note, sign_note
from stelae.tiles.notekeys import Ed25519CosignatureSigner, Ed25519NoteSigner
from stelae.tiles.proofbundle import ProofBundle
from tests.support.cli import run_stelae
from tests.support.merkle_reference import mth, path
from tests.support.tlog import MemoryLog

LOG = Ed25519NoteSigner("policy.example.test/log", bytes([21]) * 32)
W = [
    Ed25519CosignatureSigner(f"w{i}.example.test", bytes([30 + i]) * 32, lambda: 1_700_000_000)
    for i in range(3)
]


def _entries() -> list[bytes]:
    key = signing.generate_key("ecdsa-p256")
    bodies = []
    for i in range(3):
        artifact = b"artifact %d" % i
        sig = signing.sign_artifact(key, artifact)
        proposed = signing.build_v1_hashedrekord(
            sig, signing.public_key_pem(key), artifact=artifact
        )
        bodies.append(kinds.from_v1_proposed(proposed).body)
    return bodies


class Setup:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.dir = tmp / "log"
        self.entries = _entries()
        memory = MemoryLog()
        memory.append(self.entries)
        for name, data in memory.objects.items():
            (self.dir / name).parent.mkdir(parents=True, exist_ok=True)
            (self.dir / name).write_bytes(data)
        self.leaves = [leaf_hash(e) for e in self.entries]
        self.cp = Checkpoint(LOG.name, 3, mth(self.leaves))
        (tmp / "vkey").write_text(LOG.vkey + "\n")
        policy = [f"log {LOG.vkey}\n"] + [f"witness W{i} {w.vkey}\n" for i, w in enumerate(W)]
        (tmp / "policy").write_text("".join(policy) + "group Q 2 W0 W1 W2\nquorum Q\n")

    def publish(self, *cosigners: int) -> bytes:
        note = Note.parse(sign_checkpoint(self.cp, LOG))
        note = sign_note(note.text, [W[i] for i in cosigners], note)
        (self.dir / "checkpoint").write_bytes(note.to_bytes())
        return note.to_bytes()

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "STELAE_STATE_DIR": str(self.tmp / "state"),
            "STELAE_VKEY": f"@{self.tmp / 'vkey'}",
        }
        return run_stelae(*args, env=env)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return Setup(tmp_path_factory.mktemp("policy"))


READERS = [
    ("loginfo",),
    ("get", "--log-index", "1"),
    ("logproof", "--first-size", "1"),
    ("monitor", "--once"),
    ("verify", "--log-index", "2"),
]


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_readers_require_the_quorum(setup: Setup, command: tuple[str, ...]) -> None:
    setup.publish(1)
    args = [*command, "--log-url", str(setup.dir), "--witness-policy", str(setup.tmp / "policy")]
    proc = setup.run(*args)
    assert proc.returncode == 1, proc.stderr
    assert "witness quorum 'Q'" in proc.stderr
    assert "signed by W1; missing W0, W2" in proc.stderr
    setup.publish(0, 2)
    proc = setup.run(*args)
    assert "witness" not in proc.stderr
    if command[0] != "monitor":  # the monitor also audits the lookup index this log lacks
        assert proc.returncode == 0, proc.stderr
    if command[0] == "loginfo":
        # Without the option nothing changes for logs that are not witnessed.
        setup.publish()
        assert setup.run(*command, "--log-url", str(setup.dir)).returncode == 0


def test_verify_bundle_offline_requires_the_quorum(setup: Setup) -> None:
    for cosigners, status in (((2,), 1), ((0, 1, 2), 0)):
        note = setup.publish(*cosigners)
        bundle = ProofBundle(1, setup.entries[1], tuple(path(1, setup.leaves)), note)
        proof = setup.tmp / f"entry-{len(cosigners)}.tlog-proof"
        proof.write_bytes(bundle.to_tlog_proof())
        proc = setup.run(
            "verify", "--bundle", str(proof), "--witness-policy", str(setup.tmp / "policy")
        )
        assert proc.returncode == status, proc.stderr
        if status:
            assert "signed by W2; missing W0, W1" in proc.stderr
        else:
            assert "Verified (offline)" in proc.stdout


def test_a_bad_policy_file_is_a_usage_error(setup: Setup) -> None:
    bad = setup.tmp / "bad-policy"
    bad.write_text("witness A nope\nquorum A\n")
    proc = setup.run("loginfo", "--log-url", str(setup.dir), "--witness-policy", str(bad))
    assert proc.returncode == 2
    assert "policy line 1: bad witness vkey" in proc.stderr


def test_monitor_reports_a_witness_holding_another_tree(setup: Setup, tmp_path: Path) -> None:
    """The log shows us tree A of size 3; a real witness was fed tree B of size 3 (signed by
    the same log key). ``monitor --witness-policy`` reads the witness's checkpoint and alerts
    with both signed notes; a witness holding our tree raises nothing."""
    from stelae.tiles.addcheckpoint import AddCheckpointRequest
    from stelae.witness.identity import create_key
    from tests.support.witness import MemoryTree, log_list, start_witness

    (tmp_path / "logs.txt").write_bytes(log_list((LOG.vkey, 86400)))
    honest_dir, forked_dir = tmp_path / "honest", tmp_path / "forked"
    create_key(honest_dir, "honest.example.test", "ed25519")
    create_key(forked_dir, "forked.example.test", "ed25519")
    ours = setup.publish()
    fork = MemoryTree(LOG, setup.leaves[:1]).grow(2, b"fork")
    assert fork.checkpoint().root_hash != setup.cp.root_hash
    procs = [start_witness(d, tmp_path / "logs.txt") for d in (honest_dir, forked_dir)]
    try:
        honest, forked = procs
        assert honest.post(AddCheckpointRequest(0, (), ours).to_bytes())[0] == 200
        assert forked.post(fork.request(0))[0] == 200
        for name, proc, want in (("H", honest, False), ("F", forked, True)):
            policy = tmp_path / f"policy-{name}"
            policy.write_text(f"witness {name} {proc.vkey} {proc.url}\nquorum none\n")
            run = setup.run(
                "monitor", "--once", "--log-url", str(setup.dir), "--witness-policy", str(policy)
            )
            assert ('"alert": "split_view"' in run.stdout) is want, run.stdout + run.stderr
            if want:
                assert run.returncode == 1
                assert '"witness": "F"' in run.stdout
                assert fork.note().decode().split("\n")[2] in run.stdout  # their root
                assert "FORK" in run.stderr
    finally:
        for proc in procs:
            proc.stop()
