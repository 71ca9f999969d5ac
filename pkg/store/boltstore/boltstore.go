// Package boltstore implements pkg/store on one bbolt file, stoa.db, under
// the state directory. Every Update is one bbolt transaction, fsynced
// before it returns, so a kill -9 can never leave a half-applied
// revision. It is the only package of stoa that imports bbolt; its layout
// is the one stoad has always written (see docs/store.md).
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/internal/changefeed"
)

// FileName is the database file inside the state directory.
const FileName = "stoa.db"

// Buckets. The names are the on-disk layout: never rename one.
var (
	bucketObjects    = []byte("objects")
	bucketRevisions  = []byte("revisions")        // id → header with change refs (small)
	bucketChanges    = []byte("revision_changes") // id → the changes with their objects
	bucketMeta       = []byte("meta")
	bucketEvents     = []byte("events")
	bucketKeys       = []byte("keys")
	bucketAudit      = []byte("audit")
	bucketAuditMeta  = []byte("audit_meta")
	bucketSnapshots  = []byte("snapshots")      // one nested bucket per tenant
	bucketSnapIndex  = []byte("snapshot_index") // id → tenant bucket name
	bucketDeliveries = []byte("webhook_deliveries")
	bucketPending    = []byte("webhook_pending") // ids of pending deliveries
	bucketQuota      = []byte("quota_usage")

	keyCurrent = []byte("current")
	keySchema  = []byte("schema")
)

// schemaVersion is bumped when the on-disk layout changes incompatibly
// (with a migration at Open).
const schemaVersion = "1"

// Store is a bbolt-backed store.Store.
type Store struct {
	db   *bolt.DB
	path string

	// Outbox claims are kept in memory: the file is locked to one process,
	// so a claim cannot outlive its holder anyway (a restart is a lapse).
	claimMu sync.Mutex
	claims  map[int64]claim

	// writeMu orders publishing: bbolt runs commit handlers after it
	// releases its writer lock, so without it two commits could reach
	// the watchers out of order. Writers are one at a time in bbolt
	// anyway, so it costs nothing.
	writeMu sync.Mutex
	feed    *changefeed.Hub
}

type claim struct {
	owner string
	until time.Time
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database in dir. It fails fast, with
// a clear error, when another stoad holds the file.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      2 * time.Second,
		FreelistType: bolt.FreelistMapType,
		// Reserve address space up front: growing the mapping makes bbolt
		// copy every cached node (seconds and hundreds of MB for an apply
		// of 10,000 tools). It costs no memory until pages are touched.
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open state %s: locked by another process (is another stoad running with --state-dir %s?)", path, dir)
		}
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	s := &Store{db: db, path: path, claims: map[int64]claim{}, feed: changefeed.New()}
	err = db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := m.Get(keySchema); v != nil && string(v) != schemaVersion {
			return fmt.Errorf("state schema %s is not supported by this stoad (want %s)", v, schemaVersion)
		}
		all := [][]byte{bucketObjects, bucketRevisions, bucketChanges, bucketEvents, bucketKeys, bucketAudit, bucketAuditMeta,
			bucketSnapshots, bucketSnapIndex, bucketDeliveries, bucketPending, bucketQuota}
		for _, ns := range store.Namespaces() {
			all = append(all, []byte(ns))
		}
		for _, b := range all {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return m.Put(keySchema, []byte(schemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return s, nil
}

// Location is the database file.
func (s *Store) Location() string { return s.path }

// Close closes the database and ends every watch.
func (s *Store) Close() error {
	s.feed.Close()
	return s.db.Close()
}

// Watch sends the changes this process commits: the file is locked to
// one process, so there is no other writer to hear of.
func (s *Store) Watch(ctx context.Context) <-chan store.Change { return s.feed.Subscribe(ctx) }

// Update runs fn in one read-write bbolt transaction, committed and
// fsynced when fn returns nil.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := &txn{s: s}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		t.tx = tx
		return fn(t)
	})
	if err != nil {
		t.undoClaims()
		return err
	}
	if t.change.Domains != 0 {
		s.feed.Publish(t.change)
	}
	return nil
}

// View runs fn in one read-only bbolt transaction.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(&txn{s: s, tx: tx}) })
}

// Tamper rewrites one raw record, bypassing every rule of the store: fn
// gets the stored value (nil if none) and returns the new one (nil
// deletes it). It exists for tests that check damage is detected (an
// edited audit entry) and for a legacy layout written by hand; keys of
// sequences are store.EncodeSeq's.
func (s *Store) Tamper(bucket string, key []byte, fn func(old []byte) []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		var old []byte
		if v := b.Get(key); v != nil {
			old = append([]byte(nil), v...)
		}
		if nv := fn(old); nv != nil {
			return b.Put(key, nv)
		}
		return b.Delete(key)
	})
}

// txn is a store.Tx over one bbolt transaction.
type txn struct {
	s  *Store
	tx *bolt.Tx
	// undo restores claims this transaction took, should it roll back.
	undo []func()
	// change is what the transaction wrote, for the watchers.
	change store.Change
}

func (t *txn) Revisions() store.Revisions { return revisions{t} }
func (t *txn) Events() store.Events       { return events{t} }
func (t *txn) Keys() store.Keys           { return keys{t} }
func (t *txn) Audit() store.Audit         { return auditLog{t} }
func (t *txn) Snapshots() store.Snapshots { return snapshots{t} }
func (t *txn) Outbox() store.Outbox       { return outbox{t} }
func (t *txn) Quota() store.Quota         { return quota{t} }
func (t *txn) Meta() store.Meta           { return meta{t} }

// writable refuses writes in a View with store.ErrReadOnly (bbolt's own
// error would otherwise leak); otherwise it notes, for the watchers,
// that the transaction writes domain d.
func (t *txn) writable(d store.Domains) error {
	if !t.tx.Writable() {
		return store.ErrReadOnly
	}
	t.change.Domains |= d
	return nil
}

func (t *txn) undoClaims() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
}

func (t *txn) bucket(name []byte) *bolt.Bucket { return t.tx.Bucket(name) }

// seqKey is the key of sequence number n.
func seqKey(n int64) []byte { return store.EncodeSeq(n) }

func seqOf(k []byte) int64 {
	n, _ := store.DecodeSeq(k)
	return n
}

// corrupt wraps store.ErrCorrupt for a record that does not decode.
func corrupt(what string, err error) error {
	return fmt.Errorf("%s: %w: %v", what, store.ErrCorrupt, err)
}
