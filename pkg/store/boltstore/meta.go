package boltstore

import (
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// meta: each store.Namespace is the bucket of the same name.
type meta struct{ t *txn }

func (m meta) ns(ns store.Namespace) (*bolt.Bucket, error) {
	if !slices.Contains(store.Namespaces(), ns) {
		return nil, fmt.Errorf("meta namespace %q is not one of the store's", ns)
	}
	return m.t.bucket([]byte(ns)), nil
}

func (m meta) Get(_ context.Context, ns store.Namespace, key string) ([]byte, error) {
	b, err := m.ns(ns)
	if err != nil {
		return nil, err
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil, fmt.Errorf("%s %q: %w", ns, key, store.ErrNotFound)
	}
	return slices.Clone(v), nil
}

func (m meta) Put(_ context.Context, ns store.Namespace, key string, value []byte) error {
	if err := m.t.writable(store.DomainMeta); err != nil {
		return err
	}
	b, err := m.ns(ns)
	if err != nil {
		return err
	}
	if value == nil {
		value = []byte{} // bbolt stores nil as empty; say so
	}
	return b.Put([]byte(key), value)
}

func (m meta) Delete(_ context.Context, ns store.Namespace, key string) error {
	if err := m.t.writable(store.DomainMeta); err != nil {
		return err
	}
	b, err := m.ns(ns)
	if err != nil {
		return err
	}
	return b.Delete([]byte(key))
}

func (m meta) List(_ context.Context, ns store.Namespace, fn func(string, []byte) error) error {
	b, err := m.ns(ns)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}
