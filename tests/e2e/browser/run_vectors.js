// Evaluated inside the explorer page by tests/e2e/browser/test_explorer.py: runs the page's own
// verification modules over cases built from tests/vectors/ and returns a verdict per case, which
// the test compares with the Python implementation's verdict on the same case.
// A verdict is "ok", "reject" (a VerificationError/FormatError, the expected failure type) or
// "error: ..." (anything else, which is always a bug). The expression evaluates to an async
// function of the cases object.
async (cases) => {
  const V = await import(new URL("/explorer/verify.js", location.href));
  const T = await import(new URL("/explorer/tiles.js", location.href));
  const P = await import(new URL("/explorer/policy.js", location.href));
  const hx = V.fromHex;
  const verdict = async (f) => {
    try {
      const value = await f();
      return value === undefined ? "ok" : value;
    } catch (err) {
      return err instanceof V.VerificationError ? "reject" : `error: ${err && err.stack}`;
    }
  };
  const bytes = (s) => new TextEncoder().encode(s);
  const out = {};
  out.inclusion = [];
  for (const [idx, size, leaf, proof, root] of cases.inclusion) {
    out.inclusion.push(await verdict(() => V.verifyInclusion(BigInt(idx), BigInt(size), hx(leaf), proof.map(hx), hx(root))));
  }
  out.consistency = [];
  for (const [s1, s2, proof, r1, r2] of cases.consistency) {
    out.consistency.push(await verdict(() => V.verifyConsistency(BigInt(s1), BigInt(s2), proof.map(hx), hx(r1), hx(r2))));
  }
  out.leafHashes = [];
  for (const input of cases.leafInputs) out.leafHashes.push(V.toHex(await V.leafHash(hx(input))));
  out.roots = [];
  for (const hashes of cases.rootInputs) out.roots.push(V.toHex(await V.rootFromLeafHashes(hashes.map(hx))));
  out.tilePaths = cases.tilePaths.map(([level, index, width]) => T.tilePath(level, BigInt(index), BigInt(width)));
  out.notes = [];
  for (const [note, vkeys] of cases.notes) {
    out.notes.push(
      await verdict(async () => {
        const keys = [];
        for (const v of vkeys) keys.push(await V.parseVkey(v));
        const opened = await V.openNote(bytes(note), keys);
        return opened.verified.map((s) => s.name).join(",");
      }),
    );
  }
  out.malformed = [];
  for (const hex of cases.malformedNotes) out.malformed.push(await verdict(() => void V.parseNote(hx(hex))));
  out.vkeys = [];
  for (const vkey of cases.vkeys) out.vkeys.push(await verdict(async () => (await V.parseVkey(vkey)).keyId.toString(16).padStart(8, "0")));
  out.checkpoints = [];
  for (const [note, vkeys, origin, witnesses] of cases.checkpoints) {
    out.checkpoints.push(
      await verdict(async () => {
        const keys = await Promise.all(vkeys.map(V.parseVkey));
        const wits = await Promise.all(witnesses.map(V.parseVkey));
        const cp = await V.openCheckpoint(bytes(note), keys, origin, wits);
        return `${cp.size} ${V.b64encode(cp.root)} ${cp.note.cosignatures.length}`;
      }),
    );
  }
  out.checkpointTexts = [];
  for (const text of cases.checkpointTexts) {
    out.checkpointTexts.push(await verdict(() => { const c = V.parseCheckpoint(text); return `${c.origin} ${c.size} ${V.b64encode(c.root)} ${c.extensions.length}`; }));
  }
  out.policies = [];
  for (const [policyText, note, vkey, origin] of cases.policies) {
    out.policies.push(
      await verdict(async () => {
        const policy = await P.parsePolicy(policyText);
        const key = await V.parseVkey(vkey);
        const wits = [...policy.witnesses.values()];
        const cp = await V.openCheckpoint(bytes(note), [key], origin, wits.map((w) => w.key));
        const signed = new Set(cp.note.cosignatures.map((c) => `${c.name}\n${c.keyId}`));
        const names = new Set(wits.filter((w) => signed.has(`${w.key.name}\n${w.key.keyId}`)).map((w) => w.name));
        if (!P.quorumMet(policy.quorum, names)) throw new V.VerificationError("quorum not met");
      }),
    );
  }
  return out;
}
