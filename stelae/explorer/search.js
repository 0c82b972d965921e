// Search: which entries mention a digest, UUID, identity or key fingerprint, each hit verified.
//
// A hit is reported only once the entry it names is proved included in the verified checkpoint
// and its own body (decoded by entry.js) carries the key searched for; a lookup index that names
// a wrong entry is a failure, shown as such. Completeness needs the verifiable lookup index of
// docs/index.md (signed manifests and shard proofs); a log without it has only the older
// lookup objects (docs/layout.md, "index/…"), whose answers are hints: the page says so and
// sets data-search-complete="false".

import { fill, h, pill, setFlag, status } from "./dom.js";
import { IndexMissing } from "./index.js";
import { NotFound } from "./tiles.js";
import { sha256, toHex } from "./verify.js";

/** SHA-256 of a dropped file, computed here (the file never leaves the browser). */
export async function hashFile(file) {
  return `sha256:${toHex(await sha256(new Uint8Array(await file.arrayBuffer())))}`;
}

/** What a query can mean: a list of {kind, value} (docs/index.md "Keys"). */
export function classify(query) {
  const q = query.trim();
  const lower = q.toLowerCase();
  let m;
  if ((m = lower.match(/^(sha256|sha384|sha512):([0-9a-f]+)$/))) {
    const want = { sha256: 64, sha384: 96, sha512: 128 }[m[1]];
    if (m[2].length !== want) throw new Error(`a ${m[1]} digest has ${want} hex digits, not ${m[2].length}`);
    return [{ kind: "digest", value: lower }];
  }
  if (/^[0-9a-f]{80}$/.test(lower)) return [{ kind: "leaf", value: lower.slice(16) }]; // Rekor tree ID + UUID
  if (/^[0-9a-f]{64}$/.test(lower)) {
    return [
      { kind: "leaf", value: lower },
      { kind: "digest", value: `sha256:${lower}` },
      { kind: "key", value: lower },
    ];
  }
  if (/^[0-9a-f]{40}$/.test(lower)) return [{ kind: "key", value: lower }];
  if (/^[0-9a-f]{96}$/.test(lower)) return [{ kind: "digest", value: `sha384:${lower}` }];
  if (/^[0-9a-f]{128}$/.test(lower)) return [{ kind: "digest", value: `sha512:${lower}` }, { kind: "key", value: lower }];
  if (q.includes("://")) return [{ kind: "identity", value: q }];
  if (q.includes("@")) return [{ kind: "identity", value: lower }];
  throw new Error("not a digest (sha256:<hex>), UUID, email, URI or key fingerprint");
}

// --- the older lookup objects (hints) ----------------------------------------------------------

async function getJson(fetcher, path) {
  try {
    return JSON.parse(new TextDecoder().decode(await fetcher.get(path, { fresh: true })));
  } catch (err) {
    if (err instanceof NotFound) return null;
    throw err;
  }
}

async function hintIndices(fetcher, { kind, value }) {
  if (kind === "leaf") {
    const rec = await getJson(fetcher, `index/leaf/${value}`);
    return rec && Number.isSafeInteger(rec.index) ? [rec.index] : [];
  }
  let path;
  if (kind === "digest") path = `index/${value.replace(":", "/")}`;
  else if (kind === "key") path = `index/key/${value}`;
  else path = `index/identity/${toHex(await sha256(new TextEncoder().encode(value)))}`;
  const head = await getJson(fetcher, path);
  if (!head) return [];
  const out = [];
  const pages = Number.isSafeInteger(head.pages) ? head.pages : 0;
  for (let p = 0; p < pages; p++) {
    const page = await getJson(fetcher, `${path}.${p}`);
    if (page && Array.isArray(page.indices)) out.push(...page.indices);
  }
  if (Array.isArray(head.indices)) out.push(...head.indices);
  return out.filter((i) => Number.isSafeInteger(i) && i >= 0);
}

// --- search --------------------------------------------------------------------------------------

function matches(meaning, leafHex, facts) {
  if (meaning.kind === "leaf") return leafHex === meaning.value;
  if (meaning.kind === "digest") return facts.digests.map((d) => d.toLowerCase()).includes(meaning.value);
  if (meaning.kind === "key") return facts.keys.includes(meaning.value);
  return facts.identities.includes(meaning.value);
}

/**
 * Search the log for `query`. `ctx` holds the verified checkpoint and the proving functions.
 * Returns {ok, complete, indexSize, summary, notes, hits: [{index, uuid, kind, ok, problem}]};
 * indexSize is the tree size the verifiable index was read at (null without one).
 */
