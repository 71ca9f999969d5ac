// Package audit is stoad's tamper-evident audit trail: an append-only log
// in the store in which every entry carries the SHA-256 of the previous
// one, so an edited, removed or reordered entry breaks the chain and
// Verify names the first broken link (see docs/audit.md).
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
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
	st store.Store
	mu sync.Mutex // serialises appends within this process (the store's head keeps replicas in line)
}

// Open returns the audit log kept in st.
func Open(st store.Store) (*Log, error) { return &Log{st: st}, nil }

// Append adds entries (Seq, Prev and Hash are assigned) in one transaction,
// storing cursors (named positions in other logs) in the same transaction,
// so a consumer of another log records exactly what it has audited.
func (l *Log) Append(entries []Entry, cursors map[string]int64) ([]Entry, error) {
	return l.AppendFrom(entries, nil, cursors)
}

// ErrCursorMoved: AppendFrom found a cursor other than the one the
// entries were read from — another stoad sharing the store audited them
// first. Nothing was appended; read the cursors again.
var ErrCursorMoved = errors.New("audit cursor moved")

// AppendFrom is Append for entries read from other logs at the positions
// in from: it appends only if the stored cursors are still there, in the
// same transaction, so two stoads sharing a store never audit the same
// revision or event twice (an Update holds the writers' turn).
func (l *Log) AppendFrom(entries []Entry, from, cursors map[string]int64) ([]Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx := context.Background()
	out := make([]Entry, 0, len(entries))
	err := l.st.Update(ctx, func(tx store.Tx) error {
		out = out[:0]
		a := tx.Audit()
		for k, want := range from {
			got, _, err := a.Cursor(ctx, k)
			if err != nil {
				return err
			}
			if got != want {
				return ErrCursorMoved
			}
		}
		h, err := a.Head(ctx)
		if err != nil {
			return fmt.Errorf("read audit head: %w", err)
		}
		if h.Seq == 0 {
			h.Hash = Genesis
		}
		recs := make([]store.AuditRecord, 0, len(entries))
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
			recs = append(recs, store.AuditRecord{Seq: e.Seq, Data: v})
			h.Hash = e.Hash
			out = append(out, e)
		}
		if err := a.Append(ctx, recs, h); err != nil {
			return err
		}
		for k, c := range cursors {
			if err := a.SetCursor(ctx, k, c); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrCursorMoved) {
		return nil, err
	}
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
	ctx := context.Background()
	err := l.st.View(ctx, func(tx store.Tx) error {
		var err error
		n, ok, err = tx.Audit().Cursor(ctx, key)
		return err
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
	// Keep, when set, is asked last about each entry the fields above
	// match, and may reduce it: a control plane shows a tenant's roles
	// only the entries (and parts of entries) of their tenants, and the
	// limit counts what they see.
	Keep func(*Entry) bool
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
		p, prefix := strings.CutSuffix(f.Action, "*")
		if (prefix && !strings.HasPrefix(e.Action, p)) || (!prefix && e.Action != f.Action) {
			return false
		}
	}
	return f.Keep == nil || f.Keep(e)
}

// List calls fn with the matching entries, oldest first. Entries that do
// not decode are passed with only Seq set and Action "corrupt".
func (l *Log) List(f Filter, fn func(Entry) error) error {
	var sel []Entry
	ctx := context.Background()
	err := l.st.View(ctx, func(tx store.Tx) error {
		if f.Limit > 0 {
			err := tx.Audit().Scan(ctx, true, func(r store.AuditRecord) bool {
				if e := decode(r); f.match(&e) {
					sel = append(sel, e)
				}
				return len(sel) < f.Limit
			})
			for i, j := 0, len(sel)-1; i < j; i, j = i+1, j-1 {
				sel[i], sel[j] = sel[j], sel[i]
			}
			return err
		}
		return tx.Audit().Scan(ctx, false, func(r store.AuditRecord) bool {
			if e := decode(r); f.match(&e) {
				sel = append(sel, e)
			}
			return true
		})
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

func decode(r store.AuditRecord) Entry {
	var e Entry
	if err := json.Unmarshal(r.Data, &e); err != nil {
		return Entry{Seq: r.Seq, Action: "corrupt"}
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
	ctx := context.Background()
	err := l.st.View(ctx, func(tx store.Tx) error {
		prev, want := Genesis, int64(1)
		err := tx.Audit().Scan(ctx, false, func(rec store.AuditRecord) bool {
			seq := rec.Seq
			fail := func(format string, args ...any) bool {
				r.BrokenAt, r.Problem = seq, fmt.Sprintf(format, args...)
				return false
			}
			var e Entry
			dec := json.NewDecoder(bytes.NewReader(rec.Data))
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
			return true
		})
		if err != nil || r.Problem != "" {
			return err
		}
		h, err := tx.Audit().Head(ctx)
		if errors.Is(err, store.ErrCorrupt) {
			r.BrokenAt, r.Problem = r.Entries, "the chain head does not decode"
			return nil
		} else if err != nil {
			return err
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
