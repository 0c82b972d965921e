// Command tlogcheck is an independent C2SP tlog-tiles client and writer built on Go's reference
// transparency-log code, golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note. It shares
// no code with stelae; stelae's interop tests (tests/e2e/test_interop.py) run it in both directions:
//
//	tlogcheck verify -url URL -vkey VKEY [-origin O] [-old PATH,...] [-proofs 0,5,...] [-entries=true]
//	    Fetch URL/checkpoint and verify its signature with note.Open; rebuild the tree from every
//	    entry bundle (tlog.StoredHashes) and require its root to be the signed one and every
//	    served hash tile to equal tlog.ReadTileData of it; read the tree through
//	    tlog.TileHashReader too (each record's tlog.RecordHash against its level-0 hash); prove
//	    and check inclusion (tlog.ProveRecord/CheckRecord) and, with -old, consistency with
//	    older signed checkpoints at URL/PATH (tlog.ProveTree/CheckTree, and the old tree's own
//	    tiles must give its root).
//	    Prints a JSON summary on success; exits 1 with "tlogcheck: <reason>" on any failure.
//
//	tlogcheck write -dir DIR -origin O -sizes 300,70000
//	    Write a log of synthetic records to DIR at tlog-tiles paths, publishing a signed
//	    checkpoint (note.Sign, Ed25519 key from note.GenerateKey) at each size in turn. Tiles
//	    come from tlog.StoredHashes + tlog.NewTiles + tlog.ReadTileData. Each published
//	    checkpoint is also kept at DIR/../published/<size>. Prints JSON: origin, vkey, sizes,
//	    roots (base64), files written. The records are func record's: tests mirror it.
//
// Go's sumdb puts tiles at tile/<H>/<L>/<N>[.p/<W>] and record tiles at tile/<H>/data/<N>;
// tlog-tiles fixes H=8 and drops it (tile/<L>/<N>[.p/<W>]) and names record bundles
// tile/entries/<N>[.p/<W>], each a sequence of uint16 big-endian length-prefixed records. The only
// code here that knows that mapping is tilesPath; the rest is the Go reference library.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8 // tlog-tiles tile height
const width = 1 << height

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogcheck: "+format+"\n", args...)
	os.Exit(1)
}

// tilesPath maps a Go tlog.Tile (H must be 8) to its tlog-tiles path. L=-1 is an entry bundle.
func tilesPath(t tlog.Tile) string {
	// Go's own encoding, with the height element removed: "tile/8/L/N" -> "tile/L/N".
	p := t.Path()
	prefix := fmt.Sprintf("tile/%d/", t.H)
	if t.H != height || !strings.HasPrefix(p, prefix) {
		panic("tile height is not 8")
	}
	rest := p[len(prefix):]
	if t.L == -1 {
		rest = "entries" + strings.TrimPrefix(rest, "data")
	}
	return "tile/" + rest
}

// ---------------------------------------------------------------- verify

var client = &http.Client{Timeout: 30 * time.Second}

// useFreshConnections makes every request open a new connection (see -keepalive).
func useFreshConnections() {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	client.Transport = tr
}

type httpLog struct {
	base    string
	fetches int
}

var errNotFound = errors.New("not found")

