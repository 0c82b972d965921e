// The explorer page: which key to trust, the verified checkpoint, entries with their inclusion
// proofs, search, and proof export. Everything shown is verified here first (verify.js,
// tiles.js); machine-readable state goes on <body> as data-* attributes ("true", "false", or
// absent while working) and every failure is also a sentence on the page. docs/explorer.md
// describes the trust model.

import * as V from "./verify.js";
import { LogFetcher, TILE_WIDTH, TileReader } from "./tiles.js";
import { describeEntry } from "./entry.js";
import { fill, h, keyIdHex, kv, mono, pill, setFlag, status, time } from "./dom.js";
import { indexLookupOrLatest } from "./index.js";
import { parsePolicy, quorumMet } from "./policy.js";
import { searchView } from "./search.js";
import { integratedTime } from "./timestamp.js";

const params = new URLSearchParams(location.search);
const logBase = new URL(params.get("log") || ".", location.href).href;
const fetcher = new LogFetcher(logBase);
const tiles = new TileReader(fetcher);
const PAGE = 20n;

// --- small helpers -------------------------------------------------------------------------------

const store = {
  get(k) {
    try {
      return localStorage.getItem(k);
    } catch {
      return null;
    }
  },
  set(k, v) {
    try {
      if (v == null) localStorage.removeItem(k);
      else localStorage.setItem(k, v);
    } catch {
      /* storage disabled: the page still verifies, it just cannot remember */
    }
  },
};
const pinKey = `stelae:pin:${logBase}`;
const policyKey = `stelae:policy:${logBase}`;
const rememberedKey = (vkey) => `stelae:checkpoint:${vkey}`;

/**
 * A parameter of a query string or fragment, percent-decoded but with "+" kept: vkeys hold "+"
 * and are pasted into links unescaped, where URLSearchParams would turn each into a space.
 */
function rawParam(text, name) {
  for (const part of text.replace(/^[?#]/, "").split("&")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq) === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1));
      } catch {
        return part.slice(eq + 1);
      }
    }
  }
  return null;
}

// --- trust: which key verifies this log ------------------------------------------------------------

class TrustError extends Error {}

/** The verifier key and where it came from: "url", "pinned" or "server" (unpinned). */
async function resolveKey(unsignedOrigin) {
  const fromUrl = rawParam(location.search, "vkey") || (location.hash.startsWith("#/") ? null : rawParam(location.hash, "vkey"));
  const pinned = store.get(pinKey);
  if (fromUrl) {
    if (pinned && pinned !== fromUrl) {
      throw new TrustError(
        `The link gives this log the key ${fromUrl}, but you pinned ${pinned} for it. ` +
          "The page refuses to choose between them; remove the pin below only if you know the log changed its key.",
      );
    }
    return { vkey: fromUrl, source: pinned ? "pinned" : "url" };
  }
  if (pinned) return { vkey: pinned, source: "pinned" };
  // Last resort: the key the server itself offers (Rekor's publicKey endpoint, an Ed25519 SPKI).
  let pem;
  try {
    pem = new TextDecoder().decode(await fetcher.get("api/v1/log/publicKey", { fresh: true }));
  } catch (err) {
    throw new TrustError(
      `No verifier key: none in the link (?vkey=…), none pinned, and the server offers none (${err.message}).`,
    );
  }
  const der = V.b64decode(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "public key PEM");
  const prefix = "302a300506032b6570032100"; // SubjectPublicKeyInfo of an Ed25519 key
  if (der.length !== 44 || V.toHex(der.subarray(0, 12)) !== prefix) {
    throw new TrustError("The server offers a public key that is not Ed25519; give the log's vkey in the link (?vkey=…).");
  }
  const raw = der.subarray(12);
  const id = await V.noteKeyId(unsignedOrigin, V.KEY_ED25519, raw);
  const vkey = `${unsignedOrigin}+${keyIdHex(id)}+${V.b64encode(V.concat(Uint8Array.of(1), raw))}`;
  return { vkey, source: "server" };
}

