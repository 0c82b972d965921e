// The verifiable lookup index of docs/index.md: index keys, the signed manifest for a
// checkpoint, and each run's shard verified against the run root the manifest lists. A lookup
// through it is complete for the checkpoint. Mirrors stelae/tiles/{indexkeys,indexrecord,
// indexrun,manifest,search}.py.

import { NotFound } from "./tiles.js";
import {
  EMPTY_ROOT,
  FormatError,
  VerificationError,
  b64decode,
  equal,
  leafHash,
  openNote,
  rootFromInclusionProof,
  rootFromLeafHashes,
  sha256,
  toHex,
} from "./verify.js";

const enc = new TextEncoder();
const SHARD_MAGIC = enc.encode("stelae-index-shard/v1\n");
const MAX_BITS = 24;
const MAX_INDEX = 2n ** 63n - 1n;

/** SHA-256("stelae-index-key/v1\n" || kind || "\n" || value)[0:16], value already normalized. */
export async function indexKey(kind, value) {
  return (await sha256(enc.encode(`stelae-index-key/v1\n${kind}\n${value}`))).slice(0, 16);
}

/** The shard of a 16-byte key in a run of 2^bits shards: its top `bits` bits. */
export function shardOf(key, bits) {
  return bits === 0 ? 0n : BigInt("0x" + toHex(key)) >> BigInt(128 - bits);
}

const DECIMAL = /^(0|[1-9][0-9]{0,18})$/;

function decimal(text, what) {
  if (!DECIMAL.test(text) || BigInt(text) > MAX_INDEX) throw new FormatError(`manifest: ${what} ${JSON.stringify(text.slice(0, 30))} is not a canonical decimal`);
  return BigInt(text);
}

/**
 * Open `index/manifest/<size>` for the verified checkpoint `cp`: signed by the log key, for
 * the same origin, size and root, its runs partitioning [0, size). Returns the runs.
 */
export async function openManifest(bytes, logKey, cp) {
  const note = await openNote(bytes, [logKey]);
  const lines = note.text.slice(0, -1).split("\n");
  if (lines[0] !== "stelae-index/v1" || lines.length < 4) throw new FormatError("manifest: not a stelae-index/v1 manifest");
  if (lines[1] !== cp.origin) throw new VerificationError(`manifest is for origin ${JSON.stringify(lines[1])}, not ${JSON.stringify(cp.origin)}`);
  if (decimal(lines[2], "tree size") !== cp.size) throw new VerificationError(`manifest is for tree size ${lines[2]}, not ${cp.size}`);
  const root = b64decode(lines[3], "manifest root");
  if (!equal(root, cp.root)) throw new VerificationError(`manifest root ${toHex(root)} is not the checkpoint's ${toHex(cp.root)}`);
  const runs = [];
  let end = 0n;
  for (const line of lines.slice(4)) {
    const f = line.split(" ");
    if (f.length !== 4) throw new FormatError(`manifest: run line ${JSON.stringify(line.slice(0, 80))} is not "a b bits root"`);
    const a = decimal(f[0], "run start");
    const b = decimal(f[1], "run end");
    const bits = Number(decimal(f[2], "run bits"));
    const runRoot = b64decode(f[3], "run root");
    if (runRoot.length !== 32) throw new FormatError("manifest: a run root is not 32 bytes");
    if (bits > MAX_BITS) throw new FormatError(`manifest: run ${a}-${b} has bits ${bits}`);
    if (a !== end) throw new VerificationError(`manifest: entries from ${end} are not covered by exactly one run (next run starts at ${a})`);
    if (b <= a) throw new FormatError(`manifest: run ${a}-${b} is empty`);
    runs.push({ a, b, bits, root: runRoot });
    end = b;
  }
  if (end !== cp.size) throw new VerificationError(`manifest: the runs end at ${end}, not at the tree size ${cp.size}`);
  return runs;
}

class Reader {
  constructor(data, what) {
    this.data = data;
    this.at = 0;
    this.what = what;
  }

  fail(why) {
    return new FormatError(`${this.what}: ${why}`);
  }

  u8() {
    if (this.at >= this.data.length) throw this.fail("ends early");
    return this.data[this.at++];
  }

  /** Minimal LEB128 below 2^63 (docs/index.md "Records"). */
  uvarint() {
    let n = 0n;
    for (let i = 0; i < 9; i++) {
      const byte = this.u8();
      n |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if (!(byte & 0x80)) {
        if (byte === 0 && i > 0) throw this.fail("a varint is not minimal");
        return n;
      }
    }
    throw this.fail("a varint is longer than 9 bytes");
  }

