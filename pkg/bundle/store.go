package bundle

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/sigstore/sigstore/pkg/signature"
)

// The last good bundle lives in a directory:
//
//	bundle-<hex digest>.json      a bundle, as signed (the base)
//	bundle-<hex digest>.json.sig  its cosign signature
//	delta-<hex digest>.json       a delta to the bundle of that digest, from
//	                              the one before it (base or delta), with
//	                              that bundle's signature, as a control
//	                              plane sends it
//	last-good.json                {"revision":N,"digest":"sha256:…"}, and
//	                              "base" and "deltas" when deltas follow
//
// A Store writes a bundle whole (the base pair) the first time, then only
// the delta from the bundle it wrote before, so that a one-tool change
// writes a kilobyte rather than the whole configuration, until the deltas
// add up to maxDeltas or to a quarter of the base's size, when the next
// bundle is written whole again and the deltas are removed.
//
// Every file is written by temp file + fsync + rename, with the directory
// fsynced after; the pointer is replaced last. A crash at any point
// leaves the old pointer with everything it names, or the new pointer
// with everything it names, never a bundle with another bundle's
// signature. On reading, the base is verified (digest, signature), the
// deltas applied, and the result verified again against the pointer's
// digest and the last delta's signature: a damaged or foreign file is
// refused, whichever it is. Operators can check a base pair with `cosign
// verify-blob` as it is; `stoa bundle verify` checks any bundle.
const pointerName = "last-good.json"

// maxDeltas bounds the deltas after a base: each costs the data plane
// that restarts on them a merge of the objects.
const maxDeltas = 64

type pointer struct {
	Revision int64  `json:"revision"`
	Digest   Digest `json:"digest"`
	// Base and Deltas: the bundle is Base's with the deltas to each of
	// Deltas applied in turn (the last one is Digest).
	Base   *Digest  `json:"base,omitempty"`
	Deltas []Digest `json:"deltas,omitempty"`
}

func pairNames(d Digest) (bundle, sig string) {
	name := "bundle-" + hex.EncodeToString(d[:]) + ".json"
	return name, name + ".sig"
}

func deltaName(d Digest) string { return "delta-" + hex.EncodeToString(d[:]) + ".json" }

// Store keeps the last good bundle in a directory (see above). Its
// methods are safe for concurrent use, but one Store per directory.
type Store struct {
	dir string

	mu sync.Mutex
	// tip is the bundle the directory holds, as far as this Store knows
	// (nil: unknown, the next one is written whole); base, baseSize, the
	// deltas after it and their size in bytes.
	tip        *Bundle
	base       Digest
	baseSize   int
	deltas     []Digest
	deltaBytes int
}

// NewStore returns the store of dir (created 0700 on the first write).
func NewStore(dir string) *Store { return &Store{dir: dir} }

// Load reads and verifies the last good bundle, as ReadLastGood, and
// remembers it, so the next Write can be a delta from it.
func (s *Store) Load(v signature.Verifier) (*Bundle, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, sig, p, size, err := readLastGood(s.dir, v)
	if err != nil {
		return nil, nil, err
	}
	s.tip, s.deltas = b, p.Deltas
	s.base, s.baseSize, s.deltaBytes = p.Digest, size, 0
	if p.Base != nil {
		s.base = *p.Base
		// Unknown, so assume the worst: the next delta that would pass a
		// quarter of the base writes the base again.
		s.deltaBytes = size / 8
	}
	return b, sig, nil
}

// Write makes b, signed by sig, the last good bundle: as a delta from the
// bundle written before, or whole.
func (s *Store) Write(b *Bundle, sig []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tip != nil && s.tip.digest == b.digest && s.tip.rev == b.rev {
		return nil
	}
	if s.tip != nil && len(s.deltas) < maxDeltas && b.rev >= s.tip.rev {
		d := Diff(s.tip, b)
		d.Signature = bytes.TrimSpace(sig)
		raw, err := json.Marshal(&d)
		if err != nil {
			return fmt.Errorf("write last good bundle: %w", err)
		}
		if s.deltaBytes+len(raw) <= s.baseSize/4 {
			return s.writeDelta(b, append(raw, '\n'))
		}
	}
	if err := WriteFileAtomic(s.dir, b, sig); err != nil {
		s.tip = nil
		return err
	}
	s.tip, s.base, s.baseSize, s.deltas, s.deltaBytes = b, b.digest, b.size(), nil, 0
	return nil
}

func (s *Store) writeDelta(b *Bundle, raw []byte) error {
	if err := writeFile(s.dir, deltaName(b.digest), raw); err != nil {
		s.tip = nil
		return err
	}
	// The delta must be durable before the pointer names it.
	if err := syncDir(s.dir); err != nil {
		s.tip = nil
		return err
	}
	base := s.base
	deltas := append(slices.Clip(s.deltas), b.digest)
	if err := writePointer(s.dir, pointer{Revision: b.rev, Digest: b.digest, Base: &base, Deltas: deltas}); err != nil {
		s.tip = nil
		return err
	}
	s.tip, s.deltas, s.deltaBytes = b, deltas, s.deltaBytes+len(raw)
	return nil
}

func writePointer(dir string, p pointer) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("write last good bundle: %w", err)
	}
	if err := writeFile(dir, pointerName, append(raw, '\n')); err != nil {
		return err
	}
	return syncDir(dir)
}