function renderTrust(trust, error) {
  const card = document.getElementById("trust");
  card.replaceChildren();
  card.append(h("h2", {}, "Log and key"));
  const rows = [["log", mono(logBase)]];
  if (trust) rows.push(["verifier key", mono(trust.vkey)]);
  card.append(kv(rows));
  const pinned = store.get(pinKey);
  if (error) {
    card.append(status("bad", error));
    if (pinned) card.append(h("button", { onclick: () => (store.set(pinKey, null), location.reload()) }, "Remove my pin"));
    return;
  }
  document.body.dataset.keySource = trust.source;
  if (trust.source === "server") {
    card.append(
      status(
        "warn",
        "Unpinned key: the log's own server offered it. A server that lies can offer a key of its own, " +
          "so a valid signature under this key proves only that the log is self-consistent. " +
          "Compare it with the key the log's operator publishes elsewhere, then pin it.",
      ),
    );
  } else if (trust.source === "url") {
    card.append(status("warn", "This key came from the link you opened. Pin it so that later visits need no link and a different key is refused."));
  } else {
    card.append(status("ok", "Pinned in this browser: a checkpoint signed by any other key is refused."));
  }
  if (trust.source !== "pinned") {
    card.append(h("button", { class: "primary", onclick: () => (store.set(pinKey, trust.vkey), location.reload()) }, "Pin this key"));
  } else {
    card.append(h("button", { onclick: () => (store.set(pinKey, null), location.reload()) }, "Remove pin"));
  }
}

// --- the checkpoint ------------------------------------------------------------------------------

async function loadPolicy() {
  const url = params.get("policy");
  if (url) {
    const res = await fetch(new URL(url, location.href));
    if (!res.ok) throw new Error(`could not fetch the witness policy ${url}: HTTP ${res.status}`);
    return { text: await res.text(), from: url };
  }
  const pasted = store.get(policyKey);
  return pasted ? { text: pasted, from: "pasted" } : null;
}

/** Consistency of two verified checkpoints of one log, proved from tiles (either order). */
async function proveConsistency(old, cur) {
  const [a, b] = old.size <= cur.size ? [old, cur] : [cur, old];
  if (a.size === 0n) {
    if (!V.equal(a.root, V.EMPTY_ROOT)) throw new V.VerificationError("a size-0 checkpoint must have the empty-tree root");
    return;
  }
  const proof = a.size === b.size ? [] : await tiles.consistencyProof(a.size, b.size);
  await V.verifyConsistency(a.size, b.size, proof, a.root, b.root);
}

/**
 * The log's latest checkpoint, for a lookup whose index objects at `held` were collected
 * (docs/index.md, "Garbage collection"): signed under the key the page trusts, for the same
 * origin, and proved consistent with `held` from tiles; tiles are read at its size from then on
 * (older partial tiles may be gone too). It is not remembered and not shown: it only answers.
 */
async function latestCheckpoint(held) {
  const bytes = await fetcher.get("checkpoint", { fresh: true });
  const cp = await V.openCheckpoint(bytes, verified.keys, held.origin);
  if (cp.size > held.size) {
    await proveConsistency(held, cp);
    if (cp.size > tiles.readSize) tiles.readSize = cp.size;
  }
  return cp;
}

async function rekorV1Hint(key) {
  const spki = V.concat(V.fromHex("302a300506032b6570032100"), key.key);
  return new DataView((await V.sha256(spki)).buffer).getUint32(0);
}

function checkpointTable(cp, label) {
  return kv([
    label ? ["", h("strong", {}, label)] : null,
    ["origin", mono(cp.origin)],
    ["tree size", mono(String(cp.size))],
    ["root hash", mono(V.toHex(cp.root))],
  ]);
}

let verified = null; // {cp, bytes, key, trust}