func (l *httpLog) get(path string) ([]byte, error) {
	l.fetches++
	resp, err := client.Get(l.base + "/" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("GET %s: %w", path, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return body, nil
}

// getTile fetches a hash tile or bundle. A partial tile that is gone is replaced by the full tile
// (tlog-tiles lets logs delete partial tiles once the full one exists); the caller trims it.
func (l *httpLog) getTile(t tlog.Tile) ([]byte, error) {
	data, err := l.get(tilesPath(t))
	if err != nil && errors.Is(err, errNotFound) && t.W < width {
		full := t
		full.W = width
		data, err = l.get(tilesPath(full))
	}
	return data, err
}

// tileReader implements tlog.TileReader over tlog-tiles paths. Tiles that tlog.TileHashReader
// has authenticated (it calls SaveTiles only after checking them against the signed root) are
// kept in memory so later reads don't fetch them again; nothing unauthenticated is cached.
type tileReader struct {
	log   *httpLog
	saved map[tlog.Tile][]byte
}

func newTileReader(log *httpLog) tileReader {
	return tileReader{log, map[tlog.Tile][]byte{}}
}

func (r tileReader) Height() int { return height }

func (r tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		r.saved[t] = data[i]
	}
}

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if data, ok := r.saved[t]; ok {
			out[i] = data
			continue
		}
		data, err := r.log.getTile(t)
		if err != nil {
			return nil, err
		}
		want := t.W * tlog.HashSize
		if len(data) == width*tlog.HashSize && len(data) > want {
			data = data[:want] // full tile standing in for a deleted partial one
		}
		if len(data) != want {
			return nil, fmt.Errorf("tile %s is %d bytes, want %d", tilesPath(t), len(data), want)
		}
		out[i] = data
	}
	return out, nil
}

// openCheckpoint verifies a C2SP checkpoint with Go's note package and parses its body with
// Go's tlog.ParseTree (after swapping the origin line for the sumdb's fixed first line, which is
// the only difference between a sumdb tree note and a tlog-checkpoint).
func openCheckpoint(msg []byte, v note.Verifier, origin string) (tlog.Tree, *note.Note, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("checkpoint signature: %v", err)
	}
	first, rest, ok := strings.Cut(n.Text, "\n")
	if !ok || first != origin {
		return tlog.Tree{}, nil, fmt.Errorf("checkpoint origin is %q, want %q", first, origin)
	}
	tree, err := tlog.ParseTree([]byte("go.sum database tree\n" + rest))
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("checkpoint body: %v", err)
	}
	if tree.N == 0 && tree.Hash != tlog.Hash(sha256Empty()) {
		return tlog.Tree{}, nil, fmt.Errorf("size-0 checkpoint without the empty root")
	}
	return tree, n, nil
}

func parseBundle(data []byte) ([][]byte, error) {
	var recs [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, fmt.Errorf("truncated length prefix")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, fmt.Errorf("truncated record")
		}
		recs = append(recs, data[2:2+n])
		data = data[2+n:]
	}
	return recs, nil
}

type verifySummary struct {
	Origin          string  `json:"origin"`
	Size            int64   `json:"size"`
	Root            string  `json:"root"`
	SignedBy        string  `json:"signed_by"`
	EntriesChecked  int64   `json:"entries_checked"`
	TilesAudited    int     `json:"tiles_audited"`
	Proofs          []int64 `json:"inclusion_proofs"`
	ProofLengths    []int   `json:"inclusion_proof_lengths"`
	OldSizes        []int64 `json:"old_sizes"`
	ConsistencyLens []int   `json:"consistency_proof_lengths"`
	Fetches         int     `json:"fetches"`
}

