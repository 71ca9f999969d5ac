// Package store is stoad's embedded, crash-safe state: the live objects,
// every revision (with the changes that made it, so any revision can be
// restored), and the event log. It is a single bbolt file under the state
// directory; every acknowledged write is fsynced in one transaction, so a
// kill -9 can never leave a half-applied revision (see docs/store.md).
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// FileName is the database file inside the state directory.
const FileName = "stoa.db"

var (
	bucketObjects   = []byte("objects")
	bucketRevisions = []byte("revisions")        // id → header with change refs (small)
	bucketChanges   = []byte("revision_changes") // id → the changes with their objects
	bucketMeta      = []byte("meta")
	bucketEvents    = []byte("events")
	keyCurrent      = []byte("current")
	keySchema       = []byte("schema")
)

// schemaVersion is bumped when the on-disk layout changes incompatibly.
const schemaVersion = "1"

// ErrNotFound is returned for missing revisions.
var ErrNotFound = errors.New("not found")

// Store is the embedded database.
type Store struct {
	db   *bolt.DB
	path string
}

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
	s := &Store{db: db, path: path}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketObjects, bucketRevisions, bucketChanges, bucketMeta, bucketEvents} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if v := m.Get(keySchema); v != nil && string(v) != schemaVersion {
			return fmt.Errorf("state schema %s is not supported by this stoad (want %s)", v, schemaVersion)
		}
		return m.Put(keySchema, []byte(schemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return s, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Update runs fn in a read-write transaction (committed and fsynced when fn
// returns nil). Other packages keep their own buckets through it.
func (s *Store) Update(fn func(*bolt.Tx) error) error { return s.db.Update(fn) }

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*bolt.Tx) error) error { return s.db.View(fn) }

// Revision is one stored revision.
type Revision struct {
	ID      int64        `json:"id"`
	Time    time.Time    `json:"time"`
	Actor   string       `json:"actor"`
	Action  string       `json:"action"`
	Message string       `json:"message,omitempty"`
	Summary plan.Summary `json:"summary"`
	// Refs lists what changed, without the objects (always filled).
	Refs []ChangeRef `json:"refs,omitempty"`
	// Changes carries the objects; only Revision fills it.
	Changes []plan.Change `json:"-"`
}

// ChangeRef is a change without its objects.
type ChangeRef struct {
	Op  plan.Op  `json:"op"`
	Ref spec.Ref `json:"ref"`
}

func refKey(r spec.Ref) []byte {
	return []byte(string(r.Kind) + "\x00" + r.Namespace + "\x00" + r.Name)
}

func u64(n int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}

// Load returns every live object and the current revision.
func (s *Store) Load() ([]*spec.Object, int64, error) {
	var (
		objs []*spec.Object
		cur  int64
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyCurrent); v != nil {
			cur = int64(binary.BigEndian.Uint64(v))
		}
		return tx.Bucket(bucketObjects).ForEach(func(k, v []byte) error {
			o := new(spec.Object)
			if err := json.Unmarshal(v, o); err != nil {
				return fmt.Errorf("decode object %q: %w", bytes.ReplaceAll(k, []byte{0}, []byte{'/'}), err)
			}
			objs = append(objs, o)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("load state: %w", err)
	}
	plan.SortObjects(objs)
	return objs, cur, nil
}

// Commit writes changes and a new revision record in one transaction and
// returns the new revision id. Nothing is written when it fails.
func (s *Store) Commit(rev Revision, changes []plan.Change) (int64, error) {
	return s.CommitWith(rev, changes, nil)
}

// CommitWith is Commit that also runs also(tx, id) in the same
// transaction, for state that must change with the revision (keys revoked
// with the consumer they belong to); its error aborts the whole commit.
func (s *Store) CommitWith(rev Revision, changes []plan.Change, also func(tx *bolt.Tx, id int64) error) (int64, error) {
	var id int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		objects := tx.Bucket(bucketObjects)
		var buf bytes.Buffer
		for _, c := range changes {
			k := refKey(c.Ref)
			if c.Op == plan.Delete {
				if err := objects.Delete(k); err != nil {
					return err
				}
				continue
			}
			buf.Reset()
			if err := plan.Canonical(&buf, c.After); err != nil {
				return fmt.Errorf("encode %s: %w", c.Ref, err)
			}
			if err := objects.Put(k, bytes.Clone(buf.Bytes())); err != nil {
				return err
			}
		}
		revs := tx.Bucket(bucketRevisions)
		seq, err := revs.NextSequence()
		if err != nil {
			return err
		}
		id = int64(seq)
		rev.ID = id
		rev.Summary = plan.Summarize(changes)
		rev.Refs = make([]ChangeRef, len(changes))
		for i, c := range changes {
			rev.Refs[i] = ChangeRef{Op: c.Op, Ref: c.Ref}
		}
		b, err := json.Marshal(rev)
		if err != nil {
			return err
		}
		if err := revs.Put(u64(id), b); err != nil {
			return err
		}
		cb, err := json.Marshal(changes)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketChanges).Put(u64(id), cb); err != nil {
			return err
		}
		if also != nil {
			if err := also(tx, id); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyCurrent, u64(id))
	})
	if err != nil {
		return 0, fmt.Errorf("commit revision: %w", err)
	}
	return id, nil
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