async function verifyCheckpoint() {
  const card = document.getElementById("checkpoint");
  const fail = (msg, ...extra) => {
    setFlag("checkpointVerified", "false");
    fill(card, h("h2", {}, "Checkpoint"), status("bad", msg), ...extra);
    return null;
  };
  let bytes;
  try {
    bytes = await fetcher.get("checkpoint", { fresh: true });
  } catch (err) {
    renderTrust(null, `Could not read the log: ${err.message}`);
    return fail(`Could not fetch the checkpoint: ${err.message}`);
  }
  let trust;
  let key;
  try {
    const unsigned = new TextDecoder().decode(bytes).split("\n", 1)[0];
    trust = await resolveKey(unsigned);
    key = await V.parseVkey(trust.vkey);
    renderTrust(trust);
  } catch (err) {
    renderTrust(trust, err instanceof TrustError ? err.message : `The verifier key is not usable: ${err.message}`);
    return fail("The checkpoint cannot be verified without a usable key.");
  }
  const origin = params.get("origin") || key.name;
  let policy = null;
  let policyProblem = "";
  try {
    const p = await loadPolicy();
    if (p) policy = { ...(await parsePolicy(p.text)), from: p.from };
  } catch (err) {
    policyProblem = `The witness policy is not usable: ${err.message}`;
  }
  const witnessKeys = policy ? [...policy.witnesses.values()].map((w) => w.key) : [];
  // stelae logs also sign under Rekor v1's key hint (SHA-256 of the SPKI, first 4 bytes), for
  // Rekor v1 clients: the same Ed25519 signature, so it is checked as the log's own.
  const hint = key.type === V.KEY_ED25519 ? { ...key, keyId: await rekorV1Hint(key) } : null;
  let cp;
  try {
    cp = await V.openCheckpoint(bytes, hint ? [key, hint] : [key], origin, witnessKeys);
  } catch (err) {
    return fail(`The checkpoint does not verify with the ${trust.source === "server" ? "offered" : "trusted"} key: ${err.message}`, h("pre", {}, new TextDecoder().decode(bytes)));
  }
  tiles.readSize = cp.size > tiles.readSize ? cp.size : tiles.readSize;

  // Signature lines: the log's, witnesses' cosignatures, and unknown ones (not checked).
  const cosigned = new Map(cp.note.cosignatures.map((c) => [`${c.name}\n${c.keyId}`, c]));
  const sigRows = cp.note.signatures.map((s) => {
    const id = `${s.name}\n${s.keyId}`;
    let state;
    if (s.name === key.name && s.keyId === key.keyId) state = pill("ok", "log signature verified");
    else if (hint && s.name === hint.name && s.keyId === hint.keyId) state = pill("ok", "log signature under Rekor v1's key hint, verified");
    else if (cosigned.has(id)) state = pill("ok", `witness cosignature verified, ${time(cosigned.get(id).timestamp)}`);
    else state = pill("", policy ? "unknown key (not in the witness policy): not checked" : "unknown key: not checked (no witness policy given)");
    return h("tr", {}, h("td", {}, mono(s.name)), h("td", {}, mono(keyIdHex(s.keyId))), h("td", {}, state));
  });

  const problems = [];
  if (policyProblem) problems.push(policyProblem);
  if (policy) {
    if (policy.logs.length && !policy.logs.some((l) => l.name === key.name && l.keyId === key.keyId)) {
      problems.push("The witness policy does not list this log's key.");
    }
    const names = new Set(
      [...policy.witnesses.values()].filter((w) => cosigned.has(`${w.key.name}\n${w.key.keyId}`)).map((w) => w.name),
    );
    if (!quorumMet(policy.quorum, names)) {
      problems.push(`The witness policy's quorum is not met: cosigned by ${names.size ? [...names].join(", ") : "no witness of the policy"}.`);
    }
  }

  // Consistency with the checkpoint this browser verified before.
  const remembered = store.get(rememberedKey(trust.vkey));
  let consistency = h("span", {}, "first checkpoint seen from this log in this browser: remembered for next time");
  let forkEvidence = null;
  let old = null;
  if (remembered) {
    try {
      old = await V.openCheckpoint(V.utf8Encode(remembered), [key], origin);
    } catch (err) {
      // Not evidence against the log: the browser's own storage holds something unusable.
      store.set(rememberedKey(trust.vkey), null);
      consistency = h("span", {}, `the checkpoint remembered from before was unusable (${err.message}) and was replaced`);
    }
  }
  if (old) {
    try {
      await proveConsistency(old, cp);
      consistency =
        old.size <= cp.size
          ? h("span", {}, `consistent with the checkpoint you verified before (size ${old.size}), proved from tiles`)
          : h("span", {}, `older than the checkpoint you verified before (size ${old.size}) but consistent with it (a stale cache?)`);
      if (old.size > cp.size) cp.staleOf = old;
    } catch (err) {
      if (!(err instanceof V.VerificationError) || err instanceof V.FormatError) {
        // The proof could not be computed (a tile missing or malformed, the network): no
        // evidence of a fork, but no proof of consistency either.
        return fail(`Could not prove this checkpoint consistent with the one you verified before (size ${old.size}): ${err.message}`);
      }
      forkEvidence = { old: remembered, err };
    }
  }
  if (forkEvidence) {
    setFlag("treeSize", cp.size);
    return fail(
      `This checkpoint is not consistent with the one you verified before: ${forkEvidence.err.message}. ` +
        "Two validly signed, inconsistent checkpoints are evidence of a fork (or a rewritten log). " +
        "The one you verified before stays remembered.",
      h(
        "div",
        { class: "fork" },
        h("div", {}, checkpointTable(V.parseCheckpoint(V.parseNote(V.utf8Encode(forkEvidence.old)).text), "remembered"), h("pre", {}, forkEvidence.old)),
        h("div", {}, checkpointTable(cp, "served now"), h("pre", {}, new TextDecoder().decode(bytes))),
      ),
    );
  }
  if (problems.length) {
    return fail(problems.join(" "), checkpointTable(cp), h("pre", {}, new TextDecoder().decode(bytes)));
  }
  if (!old || !cp.staleOf) {
    store.set(rememberedKey(trust.vkey), new TextDecoder().decode(bytes));
  }
  verified = { cp, bytes, key, keys: hint ? [key, hint] : [key], trust };
  fill(card,
    h("h2", {}, "Checkpoint"),
    trust.source === "server"
      ? status("warn", `Signature verified, but with the unpinned key ${key.name}+${keyIdHex(key.keyId)} the server offered (see above).`)
      : status("ok", `Signature verified with the trusted key ${key.name}+${keyIdHex(key.keyId)}.`),
    kv([
      ["origin", mono(cp.origin)],
      ["tree size", mono(String(cp.size))],
      ["root hash", mono(V.toHex(cp.root))],
      [
        "time",
        cp.note.cosignatures.length
          ? `${time(cp.note.cosignatures.map((c) => c.timestamp).reduce((a, b) => (a < b ? a : b)))} (earliest witness cosignature)`
          : "not stated (checkpoints carry no time; witness cosignatures do)",
      ],
      ["history", consistency],
      policy ? ["witness policy", `${policy.from}: quorum met`] : null,
    ]),
    h("h3", {}, "Signature lines"),
    h("table", { class: "list" }, h("tr", {}, h("th", {}, "key name"), h("th", {}, "key ID"), h("th", {}, "status")), sigRows),
    policyEditor(),
  );
  setFlag("treeSize", cp.size);
  setFlag("checkpointVerified", "true");
  return verified;
}

