package boltstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// snapshots: "snapshots" holds one nested bucket per tenant ("-" for no
// tenant), each keyed by snapshot id; "snapshot_index" maps id → that
// bucket's name. The bucket's sequence numbers the snapshots.
type snapshots struct{ t *txn }

func tenantBucket(t string) []byte {
	if t == "" {
		return []byte("-")
	}
	return []byte(t)
}

func tenantOf(bucket []byte) string {
	if string(bucket) == "-" {
		return ""
	}
	return string(bucket)
}

// snapshotHeader is what the layout indexes, read from the document.
type snapshotHeader struct {
	Time time.Time `json:"time"`
	Tool string    `json:"tool"`
}

func snapshotRecord(id int64, bucket, v []byte) (store.SnapshotRecord, error) {
	rec := store.SnapshotRecord{ID: id, Tenant: tenantOf(bucket), Data: v}
	var h snapshotHeader
	if err := json.Unmarshal(v, &h); err != nil {
		return rec, corrupt(fmt.Sprintf("snapshot %d", id), err)
	}
	rec.Tool, rec.Time = h.Tool, h.Time
	return rec, nil
}

func (s snapshots) NextID(context.Context) (int64, error) {
	if err := s.t.writable(store.DomainSnapshots); err != nil {
		return 0, err
	}
	seq, err := s.t.bucket(bucketSnapshots).NextSequence()
	return int64(seq), err
}

func (s snapshots) Put(_ context.Context, rec store.SnapshotRecord) error {
	if err := s.t.writable(store.DomainSnapshots); err != nil {
		return err
	}
	if rec.ID <= 0 {
		return fmt.Errorf("store snapshot: bad id %d", rec.ID)
	}
	root, idx := s.t.bucket(bucketSnapshots), s.t.bucket(bucketSnapIndex)
	k, tb := seqKey(rec.ID), tenantBucket(rec.Tenant)
	if old := idx.Get(k); old != nil && string(old) != string(tb) {
		// Moved to another tenant: drop the old copy.
		if ob := root.Bucket(old); ob != nil {
			if err := ob.Delete(k); err != nil {
				return err
			}
		}
	}
	b, err := root.CreateBucketIfNotExists(tb)
	if err != nil {
		return err
	}
	if err := b.Put(k, rec.Data); err != nil {
		return err
	}
	return idx.Put(k, tb)
}

func (s snapshots) Get(_ context.Context, id int64) (store.SnapshotRecord, error) {
	k := seqKey(id)
	tb := s.t.bucket(bucketSnapIndex).Get(k)
	var v []byte
	if tb != nil {
		if b := s.t.bucket(bucketSnapshots).Bucket(tb); b != nil {
			v = b.Get(k)
		}
	}
	if v == nil {
		return store.SnapshotRecord{}, fmt.Errorf("snapshot %d: %w", id, store.ErrNotFound)
	}
	return snapshotRecord(id, tb, v)
}

func (s snapshots) List(_ context.Context, f store.SnapshotFilter) ([]store.SnapshotRecord, error) {
	var out []store.SnapshotRecord
	root := s.t.bucket(bucketSnapshots)
	c := s.t.bucket(bucketSnapIndex).Cursor()
	for k, tb := c.Last(); k != nil && (f.Limit <= 0 || len(out) < f.Limit); k, tb = c.Prev() {
		if f.Tenant != "" && string(tb) != string(tenantBucket(f.Tenant)) {
			continue
		}
		b := root.Bucket(tb)
		if b == nil {
			continue
		}
		v := b.Get(k)
		if v == nil {
			continue
		}
		rec, err := snapshotRecord(seqOf(k), tb, v)
		if err != nil {
			continue // a damaged snapshot is not worth failing the listing
		}
		if (!f.Since.IsZero() && rec.Time.Before(f.Since)) || (f.Tool != "" && rec.Tool != f.Tool) {
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}

func (s snapshots) Trim(_ context.Context, tenant string, keep int, before time.Time) (int, error) {
	if err := s.t.writable(store.DomainSnapshots); err != nil {
		return 0, err
	}
	tb := s.t.bucket(bucketSnapshots).Bucket(tenantBucket(tenant))
	if tb == nil {
		return 0, nil
	}
	return trimTenant(tb, s.t.bucket(bucketSnapIndex), keep, before)
}

func trimTenant(tb, idx *bolt.Bucket, keep int, before time.Time) (int, error) {
	excess := 0
	if keep > 0 {
		// Stats does not see this transaction's writes: count.
		n := 0
		c := tb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		excess = n - keep
	}
	dropped := 0
	c := tb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		if excess <= 0 {
			if before.IsZero() {
				break
			}
			var h snapshotHeader
			if err := json.Unmarshal(v, &h); err == nil && h.Time.After(before) {
				break
			}
		}
		key := append([]byte(nil), k...)
		if err := tb.Delete(key); err != nil {
			return dropped, err
		}
		if err := idx.Delete(key); err != nil {
			return dropped, err
		}
		excess--
		dropped++
	}
	return dropped, nil
}

func (s snapshots) Tenants(context.Context) ([]string, error) {
	var out []string
	err := s.t.bucket(bucketSnapshots).ForEachBucket(func(k []byte) error {
		out = append(out, tenantOf(k))
		return nil
	})
	return out, err
}