// Revisions lists the newest revisions first (at most limit; 0 = all),
// without their changes.
func (s *Store) Revisions(limit int) ([]Revision, error) {
	var out []Revision
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRevisions).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var h revisionHeader
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			out = append(out, Revision{ID: h.ID, Time: h.Time, Actor: h.Actor, Action: h.Action, Message: h.Message, Summary: h.Summary})
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// Revision returns one revision with its changes and their objects.
func (s *Store) Revision(id int64) (*Revision, error) {
	return s.revision(id, true)
}

// RevisionInfo returns one revision with the references of its changes
// but not their objects: cheap even for a revision of 10,000 tools.
func (s *Store) RevisionInfo(id int64) (*Revision, error) {
	return s.revision(id, false)
}

func (s *Store) revision(id int64, withObjects bool) (*Revision, error) {
	var rev *Revision
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRevisions).Get(u64(id))
		if v == nil {
			return fmt.Errorf("revision %d: %w", id, ErrNotFound)
		}
		rev = new(Revision)
		if err := json.Unmarshal(v, rev); err != nil {
			return err
		}
		if !withObjects {
			return nil
		}
		if cv := tx.Bucket(bucketChanges).Get(u64(id)); cv != nil {
			return json.Unmarshal(cv, &rev.Changes)
		}
		return nil
	})
	return rev, err
}

// StateAt reconstructs the objects that were live right after revision id,
// by undoing every later revision on top of the current state. Revision 0 is
// the empty state before the first apply.
func (s *Store) StateAt(id int64) ([]*spec.Object, error) {
	live, cur, err := s.Load()
	if err != nil {
		return nil, err
	}
	if id > cur || id < 0 {
		return nil, fmt.Errorf("revision %d: %w (current is %d)", id, ErrNotFound, cur)
	}
	by := make(map[spec.Ref]*spec.Object, len(live))
	for _, o := range live {
		by[o.Ref()] = o
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChanges).Cursor()
		for k, v := c.Last(); k != nil && int64(binary.BigEndian.Uint64(k)) > id; k, v = c.Prev() {
			var changes []plan.Change
			if err := json.Unmarshal(v, &changes); err != nil {
				return err
			}
			for i := len(changes) - 1; i >= 0; i-- {
				ch := changes[i]
				switch ch.Op {
				case plan.Create:
					delete(by, ch.Ref)
				case plan.Update, plan.Delete:
					by[ch.Ref] = ch.Before
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconstruct revision %d: %w", id, err)
	}
	out := make([]*spec.Object, 0, len(by))
	for _, o := range by {
		out = append(out, o)
	}
	plan.SortObjects(out)
	return out, nil
}