func defaultProofIndexes(n int64) []int64 {
	var out []int64
	seen := map[int64]bool{}
	for _, i := range []int64{0, 1, 2, 255, 256, 257, 511, 65535, 65536, n / 2, n - 256, n - 2, n - 1} {
		if i >= 0 && i < n && !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

func verify(args []string) {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	url := fs.String("url", "", "log prefix URL")
	vkey := fs.String("vkey", "", "verifier key")
	origin := fs.String("origin", "", "checkpoint origin (default: the key name)")
	old := fs.String("old", "", "comma-separated paths (under the prefix) of older checkpoints to prove consistency with")
	proofs := fs.String("proofs", "", "comma-separated indexes to prove inclusion of (default: a spread)")
	entries := fs.Bool("entries", true, "rebuild the tree from every entry bundle and compare it with every tile and the root")
	keepalive := fs.Bool("keepalive", true, "reuse HTTP connections (false: one connection per request)")
	fs.Parse(args)
	if !*keepalive {
		useFreshConnections()
	}

	v, err := note.NewVerifier(*vkey)
	if err != nil {
		fail("verifier key: %v", err)
	}
	if *origin == "" {
		*origin = v.Name()
	}
	log := &httpLog{base: strings.TrimRight(*url, "/")}
	msg, err := log.get("checkpoint")
	if err != nil {
		fail("%v", err)
	}
	tree, n, err := openCheckpoint(msg, v, *origin)
	if err != nil {
		fail("%v", err)
	}
	sum := verifySummary{Origin: *origin, Size: tree.N, Root: tree.Hash.String(), SignedBy: n.Sigs[0].Name}
	thr := tlog.TileHashReader(tree, newTileReader(log))

	// The root recomputed from the tiles (TileHashReader also authenticates each tile with it).
	if tree.N > 0 {
		th, err := tlog.TreeHash(tree.N, thr)
		if err != nil {
			fail("tree hash from tiles: %v", err)
		}
		if th != tree.Hash {
			fail("tree hash from tiles %v != signed root %v", th, tree.Hash)
		}
	}

	// Every entry. Two independent checks:
	//  1. Audit: rebuild the tree from the bundles' records with Go's own tlog.StoredHashes,
	//     require tlog.TreeHash to equal the signed root, and require every hash tile the log
	//     serves at this size to equal tlog.ReadTileData of the rebuilt tree, byte for byte.
	//  2. Read: each record's tlog.RecordHash must equal the level-0 hash that
	//     tlog.TileHashReader returns for it.
	// The audit is what makes a tampered tile fail reliably: x/mod's TileHashReader (v0.7.0, as
	// Debian ships it) does not authenticate every tile it returns hashes from (README.md), so
	// check 2 alone, or ProveRecord, can be fed a bad tile; CheckRecord/CheckTree still catch a
	// wrong proof against the signed root.
	leaf := map[int64]tlog.Hash{}
	if *entries {
		var stored []tlog.Hash
		hr := memHashReader(&stored)
		for b := int64(0); b*width < tree.N; b++ {
			w := tree.N - b*width
			if w > width {
				w = width
			}
			data, err := log.getTile(tlog.Tile{H: height, L: -1, N: b, W: int(w)})
			if err != nil {
				fail("bundle %d: %v", b, err)
			}
			recs, err := parseBundle(data)
			if err != nil {
				fail("bundle %d: %v", b, err)
			}
			if int64(len(recs)) == width && w < width {
				recs = recs[:w] // full bundle standing in for a deleted partial one
			}
			if int64(len(recs)) != w {
				fail("bundle %d holds %d records, want %d", b, len(recs), w)
			}
			for i, rec := range recs {
				hs, err := tlog.StoredHashes(b*width+int64(i), rec, hr)
				if err != nil {
					fail("%v", err)
				}
				stored = append(stored, hs...)
				leaf[b*width+int64(i)] = tlog.RecordHash(rec)
			}
			sum.EntriesChecked += w
		}
		th, err := tlog.TreeHash(tree.N, hr)
		if err != nil {
			fail("%v", err)
		}
		if th != tree.Hash {
			fail("tree hash of the entries %v != signed root %v", th, tree.Hash)
		}
		for _, t := range tilesAt(tree.N) {
			want, err := tlog.ReadTileData(t, hr)
			if err != nil {
				fail("%v", err)
			}
			got, err := log.getTile(t)
			if err != nil {
				fail("tile %s: %v", tilesPath(t), err)
			}
			if len(got) == width*tlog.HashSize && t.W < width {
				got = got[:t.W*tlog.HashSize]
			}
			if !bytes.Equal(got, want) {
				fail("tile %s differs from the tile computed from the entries", tilesPath(t))
			}
			sum.TilesAudited++
		}
		for b := int64(0); b*width < tree.N; b++ {
			w := tree.N - b*width
			if w > width {
				w = width
			}
			idx := make([]int64, w)
			for i := range idx {
				idx[i] = tlog.StoredHashIndex(0, b*width+int64(i))
			}
			hashes, err := thr.ReadHashes(idx)
			if err != nil {
				fail("level-0 hashes for bundle %d: %v", b, err)
			}
			for i, h := range hashes {
				if n := b*width + int64(i); leaf[n] != h {
					fail("entry %d: record hash %v != level-0 tile hash %v", n, leaf[n], h)
				}
			}
		}
	}

	// Inclusion proofs.
	var want []int64
	if *proofs == "" {
		want = defaultProofIndexes(tree.N)
	} else {
		for _, s := range strings.Split(*proofs, ",") {
			i, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				fail("bad -proofs: %v", err)
			}
			want = append(want, i)
		}
	}
	for _, i := range want {
		h, ok := leaf[i]
		if !ok {
			hs, err := thr.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
			if err != nil {
				fail("leaf hash %d: %v", i, err)
			}
			h = hs[0]
		}
		p, err := tlog.ProveRecord(tree.N, i, thr)
		if err != nil {
			fail("inclusion proof for %d: %v", i, err)
		}
		if err := tlog.CheckRecord(p, tree.N, tree.Hash, i, h); err != nil {
			fail("inclusion proof for %d does not verify: %v", i, err)
		}
		sum.Proofs = append(sum.Proofs, i)
		sum.ProofLengths = append(sum.ProofLengths, len(p))
	}

	// Consistency with older signed checkpoints.
	if *old != "" {
		for _, path := range strings.Split(*old, ",") {
			oldMsg, err := log.get(path)
			if err != nil {
				fail("old checkpoint: %v", err)
			}
			oldTree, _, err := openCheckpoint(oldMsg, v, *origin)
			if err != nil {
				fail("old checkpoint %s: %v", path, err)
			}
			if oldTree.N > tree.N {
				fail("old checkpoint size %d > current %d", oldTree.N, tree.N)
			}
			plen := 0
			if oldTree.N > 0 {
				// The old tree's own tiles (partial ones at its size) must give its root too.
				oth, err := tlog.TreeHash(oldTree.N, tlog.TileHashReader(oldTree, newTileReader(log)))
				if err != nil {
					fail("old tree %d: hash from tiles: %v", oldTree.N, err)
				}
				if oth != oldTree.Hash {
					fail("old tree %d: hash from tiles %v != signed root %v", oldTree.N, oth, oldTree.Hash)
				}
				p, err := tlog.ProveTree(tree.N, oldTree.N, thr)
				if err != nil {
					fail("consistency proof %d -> %d: %v", oldTree.N, tree.N, err)
				}
				if err := tlog.CheckTree(p, tree.N, tree.Hash, oldTree.N, oldTree.Hash); err != nil {
					fail("consistency proof %d -> %d does not verify: %v", oldTree.N, tree.N, err)
				}
				plen = len(p)
			}
			sum.OldSizes = append(sum.OldSizes, oldTree.N)
			sum.ConsistencyLens = append(sum.ConsistencyLens, plen)
		}
	}
	sum.Fetches = log.fetches
	out, _ := json.Marshal(sum)
	fmt.Println(string(out))
}

// ---------------------------------------------------------------- write

// memHashReader reads stored hashes from a slice (as the writer and the audit build it).
func memHashReader(stored *[]tlog.Hash) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(*stored)) {
				return nil, fmt.Errorf("hash index %d not stored", x)
			}
			out[i] = (*stored)[x]
		}
		return out, nil
	})
}

