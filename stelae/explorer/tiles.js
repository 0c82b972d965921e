// Reading a C2SP tlog-tiles log over HTTP and computing proofs from its tiles
// (https://c2sp.org/tlog-tiles). Mirrors stelae/tiles/{layout,tile,client}.py: which tile holds a
// node, partial tiles `.p/W` read only at a size a verified checkpoint implies, the full tile in
// place of a partial one that is gone, and proofs built from nodes and then verified by verify.js.

import {
  FormatError,
  VerificationError,
  consistencyRanges,
  inclusionRanges,
  rangeRoot,
  rootFromLeafHashes,
  EMPTY_ROOT,
} from "./verify.js";

export const TILE_HEIGHT = 8n;
export const TILE_WIDTH = 256n;

/** Tile index in 3-digit groups, all but the last prefixed with "x": 1234067 → x001/x234/067. */
export function encodeIndex(n) {
  n = BigInt(n);
  const parts = [String(n % 1000n).padStart(3, "0")];
  n /= 1000n;
  while (n > 0n) {
    parts.push("x" + String(n % 1000n).padStart(3, "0"));
    n /= 1000n;
  }
  return parts.reverse().join("/");
}

/** The path of hash tile (level, index) or, with level -1, entry bundle `index`; width 1..256. */
export function tilePath(level, index, width = TILE_WIDTH) {
  const head = BigInt(level) === -1n ? "tile/entries" : `tile/${level}`;
  const suffix = BigInt(width) < TILE_WIDTH ? `.p/${width}` : "";
  return `${head}/${encodeIndex(index)}${suffix}`;
}

/** How many hashes tile (level, index) holds at `size` (0: it does not exist). */
export function tileWidth(level, index, size) {
  const levelSize = BigInt(size) >> (TILE_HEIGHT * BigInt(level));
  const w = levelSize - BigInt(index) * TILE_WIDTH;
  return w < 0n ? 0n : w > TILE_WIDTH ? TILE_WIDTH : w;
}

/** Entries of a bundle: each uint16 big-endian length, then the bytes. */
export function parseBundle(bytes) {
  const out = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) throw new FormatError("entry bundle ends inside a length prefix");
    const n = (bytes[at] << 8) | bytes[at + 1];
    at += 2;
    if (n === 0) throw new FormatError(`entry ${out.length} of the bundle is empty`);
    if (at + n > bytes.length) throw new FormatError(`entry ${out.length} of the bundle is cut short`);
    out.push(bytes.slice(at, at + n));
    at += n;
  }
  if (!out.length || out.length > 256) throw new FormatError(`a bundle holds 1..256 entries, not ${out.length}`);
  return out;
}

export class NotFound extends Error {
  constructor(url) {
    super(`not found: ${url}`);
    this.name = "NotFound";
  }
}

/** GETs objects under a log's base URL. Every byte it returns is untrusted until verified. */
export class LogFetcher {
  constructor(base) {
    this.base = base.endsWith("/") ? base : base + "/";
    this.count = 0; // requests made, shown on the page
  }

  async get(path, { fresh = false } = {}) {
    const url = this.base + path;
    this.count++;
    let res;
    try {
      res = await fetch(url, fresh ? { cache: "no-cache" } : {});
    } catch (err) {
      throw new Error(`could not fetch ${url}: ${err.message}`);
    }
    if (res.status === 404) throw new NotFound(url);
    if (!res.ok) throw new Error(`fetching ${url} failed: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
}

/**
 * Tiles of one log read at `readSize` (the largest verified tree size) and cut to the size a
 * proof is for, so that every partial tile asked for is one the log published.
 */
export class TileReader {
  constructor(fetcher, readSize = 0n) {
    this.fetcher = fetcher;
    this.readSize = BigInt(readSize);
    this.tiles = new Map(); // path -> parsed hashes (immutable objects, so safe to keep)
  }

  async fetchTile(level, index, width) {
    try {
      return await this.fetcher.get(tilePath(level, index, width));
    } catch (err) {
      if (!(err instanceof NotFound) || width === TILE_WIDTH) throw err;
    }
    // The partial tile is gone; the full one (when it exists by now) starts with the same hashes.
    return this.fetcher.get(tilePath(level, index));
  }

  async tileHashes(level, index, size) {
    const width = tileWidth(level, index, size);
    if (width === 0n) throw new FormatError(`tile ${level}/${index} does not exist at tree size ${size}`);
    const readWidth = tileWidth(level, index, size > this.readSize ? size : this.readSize);
    const path = tilePath(level, index, readWidth);
    let hashes = this.tiles.get(path);
    if (!hashes) {
      let data = await this.fetchTile(level, index, readWidth);
      if (data.length === 256 * 32 && readWidth < TILE_WIDTH) data = data.subarray(0, Number(readWidth) * 32);
      if (data.length !== Number(readWidth) * 32) {
        throw new FormatError(`tile ${path} is ${data.length} bytes, want ${readWidth} hashes`);
      }
      hashes = [];
      for (let i = 0; i < data.length; i += 32) hashes.push(data.slice(i, i + 32));
      this.tiles.set(path, hashes);
    }
    return hashes.slice(0, Number(width));
  }

  /** The entries of bundle `index` at `size`. */
  async bundle(index, size) {
    const width = tileWidth(0, index, size);
    if (width === 0n) throw new FormatError(`bundle ${index} does not exist at tree size ${size}`);
    const readWidth = tileWidth(0, index, size > this.readSize ? size : this.readSize);
    const path = tilePath(-1, index, readWidth);
    let entries;
    try {
      entries = parseBundle(await this.fetchTile(-1, index, readWidth));
    } catch (err) {
      if (err instanceof FormatError) throw new FormatError(`bundle ${path}: ${err.message}`);
      throw err;
    }
    if (entries.length > Number(width) && [Number(readWidth), 256].includes(entries.length)) {
      entries = entries.slice(0, Number(width));
    }
    if (entries.length !== Number(width)) {
      throw new FormatError(`bundle ${path} holds ${entries.length} entries, want ${width}`);
    }
    return entries;
  }

  /** The hash of perfect subtree (level, index), complete at `size`. */
  async node(level, index, size) {
    level = BigInt(level);
    index = BigInt(index);
    if ((index + 1n) << level > BigInt(size)) {
      throw new FormatError(`node ${level}/${index} is not complete at tree size ${size}`);
    }
    const tileLevel = level / TILE_HEIGHT;
    const sub = level % TILE_HEIGHT;
    const first = index << sub; // leftmost descendant stored at this tile level
    const hashes = await this.tileHashes(tileLevel, first / TILE_WIDTH, size);
    const offset = Number(first % TILE_WIDTH);
    return rootFromLeafHashes(hashes.slice(offset, offset + (1 << Number(sub))));
  }

  async root(size) {
    size = BigInt(size);
    if (size === 0n) return EMPTY_ROOT;
    return rangeRoot(0n, size, (lv, i) => this.node(lv, i, size));
  }

  async inclusionProof(index, size) {
    const out = [];
    for (const [a, b] of inclusionRanges(index, size)) {
      out.push(await rangeRoot(a, b, (lv, i) => this.node(lv, i, size)));
    }
    return out;
  }

  async consistencyProof(size1, size2) {
    const out = [];
    for (const [a, b] of consistencyRanges(size1, size2)) {
      out.push(await rangeRoot(a, b, (lv, i) => this.node(lv, i, size2)));
    }
    return out;
  }
}

export { VerificationError };
