package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// auditLog: "audit" holds the entries by sequence, verbatim; "audit_meta"
// the head ("head", JSON) and the cursors ("cursor/<name>", EncodeSeq).
type auditLog struct{ t *txn }

var keyHead = []byte("head")

func (a auditLog) Head(context.Context) (store.AuditHead, error) {
	var h store.AuditHead
	if v := a.t.bucket(bucketAuditMeta).Get(keyHead); v != nil {
		if err := json.Unmarshal(v, &h); err != nil {
			return store.AuditHead{}, corrupt("audit head", err)
		}
	}
	return h, nil
}

func (a auditLog) Append(_ context.Context, recs []store.AuditRecord, head store.AuditHead) error {
	if err := a.t.writable(store.DomainAudit); err != nil {
		return err
	}
	b := a.t.bucket(bucketAudit)
	for _, r := range recs {
		if r.Seq <= 0 {
			return fmt.Errorf("append audit entry: bad sequence %d", r.Seq)
		}
		k := seqKey(r.Seq)
		if b.Get(k) != nil {
			return fmt.Errorf("append audit entry %d: %w: it is already stored", r.Seq, store.ErrConflict)
		}
		if err := b.Put(k, r.Data); err != nil {
			return err
		}
	}
	v, err := json.Marshal(head)
	if err != nil {
		return err
	}
	return a.t.bucket(bucketAuditMeta).Put(keyHead, v)
}

func (a auditLog) Scan(_ context.Context, reverse bool, fn func(store.AuditRecord) bool) error {
	c := a.t.bucket(bucketAudit).Cursor()
	first, next := c.First, c.Next
	if reverse {
		first, next = c.Last, c.Prev
	}
	for k, v := first(); k != nil; k, v = next() {
		if !fn(store.AuditRecord{Seq: seqOf(k), Data: v}) {
			return nil
		}
	}
	return nil
}

func cursorKey(name string) []byte { return []byte("cursor/" + name) }

func (a auditLog) Cursor(_ context.Context, name string) (int64, bool, error) {
	n, ok := store.DecodeSeq(a.t.bucket(bucketAuditMeta).Get(cursorKey(name)))
	return n, ok, nil
}

func (a auditLog) SetCursor(_ context.Context, name string, n int64) error {
	if err := a.t.writable(store.DomainAudit); err != nil {
		return err
	}
	return a.t.bucket(bucketAuditMeta).Put(cursorKey(name), seqKey(n))
}