// tilesAt lists every hash tile a log of size n serves: the full tiles, and at each level the
// partial right-edge tile of width n>>(8*level) mod 256 if that is not 0.
func tilesAt(n int64) []tlog.Tile {
	var out []tlog.Tile
	for _, t := range tlog.NewTiles(height, 0, n) {
		if t.W == width || int64(t.N)*width+int64(t.W) == n>>uint(height*t.L) {
			out = append(out, t)
		}
	}
	return out
}

// record returns synthetic record i. Lengths vary; record 7 is empty and record 8 is the largest
// a uint16 length prefix allows, to exercise the bundle format's edges.
func record(i int64) []byte {
	switch i {
	case 7:
		return []byte{}
	case 8:
		return bytes.Repeat([]byte{'m'}, 65535)
	}
	s := fmt.Sprintf("go x/mod/sumdb/tlog record %d\n", i)
	return []byte(s + strings.Repeat("-", int(i%37)))
}

type writeSummary struct {
	Origin string            `json:"origin"`
	Vkey   string            `json:"vkey"`
	Sizes  []int64           `json:"sizes"`
	Roots  map[string]string `json:"roots"`
	Files  int               `json:"files"`
}

func writeFile(dir, path string, data []byte) {
	p := filepath.Join(dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		fail("%v", err)
	}
}