export async function searchLog(query, ctx) {
  const { cp } = ctx.verified;
  let meanings;
  try {
    meanings = classify(query);
  } catch (err) {
    return { ok: false, complete: false, summary: `Cannot search for that: ${err.message}.`, notes: [], hits: [] };
  }
  const notes = [];
  const found = new Map(); // index -> meanings that named it
  let complete = false;
  let verifiable = null;
  try {
    verifiable = ctx.indexLookup ? await ctx.indexLookup(meanings, cp) : null;
  } catch (err) {
    const what = err instanceof IndexMissing ? "could not be read" : "failed verification";
    return { ok: false, complete: false, summary: `The verifiable lookup index ${what}: ${err.message}.`, notes, hits: [] };
  }
  if (verifiable) {
    complete = true;
    for (const [i, m] of verifiable.found) found.set(i, m);
    notes.push("Looked up in the verifiable index: the answer is proved complete for this checkpoint.");
    if (verifiable.size !== cp.size) {
      notes.push(
        `The index objects of this checkpoint (size ${cp.size}) were collected, so the lookup ran at the log's latest ` +
          `checkpoint (size ${verifiable.size}), verified and proved consistent with this one; only entries below ${cp.size} are kept.`,
      );
    }
  } else {
    for (const meaning of meanings) {
      for (const i of await hintIndices(ctx.fetcher, meaning)) {
        if (BigInt(i) >= cp.size) continue; // beyond the verified checkpoint: not yet provable
        found.set(i, [...(found.get(i) || []), meaning]);
      }
    }
    notes.push(
      "This log publishes no verifiable lookup index for this checkpoint, so each hit below is proved, " +
        "but that no other entry matches is not.",
    );
  }
  const hits = [];
  for (const index of [...found.keys()].sort((a, b) => b - a)) {
    const hit = { index, uuid: "", kind: "", ok: false, problem: "" };
    try {
      const e = await ctx.provedEntry(BigInt(index), cp);
      const facts = await ctx.describeEntry(e.body);
      hit.uuid = toHex(e.leaf);
      hit.kind = `${facts.kind} ${facts.apiVersion}`;
      if (found.get(index).some((m) => matches(m, hit.uuid, facts))) hit.ok = true;
      else hit.problem = "the index names this entry, but the entry does not mention the query";
    } catch (err) {
      hit.problem = `not proved: ${err.message}`;
    }
    hits.push(hit);
  }
  const bad = hits.filter((x) => !x.ok).length;
  const summary = bad
    ? `${bad} of ${hits.length} results failed verification.`
    : `${hits.length} ${hits.length === 1 ? "entry" : "entries"} found, each proved included in the checkpoint at size ${cp.size}.`;
  return { ok: bad === 0, complete, indexSize: verifiable ? verifiable.size : null, summary, notes, hits };
}

// --- the search view ---------------------------------------------------------------------------------------

export async function searchView(initial, ctx) {
  const view = document.getElementById("view");
  const input = h("input", { type: "text", id: "q", placeholder: "sha256:<hex>, UUID, email or URI, key fingerprint", value: initial || "" });
  const results = h("div", { id: "results" });
  const run = async (query, label) => {
    setFlag("searchVerified", null);
    setFlag("searchIndexSize", null);
    fill(results, h("p", { class: "working" }, `Searching for ${label || query}…`));
    const out = await searchLog(query, ctx);
    renderResults(results, out, label || query);
  };
  const drop = h("div", { class: "drop", id: "drop" }, "Drop a file here to hash it in your browser (SHA-256, it never leaves this page) and find every entry about it.");
  const picker = h("input", { type: "file", id: "file", hidden: true });
  const onFile = async (file) => {
    const digest = await hashFile(file);
    input.value = digest;
    await run(digest, `${file.name} (${digest})`);
  };
  drop.addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => picker.files[0] && onFile(picker.files[0]));
  drop.addEventListener("dragover", (ev) => (ev.preventDefault(), drop.classList.add("over")));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    if (ev.dataTransfer.files[0]) onFile(ev.dataTransfer.files[0]);
  });
  fill(view,
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Search"),
      h("form", { class: "row", onsubmit: (ev) => (ev.preventDefault(), input.value.trim() && run(input.value.trim())) }, input, h("button", { class: "primary", type: "submit" }, "Search")),
      drop,
      picker,
      results,
    ),
  );
  if (initial) await run(initial);
}

function renderResults(results, out, label) {
  const rows = out.hits.map((hit) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/entry/${hit.index}` }, String(hit.index))),
      h("td", { class: "mono" }, hit.uuid || ""),
      h("td", {}, hit.kind || ""),
      h("td", {}, hit.ok ? pill("ok", "included, matches") : h("span", { class: "bad" }, hit.problem)),
    ),
  );
  const ok = out.ok && out.hits.every((x) => x.ok);
  fill(
    results,
    h("h3", {}, "Results for ", h("span", { class: "mono" }, label)),
    ok ? status("ok", out.summary) : status("bad", out.summary),
    out.notes.length ? h("p", { class: "small" }, out.notes.join(" ")) : null,
    rows.length
      ? h("table", { class: "list entries" }, h("tr", {}, h("th", {}, "index"), h("th", {}, "UUID"), h("th", {}, "kind"), h("th", {}, "")), rows)
      : h("p", {}, `No entry of the log mentions ${label}.`),
  );
  setFlag("searchVerified", ok ? "true" : "false");
  setFlag("searchComplete", out.complete ? "true" : "false");
  setFlag("searchHits", out.hits.length);
  setFlag("searchIndexSize", out.indexSize);
}

