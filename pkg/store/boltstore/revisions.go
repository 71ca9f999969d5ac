package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

type revisions struct{ t *txn }

func refKey(r spec.Ref) []byte {
	return []byte(string(r.Kind) + "\x00" + r.Namespace + "\x00" + r.Name)
}

func (r revisions) Current(context.Context) (int64, error) {
	n, _ := store.DecodeSeq(r.t.bucket(bucketMeta).Get(keyCurrent))
	return n, nil
}

func (r revisions) Objects(context.Context) ([]*spec.Object, error) {
	var objs []*spec.Object
	err := r.t.bucket(bucketObjects).ForEach(func(k, v []byte) error {
		o := new(spec.Object)
		if err := json.Unmarshal(v, o); err != nil {
			return corrupt(fmt.Sprintf("object %q", bytes.ReplaceAll(k, []byte{0}, []byte{'/'})), err)
		}
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	plan.SortObjects(objs)
	return objs, nil
}

func (r revisions) Commit(ctx context.Context, base int64, rev store.Revision, changes []plan.Change) (int64, error) {
	if err := r.t.writable(store.DomainRevisions); err != nil {
		return 0, err
	}
	if cur, _ := r.Current(ctx); cur != base {
		return 0, fmt.Errorf("commit on revision %d: %w: the live revision is %d", base, store.ErrConflict, cur)
	}
	tx := r.t.tx
	objects := tx.Bucket(bucketObjects)
	// The change list is written as plan.Change encodes, from the bytes at
	// hand: each object's canonical encoding (computed once, see
	// plan.Change.AfterJSON) and, for what it replaces or deletes, the
	// bytes stored for it when they encode the change's Before exactly
	// (plan.Change.EncodesBefore). Encoding both sides again was most of
	// the commit.
	var cb bytes.Buffer
	cb.Grow(changeListSize(changes))
	cb.WriteByte('[')
	for i := range changes {
		c := &changes[i]
		k := refKey(c.Ref)
		if i > 0 {
			cb.WriteByte(',')
		}
		if err := beginChange(&cb, c); err != nil {
			return 0, err
		}
		if c.Op != plan.Create {
			before := objects.Get(k)
			if !c.EncodesBefore(before) {
				before = nil // encoded from the change: what stoad holds live
			}
			if err := appendMember(&cb, "before", before, c.Before); err != nil {
				return 0, fmt.Errorf("encode %s: %w", c.Ref, err)
			}
		}
		if c.Op == plan.Delete {
			if err := objects.Delete(k); err != nil {
				return 0, err
			}
			cb.WriteByte('}')
			continue
		}
		after, err := c.AfterJSON()
		if err != nil {
			return 0, fmt.Errorf("encode %s: %w", c.Ref, err)
		}
		if err := appendMember(&cb, "after", after, c.After); err != nil {
			return 0, fmt.Errorf("encode %s: %w", c.Ref, err)
		}
		cb.WriteByte('}')
		// bbolt keeps the slice until the transaction ends; the encoding
		// is never modified (plan.Change.AfterJSON), so no copy.
		if err := objects.Put(k, after); err != nil {
			return 0, err
		}
	}
	cb.WriteByte(']')
	if changes == nil {
		// As json.Marshal wrote it: read back, it stays nil.
		cb.Reset()
		cb.WriteString("null")
	}
	revs := tx.Bucket(bucketRevisions)
	if rev.ID != 0 {
		// An id given by the caller: the sequence jumps to it.
		if last := int64(revs.Sequence()); rev.ID <= last {
			return 0, fmt.Errorf("commit revision %d: %w: revision %d is already recorded", rev.ID, store.ErrConflict, last)
		}
		if err := revs.SetSequence(uint64(rev.ID) - 1); err != nil {
			return 0, err
		}
	}
	seq, err := revs.NextSequence()
	if err != nil {
		return 0, err
	}
	id := int64(seq)
	rev.ID = id
	rev.Summary = plan.Summarize(changes)
	rev.Refs = make([]store.ChangeRef, len(changes))
	for i, c := range changes {
		rev.Refs[i] = store.ChangeRef{Op: c.Op, Ref: c.Ref}
	}
	b, err := json.Marshal(rev)
	if err != nil {
		return 0, err
	}
	if err := revs.Put(seqKey(id), b); err != nil {
		return 0, err
	}
	if err := tx.Bucket(bucketChanges).Put(seqKey(id), cb.Bytes()); err != nil {
		return 0, err
	}
	if err := tx.Bucket(bucketMeta).Put(keyCurrent, seqKey(id)); err != nil {
		return 0, err
	}
	r.t.change.Revision = id
	return id, nil
}

// changeListSize estimates the encoded size of changes, so the buffer
// grows once: a 10 MB list grown by doubling allocates three times that.
func changeListSize(changes []plan.Change) int {
	n := 2
	for i := range changes {
		after, _ := changes[i].AfterJSON() // errors come back in Commit
		n += 96 + len(changes[i].Ref.Name) + len(changes[i].Ref.Namespace) + len(after)
		if changes[i].Op != plan.Create {
			n += max(len(after), 1024) // the object it replaces: about as large
		}
	}
	return n
}

// beginChange writes a change's op and ref: `{"op":…,"ref":…`.
func beginChange(buf *bytes.Buffer, c *plan.Change) error {
	buf.WriteString(`{"op":`)
	op, err := json.Marshal(c.Op)
	if err != nil {
		return err
	}
	buf.Write(op)
	buf.WriteString(`,"ref":`)
	ref, err := json.Marshal(c.Ref)
	if err != nil {
		return err
	}
	buf.Write(ref)
	return nil
}

// appendMember writes `,"name":` and the object's encoding: enc, or when
// there is none (an object missing from the bucket, or stored otherwise
// than it is live), o encoded now.
func appendMember(buf *bytes.Buffer, name string, enc []byte, o *spec.Object) error {
	if enc == nil && o == nil {
		return nil
	}
	buf.WriteString(`,"` + name + `":`)
	if enc == nil {
		if err := plan.Canonical(buf, o); err != nil {
			return err
		}
	} else {
		buf.Write(enc)
	}
	// Canonical encodings end in a newline: harmless inside the list,
	// but the list is smaller without.
	if b := buf.Bytes(); b[len(b)-1] == '\n' {
		buf.Truncate(len(b) - 1)
	}
	return nil
}

// revisionHeader decodes a revision without its change list.
type revisionHeader struct {
	ID      int64        `json:"id"`
	Time    time.Time    `json:"time"`
	Actor   string       `json:"actor"`
	Action  string       `json:"action"`
	Message string       `json:"message,omitempty"`
	Summary plan.Summary `json:"summary"`
}

func (r revisions) List(_ context.Context, limit int) ([]store.Revision, error) {
	var out []store.Revision
	c := r.t.bucket(bucketRevisions).Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		var h revisionHeader
		if err := json.Unmarshal(v, &h); err != nil {
			return nil, corrupt(fmt.Sprintf("revision %d", seqOf(k)), err)
		}
		out = append(out, store.Revision{ID: h.ID, Time: h.Time, Actor: h.Actor, Action: h.Action, Message: h.Message, Summary: h.Summary})
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func (r revisions) Get(_ context.Context, id int64) (*store.Revision, error) {
	v := r.t.bucket(bucketRevisions).Get(seqKey(id))
	if v == nil {
		return nil, fmt.Errorf("revision %d: %w", id, store.ErrNotFound)
	}
	rev := new(store.Revision)
	if err := json.Unmarshal(v, rev); err != nil {
		return nil, corrupt(fmt.Sprintf("revision %d", id), err)
	}
	return rev, nil
}

func (r revisions) Changes(_ context.Context, id int64) ([]plan.Change, error) {
	if r.t.bucket(bucketRevisions).Get(seqKey(id)) == nil {
		return nil, fmt.Errorf("revision %d: %w", id, store.ErrNotFound)
	}
	var changes []plan.Change
	if cv := r.t.bucket(bucketChanges).Get(seqKey(id)); cv != nil {
		if err := json.Unmarshal(cv, &changes); err != nil {
			return nil, corrupt(fmt.Sprintf("changes of revision %d", id), err)
		}
	}
	return changes, nil
}

func (r revisions) ChangesAfter(ctx context.Context, id int64, fn func(int64, []plan.Change) error) error {
	c := r.t.bucket(bucketChanges).Cursor()
	for k, v := c.Last(); k != nil && seqOf(k) > id; k, v = c.Prev() {
		if err := ctx.Err(); err != nil {
			return err
		}
		var changes []plan.Change
		if err := json.Unmarshal(v, &changes); err != nil {
			return corrupt(fmt.Sprintf("changes of revision %d", seqOf(k)), err)
		}
		if err := fn(seqOf(k), changes); err != nil {
			return err
		}
	}
	return nil
}
