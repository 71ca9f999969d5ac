package boltstore

import (
	"context"
	"encoding/json"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// quota: "quota_usage" holds "tenant/subscription" → JSON counters.
type quota struct{ t *txn }

func (q quota) List(context.Context) (map[string]store.QuotaUsage, error) {
	out := map[string]store.QuotaUsage{}
	err := q.t.bucket(bucketQuota).ForEach(func(k, v []byte) error {
		var u store.QuotaUsage
		if err := json.Unmarshal(v, &u); err != nil {
			return corrupt("quota usage "+string(k), err)
		}
		out[string(k)] = u
		return nil
	})
	return out, err
}

func (q quota) Put(_ context.Context, key string, u store.QuotaUsage) error {
	if err := q.t.writable(store.DomainQuota); err != nil {
		return err
	}
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return q.t.bucket(bucketQuota).Put([]byte(key), v)
}

func (q quota) Add(_ context.Context, key string, delta store.QuotaUsage) (store.QuotaUsage, error) {
	if err := q.t.writable(store.DomainQuota); err != nil {
		return store.QuotaUsage{}, err
	}
	b := q.t.bucket(bucketQuota)
	var u store.QuotaUsage
	if v := b.Get([]byte(key)); v != nil {
		if err := json.Unmarshal(v, &u); err != nil {
			return u, corrupt("quota usage "+key, err)
		}
	}
	u = u.Plus(delta)
	v, err := json.Marshal(u)
	if err != nil {
		return u, err
	}
	return u, b.Put([]byte(key), v)
}

func (q quota) Delete(_ context.Context, key string) error {
	if err := q.t.writable(store.DomainQuota); err != nil {
		return err
	}
	return q.t.bucket(bucketQuota).Delete([]byte(key))
}
