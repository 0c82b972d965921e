// Witness policies (https://c2sp.org/tlog-policy), as stelae/tiles/policy.py: which witnesses'
// cosignatures a checkpoint needs before the page accepts it.

import { FormatError, parseVkey } from "./verify.js";

/**
 * Parse a policy: `log <vkey> [url]`, `witness <name> <vkey> [url]`,
 * `group <name> <k|all|any> <member>...`, `quorum <name>` (exactly one; `none` is predefined),
 * `#` comments. Names must be defined before use. Returns {logs, witnesses: Map, quorum}.
 */
export async function parsePolicy(text) {
  const names = new Map([["none", { kind: "group", threshold: 0, members: [] }]]);
  const witnesses = new Map();
  const logs = [];
  let quorum = null;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line || line.startsWith("#")) continue;
    const [kw, ...args] = line.split(/\s+/);
    const at = `policy line ${i + 1}`;
    if (kw === "log") {
      if (args.length < 1 || args.length > 2) throw new FormatError(`${at}: log <vkey> [url]`);
      logs.push(await parseVkey(args[0]));
    } else if (kw === "witness") {
      if (args.length < 2 || args.length > 3) throw new FormatError(`${at}: witness <name> <vkey> [url]`);
      if (names.has(args[0])) throw new FormatError(`${at}: ${args[0]} is already defined`);
      const key = await parseVkey(args[1]);
      const w = { kind: "witness", name: args[0], key };
      names.set(args[0], w);
      witnesses.set(args[0], w);
    } else if (kw === "group") {
      if (args.length < 3) throw new FormatError(`${at}: group <name> <k|all|any> <member>...`);
      const [name, k, ...members] = args;
      if (names.has(name)) throw new FormatError(`${at}: ${name} is already defined`);
      for (const m of members) if (!names.has(m)) throw new FormatError(`${at}: ${m} is not defined above`);
      let threshold;
      if (k === "all") threshold = members.length;
      else if (k === "any") threshold = 1;
      else if (/^[1-9][0-9]*$/.test(k) && Number(k) <= members.length) threshold = Number(k);
      else throw new FormatError(`${at}: threshold ${k} is not 1..${members.length}, all or any`);
      names.set(name, { kind: "group", name, threshold, members: members.map((m) => names.get(m)) });
    } else if (kw === "quorum") {
      if (quorum || args.length !== 1) throw new FormatError(`${at}: exactly one quorum <name> line`);
      if (!names.has(args[0])) throw new FormatError(`${at}: ${args[0]} is not defined above`);
      quorum = names.get(args[0]);
    } else {
      throw new FormatError(`${at}: unknown keyword ${kw}`);
    }
  }
  if (!quorum) throw new FormatError("the policy has no quorum line");
  return { logs, witnesses, quorum };
}

/** Whether the witnesses named in `cosigned` (a Set of policy witness names) satisfy `node`. */
export function quorumMet(node, cosigned) {
  if (node.kind === "witness") return cosigned.has(node.name);
  return node.members.filter((m) => quorumMet(m, cosigned)).length >= node.threshold;
}
