// Pure verification code for the explorer: RFC 6962 hashing and proofs, signed notes, verifier
// keys, checkpoints and witness policies. No I/O and no DOM: the test suite runs these functions
// in a headless browser over the same published vectors as the Python code (tests/vectors/).
//
// Specs: RFC 6962 §2.1 and RFC 9162 §2.1.3.2 / §2.1.4.2 (proofs), https://c2sp.org/signed-note,
// https://c2sp.org/tlog-checkpoint, https://c2sp.org/tlog-cosignature,
// https://c2sp.org/tlog-policy. It mirrors stelae/tiles/{hashing,proof,note,notekeys,checkpoint}.py.
// Every signature check is WebCrypto's; nothing here implements a signature scheme.
//
// Tree sizes and indices are BigInt throughout: logs may exceed 2^32 entries and JavaScript's
// bitwise operators work on 32 bits.

const enc = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A proof, signature or format check failed; `evidence` holds what was compared. */
export class VerificationError extends Error {
  constructor(message, evidence = {}) {
    super(message);
    this.name = "VerificationError";
    this.evidence = evidence;
  }
}

/** Bytes that are not the format they claim to be. */
export class FormatError extends VerificationError {
  constructor(message) {
    super(message);
    this.name = "FormatError";
  }
}

// --- bytes ------------------------------------------------------------------------------------

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