// WriteFileAtomic makes b and its signature the last good bundle in dir
// (created 0700 if missing), whole, crash-safely, and removes the previous
// one and any deltas.
func WriteFileAtomic(dir string, b *Bundle, sig []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write last good bundle: %w", err)
	}
	bname, sname := pairNames(b.digest)
	if err := writeFileFunc(dir, bname, b.writeTo); err != nil {
		return err
	}
	if err := writeFile(dir, sname, sig); err != nil {
		return err
	}
	// The pair must be durable before the pointer names it.
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := writePointer(dir, pointer{Revision: b.rev, Digest: b.digest}); err != nil {
		return err
	}
	removeStale(dir, bname, sname)
	return nil
}

// writeFile writes data to dir/name through a synced temp file.
func writeFile(dir, name string, data []byte) error {
	return writeFileWith(dir, name, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// writeFileFunc writes what write writes to dir/name through a synced
// temp file.
func writeFileFunc(dir, name string, write func(io.Writer) error) error {
	return writeFileWith(dir, name, func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 256<<10)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// writeFileWith writes dir/name with write, through a synced temp file.
func writeFileWith(dir, name string, write func(*os.File) error) error {
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// removeStale deletes earlier pairs and temp files left by a crash. It is
// best effort: leftovers cost disk, never correctness.
func removeStale(dir, keepBundle, keepSig string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if n == keepBundle || n == keepSig {
			continue
		}
		if strings.HasPrefix(n, ".tmp-") || (strings.HasPrefix(n, "delta-") && strings.HasSuffix(n, ".json")) ||
			(strings.HasPrefix(n, "bundle-") && (strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".json.sig"))) {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// ReadLastGood loads the last good bundle from dir and verifies it again
// (digest, signature with v, canonical form), since a disk can rot or be
// written by someone else. With no bundle stored the error matches
// fs.ErrNotExist.
func ReadLastGood(dir string, v signature.Verifier) (*Bundle, []byte, error) {
	b, sig, _, _, err := readLastGood(dir, v)
	return b, sig, err
}

// readLastGood is ReadLastGood, also returning the pointer and the base's
// size.
func readLastGood(dir string, v signature.Verifier) (*Bundle, []byte, pointer, int, error) {
	var p pointer
	pb, err := os.ReadFile(filepath.Join(dir, pointerName))
	if err != nil {
		return nil, nil, p, 0, fmt.Errorf("read last good bundle: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, nil, p, 0, &FormatError{Msg: fmt.Sprintf("read %s: %v", pointerName, err)}
	}
	base := p.Digest
	if p.Base != nil {
		if len(p.Deltas) == 0 || p.Deltas[len(p.Deltas)-1] != p.Digest {
			return nil, nil, p, 0, &FormatError{Msg: fmt.Sprintf("read %s: its deltas do not lead to its digest", pointerName)}
		}
		base = *p.Base
	}
	bname, sname := pairNames(base)
	raw, err := os.ReadFile(filepath.Join(dir, bname))
	var sig []byte
	if err == nil {
		sig, err = os.ReadFile(filepath.Join(dir, sname))
	}
	if errors.Is(err, fs.ErrNotExist) {
		// The pointer names a pair that is gone: damage, not "nothing stored".
		return nil, nil, p, 0, &FormatError{Msg: fmt.Sprintf("read last good bundle: %s names %s, which is missing", pointerName, bname)}
	}
	if err != nil {
		return nil, nil, p, 0, fmt.Errorf("read last good bundle: %w", err)
	}
	b, err := Open(raw, sig, v, OpenOptions{Digest: base})
	if err != nil {
		return nil, nil, p, 0, fmt.Errorf("read last good bundle: %w", err)
	}
	if p.Base != nil {
		if b, sig, err = readDeltas(dir, b, p.Deltas, v); err != nil {
			return nil, nil, p, 0, fmt.Errorf("read last good bundle: %w", err)
		}
	}
	if b.rev != p.Revision || b.digest != p.Digest {
		return nil, nil, p, 0, &FormatError{Msg: fmt.Sprintf("read last good bundle: %s says revision %d, the bundle is revision %d", pointerName, p.Revision, b.rev)}
	}
	return b, bytes.TrimSpace(sig), p, len(raw), nil
}

// readDeltas applies the deltas to each of to, in turn, to base. Only the
// result is hashed and its signature verified: it is what is served, and
// it is authentic whatever the bundles between were.
func readDeltas(dir string, base *Bundle, to []Digest, v signature.Verifier) (*Bundle, []byte, error) {
	cur, from := base, base.digest
	var last *Delta
	for _, want := range to {
		name := deltaName(want)
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &FormatError{Msg: fmt.Sprintf("%s names %s, which is missing", pointerName, name)}
		}
		if err != nil {
			return nil, nil, err
		}
		d, err := ParseDelta(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		if d.To.Digest != want || d.From.Digest != from || d.From.Revision != cur.rev {
			return nil, nil, &FormatError{Msg: fmt.Sprintf("%s leads from %s to %s, not from %s to %s", name, d.From.Digest, d.To.Digest, from, want)}
		}
		from = want
		if cur, err = d.apply(cur, trustDigest); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		last = d
	}
	// cur's digest is the one the last delta claims: check it.
	if got := digestLines(cur.rev, cur.lines); got != cur.digest {
		return nil, nil, &DigestError{Want: cur.digest, Got: got, Rebuilt: true}
	}
	if err := verifyDigest(cur.digest, last.Signature, v); err != nil {
		return nil, nil, err
	}
	if err := CheckRevision(base, cur); err != nil {
		return nil, nil, err
	}
	return cur, last.Signature, nil
}
