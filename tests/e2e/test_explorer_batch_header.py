"""The explorer's batch record reader (stelae/explorer/index.js, ``batchTimestamp``) on records that
carry the sequencer's advice to writers, ``look_after_ms``: it must keep reading their integrated
time and signed entry timestamp. Runs the explorer's own modules under Node.js (the browser
tests cover the page; these modules need only fetch-free file access and WebCrypto)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import stelae
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.local import LocalStore
from stelae.tiles.batch import BatchRecord, PendingEntry
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.paths import batch_path

EXPLORER = Path(stelae.__file__).resolve().parent / "explorer"
T = 1_700_000_000.0

SCRIPT = """
import { readFileSync } from "node:fs";
import { batchTimestamp } from "%(explorer)s/index.js";
import { parseVkey, openCheckpoint, fromHex, toHex } from "%(explorer)s/verify.js";
import { NotFound } from "%(explorer)s/tiles.js";
const args = JSON.parse(process.argv[2]);
const fetcher = {
  base: "file:" + args.dir + "/",
  count: 0,
  async get(p) {
    try {
      return new Uint8Array(readFileSync(args.dir + "/" + p));
    } catch {
      throw new NotFound(p);
    }
  },
};
const key = await parseVkey(args.vkey);
const cp = await openCheckpoint(await fetcher.get("checkpoint"), [key], args.origin);
const out = [];
for (const [index, leaf] of args.entries) {
  const r = await batchTimestamp(fetcher, key, cp, BigInt(index), fromHex(leaf), async () => cp);
  out.push([index, r.time, r.set ? toHex(r.set) : null]);
}
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_explorer_reads_batch_records_that_carry_look_after_ms(tmp_path: Path) -> None:
    signer = Ed25519NoteSigner.generate("explorer-look-after.example.test")
    store = LocalStore(tmp_path / "log")
    config = SequencerConfig(signer.name, background_merges=False)
    seq = Sequencer(store, signer, config, clock=lambda: T)
    now_ms = int(T * 1000)
    batches = [
        [PendingEntry(b"first batch %d" % i) for i in range(3)],
        [PendingEntry(b"second batch %d" % i) for i in range(4)],
    ]
    for batch in batches:
        seq.integrate(batch, sent_ms=[now_ms - 1234, now_ms - 20])
        seq.merge()
    seq.close()
    second = BatchRecord.parse(store.get(batch_path(3)))
    assert second.look_after_ms == 1234  # the first batch advises nothing (none timed before)
    # One entry of each batch: the record without the field and the one with it.
    first = BatchRecord.parse(store.get(batch_path(0)))
    wanted = [(1, first), (5, second)]
    script = tmp_path / "read.mjs"
    script.write_text(SCRIPT % {"explorer": EXPLORER.as_posix()})
    args = {
        "dir": (tmp_path / "log").as_posix(),
        "vkey": signer.vkey,
        "origin": signer.name,
        "entries": [[i, r.leaf_hashes[i - r.first].hex()] for i, r in wanted],
    }
    done = subprocess.run(
        ["node", str(script), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got == [[i, r.integrated_time, r.timestamps[i - r.first].hex()] for i, r in wanted]
    assert all(stamp for _, _, stamp in got)  # signed entry timestamps, read from the records