func write(args []string) {
	fs := flag.NewFlagSet("write", flag.ExitOnError)
	dir := fs.String("dir", "", "directory to write the log prefix into")
	origin := fs.String("origin", "go.example/tlogcheck", "checkpoint origin and key name")
	sizesFlag := fs.String("sizes", "300,70000", "tree sizes to publish a checkpoint at, ascending")
	fs.Parse(args)

	skey, vkey, err := note.GenerateKey(rand.Reader, *origin)
	if err != nil {
		fail("%v", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		fail("%v", err)
	}
	sum := writeSummary{Origin: *origin, Vkey: vkey, Roots: map[string]string{}}

	var stored []tlog.Hash
	hr := memHashReader(&stored)

	var size int64
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= size {
			fail("bad -sizes %q", *sizesFlag)
		}
		for i := size; i < n; i++ {
			hs, err := tlog.StoredHashes(i, record(i), hr)
			if err != nil {
				fail("%v", err)
			}
			stored = append(stored, hs...)
		}
		// Hash tiles: every full tile completed since the last size, and the right-edge partial
		// tile at this size (NewTiles also lists the intermediate widths; tlog-tiles only needs
		// the partial tiles of published sizes).
		for _, t := range tlog.NewTiles(height, size, n) {
			if t.W < width && int64(t.N)*width+int64(t.W) != n>>(uint(height*t.L)) {
				continue
			}
			data, err := tlog.ReadTileData(t, hr)
			if err != nil {
				fail("%v", err)
			}
			writeFile(*dir, tilesPath(t), data)
			sum.Files++
		}
		// Entry bundles, tiled like level 0.
		for b := size / width; b*width < n; b++ {
			w := n - b*width
			if w > width {
				w = width
			}
			var buf bytes.Buffer
			for i := b * width; i < b*width+w; i++ {
				r := record(i)
				binary.Write(&buf, binary.BigEndian, uint16(len(r)))
				buf.Write(r)
			}
			writeFile(*dir, tilesPath(tlog.Tile{H: height, L: -1, N: b, W: int(w)}), buf.Bytes())
			sum.Files++
		}
		th, err := tlog.TreeHash(n, hr)
		if err != nil {
			fail("%v", err)
		}
		text := fmt.Sprintf("%s\n%d\n%s\n", *origin, n, base64.StdEncoding.EncodeToString(th[:]))
		signed, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			fail("%v", err)
		}
		writeFile(*dir, "checkpoint", signed)
		writeFile(filepath.Join(*dir, "..", "published"), strconv.FormatInt(n, 10), signed)
		sum.Sizes = append(sum.Sizes, n)
		sum.Roots[strconv.FormatInt(n, 10)] = th.String()
		size = n
	}
	out, _ := json.Marshal(sum)
	fmt.Println(string(out))
}

// ---------------------------------------------------------------- misc

// sha256Empty is the RFC 6962 root of the empty tree (tlog.TreeHash(0) returns the zero hash).
func sha256Empty() [32]byte { return sha256.Sum256(nil) }

func main() {
	if len(os.Args) < 2 {
		fail("usage: tlogcheck verify|write ...")
	}
	switch os.Args[1] {
	case "verify":
		verify(os.Args[2:])
	case "write":
		write(os.Args[2:])
	default:
		fail("unknown command %q", os.Args[1])
	}
}
