package snapshot

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// Store buckets: one nested bucket per tenant under BucketSnapshots,
// keyed by the big-endian snapshot number, and an index number → tenant.
var (
	BucketSnapshots = []byte("snapshots")
	bucketIndex     = []byte("snapshot_index")
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
type Store struct{ st *store.Store }

// OpenStore creates the buckets.
func OpenStore(st *store.Store) (*Store, error) {
	err := st.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{BucketSnapshots, bucketIndex} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	return &Store{st: st}, nil
}

func u64(n int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}

// ParseID accepts "snp_12" or "12".
func ParseID(id string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimPrefix(id, "snp_"), 10, 64)
	return n, err == nil && n > 0
}

func tenantBucket(t string) []byte {
	if t == "" {
		return []byte("-")
	}
	return []byte(t)
}

// put stores snapshots (assigning ids) in one transaction and applies the
// per-tenant bounds to the tenants written to.
func (s *Store) put(snaps []*Snapshot, pol Policy, now time.Time) error {
	return s.st.Update(func(tx *bolt.Tx) error {
		root, idx := tx.Bucket(BucketSnapshots), tx.Bucket(bucketIndex)
		touched := map[string]bool{}
		for _, sn := range snaps {
			seq, err := root.NextSequence()
			if err != nil {
				return err
			}
			sn.ID = "snp_" + strconv.FormatUint(seq, 10)
			v, err := json.Marshal(sn)
			if err != nil {
				return err
			}
			tb, err := root.CreateBucketIfNotExists(tenantBucket(sn.Tenant))
			if err != nil {
				return err
			}
			if err := tb.Put(u64(int64(seq)), v); err != nil {
				return err
			}
			if err := idx.Put(u64(int64(seq)), tenantBucket(sn.Tenant)); err != nil {
				return err
			}
			touched[string(tenantBucket(sn.Tenant))] = true
		}
		for t := range touched {
			if _, err := trim(root.Bucket([]byte(t)), idx, pol, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// trim drops the oldest snapshots of one tenant beyond MaxCount and those
// older than MaxAge.
func trim(tb, idx *bolt.Bucket, pol Policy, now time.Time) (int, error) {
	if tb == nil {
		return 0, nil
	}
	excess := 0
	if pol.MaxCount > 0 {
		// Stats does not see this transaction's writes: count.
		n := 0
		c := tb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		excess = n - pol.MaxCount
	}
	dropped := 0
	c := tb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		if excess <= 0 {
			if pol.MaxAge <= 0 {
				break
			}
			var hdr struct {
				Time time.Time `json:"time"`
			}
			if err := json.Unmarshal(v, &hdr); err == nil && now.Sub(hdr.Time) < pol.MaxAge {
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

// Prune applies the bounds to every tenant (age limits need a clock, not
// an insert) and returns how many snapshots it dropped.
func (s *Store) Prune(pol Policy, now time.Time) (int, error) {
	total := 0
	err := s.st.Update(func(tx *bolt.Tx) error {
		root, idx := tx.Bucket(BucketSnapshots), tx.Bucket(bucketIndex)
		var tenants [][]byte
		_ = root.ForEachBucket(func(k []byte) error { tenants = append(tenants, append([]byte(nil), k...)); return nil })
		for _, t := range tenants {
			n, err := trim(root.Bucket(t), idx, pol, now)
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
	err := s.st.View(func(tx *bolt.Tx) error {
		t := tx.Bucket(bucketIndex).Get(u64(n))
		if t == nil {
			return fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
		}
		tb := tx.Bucket(BucketSnapshots).Bucket(t)
		var v []byte
		if tb != nil {
			v = tb.Get(u64(n))
		}
		if v == nil {
			return fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
		}
		sn = new(Snapshot)
		return json.Unmarshal(v, sn)
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
	err := s.st.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketIndex).Cursor()
		root := tx.Bucket(BucketSnapshots)
		for k, t := c.Last(); k != nil && len(out) < f.Limit; k, t = c.Prev() {
			if f.Tenant != "" && string(t) != string(tenantBucket(f.Tenant)) {
				continue
			}
			tb := root.Bucket(t)
			if tb == nil {
				continue
			}
			var sn Snapshot
			if v := tb.Get(k); v == nil || json.Unmarshal(v, &sn) != nil {
				continue
			}
			if (!f.Since.IsZero() && sn.Time.Before(f.Since)) || (f.Tool != "" && sn.Tool != f.Tool) {
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
	err := s.st.Update(func(tx *bolt.Tx) error {
		tb := tx.Bucket(BucketSnapshots).Bucket(tenantBucket(tenant))
		if tb == nil {
			return nil
		}
		v := tb.Get(u64(id))
		if v == nil {
			return nil
		}
		var sn Snapshot
		if err := json.Unmarshal(v, &sn); err != nil {
			return err
		}
		sn.Count = max(sn.Count, 1) + n
		if last.After(sn.LastSeen) {
			sn.LastSeen = last.UTC()
		}
		nv, err := json.Marshal(&sn)
		if err != nil {
			return err
		}
		found = true
		return tb.Put(u64(id), nv)
	})
	return found, err
}