function policyEditor() {
  const area = h("textarea", { placeholder: "log <vkey>\nwitness <name> <vkey>\ngroup <name> <k|all|any> <member>...\nquorum <name>" }, store.get(policyKey) || "");
  return h(
    "details",
    {},
    h("summary", {}, "Witness policy (https://c2sp.org/tlog-policy)"),
    h("p", { class: "small" }, "Paste a policy to require witness cosignatures, or open the page with ?policy=URL."),
    area,
    h("div", { class: "row" }, h("button", { onclick: () => (store.set(policyKey, area.value.trim() || null), location.reload()) }, "Apply")),
  );
}

// --- entries --------------------------------------------------------------------------------------

const bundles = new Map();

async function entryAt(index, size) {
  const b = index / TILE_WIDTH;
  const k = `${b}@${size}`;
  if (!bundles.has(k)) bundles.set(k, tiles.bundle(b, size));
  const entries = await bundles.get(k);
  return entries[Number(index % TILE_WIDTH)];
}

/** Entry `index`, its leaf hash and its inclusion proof verified against the checkpoint. */
export async function provedEntry(index, cp) {
  const body = await entryAt(index, cp.size);
  const leaf = await V.leafHash(body);
  const proof = await tiles.inclusionProof(index, cp.size);
  await V.verifyInclusion(index, cp.size, leaf, proof, cp.root);
  return { index, body, leaf, proof };
}

