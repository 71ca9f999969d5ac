package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// keys: id → the JSON KeyRecord.
type keys struct{ t *txn }

func (k keys) Get(_ context.Context, id string) (auth.KeyRecord, error) {
	var r auth.KeyRecord
	v := k.t.bucket(bucketKeys).Get([]byte(id))
	if v == nil {
		return r, fmt.Errorf("key %s: %w", id, store.ErrNotFound)
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, corrupt("key "+id, err)
	}
	return r, nil
}

func (k keys) Put(_ context.Context, recs ...auth.KeyRecord) error {
	if err := k.t.writable(store.DomainKeys); err != nil {
		return err
	}
	b := k.t.bucket(bucketKeys)
	for _, r := range recs {
		if r.ID == "" {
			return fmt.Errorf("store key: empty id")
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(r.ID), v); err != nil {
			return err
		}
	}
	return nil
}

func (k keys) List(context.Context) ([]auth.KeyRecord, error) {
	var out []auth.KeyRecord
	err := k.t.bucket(bucketKeys).ForEach(func(id, v []byte) error {
		var r auth.KeyRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return corrupt("key "+string(id), err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}
