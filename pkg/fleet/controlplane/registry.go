package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// Record is the last heartbeat of one data plane.
type Record struct {
	Name string `json:"name"`
	// Address is what the data plane advertises; RemoteAddr where its
	// last heartbeat came from.
	Address    string    `json:"address,omitempty"`
	RemoteAddr string    `json:"remoteAddr,omitempty"`
	Revision   int64     `json:"revision"`
	Digest     string    `json:"digest,omitempty"`
	Health     string    `json:"health"`
	LastError  string    `json:"lastError,omitempty"`
	Version    string    `json:"version,omitempty"`
	LastSeen   time.Time `json:"lastSeen"`
	// Interval is the heartbeat interval the data plane was given; three
	// missed make it stale.
	Interval time.Duration `json:"interval"`
	// CertNotAfter is the expiry of the certificate it used.
	CertNotAfter time.Time `json:"certNotAfter,omitzero"`
}

// Registry keeps the data planes' heartbeats for `stoa get dataplanes`.
type Registry interface {
	// Put records a heartbeat (inserting or replacing the name's record).
	Put(ctx context.Context, r Record) error
	// Get returns one record; ok is false if the name never sent one.
	Get(ctx context.Context, name string) (r Record, ok bool, err error)
	// List returns every record, by name.
	List(ctx context.Context) ([]Record, error)
	// Delete forgets a name (no error if absent).
	Delete(ctx context.Context, name string) error
}

// MemoryRegistry is a Registry in memory: for a single control plane, or
// when heartbeats should not be written to the database. Each replica
// then knows only the data planes that reached it.
type MemoryRegistry struct {
	mu sync.Mutex
	m  map[string]Record
}

// NewMemoryRegistry returns an empty in-memory registry.
func NewMemoryRegistry() *MemoryRegistry { return &MemoryRegistry{m: map[string]Record{}} }

// Put records a heartbeat.
func (r *MemoryRegistry) Put(_ context.Context, rec Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[rec.Name] = rec
	return nil
}

// Get returns one record.
func (r *MemoryRegistry) Get(_ context.Context, name string) (Record, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.m[name]
	return rec, ok, nil
}

// List returns every record by name.
func (r *MemoryRegistry) List(context.Context) ([]Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Record, 0, len(r.m))
	for _, rec := range r.m {
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete forgets a name.
func (r *MemoryRegistry) Delete(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, name)
	return nil
}

const recordKeyPrefix = "dp/"

// StoreRegistry keeps heartbeats in the store's Meta domain (namespace
// fleet, "dp/<name>"), so that every control plane replica sharing a
// PostgreSQL database lists every data plane. Each heartbeat is one small
// write (every data plane, every interval: 100 data planes at 10s are 10
// transactions a second).
type StoreRegistry struct{ st store.Store }

// NewStoreRegistry returns the registry kept in st.
func NewStoreRegistry(st store.Store) *StoreRegistry { return &StoreRegistry{st: st} }

// Put records a heartbeat.
func (r *StoreRegistry) Put(ctx context.Context, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return r.st.Update(ctx, func(tx store.Tx) error {
		return tx.Meta().Put(ctx, store.MetaFleet, recordKeyPrefix+rec.Name, b)
	})
}

// Get returns one record.
func (r *StoreRegistry) Get(ctx context.Context, name string) (Record, bool, error) {
	var (
		rec Record
		ok  bool
	)
	err := r.st.View(ctx, func(tx store.Tx) error {
		v, err := tx.Meta().Get(ctx, store.MetaFleet, recordKeyPrefix+name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("%w: data plane record %s: %v", store.ErrCorrupt, name, err)
		}
		ok = true
		return nil
	})
	return rec, ok, err
}

// List returns every record by name.
func (r *StoreRegistry) List(ctx context.Context) ([]Record, error) {
	out := []Record{}
	err := r.st.View(ctx, func(tx store.Tx) error {
		return tx.Meta().List(ctx, store.MetaFleet, func(k string, v []byte) error {
			if !strings.HasPrefix(k, recordKeyPrefix) {
				return nil
			}
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("%w: data plane record %s: %v", store.ErrCorrupt, k[len(recordKeyPrefix):], err)
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

// Delete forgets a name.
func (r *StoreRegistry) Delete(ctx context.Context, name string) error {
	return r.st.Update(ctx, func(tx store.Tx) error {
		return tx.Meta().Delete(ctx, store.MetaFleet, recordKeyPrefix+name)
	})
}