async function entriesView(start) {
  const view = document.getElementById("view");
  const { cp } = verified;
  if (cp.size === 0n) {
    fill(view, h("section", { class: "card" }, h("h2", {}, "Entries"), h("p", {}, "The log is empty.")));
    return;
  }
  const top = start == null || start >= cp.size ? cp.size - 1n : start;
  const last = top + 1n > PAGE ? top + 1n - PAGE : 0n;
  const rows = [];
  const card = h("section", { class: "card" }, h("h2", {}, `Entries ${top} … ${last}, newest first`), h("p", { class: "working" }, "Verifying each entry's inclusion…"));
  fill(view, card);
  let allOk = true;
  for (let i = top; i >= last; i--) {
    try {
      const e = await provedEntry(i, cp);
      const d = await describeEntry(e.body);
      rows.push(
        h(
          "tr",
          {},
          h("td", {}, h("a", { href: `#/entry/${i}` }, String(i))),
          h("td", { class: "mono" }, V.toHex(e.leaf)),
          h("td", {}, `${d.kind} ${d.apiVersion}`),
          h("td", { class: "mono" }, d.digests[0] || ""),
          h("td", {}, pill("ok", "included")),
        ),
      );
    } catch (err) {
      allOk = false;
      rows.push(h("tr", {}, h("td", {}, String(i)), h("td", { colspan: 4 }, h("span", { class: "bad" }, `not verified: ${err.message}`))));
    }
    if (i === 0n) break;
  }
  const pager = h(
    "div",
    { class: "pager" },
    top + PAGE < cp.size ? h("a", { class: "button", href: `#/entries/${top + PAGE}` }, "← newer") : null,
    last > 0n ? h("a", { class: "button", href: `#/entries/${last - 1n}` }, "older →") : null,
    h("span", { class: "small" }, `${cp.size} entries in all`),
  );
  fill(card,
    h("h2", {}, `Entries ${top} … ${last}, newest first`),
    allOk ? status("ok", "Every entry on this page is proved included in the verified checkpoint.") : status("bad", "Some entries on this page failed verification (see below)."),
    h("table", { class: "list entries" }, h("tr", {}, h("th", {}, "index"), h("th", {}, "UUID (leaf hash)"), h("th", {}, "kind"), h("th", {}, "artifact digest"), h("th", {}, "")), rows),
    pager,
  );
}

