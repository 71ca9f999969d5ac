// Package plan computes what an apply would change: a pure function of the
// live objects and the desired ones, giving ordered create, update and delete
// changes. `stoa diff` and `stoa apply` share it (diff is apply in dry-run),
// and it renders the result as per-object unified diffs or JSON.
package plan

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"reflect"
	"sort"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Op is the kind of a change.
type Op string

// The change operations.
const (
	Create Op = "create"
	Update Op = "update"
	Delete Op = "delete"
)

// Change is one object's change. Before is nil for creates, After for
// deletes.
type Change struct {
	Op     Op           `json:"op"`
	Ref    spec.Ref     `json:"ref"`
	Before *spec.Object `json:"before,omitempty"`
	After  *spec.Object `json:"after,omitempty"`

	// afterJSON is After's canonical encoding, kept once computed: the
	// plan compares it with the live digest, stoad digests it and the
	// store writes it, and encoding 10,000 objects once instead of three
	// times is most of a large commit's CPU.
	afterJSON []byte
	// beforeDigest is Before's live digest, when the plan had it.
	beforeDigest Digest
	beforeKnown  bool
}

// EncodesBefore reports whether enc is exactly Before's canonical
// encoding, by Before's live digest: then a store can write the bytes it
// holds for the object instead of encoding Before again. It is false when
// the plan had no live digest, and for an object stored by a stoad with
// other defaults (decoded and defaulted, it encodes differently).
func (c *Change) EncodesBefore(enc []byte) bool {
	return c.beforeKnown && enc != nil && sha256.Sum256(enc) == c.beforeDigest
}