export function fromHex(s) {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(s)) throw new FormatError(`not hex: ${s.slice(0, 40)}`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function b64encode(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Standard padded base64, refusing anything b64encode would not have written. */
export function b64decode(s, what = "base64") {
  if (typeof s !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4) {
    throw new FormatError(`${what} is not valid base64`);
  }
  const bin = atob(s);
  const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  if (b64encode(out) !== s) throw new FormatError(`${what} is not canonical base64`);
  return out;
}

export const utf8Encode = (s) => enc.encode(s);

// --- RFC 6962 hashing -------------------------------------------------------------------------

export const HASH_SIZE = 32;

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export const EMPTY_ROOT = fromHex(
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
);

export const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/** The largest power of two strictly below n (n >= 2): RFC 6962's split point k. */
export function splitPoint(n) {
  let k = 1n;
  while (k << 1n < n) k <<= 1n;
  return k;
}

/** MTH over already-hashed leaves (RFC 6962 §2.1); used on tile contents only. */
export async function rootFromLeafHashes(hashes) {
  const n = hashes.length;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return hashes[0];
  const k = Number(splitPoint(BigInt(n)));
  return nodeHash(await rootFromLeafHashes(hashes.slice(0, k)), await rootFromLeafHashes(hashes.slice(k)));
}

// --- which nodes a proof needs (RFC 6962 §2.1.1, §2.1.2) --------------------------------------

/** Leaf ranges [start, end) of PATH(index, D[size]), leaf to root. */
export function inclusionRanges(index, size) {
  index = BigInt(index);
  size = BigInt(size);
  if (index < 0n || index >= size) {
    throw new VerificationError(`leaf index ${index} is not inside a tree of size ${size}`);
  }
  const out = [];
  let start = 0n;
  let end = size;
  while (end - start > 1n) {
    const k = splitPoint(end - start);
    if (index - start < k) {
      out.push([start + k, end]);
      end = start + k;
    } else {
      out.push([start, start + k]);
      start += k;
    }
  }
  return out.reverse();
}

/** Leaf ranges of PROOF(size1, D[size2]) for 0 < size1 <= size2. */
export function consistencyRanges(size1, size2) {
  let m = BigInt(size1);
  const n = BigInt(size2);
  if (!(m > 0n && m <= n)) {
    throw new VerificationError(`no consistency proof from size ${size1} to size ${size2}`);
  }
  const out = [];
  let start = 0n;
  let end = n;
  let complete = true;
  while (m !== end - start) {
    const k = splitPoint(end - start);
    if (m <= k) {
      out.push([start + k, end]);
      end = start + k;
    } else {
      out.push([start, start + k]);
      start += k;
      m -= k;
      complete = false;
    }
  }
  if (!complete) out.push([start, end]);
  return out.reverse();
}

/** The maximal aligned perfect subtrees [level, index] covering [start, end), left to right. */
export function perfectSubtrees(start, end) {
  const out = [];
  let pos = BigInt(start);
  end = BigInt(end);
  while (pos < end) {
    // The largest aligned block starting at pos that fits in the range.
    const bits = (x) => BigInt(x.toString(2).length);
    let level = pos ? bits(pos & -pos) - 1n : bits(end - pos) - 1n;
    while (1n << level > end - pos) level -= 1n;
    out.push([level, pos >> level]);
    pos += 1n << level;
  }
  return out;
}

/** MTH of leaves [start, end) from perfect nodes `node(level, index)` (async). */
export async function rangeRoot(start, end, node) {
  const parts = perfectSubtrees(start, end);
  if (!parts.length) throw new VerificationError(`empty range [${start}, ${end})`);
  let acc = await node(...parts[parts.length - 1]);
  for (let i = parts.length - 2; i >= 0; i--) acc = await nodeHash(await node(...parts[i]), acc);
  return acc;
}

// --- proof verification (RFC 9162 §2.1.3.2, §2.1.4.2) ------------------------------------------

function checkHashes(what, hashes) {
  hashes.forEach((h, i) => {
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
      throw new VerificationError(`${what}: proof hash ${i} is not ${HASH_SIZE} bytes`);
    }
  });
}

export async function rootFromInclusionProof(index, size, leaf, proof) {
  index = BigInt(index);
  size = BigInt(size);
  const what = `inclusion of leaf ${index} in tree of size ${size}`;
  if (size <= 0n || index < 0n || index >= size) {
    throw new VerificationError(`${what}: the index is outside the tree`);
  }
  if (!(leaf instanceof Uint8Array) || leaf.length !== HASH_SIZE) {
    throw new VerificationError(`${what}: the leaf hash is not ${HASH_SIZE} bytes`);
  }
  checkHashes(what, proof);
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new VerificationError(`${what}: proof has ${proof.length} hashes, too many`);
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while (fn !== 0n && (fn & 1n) === 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerificationError(`${what}: proof has ${proof.length} hashes, too few`);
  return r;
}

export async function verifyInclusion(index, size, leaf, proof, root) {
  const calculated = await rootFromInclusionProof(index, size, leaf, proof);
  if (!equal(calculated, root)) {
    throw new VerificationError(
      `inclusion of leaf ${index} in tree of size ${size}: calculated root ${toHex(calculated)} ` +
        `does not match expected ${toHex(root)}`,
      { expected: root, calculated },
    );
  }
}

/** Raise unless `proof` shows tree (size1, root1) is a prefix of (size2, root2). */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  size1 = BigInt(size1);
  size2 = BigInt(size2);
  const what = `consistency from size ${size1} to size ${size2}`;
  if (size1 <= 0n || size2 < size1) {
    throw new VerificationError(`${what}: sizes must satisfy 0 < size1 <= size2`);
  }
  checkHashes(what, proof);
  if (size1 === size2) {
    if (proof.length) throw new VerificationError(`${what}: equal sizes need an empty proof`);
    if (!equal(root1, root2)) {
      throw new VerificationError(`${what}: the roots differ`, { expected: root1, calculated: root2 });
    }
    return;
  }
  if (!proof.length) throw new VerificationError(`${what}: proof is empty`);
  const path = [...proof];
  if ((size1 & (size1 - 1n)) === 0n) path.unshift(root1); // size1 is a power of two
  let fn = size1 - 1n;
  let sn = size2 - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new VerificationError(`${what}: proof has ${proof.length} hashes, too many`);
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while (fn !== 0n && (fn & 1n) === 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerificationError(`${what}: proof has ${proof.length} hashes, too few`);
  if (!equal(fr, root1)) {
    throw new VerificationError(
      `${what} (old root): calculated ${toHex(fr)} does not match expected ${toHex(root1)}`,
      { expected: root1, calculated: fr },
    );
  }
  if (!equal(sr, root2)) {
    throw new VerificationError(
      `${what} (new root): calculated ${toHex(sr)} does not match expected ${toHex(root2)}`,
      { expected: root2, calculated: sr },
    );
  }
}

// --- signed notes (https://c2sp.org/signed-note) -----------------------------------------------

export const MAX_SIGNATURES = 100;
const SIG_PREFIX = "\u2014 ";
// Unicode White_Space (what Go's unicode.IsSpace tests).
const SPACES = /[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
const CONTROL = /[\x00-\x09\x0b-\x1f]/;

function nameProblem(name) {
  if (!name) return "empty key name";
  if (SPACES.test(name)) return `key name ${JSON.stringify(name)} contains a space`;
  if (name.includes("+")) return `key name ${JSON.stringify(name)} contains '+'`;
  if (/[\x00-\x1f]/.test(name)) return `key name ${JSON.stringify(name)} contains a control character`;
  if (/[\ud800-\udfff]/u.test(name) && !name.isWellFormed()) return "key name is not valid UTF-8";
  return null;
}

/**
 * Parse note bytes with the Go note.Open rules: UTF-8, no control characters but newline, text
 * up to the last blank line, 1..100 signature lines of canonical base64 (at least 5 bytes), exact
 * duplicate lines dropped. Returns {text, signatures: [{name, keyId, sig, line}]}.
 */
export function parseNote(bytes) {
  let s;
  try {
    s = utf8.decode(bytes);
  } catch {
    throw new FormatError("note is not valid UTF-8");
  }
  if (CONTROL.test(s)) throw new FormatError("note contains a control character other than newline");
  const split = s.lastIndexOf("\n\n");
  if (split < 0) throw new FormatError("note has no blank line before its signatures");
  const text = s.slice(0, split + 1);
  const sigs = s.slice(split + 2);
  if (!sigs || !sigs.endsWith("\n")) {
    throw new FormatError("signature block is empty or lacks its final newline");
  }
  const lines = sigs.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw new FormatError(`note has more than ${MAX_SIGNATURES} signatures`);
  const signatures = [...new Set(lines)].map((line) => {
    if (!line.startsWith(SIG_PREFIX)) throw new FormatError(`not a signature line: ${line.slice(0, 80)}`);
    const rest = line.slice(SIG_PREFIX.length);
    const sp = rest.indexOf(" ");
    if (sp < 0 || sp === rest.length - 1) throw new FormatError(`signature line has no signature: ${line.slice(0, 80)}`);
    const name = rest.slice(0, sp);
    const problem = nameProblem(name);
    if (problem) throw new FormatError(problem);
    const raw = b64decode(rest.slice(sp + 1), `signature by ${name}`);
    if (raw.length < 5) throw new FormatError(`signature by ${name} is shorter than 5 bytes`);
    const keyId = new DataView(raw.buffer).getUint32(0);
    return { name, keyId, sig: raw.subarray(4), line };
  });
  if (!text || CONTROL.test(text)) throw new FormatError("note text is empty or has a control character");
  return { text, signatures };
}

// --- verifier keys -----------------------------------------------------------------------------

export const KEY_ED25519 = 0x01;
export const KEY_ECDSA = 0x02;
export const KEY_COSIGNATURE = 0x04;
export const KEY_MLDSA44_COSIGNATURE = 0x06;

/** The recommended key ID: SHA-256(name || 0x0A || type || key)[:4] as a uint32. */
export async function noteKeyId(name, type, key) {
  const d = await sha256(concat(enc.encode(name), Uint8Array.of(0x0a, type), key));
  return new DataView(d.buffer).getUint32(0);
}

const CURVES = {
  "2a8648ce3d030107": ["P-256", 32],
  "2b81040022": ["P-384", 48],
  "2b81040023": ["P-521", 66],
};

/**
 * Parse a vkey `name+hex8(keyId)+b64(type || key)` and check its key ID (as Go NewVerifier).
 * Returns {name, keyId, type, key, vkey, verify(message, sig)}; `verify` throws on a bad
 * signature. Type 0x04 adds `timestamp(sig)`. Type 0x06 (ML-DSA-44) parses but WebCrypto cannot
 * check it, so its `verify` throws a VerificationError that says so.
 */
export async function parseVkey(vkey) {
  if (typeof vkey !== "string") throw new FormatError("a vkey must be a string");
  const p1 = vkey.indexOf("+");
  const p2 = p1 < 0 ? -1 : vkey.indexOf("+", p1 + 1);
  if (p1 < 0 || p2 < 0) throw new FormatError(`vkey ${JSON.stringify(vkey.slice(0, 60))} is not name+keyid+key`);
  const name = vkey.slice(0, p1);
  const hex8 = vkey.slice(p1 + 1, p2);
  const problem = nameProblem(name);
  if (problem) throw new FormatError(problem);
  if (!/^[0-9a-f]{8}$/.test(hex8)) throw new FormatError(`vkey key ID ${JSON.stringify(hex8)} is not 8 lowercase hex digits`);
  const raw = b64decode(vkey.slice(p2 + 1), "vkey key");
  if (!raw.length) throw new FormatError("vkey key is empty");
  const type = raw[0];
  const key = raw.slice(1);
  let keyId;
  let verify;
  let timestamp;
  if (type === KEY_ED25519 || type === KEY_COSIGNATURE) {
    if (key.length !== 32) throw new FormatError(`an Ed25519 key is 32 bytes, not ${key.length}`);
    keyId = await noteKeyId(name, type, key);
    let imported;
    try {
      imported = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
    } catch (err) {
      throw new FormatError(`this browser cannot use Ed25519 keys (WebCrypto: ${err.message})`);
    }
    if (type === KEY_ED25519) {
      verify = async (message, sig) => {
        if (sig.length !== 64) throw new VerificationError(`Ed25519 signature is ${sig.length} bytes`);
        if (!(await crypto.subtle.verify("Ed25519", imported, sig, message))) {
          throw new VerificationError("Ed25519 check failed");
        }
      };
    } else {
      // https://c2sp.org/tlog-cosignature: 8-byte big-endian time, then Ed25519 over
      // "cosignature/v1\ntime <T>\n" || note text.
      timestamp = (sig) => new DataView(sig.buffer, sig.byteOffset).getBigUint64(0);
      verify = async (message, sig) => {
        if (sig.length !== 72) throw new VerificationError(`cosignature is ${sig.length} bytes, not 72`);
        const t = timestamp(sig);
        if (t > 2n ** 63n - 1n) throw new VerificationError("cosignature timestamp exceeds 2^63-1");
        const signed = concat(enc.encode(`cosignature/v1\ntime ${t}\n`), message);
        if (!(await crypto.subtle.verify("Ed25519", imported, sig.subarray(8), signed))) {
          throw new VerificationError("Ed25519 cosignature check failed");
        }
      };
    }
  } else if (type === KEY_ECDSA) {
    // ECDSA as transparency-dev/witness and Rekor v1: the key ID is SHA-256(SPKI)[:4] and the
    // signature is DER over SHA-256(text).
    const curve = ecdsaCurve(key);
    const digest = await sha256(key);
    keyId = new DataView(digest.buffer).getUint32(0);
    let imported;
    try {
      imported = await crypto.subtle.importKey("spki", key, { name: "ECDSA", namedCurve: curve[0] }, false, ["verify"]);
    } catch (err) {
      throw new FormatError(`ECDSA vkey is not a usable ${curve[0]} key: ${err.message}`);
    }
    verify = async (message, sig) => {
      const rs = derSignatureToRaw(sig, curve[1]);
      if (!(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, imported, rs, message))) {
        throw new VerificationError("ECDSA check failed");
      }
    };
  } else if (type === KEY_MLDSA44_COSIGNATURE) {
    if (key.length !== 1312) throw new FormatError(`an ML-DSA-44 key is 1312 bytes, not ${key.length}`);
    keyId = await noteKeyId(name, type, key);
    timestamp = (sig) => new DataView(sig.buffer, sig.byteOffset).getBigUint64(0);
    verify = async () => {
      throw new VerificationError("ML-DSA-44 cosignatures cannot be checked in this browser (no WebCrypto support)");
    };
  } else {
    throw new FormatError(`vkey has unknown key type 0x${type.toString(16).padStart(2, "0")}`);
  }
  if (keyId !== parseInt(hex8, 16)) {
    throw new FormatError(`vkey key ID ${hex8} does not match its key (computed ${keyId.toString(16).padStart(8, "0")})`);
  }
  return { name, keyId, type, key, vkey, verify, timestamp };
}

function ecdsaCurve(spki) {
  // SEQUENCE { SEQUENCE { OID ecPublicKey, OID curve }, BIT STRING }: find the curve OID.
  const h = toHex(spki);
  for (const [oid, curve] of Object.entries(CURVES)) {
    if (h.includes("2a8648ce3d0201" + "06" + (oid.length / 2).toString(16).padStart(2, "0") + oid)) return curve;
  }
  throw new FormatError("type 0x02 keys must be ECDSA P-256, P-384 or P-521");
}

/** ECDSA-Sig-Value DER → r||s, each left-padded to the curve size (what WebCrypto takes). */
export function derSignatureToRaw(der, size) {
  const bad = () => new VerificationError("ECDSA signature is not DER");
  let at = 0;
  const len = () => {
    let n = der[at++];
    if (n & 0x80) {
      const k = n & 0x7f;
      if (k < 1 || k > 2) throw bad();
      n = 0;
      for (let i = 0; i < k; i++) n = (n << 8) | der[at++];
    }
    return n;
  };
  if (der[at++] !== 0x30) throw bad();
  if (len() !== der.length - at) throw bad();
  const out = new Uint8Array(2 * size);
  for (let part = 0; part < 2; part++) {
    if (der[at++] !== 0x02) throw bad();
    const n = len();
    let v = der.subarray(at, at + n);
    at += n;
    if (v.length !== n || n === 0) throw bad();
    while (v.length > 1 && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw bad();
    out.set(v, part * size + size - v.length);
  }
  if (at !== der.length) throw bad();
  return out;
}

/**
 * Verify a note against verifier keys, as open_note: every signature from a known
 * (name, key ID) must verify; at least one must. Returns {text, signatures, verified,
 * cosignatures: [{name, keyId, timestamp}], unknown}.
 */
export async function openNote(bytes, verifiers) {
  const note = parseNote(bytes);
  const message = enc.encode(note.text);
  const known = new Map(verifiers.map((v) => [`${v.name}\n${v.keyId}`, v]));
  const verified = [];
  const cosignatures = [];
  const unknown = [];
  for (const sig of note.signatures) {
    const v = known.get(`${sig.name}\n${sig.keyId}`);
    if (!v) {
      unknown.push(sig);
      continue;
    }
    try {
      await v.verify(message, sig.sig);
    } catch (err) {
      throw new VerificationError(
        `invalid signature for key ${sig.name}+${sig.keyId.toString(16).padStart(8, "0")}: ${err.message}`,
      );
    }
    verified.push(sig);
    if (v.timestamp) cosignatures.push({ name: sig.name, keyId: sig.keyId, timestamp: v.timestamp(sig.sig) });
  }
  if (!verified.length) {
    const by = note.signatures.map((s) => `${s.name}+${s.keyId.toString(16).padStart(8, "0")}`).join(", ");
    throw new VerificationError(`note has no signature from a known key (signed by: ${by})`);
  }
  return { ...note, verified, cosignatures, unknown };
}

// --- checkpoints (https://c2sp.org/tlog-checkpoint) -------------------------------------------

const MAX_SIZE = 2n ** 63n - 1n;

export function parseCheckpoint(text) {
  if (!text.endsWith("\n")) throw new FormatError("checkpoint text must end with a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new FormatError(`checkpoint has ${lines.length} lines, needs 3`);
  const [origin, sizeLine, rootLine, ...extensions] = lines;
  for (const [what, line] of [["origin", origin], ...extensions.map((e) => ["extension line", e])]) {
    if (!line) throw new FormatError(`empty ${what}`);
    if (/[\x00-\x1f]/.test(line)) throw new FormatError(`${what} contains a control character`);
  }
  if (!/^(0|[1-9][0-9]{0,18})$/.test(sizeLine) || BigInt(sizeLine) > MAX_SIZE) {
    throw new FormatError(`tree size ${JSON.stringify(sizeLine.slice(0, 30))} is not a canonical decimal`);
  }
  const root = b64decode(rootLine, "root hash");
  if (root.length !== 32) throw new FormatError(`root hash is ${root.length} bytes, not 32`);
  return { origin, size: BigInt(sizeLine), root, extensions };
}

/**
 * Verify a signed checkpoint of log `origin` under `logKeys` (one must have signed it);
 * `witnesses` cosignatures are verified when present. Returns the checkpoint fields plus the
 * opened note.
 */
export async function openCheckpoint(bytes, logKeys, origin, witnesses = []) {
  const note = await openNote(bytes, [...logKeys, ...witnesses]);
  const logIds = new Set(logKeys.map((k) => `${k.name}\n${k.keyId}`));
  if (!note.verified.some((s) => logIds.has(`${s.name}\n${s.keyId}`))) {
    throw new VerificationError("the checkpoint carries no signature by the log's key (only witnesses signed it)");
  }
  const cp = parseCheckpoint(note.text);
  if (cp.origin !== origin) {
    throw new VerificationError(`checkpoint origin ${JSON.stringify(cp.origin)} is not the expected ${JSON.stringify(origin)}`);
  }
  return { ...cp, note };
}