/** The stelae proof file (stelae/tiles/proofbundle.py): tlog-proof text + TransparencyLogEntry. */
async function proofFile(e, cp, cpBytes, key, it) {
  const d = JSON.parse(new TextDecoder().decode(e.body));
  const lines = ["c2sp.org/tlog-proof@v1", `extra ${V.b64encode(e.body)}`, `index ${e.index}`, ...e.proof.map(V.b64encode), ""];
  const tlogProof = lines.join("\n") + "\n" + new TextDecoder().decode(cpBytes);
  // Rekor v2's log ID: SHA-256(key name || 0x0A || 0x01 || raw key) for an Ed25519 log key.
  const logId =
    key.type === V.KEY_ED25519 ? V.b64encode(await V.sha256(V.concat(V.utf8Encode(key.name + "\n"), Uint8Array.of(1), key.key))) : "";
  const tle = {
    logIndex: String(e.index),
    logId: { keyId: logId },
    kindVersion: { kind: String(d.kind ?? ""), version: String(d.apiVersion ?? "") },
    integratedTime: String(it.set ? it.time : 0),
    inclusionPromise: it.set ? { signedEntryTimestamp: it.set } : null,
    inclusionProof: {
      logIndex: String(e.index),
      rootHash: V.b64encode(cp.root),
      treeSize: String(cp.size),
      hashes: e.proof.map(V.b64encode),
      checkpoint: { envelope: new TextDecoder().decode(cpBytes) },
    },
    canonicalizedBody: V.b64encode(e.body),
  };
  const obj = { mediaType: "application/vnd.stelae.proof.v1+json", tlogProof, transparencyLogEntry: tle };
  return JSON.stringify(obj, null, 2) + "\n";
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function entryView(index) {
  const view = document.getElementById("view");
  const { cp, bytes, key } = verified;
  const card = h("section", { class: "card" }, h("h2", {}, `Entry ${index}`), h("p", { class: "working" }, "Proving inclusion from tiles…"));
  fill(view, card);
  if (index < 0n || index >= cp.size) {
    setFlag("inclusionVerified", "false");
    fill(card, h("h2", {}, `Entry ${index}`), status("bad", `Entry ${index} is not in the log: the verified tree has ${cp.size} entries.`));
    return;
  }
  let e;
  try {
    e = await provedEntry(index, cp);
  } catch (err) {
    setFlag("inclusionVerified", "false");
    fill(card, h("h2", {}, `Entry ${index}`), status("bad", `Entry ${index} is not proved included in the verified checkpoint: ${err.message}`));
    return;
  }
  const d = await describeEntry(e.body);
  const it = await integratedTime(fetcher, index, e.leaf, e.body, key, cp, () => latestCheckpoint(cp));
  const file = await proofFile(e, cp, bytes, key, it);
  window.stelaeProofFile = file; // what the download button saves (read by the browser tests)
  fill(card,
    h("h2", {}, `Entry ${index}`, " ", pill("", `${d.kind} ${d.apiVersion}`)),
    status("ok", `Inclusion proved: the entry's leaf hash and ${e.proof.length} proof hashes computed from tiles lead to the checkpoint's root at size ${cp.size}.`),
    kv([
      ["UUID (leaf hash)", mono(V.toHex(e.leaf))],
      ["log index", mono(String(index))],
      ["integrated time", it.bad ? h("span", { class: "bad" }, it.text) : it.text],
      ...d.digests.map((x) => ["artifact digest", mono(x)]),
      ...d.fields.map(([k, v]) => [k, mono(String(v))]),
    ]),
    d.problem ? status("warn", d.problem) : null,
    h(
      "div",
      { class: "row" },
      h("button", { class: "primary", onclick: () => download(`entry-${index}.proof.json`, file, "application/json") }, "Download proof bundle"),
      h("span", { class: "small" }, "checked offline by ", mono("stelae verify --bundle FILE")),
    ),
    h("h3", {}, "Inclusion proof"),
    kv([
      ["tree size", mono(String(cp.size))],
      ["root hash", mono(V.toHex(cp.root))],
      ...e.proof.map((p, i) => [`hash ${i}`, mono(V.toHex(p))]),
    ]),
    h("h3", {}, "Raw body (canonical JSON, the Merkle leaf)"),
    h("pre", {}, d.json),
  );
  setFlag("inclusionVerified", "true");
}

// --- routing --------------------------------------------------------------------------------------

async function route() {
  setFlag("inclusionVerified", null);
  setFlag("searchVerified", null);
  setFlag("view", null);
  const view = document.getElementById("view");
  if (!verified) {
    fill(view, );
    return;
  }
  const hash = location.hash;
  let m;
  try {
    if ((m = hash.match(/^#\/entry\/(\d{1,19})$/))) {
      setFlag("view", "entry");
      await entryView(BigInt(m[1]));
    } else if ((m = hash.match(/^#\/entries(?:\/(\d{1,19}))?$/))) {
      setFlag("view", "entries");
      await entriesView(m[1] == null ? null : BigInt(m[1]));
    } else if ((m = hash.match(/^#\/search(?:\?q=(.*))?$/))) {
      setFlag("view", "search");
      await searchView(m[1] ? decodeURIComponent(m[1]) : "", {
        verified,
        fetcher,
        provedEntry,
        describeEntry,
        indexLookup: (meanings, cp) => indexLookupOrLatest(fetcher, verified.key, cp, meanings, () => latestCheckpoint(cp)),
      });
    } else {
      setFlag("view", "home");
      await entriesView(null);
    }
  } catch (err) {
    fill(view, h("section", { class: "card" }, status("bad", `Something failed: ${err.message}`)));
  }
  setFlag("routed", "true");
}

async function main() {
  setFlag("checkpointVerified", null);
  try {
    await verifyCheckpoint();
  } catch (err) {
    setFlag("checkpointVerified", "false");
    document.getElementById("checkpoint").replaceChildren(status("bad", `Verification failed: ${err.message}`));
  }
  addEventListener("hashchange", route);
  await route();
}

main();
