// An entry's integrated time, as the entry view shows it: read from the record of the batch that
// sequenced it (found through the verifiable lookup index, docs/index.md "Batch records and
// receipts") or, on logs without an index, from its leaf record; shown as the log's word only
// when its Rekor v1 signed entry timestamp (SET) verifies under the log key.

import * as V from "./verify.js";
import { time } from "./dom.js";
import { IndexMissing, batchTimestamp } from "./index.js";
import { NotFound } from "./tiles.js";

/**
 * {index, integratedTime, set} for entry `index`, or null when the log publishes none for it
 * (no index manifest and no leaf record). `latest()` is the verified latest checkpoint, for a
 * leaf record whose index run was collected (index.js, `atOrLatest`).
 */
async function timestampRecord(fetcher, index, leaf, key, cp, latest) {
  const batch = await batchTimestamp(fetcher, key, cp, index, leaf, latest);
  if (batch) return { index: Number(index), integratedTime: batch.time, set: batch.set };
  let bytes;
  try {
    bytes = await fetcher.get(`index/leaf/${V.toHex(leaf)}`);
  } catch (err) {
    if (err instanceof NotFound) return null;
    throw err;
  }
  const old = JSON.parse(new TextDecoder().decode(bytes));
  if (old.index !== Number(index) || typeof old.signedEntryTimestamp !== "string") {
    throw new V.VerificationError("the leaf record does not describe this entry");
  }
  return { index: old.index, integratedTime: old.integratedTime, set: V.b64decode(old.signedEntryTimestamp, "signedEntryTimestamp") };
}

/** Whether `set` is the log key's Ed25519 signature over Rekor v1's SET payload for `rec`. */
async function setVerifies(rec, body, key) {
  const spki = V.concat(V.fromHex("302a300506032b6570032100"), key.key);
  const logId = V.toHex(await V.sha256(spki));
  const payload = `{"body":"${V.b64encode(body)}","integratedTime":${rec.integratedTime},"logID":"${logId}","logIndex":${rec.index}}`;
  const k = await crypto.subtle.importKey("raw", key.key, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify("Ed25519", k, rec.set, V.utf8Encode(payload));
}

/**
 * {text, bad?, time?, set?} for the entry view: `time` and `set` (base64) only when the SET
 * verifies. A missing object the index leads to is a failure said as such, not "not published".
 */
export async function integratedTime(fetcher, index, leaf, body, key, cp, latest) {
  let rec;
  try {
    rec = await timestampRecord(fetcher, index, leaf, key, cp, latest);
  } catch (err) {
    if (err instanceof IndexMissing) return { text: `unavailable: the log is missing an object it is read from (${err.message})`, bad: true };
    return { text: `unavailable (${err.message})`, bad: true };
  }
  if (!rec) return { text: "not published for this entry" };
  if (!Number.isSafeInteger(rec.integratedTime)) return { text: "the record's integrated time is not a number", bad: true };
  if (!rec.set) return { text: `${time(rec.integratedTime)} (not signed by the log: no signed entry timestamp)` };
  if (key.type !== V.KEY_ED25519) return { text: `${time(rec.integratedTime)} (not verified: the log key is not Ed25519)` };
  try {
    if (!(await setVerifies(rec, body, key))) throw new Error("signature check failed");
  } catch (err) {
    return { text: `${time(rec.integratedTime)}: its signed entry timestamp does not verify (${err.message})`, bad: true };
  }
  return { text: `${time(rec.integratedTime)} (signed entry timestamp verified)`, time: rec.integratedTime, set: V.b64encode(rec.set) };
}