// AfterJSON returns the canonical encoding of After (see Canonical),
// computing it the first time only. After must not change afterwards, nor
// the bytes returned: they are shared.
func (c *Change) AfterJSON() ([]byte, error) {
	if c.afterJSON != nil || c.After == nil {
		return c.afterJSON, nil
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	return c.encodeAfter(buf)
}

// encodeAfter is AfterJSON encoding in buf, then keeping an exact copy.
func (c *Change) encodeAfter(buf *bytes.Buffer) ([]byte, error) {
	buf.Reset()
	if err := Canonical(buf, c.After); err != nil {
		return nil, err
	}
	c.afterJSON = bytes.Clone(buf.Bytes())
	return c.afterJSON, nil
}

// EncodeChanges computes the canonical encoding of every change's After
// (see AfterJSON), on all processors: the objects are independent.
func EncodeChanges(changes []Change) error {
	return ForEach(len(changes), func(i int, buf *bytes.Buffer) error {
		c := &changes[i]
		if c.afterJSON != nil || c.After == nil {
			return nil
		}
		if _, err := c.encodeAfter(buf); err != nil {
			return fmt.Errorf("encode %s: %w", c.Ref, err)
		}
		return nil
	})
}

// Summary counts changes by operation.
type Summary struct {
	Create    int `json:"create"`
	Update    int `json:"update"`
	Delete    int `json:"delete"`
	Unchanged int `json:"unchanged"`
}

// Empty reports whether nothing changes.
func (s Summary) Empty() bool { return s.Create == 0 && s.Update == 0 && s.Delete == 0 }

// String renders the summary as "2 to create, 1 to update, 0 to delete".
func (s Summary) String() string {
	return fmt.Sprintf("%d to create, %d to update, %d to delete", s.Create, s.Update, s.Delete)
}

// Options tune Compute.
type Options struct {
	// Prune deletes live objects that are not desired, if PruneScope
	// accepts them.
	Prune bool
	// PruneScope decides whether a live object may be pruned. Nil accepts
	// none, so pruning is always scoped explicitly.
	PruneScope func(*spec.Object) bool
	// Deletes lists objects to delete outright (stoa delete); they must not
	// also be desired.
	Deletes []spec.Ref
	// LiveDigests, when set, holds the digest of every live object, so an
	// unchanged object costs one encoding instead of a comparison.
	LiveDigests Digests
}

// Compute returns the ordered changes that turn live into desired, and a
// summary. Desired objects equal to their live counterpart are unchanged.
// Creates and updates come in dependency order (Gateway, Tenant, Tool,
// ToolSet, Plan, Consumer, Subscription, Webhook); deletes follow in reverse
// order, so nothing ever refers to a missing object mid-apply.
func Compute(live, desired []*spec.Object, opts Options) ([]Change, Summary) {
	liveBy := make(map[spec.Ref]*spec.Object, len(live))
	for _, o := range live {
		liveBy[o.Ref()] = o
	}
	var (
		changes []Change
		sum     Summary
		seen    = make(map[spec.Ref]bool, len(desired))
	)
	for _, d := range desired {
		ref := d.Ref()
		seen[ref] = true
		l, ok := liveBy[ref]
		switch {
		case !ok:
			changes = append(changes, Change{Op: Create, Ref: ref, After: d})
			sum.Create++
		case l == d:
			// The live object itself, as a data plane's next bundle
			// hands over every object its delta left alone: live
			// objects are never modified, so it is unchanged without
			// encoding it.
			sum.Unchanged++
		default:
			if same, enc := compare(l, d, opts.LiveDigests); !same {
				changes = append(changes, Change{Op: Update, Ref: ref, Before: l, After: d, afterJSON: enc})
				sum.Update++
			} else {
				sum.Unchanged++
			}
		}
	}
	for _, ref := range opts.Deletes {
		if l, ok := liveBy[ref]; ok && !seen[ref] {
			seen[ref] = true
			changes = append(changes, Change{Op: Delete, Ref: ref, Before: l})
			sum.Delete++
		}
	}
	if opts.Prune && opts.PruneScope != nil {
		for _, l := range live {
			ref := l.Ref()
			if seen[ref] || !opts.PruneScope(l) {
				continue
			}
			changes = append(changes, Change{Op: Delete, Ref: ref, Before: l})
			sum.Delete++
		}
	}
	for i := range changes {
		if c := &changes[i]; c.Before != nil {
			c.beforeDigest, c.beforeKnown = opts.LiveDigests[c.Ref]
		}
	}
	Sort(changes)
	return changes, sum
}

// compare compares a live object with a desired one, by digest when the
// live digest is known; then a changed object's canonical encoding comes
// with the answer, for what the commit does with it next.
func compare(live, desired *spec.Object, digests Digests) (same bool, enc []byte) {
	dg, ok := digests[live.Ref()]
	if !ok {
		return Equal(live, desired), nil
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if err := Canonical(buf, desired); err != nil {
		return false, nil // unencodable: the commit reports it
	}
	if sha256.Sum256(buf.Bytes()) == dg {
		return true, nil
	}
	return false, bytes.Clone(buf.Bytes())
}

// Sort orders changes: creates and updates in dependency order, then
// deletes in reverse dependency order.
func Sort(changes []Change) {
	sort.SliceStable(changes, func(i, j int) bool {
		a, b := changes[i], changes[j]
		ad, bd := a.Op == Delete, b.Op == Delete
		if ad != bd {
			return !ad
		}
		if ad {
			return b.Ref.Less(a.Ref)
		}
		return a.Ref.Less(b.Ref)
	})
}

// Apply returns live with changes applied (a new slice; objects shared).
// live is in SortObjects order, as every revision's objects are; the
// result is too. It costs one pass over live and a sort of the changes,
// not a sort of the whole set: a one-object change to 10,000 objects
// stays cheap.
func Apply(live []*spec.Object, changes []Change) []*spec.Object {
	if !sortedObjects(live) {
		return applyUnsorted(live, changes)
	}
	ch := make([]*Change, len(changes))
	for i := range changes {
		ch[i] = &changes[i]
	}
	sort.SliceStable(ch, func(i, j int) bool { return ch[i].Ref.Less(ch[j].Ref) })
	out := make([]*spec.Object, 0, len(live)+len(changes))
	i := 0
	for k, c := range ch {
		if k+1 < len(ch) && ch[k+1].Ref == c.Ref {
			continue // the last change to a ref wins, as in a map
		}
		for i < len(live) && live[i].Ref().Less(c.Ref) {
			out = append(out, live[i])
			i++
		}
		if i < len(live) && live[i].Ref() == c.Ref {
			i++ // replaced or deleted
		}
		if c.Op != Delete {
			out = append(out, c.After)
		}
	}
	return append(out, live[i:]...)
}

// sortedObjects reports whether objs are in SortObjects order without
// duplicates.
func sortedObjects(objs []*spec.Object) bool {
	for i := 1; i < len(objs); i++ {
		if !objs[i-1].Ref().Less(objs[i].Ref()) {
			return false
		}
	}
	return true
}

// applyUnsorted is Apply for a live set in no particular order.
func applyUnsorted(live []*spec.Object, changes []Change) []*spec.Object {
	by := make(map[spec.Ref]*spec.Object, len(live)+len(changes))
	for _, o := range live {
		by[o.Ref()] = o
	}
	for _, c := range changes {
		if c.Op == Delete {
			delete(by, c.Ref)
		} else {
			by[c.Ref] = c.After
		}
	}
	out := make([]*spec.Object, 0, len(by))
	for _, o := range by {
		out = append(out, o)
	}
	SortObjects(out)
	return out
}

// SortObjects orders objects by kind dependency order, namespace and name.
func SortObjects(objs []*spec.Object) {
	sort.Slice(objs, func(i, j int) bool { return objs[i].Ref().Less(objs[j].Ref()) })
}

// Summarize counts the changes.
func Summarize(changes []Change) Summary {
	var s Summary
	for _, c := range changes {
		switch c.Op {
		case Create:
			s.Create++
		case Update:
			s.Update++
		case Delete:
			s.Delete++
		}
	}
	return s
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Equal reports whether two objects have the same content (metadata and
// spec; source positions ignored). Structurally identical objects are
// equal at once (the common case of a no-op apply, without encoding);
// otherwise their canonical JSON decides, so nil and empty slices or maps
// that encode alike still compare equal.
func Equal(a, b *spec.Object) bool {
	if a.APIVersion == b.APIVersion && a.Kind == b.Kind &&
		reflect.DeepEqual(a.Metadata, b.Metadata) && reflect.DeepEqual(a.Spec, b.Spec) {
		return true
	}
	ba, bb := bufPool.Get().(*bytes.Buffer), bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(ba)
	defer bufPool.Put(bb)
	ba.Reset()
	bb.Reset()
	if err := Canonical(ba, a); err != nil {
		return false
	}
	if err := Canonical(bb, b); err != nil {
		return false
	}
	return bytes.Equal(ba.Bytes(), bb.Bytes())
}

// Canonical writes the canonical JSON encoding of o (struct field order,
// sorted map keys, no HTML escaping, a final newline: what a json.Encoder
// without HTML escaping writes) to buf; nothing when it fails.
// spec.AppendCanonical writes it, byte for byte the same, faster.
func Canonical(buf *bytes.Buffer, o *spec.Object) error {
	b, err := spec.AppendCanonical(buf.AvailableBuffer(), o)
	if err != nil {
		return err
	}
	buf.Write(b)
	return nil
}
