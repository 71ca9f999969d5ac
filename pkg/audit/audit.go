// Package audit is stoad's tamper-evident audit trail: an append-only log
// in the store in which every entry carries the SHA-256 of the previous
// one, so an edited, removed or reordered entry breaks the chain and
// Verify names the first broken link (see docs/audit.md).
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// Buckets: entries keyed by their big-endian sequence number, and meta
// (the head of the chain and consumers' cursors).
var (
	BucketEntries = []byte("audit")
	BucketMeta    = []byte("audit_meta")
	keyHead       = []byte("head")
)

// Genesis is the Prev of the first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is one audit record. Hash is the SHA-256 (hex) of the entry's
// canonical JSON encoding without the hash member (see Canonical); Prev is
// the previous entry's Hash.
type Entry struct {
	Seq      int64             `json:"seq"`
	Time     time.Time         `json:"time"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Tenant   string            `json:"tenant,omitempty"`
	Revision int64             `json:"revision"`
	Details  map[string]string `json:"details,omitempty"`
	Prev     string            `json:"prev"`
	Hash     string            `json:"hash,omitempty"`
}

// Canonical is the byte string an entry's hash covers: its JSON encoding
// with the members in the order of the Entry type, without "hash",
// details keys sorted, no HTML escaping and no insignificant whitespace.
func Canonical(e Entry) []byte {
	e.Hash = ""
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(e) // cannot fail: strings, ints, a time and a string map
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// HashOf computes e's hash.
func HashOf(e Entry) string {
	sum := sha256.Sum256(Canonical(e))
	return hex.EncodeToString(sum[:])
}

// Log is the audit log of one store.
type Log struct {
	st *store.Store
	mu sync.Mutex // serialises appends (bbolt does too; this keeps head reads simple)
}

// Open prepares the log's buckets.
func Open(st *store.Store) (*Log, error) {
	err := st.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{BucketEntries, BucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &Log{st: st}, nil
}

type head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

func u64(n int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}

// Append adds entries (Seq, Prev and Hash are assigned) in one transaction,
// storing cursors (named positions in other logs) in the same transaction,
// so a consumer of another log records exactly what it has audited.
func (l *Log) Append(entries []Entry, cursors map[string]int64) ([]Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Entry, 0, len(entries))
	err := l.st.Update(func(tx *bolt.Tx) error {
		out = out[:0]
		meta, b := tx.Bucket(BucketMeta), tx.Bucket(BucketEntries)
		h := head{Hash: Genesis}
		if v := meta.Get(keyHead); v != nil {
			if err := json.Unmarshal(v, &h); err != nil {
				return fmt.Errorf("read audit head: %w", err)
			}
		}
		for _, e := range entries {
			h.Seq++
			e.Seq, e.Prev, e.Hash = h.Seq, h.Hash, ""
			if e.Time.IsZero() {
				e.Time = time.Now()
			}
			e.Time = e.Time.UTC()
			e.Hash = HashOf(e)
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put(u64(e.Seq), v); err != nil {
				return err
			}
			h.Hash = e.Hash
			out = append(out, e)
		}
		v, _ := json.Marshal(h)
		if err := meta.Put(keyHead, v); err != nil {
			return err
		}
		for k, c := range cursors {
			if err := meta.Put([]byte("cursor/"+k), u64(c)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append audit entry: %w", err)
	}
	return out, nil
}

// Cursor returns the value stored under key by Append, and whether one was.
func (l *Log) Cursor(key string) (int64, bool, error) {
	var (
		n  int64
		ok bool
	)
	err := l.st.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(BucketMeta).Get([]byte("cursor/" + key)); len(v) == 8 {
			n, ok = int64(binary.BigEndian.Uint64(v)), true
		}
		return nil
	})
	return n, ok, err
}

// Filter selects entries for List.
type Filter struct {
	Since  time.Time // entries at or after
	Actor  string    // substring of the actor, case-insensitive
	Action string    // exact action, or a prefix ending in "*"
	Tenant string
	Limit  int // newest N (0: all)
}

func (f *Filter) match(e *Entry) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if f.Actor != "" && !strings.Contains(strings.ToLower(e.Actor), strings.ToLower(f.Actor)) {
		return false
	}
	if f.Tenant != "" && e.Tenant != f.Tenant {
		return false
	}
	if f.Action != "" {
		if p, ok := strings.CutSuffix(f.Action, "*"); ok {
			return strings.HasPrefix(e.Action, p)
		}
		return e.Action == f.Action
	}
	return true
}

// List calls fn with the matching entries, oldest first. Entries that do
// not decode are passed with only Seq set and Action "corrupt".
func (l *Log) List(f Filter, fn func(Entry) error) error {
	var sel []Entry
	err := l.st.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(BucketEntries).Cursor()
		if f.Limit > 0 {
			for k, v := c.Last(); k != nil && len(sel) < f.Limit; k, v = c.Prev() {
				if e := decode(k, v); f.match(&e) {
					sel = append(sel, e)
				}
			}
			for i, j := 0, len(sel)-1; i < j; i, j = i+1, j-1 {
				sel[i], sel[j] = sel[j], sel[i]
			}
			return nil
		}
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if e := decode(k, v); f.match(&e) {
				sel = append(sel, e)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range sel {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func decode(k, v []byte) Entry {
	var e Entry
	if err := json.Unmarshal(v, &e); err != nil {
		return Entry{Seq: int64(binary.BigEndian.Uint64(k)), Action: "corrupt"}
	}
	return e
}

// Result is Verify's report.
type Result struct {
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"`
	Head    string `json:"head,omitempty"`
	// BrokenAt is the sequence number of the first entry that fails.
	BrokenAt int64  `json:"brokenAt,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// ErrBroken is wrapped by errors describing a broken chain.
var ErrBroken = errors.New("audit chain broken")

// Verify walks the whole chain and reports the first broken link: an
// entry that does not decode, whose hash does not match its content, whose
// prev is not its predecessor's hash, or whose sequence number is out of
// step; and a head that does not match the last entry (a truncated log).
func (l *Log) Verify() (Result, error) {
	var r Result
	err := l.st.View(func(tx *bolt.Tx) error {
		prev, want := Genesis, int64(1)
		c := tx.Bucket(BucketEntries).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			seq := int64(binary.BigEndian.Uint64(k))
			fail := func(format string, args ...any) error {
				r.BrokenAt, r.Problem = seq, fmt.Sprintf(format, args...)
				return nil
			}
			var e Entry
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				return fail("entry %d does not decode: %v", seq, err)
			}
			switch {
			case seq != want:
				return fail("entry %d follows entry %d: entries are missing", seq, want-1)
			case e.Seq != seq:
				return fail("entry stored as %d claims sequence %d", seq, e.Seq)
			case e.Prev != prev:
				return fail("entry %d does not link to entry %d (prev %.12s…, want %.12s…): an entry was changed, removed or inserted", seq, seq-1, e.Prev, prev)
			case HashOf(e) != e.Hash:
				return fail("entry %d was modified: its content does not match its hash", seq)
			}
			prev = e.Hash
			want++
			r.Entries++
		}
		var h head
		if v := tx.Bucket(BucketMeta).Get(keyHead); v != nil {
			if err := json.Unmarshal(v, &h); err != nil {
				r.BrokenAt, r.Problem = r.Entries, "the chain head does not decode"
				return nil
			}
		}
		if h.Seq != r.Entries || (h.Seq > 0 && h.Hash != prev) {
			r.BrokenAt, r.Problem = r.Entries+1, fmt.Sprintf("the chain head records %d entries but %d are present: entries at the end were removed or replaced", h.Seq, r.Entries)
			return nil
		}
		r.OK, r.Head = true, prev
		return nil
	})
	return r, err
}
