package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// Policy bounds what is kept per tenant.
type Policy struct {
	MaxCount     int
	MaxAge       time.Duration
	MaxBodyBytes int
}

// DefaultPolicy applies where the Gateway spec sets nothing.
var DefaultPolicy = Policy{MaxCount: 100, MaxAge: 7 * 24 * time.Hour, MaxBodyBytes: 8 << 10}

// ErrNotFound is returned for unknown snapshots.
var ErrNotFound = errors.New("not found")

// Store keeps snapshots in the daemon's store.
type Store struct{ st store.Store }

// OpenStore returns the snapshots kept in st.
func OpenStore(st store.Store) (*Store, error) { return &Store{st: st}, nil }

// ParseID accepts "snp_12" or "12".
func ParseID(id string) (int64, bool) { return store.SnapshotIDs.Parse(id) }

// before is the age bound of pol at now (zero: none).
func (pol Policy) before(now time.Time) time.Time {
	if pol.MaxAge <= 0 {
		return time.Time{}
	}
	return now.Add(-pol.MaxAge)
}

// put stores snapshots (assigning ids) in one transaction and applies the
// per-tenant bounds to the tenants written to.
func (s *Store) put(snaps []*Snapshot, pol Policy, now time.Time) error {
	ctx := context.Background()
	return s.st.Update(ctx, func(tx store.Tx) error {
		ss := tx.Snapshots()
		touched := map[string]bool{}
		for _, sn := range snaps {
			id, err := ss.NextID(ctx)
			if err != nil {
				return err
			}
			sn.ID = store.SnapshotIDs.Format(id)
			v, err := json.Marshal(sn)
			if err != nil {
				return err
			}
			if err := ss.Put(ctx, store.SnapshotRecord{ID: id, Tenant: sn.Tenant, Tool: sn.Tool, Time: sn.Time, Data: v}); err != nil {
				return err
			}
			touched[sn.Tenant] = true
		}
		for t := range touched {
			if _, err := ss.Trim(ctx, t, pol.MaxCount, pol.before(now)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Prune applies the bounds to every tenant (age limits need a clock, not
// an insert) and returns how many snapshots it dropped.
func (s *Store) Prune(pol Policy, now time.Time) (int, error) {
	total := 0
	ctx := context.Background()
	err := s.st.Update(ctx, func(tx store.Tx) error {
		total = 0
		ss := tx.Snapshots()
		tenants, err := ss.Tenants(ctx)
		if err != nil {
			return err
		}
		for _, t := range tenants {
			n, err := ss.Trim(ctx, t, pol.MaxCount, pol.before(now))
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total, err
}

// Get returns one snapshot.
func (s *Store) Get(id string) (*Snapshot, error) {
	n, ok := ParseID(id)
	if !ok {
		return nil, fmt.Errorf("snapshot %q: %w", id, ErrNotFound)
	}
	var sn *Snapshot
	ctx := context.Background()
	err := s.st.View(ctx, func(tx store.Tx) error {
		rec, err := tx.Snapshots().Get(ctx, n)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
		} else if err != nil {
			return err
		}
		sn = new(Snapshot)
		return json.Unmarshal(rec.Data, sn)
	})
	return sn, err
}

// Filter selects snapshots for List.
type Filter struct {
	Tenant string
	Tool   string
	Since  time.Time
	Limit  int // newest N; default 100
}

// List returns matching snapshots, newest first.
func (s *Store) List(f Filter) ([]Summary, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var out []Summary
	ctx := context.Background()
	err := s.st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.Snapshots().List(ctx, store.SnapshotFilter{Tenant: f.Tenant, Tool: f.Tool, Since: f.Since, Limit: f.Limit})
		if err != nil {
			return err
		}
		for _, r := range recs {
			var sn Snapshot
			if json.Unmarshal(r.Data, &sn) != nil {
				continue
			}
			out = append(out, sn.Summary())
		}
		return nil
	})
	return out, err
}

// addRepeats counts n more occurrences (the last at last) into stored
// snapshot id of tenant. It reports false when the snapshot is gone
// (trimmed), so the next repeat starts a new one.
func (s *Store) addRepeats(tenant string, id int64, n int64, last time.Time) (bool, error) {
	found := false
	ctx := context.Background()
	err := s.st.Update(ctx, func(tx store.Tx) error {
		found = false
		ss := tx.Snapshots()
		rec, err := ss.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && rec.Tenant != tenant) {
			return nil
		} else if err != nil {
			return err
		}
		var sn Snapshot
		if err := json.Unmarshal(rec.Data, &sn); err != nil {
			return err
		}
		sn.Count = max(sn.Count, 1) + n
		if last.After(sn.LastSeen) {
			sn.LastSeen = last.UTC()
		}
		if rec.Data, err = json.Marshal(&sn); err != nil {
			return err
		}
		found = true
		return ss.Put(ctx, rec)
	})
	return found, err
}