  bytes(n) {
    if (this.at + n > this.data.length) throw this.fail("ends early");
    const out = this.data.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}

/**
 * Fetch and verify the shard of `key` in `run`; return the key's indices in the run (BigInt).
 * Every check of docs/index.md "Lookups" step 2: header, records well-formed, ascending, in the
 * shard and inside [a, b), nothing after the last, and records plus proof lead to the run root.
 */
export async function lookupRun(fetcher, run, key) {
  const s = shardOf(key, run.bits);
  const path = `index/run/${run.a}-${run.b}/${s}`;
  const r = new Reader(await fetcher.get(path), path);
  if (!equal(r.bytes(SHARD_MAGIC.length), SHARD_MAGIC)) throw r.fail("not a stelae-index-shard/v1 object");
  const header = [r.uvarint(), r.uvarint(), BigInt(r.u8()), r.uvarint()];
  if (header[0] !== run.a || header[1] !== run.b || header[2] !== BigInt(run.bits) || header[3] !== s) {
    throw r.fail(`its header names run ${header[0]}-${header[1]} bits ${header[2]} shard ${header[3]}`);
  }
  const count = r.uvarint();
  const proof = [];
  for (let i = 0; i < run.bits; i++) proof.push(r.bytes(32).slice());
  const hashes = [];
  let found = null;
  let previous = null;
  for (let j = 0n; j < count; j++) {
    const start = r.at;
    const k = r.bytes(16);
    const flags = r.u8();
    if (flags > 1) throw r.fail("a record has unknown flag bits");
    const n = r.uvarint();
    if (n < 1n || n > BigInt(r.data.length)) throw r.fail("a record lists no index");
    const indices = [];
    const offsets = [];
    let last = run.a - 1n;
    for (let i = 0n; i < n; i++) {
      last = last + 1n + r.uvarint();
      if (last >= run.b) throw r.fail(`a record lists index ${last}, outside the run`);
      indices.push(last);
    }
    if (flags & 1) {
      for (let i = 0; i < indices.length; i++) {
        offsets.push(r.uvarint());
        if (offsets[i] > indices[i] - run.a) throw r.fail("a batch offset reaches before the run");
      }
    }
    if (previous && toHex(previous) >= toHex(k)) throw r.fail("records are not strictly ascending by key");
    if (shardOf(k, run.bits) !== s) throw r.fail("a record's key belongs to another shard");
    previous = k;
    hashes.push(await leafHash(r.data.subarray(start, r.at)));
    if (equal(k, key)) found = { indices, offsets };
  }
  if (r.at !== r.data.length) throw r.fail("bytes follow the last record");
  const shardRoot = count === 0n ? EMPTY_ROOT : await rootFromLeafHashes(hashes);
  const runRoot = await rootFromInclusionProof(s, 1n << BigInt(run.bits), shardRoot, proof);
  if (!equal(runRoot, run.root)) {
    throw new VerificationError(`${path}: its records and proof lead to run root ${toHex(runRoot)}, not the manifest's ${toHex(run.root)}`);
  }
  return found || { indices: [], offsets: [] };
}

const manifests = new Map(); // tree size -> promise of the verified runs (or null)

/** The verified runs of the manifest for checkpoint `cp`, or null when the log has none. */
export function manifestRuns(fetcher, logKey, cp) {
  const k = `${fetcher.base} ${cp.size} ${toHex(cp.root)}`;
  if (!manifests.has(k)) {
    manifests.set(
      k,
      fetcher.get(`index/manifest/${cp.size}`).then(
        (bytes) => openManifest(bytes, logKey, cp),
        (err) => {
          if (err instanceof NotFound) return null;
          throw err;
        },
      ),
    );
  }
  return manifests.get(k);
}

/**
 * Look `meanings` ({kind, value}, normalized as docs/index.md "Keys") up through the verifiable
 * index at checkpoint `cp`. Returns a Map index(Number) -> meanings, or null when the log has
 * no manifest for this size (then there is nothing verifiable to consult).
 */
export async function indexLookup(fetcher, logKey, cp, meanings) {
  const runs = await manifestRuns(fetcher, logKey, cp);
  if (!runs) return null;
  const found = new Map();
  for (const meaning of meanings) {
    const key = await indexKey(meaning.kind, meaning.value);
    for (const run of runs) {
      for (const i of (await lookupRun(fetcher, run, key)).indices) {
        const n = Number(i);
        found.set(n, [...(found.get(n) || []), meaning]);
      }
    }
  }
  return found;
}

/** An index object the lookup needs is gone (404), even at the log's latest checkpoint. */
export class IndexMissing extends Error {
  constructor(message) {
    super(message);
    this.name = "IndexMissing";
  }
}

/**
 * `lookupAt(cp)`, or, when an index object it needs is gone (404), once more at the log's latest
 * checkpoint. Mirrors lookup_or_latest in stelae/tiles/search.py: a log deletes the runs a newer
 * manifest replaced a grace period later (docs/index.md, "Garbage collection"), so a page left
 * open longer than that meets a 404. `latest()` returns the latest checkpoint verified with the
 * log key and proved consistent with `cp`, so an index complete for it is complete for `cp` for
 * the indices below `cp.size` (the caller keeps only those). Only a 404 is retried: a shard that
 * does not verify is an error at any size. `lookupAt` returns null when the log has no manifest
 * for the checkpoint. Returns {value, size} (the size looked up at), or null when there is no
 * manifest for `cp` (then there is nothing verifiable to consult).
 */
async function atOrLatest(cp, latest, lookupAt) {
  let gone;
  try {
    const value = await lookupAt(cp);
    return value && { value, size: cp.size };
  } catch (err) {
    if (!(err instanceof NotFound)) throw err;
    gone = err;
  }
  const newer = await latest();
  if (newer.size <= cp.size) {
    throw new IndexMissing(`${gone.message} (the index object was collected and the log has no newer checkpoint than ${cp.size})`);
  }
  let value;
  try {
    value = await lookupAt(newer);
  } catch (err) {
    if (err instanceof NotFound) throw new IndexMissing(`${err.message}, at the latest checkpoint (size ${newer.size}) too`);
    throw err;
  }
  if (!value) throw new IndexMissing(`the log has no index manifest for its latest checkpoint (size ${newer.size})`);
  return { value, size: newer.size };
}

/**
 * `indexLookup` at `cp` through `atOrLatest`: hits at or above `cp.size` (found at the latest
 * checkpoint) are dropped. Returns {found, size} or null when the log has no manifest for `cp`.
 */
export async function indexLookupOrLatest(fetcher, logKey, cp, meanings, latest) {
  const r = await atOrLatest(cp, latest, (at) => indexLookup(fetcher, logKey, at, meanings));
  if (!r) return null;
  for (const i of [...r.value.keys()]) if (BigInt(i) >= cp.size) r.value.delete(i);
  return { found: r.value, size: r.size };
}

// --- batch records (docs/index.md "Batch records and receipts") ------------------------------------

/**
 * The integrated time and Rekor v1 signed entry timestamp of entry `index` (leaf hash `leaf`),
 * from the record of the batch that sequenced it. The batch is found through the verified index
 * (the leaf record's batch offset); the record must list `leaf` at the entry's position. Returns
 * {time, set} (the SET is still to be verified by the caller) or null when the log has no
 * verifiable index. The record itself is unsigned: only the SET makes its time the log's word.
 * A leaf record collected at `cp` is looked up once more at `latest()` (`atOrLatest`).
 */
export async function batchTimestamp(fetcher, logKey, cp, index, leaf, latest) {
  const key = await indexKey("leaf", toHex(leaf));
  // The run that holds the entry, at `cp` or, if it was collected, at the latest checkpoint
  // (whose merged run holds the same leaf record: the batch offset does not change).
  const r = await atOrLatest(cp, latest, async (at) => {
    const runs = await manifestRuns(fetcher, logKey, at);
    return runs && lookupRun(fetcher, runs.find((x) => x.a <= index && index < x.b), key);
  });
  if (!r) return null;
  const found = r.value;
  const at = found.indices.indexOf(index);
  if (at < 0 || !found.offsets.length) throw new VerificationError(`the lookup index has no leaf record for entry ${index}`);
  const first = index - found.offsets[at];
  const path = `batch/${first}`;
  let data;
  try {
    data = await fetcher.get(path);
  } catch (err) {
    // The index names this batch, and batch records are never collected (docs/index.md, "Garbage
    // collection"): its absence is a fault of the log, not an unpublished time.
    if (err instanceof NotFound) throw new IndexMissing(`the index names batch record ${path}, but it is ${err.message}`);
    throw err;
  }
  const nl = data.indexOf(0x0a);
  if (nl < 0) throw new FormatError(`${path}: no header line`);
  let header;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data.subarray(0, nl)));
  } catch (err) {
    throw new FormatError(`${path}: unreadable header (${err.message})`);
  }
  const nat = (v) => Number.isSafeInteger(v) && v >= 0;
  if (header?.format !== "stelae-batch/v1" || header.first !== Number(first) || !nat(header.count) || !nat(header.integrated_time) || !Array.isArray(header.lengths)) {
    throw new FormatError(`${path}: not the batch record of entry ${index}`);
  }
  const position = Number(index - first);
  if (position >= header.count || header.lengths[0] !== header.count * 32) throw new FormatError(`${path}: does not hold entry ${index}`);
  const leaves = data.subarray(nl + 1, nl + 1 + header.lengths[0]);
  if (!equal(leaves.subarray(position * 32, position * 32 + 32), leaf)) {
    throw new VerificationError(`${path} lists another leaf hash at entry ${index}'s position`);
  }
  let at2 = nl + 1 + header.lengths[0];
  const end = at2 + header.lengths[1];
  let set = null;
  for (let i = 0; i < header.count && at2 < end; i++) {
    const n = data[at2];
    if (i === position) set = data.slice(at2 + 1, at2 + 1 + n);
    at2 += 1 + n;
  }
  return { time: header.integrated_time, set: set && set.length ? set : null };
}
