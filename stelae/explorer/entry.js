// Decoding a log entry (its canonical JSON body) for display: kind, artifact digests, signature
// algorithm, key fingerprints, certificate subject, issuer and SANs. Display only: the trust
// decision is the entry's inclusion proof (tiles.js / verify.js); this code never decides
// whether a signature is valid (the log checked it before logging, and the raw JSON is shown).
// The index keys it derives (digest, key, identity) follow docs/index.md so a search hit can be
// checked against the entry it names.

import { b64decode, b64encode, sha256, toHex } from "./verify.js";

// --- a small DER reader (X.509 and SubjectPublicKeyInfo) ---------------------------------------

function tlv(buf, at) {
  if (at + 2 > buf.length) throw new Error("DER ends early");
  const tag = buf[at];
  let len = buf[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const k = len & 0x7f;
    if (k < 1 || k > 4) throw new Error("DER length too long");
    len = 0;
    for (let i = 0; i < k; i++) len = len * 256 + buf[start + i];
    start += k;
  }
  const end = start + len;
  if (end > buf.length) throw new Error("DER element runs past its parent");
  return { tag, at, start, end, bytes: buf.subarray(at, end), body: buf.subarray(start, end) };
}

function children(buf, el) {
  const out = [];
  for (let at = el.start; at < el.end; ) {
    const c = tlv(buf, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

const OIDS = {
  "550403": "CN",
  "55040a": "O",
  "55040b": "OU",
  "550406": "C",
  "550407": "L",
  "550408": "ST",
  "2a864886f70d010901": "emailAddress",
};
const text = (b) => new TextDecoder().decode(b);

function nameString(buf, el) {
  const parts = [];
  for (const rdn of children(buf, el)) {
    for (const atv of children(buf, rdn)) {
      const [oid, value] = children(buf, atv);
      const label = OIDS[toHex(oid.body)] || toHex(oid.body);
      parts.push(`${label}=${text(value.body)}`);
    }
  }
  return parts.join(", ");
}

/** Algorithm of a DER SubjectPublicKeyInfo, e.g. "ECDSA P-256", "Ed25519", "RSA 2048". */
export function describeSpki(spki) {
  const h = toHex(spki);
  if (h.includes("2a8648ce3d0201")) {
    if (h.includes("2a8648ce3d030107")) return "ECDSA P-256";
    if (h.includes("2b81040022")) return "ECDSA P-384";
    if (h.includes("2b81040023")) return "ECDSA P-521";
    return "ECDSA";
  }
  if (h.includes("06032b6570")) return "Ed25519";
  if (h.includes("2a864886f70d010101")) {
    try {
      const top = tlv(spki, 0);
      const bits = children(spki, top)[1];
      const inner = tlv(bits.body, 1); // skip the unused-bits byte
      const modulus = children(bits.body, inner)[0].body;
      const n = modulus[0] === 0 ? modulus.length - 1 : modulus.length;
      return `RSA ${n * 8}`;
    } catch {
      return "RSA";
    }
  }
  return "unknown key type";
}

const FULCIO_ISSUER_V1 = "2b0601040183bf300101";
const FULCIO_ISSUER_V2 = "2b0601040183bf300108";

/** UTCTime (YYMMDDhhmmssZ) or GeneralizedTime (YYYYMMDDhhmmssZ) as ISO 8601. */
function asnTime(el) {
  let t = text(el.body);
  if (el.tag === 0x17) t = (Number(t.slice(0, 2)) < 50 ? "20" : "19") + t;
  const m = t.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z` : t;
}

/** Subject, issuer, validity, SANs, OIDC issuer and the SPKI of a DER X.509 certificate. */
export function parseCertificate(der) {
  const cert = tlv(der, 0);
  const tbs = children(der, cert)[0];
  let f = children(der, tbs);
  if (f[0].tag === 0xa0) f = f.slice(1); // explicit version
  const [, , issuer, validity, subject, spki, ...rest] = f;
  const [notBefore, notAfter] = children(der, validity).map(asnTime);
  const out = {
    subject: nameString(der, subject),
    issuer: nameString(der, issuer),
    notBefore,
    notAfter,
    spki: spki.bytes,
    sans: [],
    oidcIssuer: "",
  };
  const extsWrapper = rest.find((e) => e.tag === 0xa3);
  if (extsWrapper) {
    const exts = children(der, children(der, extsWrapper)[0]);
    for (const ext of exts) {
      const parts = children(der, ext);
      const oid = toHex(parts[0].body);
      const value = parts[parts.length - 1].body;
      if (oid === "551d11") {
        const seq = tlv(value, 0);
        for (const gn of children(value, seq)) {
          if (gn.tag === 0x81) out.sans.push({ type: "email", value: text(gn.body) });
          else if (gn.tag === 0x86) out.sans.push({ type: "URI", value: text(gn.body) });
          else if (gn.tag === 0x82) out.sans.push({ type: "DNS", value: text(gn.body) });
        }
      } else if (oid === FULCIO_ISSUER_V2) {
        out.oidcIssuer = text(tlv(value, 0).body);
      } else if (oid === FULCIO_ISSUER_V1 && !out.oidcIssuer) {
        out.oidcIssuer = text(value);
      }
    }
  }
  return out;
}

function pemBlocks(pem) {
  const out = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const m of pem.matchAll(re)) out.push({ label: m[1], der: b64decode(m[2].replace(/\s+/g, ""), "PEM") });
  return out;
}

// --- verifiers: a key or a certificate ------------------------------------------------------------

async function describeVerifier(der, isCert, facts, label = "") {
  const p = label ? `${label} ` : "";
  if (isCert) {
    const c = parseCertificate(der);
    facts.fields.push([`${p}certificate subject`, c.subject || "(empty)"]);
    facts.fields.push([`${p}certificate issuer`, c.issuer]);
    facts.fields.push([`${p}valid`, `${c.notBefore} … ${c.notAfter}`]);
    if (c.oidcIssuer) facts.fields.push([`${p}OIDC issuer`, c.oidcIssuer]);
    for (const san of c.sans) {
      facts.fields.push([`${p}SAN (${san.type})`, san.value]);
      if (san.type === "email") facts.identities.push(san.value.toLowerCase());
      if (san.type === "URI") facts.identities.push(san.value);
    }
    der = c.spki;
  }
  const fp = toHex(await sha256(der));
  facts.fields.push([`${p}key`, describeSpki(der)]);
  facts.fields.push([`${p}key fingerprint (SHA-256 of SPKI)`, fp]);
  facts.keys.push(fp);
}

async function describePemVerifier(b64pem, facts, label) {
  const blocks = pemBlocks(text(b64decode(b64pem, "public key")));
  if (!blocks.length) throw new Error("the verifier is not PEM");
  const b = blocks[0];
  await describeVerifier(b.der, b.label === "CERTIFICATE", facts, label);
}

async function describeV2Verifier(v, facts, label) {
  if (v.keyDetails) facts.fields.push([`${label ? label + " " : ""}signature algorithm`, v.keyDetails]);
  if (v.x509Certificate) await describeVerifier(b64decode(v.x509Certificate.rawBytes), true, facts, label);
  else if (v.publicKey) await describeVerifier(b64decode(v.publicKey.rawBytes), false, facts, label);
}

const V2_ALGS = { SHA2_256: "sha256", SHA2_384: "sha384", SHA2_512: "sha512" };

function v2Digest(h) {
  const alg = V2_ALGS[h.algorithm] || String(h.algorithm).toLowerCase();
  return `${alg}:${toHex(b64decode(h.digest))}`;
}

// --- rekord's other key formats --------------------------------------------------------------------

/** A DER element: tag, definite length, contents (enough to build an SPKI). */
function der(tag, ...parts) {
  const body = concatBytes(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return concatBytes([Uint8Array.of(tag, ...len), body]);
}

function concatBytes(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const ED25519_SPKI_PREFIX = Uint8Array.of(0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00);
const SSH_CURVES = {
  nistp256: Uint8Array.of(0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07),
  nistp384: Uint8Array.of(0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22),
  nistp521: Uint8Array.of(0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23),
};
const OID_EC_PUBLIC_KEY = Uint8Array.of(0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01);
const RSA_ALGORITHM = Uint8Array.of(0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00);

/** The DER SubjectPublicKeyInfo of an OpenSSH public key blob (what the key index hashes). */
export function sshBlobToSpki(blob) {
  let at = 0;
  const str = () => {
    const n = new DataView(blob.buffer, blob.byteOffset + at).getUint32(0);
    at += 4;
    if (at + n > blob.length) throw new Error("SSH key blob is cut short");
    const out = blob.subarray(at, at + n);
    at += n;
    return out;
  };
  const type = text(str());
  if (type === "ssh-ed25519") return concatBytes([ED25519_SPKI_PREFIX, str()]);
  if (type.startsWith("ecdsa-sha2-")) {
    const curve = SSH_CURVES[text(str())];
    if (!curve) throw new Error(`unknown SSH curve in ${type}`);
    return der(0x30, der(0x30, OID_EC_PUBLIC_KEY, curve), der(0x03, Uint8Array.of(0), str()));
  }
  if (type === "ssh-rsa") {
    const e = str(); // mpints are already DER INTEGER contents (two's complement, minimal)
    const n = str();
    return der(0x30, RSA_ALGORITHM, der(0x03, Uint8Array.of(0), der(0x30, der(0x02, n), der(0x02, e))));
  }
  throw new Error(`SSH key type ${type} is not decoded here`);
}

async function openpgpFacts(armored, facts) {
  const body = armored
    .replace(/\r/g, "")
    .split("\n\n")
    .slice(1)
    .join("\n\n")
    .replace(/^=.*$/m, "")
    .replace(/-----END[\s\S]*/, "")
    .replace(/\s+/g, "");
  const data = b64decode(body, "OpenPGP armor");
  let at = 0;
  let fingerprint = "";
  while (at < data.length) {
    const hdr = data[at++];
    let tag;
    let len;
    if (hdr & 0x40) {
      tag = hdr & 0x3f;
      const o = data[at++];
      if (o < 192) len = o;
      else if (o < 224) len = ((o - 192) << 8) + data[at++] + 192;
      else if (o === 255) {
        len = new DataView(data.buffer, data.byteOffset + at).getUint32(0);
        at += 4;
      } else break; // partial lengths never occur in key packets
    } else {
      tag = (hdr >> 2) & 0x0f;
      const lt = hdr & 3;
      const n = [1, 2, 4][lt];
      if (!n) break;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + data[at++];
    }
    const packet = data.subarray(at, at + len);
    at += len;
    if (tag === 6 && !fingerprint) {
      const version = packet[0];
      if (version === 4) {
        const pre = Uint8Array.of(0x99, len >> 8, len & 0xff);
        const buf = new Uint8Array(pre.length + packet.length);
        buf.set(pre);
        buf.set(packet, pre.length);
        fingerprint = toHex(new Uint8Array(await crypto.subtle.digest("SHA-1", buf)));
      } else if (version === 6) {
        const pre = Uint8Array.of(0x9b, len >>> 24, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff);
        const buf = new Uint8Array(pre.length + packet.length);
        buf.set(pre);
        buf.set(packet, pre.length);
        fingerprint = toHex(await sha256(buf));
      }
    } else if (tag === 13) {
      const uid = text(packet);
      facts.fields.push(["OpenPGP user ID", uid]);
      const m = uid.match(/<([^>]+@[^>]+)>/) || uid.match(/^(\S+@\S+)$/);
      if (m) facts.identities.push(m[1].toLowerCase());
    }
  }
  if (fingerprint) {
    facts.fields.push(["OpenPGP fingerprint", fingerprint]);
    facts.keys.push(fingerprint);
  }
}

async function rekordFacts(spec, facts) {
  const sig = spec.signature || {};
  facts.fields.push(["signature format", sig.format]);
  const keyText = sig.publicKey?.content ? text(b64decode(sig.publicKey.content, "public key")) : "";
  if (sig.format === "x509") await describePemVerifier(sig.publicKey.content, facts);
  else if (sig.format === "pgp") await openpgpFacts(keyText, facts);
  else if (sig.format === "ssh") {
    const [type, blob, ...comment] = keyText.trim().split(/\s+/);
    const raw = b64decode(blob, "SSH key");
    const fp = b64encode(await sha256(raw)).replace(/=+$/, "");
    facts.fields.push(["SSH key", `${type}${comment.length ? " " + comment.join(" ") : ""}`]);
    facts.fields.push(["SSH fingerprint", `SHA256:${fp}`]);
    const spki = sshBlobToSpki(raw);
    facts.fields.push(["key", describeSpki(spki)]);
    const hex = toHex(await sha256(spki));
    facts.fields.push(["key fingerprint (SHA-256 of SPKI)", hex]);
    facts.keys.push(hex);
  } else if (sig.format === "minisign") {
    const line = keyText.trim().split("\n").pop();
    const raw = b64decode(line.trim(), "minisign key");
    facts.fields.push(["minisign key ID", toHex(raw.subarray(2, 10).slice().reverse()).toUpperCase()]);
    const hex = toHex(await sha256(concatBytes([ED25519_SPKI_PREFIX, raw.subarray(10, 42)])));
    facts.fields.push(["key fingerprint (SHA-256 of SPKI)", hex]);
    facts.keys.push(hex);
  }
}

// --- entry -----------------------------------------------------------------------------------------

/**
 * What a body says, for display: {kind, apiVersion, fields: [[label, value]], digests, keys,
 * identities, json}. Unknown kinds and undecodable parts become a `problem` sentence, never an
 * exception: the raw JSON is always shown beside it.
 */
export async function describeEntry(body) {
  const facts = { kind: "", apiVersion: "", fields: [], digests: [], keys: [], identities: [], json: "", problem: "" };
  try {
    facts.json = new TextDecoder("utf-8", { fatal: true }).decode(body);
    const obj = JSON.parse(facts.json);
    facts.kind = String(obj.kind ?? "");
    facts.apiVersion = String(obj.apiVersion ?? "");
    const spec = obj.spec || {};
    if (facts.kind === "hashedrekord" && facts.apiVersion === "0.0.2") {
      const s = spec.hashedRekordV002 || spec.hashedRekordV0_0_2;
      facts.digests.push(v2Digest(s.data));
      await describeV2Verifier(s.signature.verifier, facts, "");
    } else if (facts.kind === "hashedrekord") {
      facts.digests.push(`${spec.data.hash.algorithm}:${spec.data.hash.value.toLowerCase()}`);
      await describePemVerifier(spec.signature.publicKey.content, facts);
    } else if (facts.kind === "dsse" && facts.apiVersion === "0.0.2") {
      const s = spec.dsseV002 || spec.dsseV0_0_2;
      facts.digests.push(v2Digest(s.payloadHash));
      for (const [i, sig] of (s.signatures || []).entries()) {
        await describeV2Verifier(sig.verifier, facts, `signer ${i + 1}`);
      }
    } else if (facts.kind === "dsse") {
      if (spec.payloadHash) facts.digests.push(`${spec.payloadHash.algorithm}:${spec.payloadHash.value}`);
      if (spec.envelopeHash) facts.digests.push(`${spec.envelopeHash.algorithm}:${spec.envelopeHash.value}`);
      for (const [i, sig] of (spec.signatures || []).entries()) {
        await describePemVerifier(sig.verifier, facts, `signer ${i + 1}`);
      }
    } else if (facts.kind === "rekord") {
      facts.digests.push(`${spec.data.hash.algorithm}:${spec.data.hash.value.toLowerCase()}`);
      await rekordFacts(spec, facts);
    } else {
      facts.problem = `entries of kind ${JSON.stringify(facts.kind)} ${facts.apiVersion} are shown as raw JSON only`;
    }
  } catch (err) {
    facts.problem = `could not decode every field of this entry (${err.message}); the raw body is shown`;
  }
  facts.identities = [...new Set(facts.identities)];
  facts.keys = [...new Set(facts.keys)];
  return facts;
}
