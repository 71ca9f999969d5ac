// Package store is stoad's persistence contract: the live objects, every
// revision (with the changes that made it, so any revision can be
// restored), the event log, API keys, the audit chain, error snapshots,
// the webhook outbox, quota usage and small metadata — each domain behind
// an interface defined here, all reached through one transaction type so
// that writes which belong together commit together (a revision, the
// events it emits and the keys it revokes).
//
// Implementations live in subpackages (pkg/store/boltstore, the embedded
// bbolt file) and pass the conformance suite in pkg/store/storetest. No
// package outside pkg/store imports a database driver (see docs/store.md).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Sentinel errors. Implementations wrap them (test with errors.Is) and
// never return a driver's own error types for these conditions.
var (
	// ErrNotFound: the record asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the write raced another one (a revision committed on a
	// base that is no longer current, an audit entry or delivery claimed
	// by someone else); nothing was written by the call.
	ErrConflict = errors.New("conflict")
	// ErrReadOnly: a write was attempted in a View transaction.
	ErrReadOnly = errors.New("write in a read-only transaction")
	// ErrCorrupt: a stored record does not decode.
	ErrCorrupt = errors.New("stored record does not decode")
	// ErrUnavailable: the database cannot be reached (refused, lost,
	// shutting down). The transaction did not commit — except when the
	// connection was lost during the commit itself, when its outcome is
	// unknown (but never half: a transaction commits whole or not at
	// all). The store reconnects by itself; a caller answers 503 and
	// tries again later. An embedded store never returns it.
	ErrUnavailable = errors.New("store unavailable")
)

// Store is one state backend.
type Store interface {
	// Update runs fn in a read-write transaction. Everything fn writes is
	// committed, durably, when fn returns nil, and nothing is when fn (or
	// the commit) fails; fn's own error is returned unchanged. fn runs
	// once: an implementation that detects a serialization failure (two
	// replicas writing the same rows) returns ErrConflict rather than
	// running fn again, and the caller decides whether to retry.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction: a consistent snapshot.
	View(ctx context.Context, fn func(Tx) error) error
	// Watch sends a Change for every transaction that writes and commits
	// from now on, by this process or by any other sharing the store, in
	// commit order, until ctx is done or the store closes (the channel is
	// then closed). Watch before reading the state it keeps fresh, or a
	// commit in between goes unnoticed. A consumer that falls behind gets
	// what it missed merged into one Change; one that must see every
	// revision or event reads them from its own position (Revisions.List,
	// Events.Since) when told: a Change says that something was written,
	// the logs say what.
	Watch(ctx context.Context) <-chan Change
	// Location says where the state lives, for logs and status (a file
	// path; never credentials).
	Location() string
	// Close releases the store; transactions in flight finish first.
	Close() error
}

// Change is what one committed transaction wrote.
type Change struct {
	// Revision is the revision it committed (0: none).
	Revision int64 `json:"r,omitempty"`
	// Event is the sequence number of the last event it appended (0:
	// none).
	Event int64 `json:"e,omitempty"`
	// Domains are the domains it wrote.
	Domains Domains `json:"d,omitempty"`
	// Resync says that changes may have been missed (a database store's
	// notification connection was lost and is back): Revision and Event
	// are then the current ones and Domains all of them — reread
	// everything.
	Resync bool `json:"resync,omitempty"`
}

// Merge folds a later change into c: the highest ids, every domain.
func (c Change) Merge(later Change) Change {
	return Change{
		Revision: max(c.Revision, later.Revision),
		Event:    max(c.Event, later.Event),
		Domains:  c.Domains | later.Domains,
		Resync:   c.Resync || later.Resync,
	}
}

// Domains is a set of domains (one bit each).
type Domains uint16

// The domains of a Tx.
const (
	DomainRevisions Domains = 1 << iota
	DomainEvents
	DomainKeys
	DomainAudit
	DomainSnapshots
	DomainOutbox
	DomainQuota
	DomainMeta

	AllDomains = DomainRevisions | DomainEvents | DomainKeys | DomainAudit | DomainSnapshots | DomainOutbox | DomainQuota | DomainMeta
)

// Has reports whether every domain of d2 is in d.
func (d Domains) Has(d2 Domains) bool { return d&d2 == d2 }

// Tx is one transaction: every domain, in the same atomic unit of work.
// A Tx (and what its accessors return) is valid only inside the function
// it was passed to.
type Tx interface {
	Revisions() Revisions
	Events() Events
	Keys() Keys
	Audit() Audit
	Snapshots() Snapshots
	Outbox() Outbox
	Quota() Quota
	Meta() Meta
}

// Revision is one stored revision.
type Revision struct {
	ID      int64        `json:"id"`
	Time    time.Time    `json:"time"`
	Actor   string       `json:"actor"`
	Action  string       `json:"action"`
	Message string       `json:"message,omitempty"`
	Summary plan.Summary `json:"summary"`
	// Refs lists what changed, without the objects (filled by Get).
	Refs []ChangeRef `json:"refs,omitempty"`
	// Changes carries the objects; only the Revision shortcut with
	// changes fills it.
	Changes []plan.Change `json:"-"`
}

// ChangeRef is a change without its objects.
type ChangeRef struct {
	Op  plan.Op  `json:"op"`
	Ref spec.Ref `json:"ref"`
}

// Revisions are the live objects and the revision log.
type Revisions interface {
	// Current is the live revision (0 before the first commit).
	Current(ctx context.Context) (int64, error)
	// Objects returns every live object, in plan.SortObjects order.
	Objects(ctx context.Context) ([]*spec.Object, error)
	// Commit writes changes to the live objects and records them as a new
	// revision, returning its id. base is the revision the changes were
	// planned against: if it is no longer current, Commit returns
	// ErrConflict and writes nothing. Ids are assigned in commit order,
	// each greater than every earlier one. rev's Summary and Refs are
	// filled from changes. rev.ID, when set, is the id to record instead
	// of the next one (a data plane records its control plane's revision
	// numbers, which skip the revisions it never saw); it must be greater
	// than every earlier id, else Commit returns ErrConflict.
	Commit(ctx context.Context, base int64, rev Revision, changes []plan.Change) (int64, error)
	// List returns revision headers (no Refs, no Changes), newest first,
	// at most limit (0: all).
	List(ctx context.Context, limit int) ([]Revision, error)
	// Get returns one revision with its Refs but not the objects: cheap
	// even for a revision of 10,000 tools. ErrNotFound if unknown.
	Get(ctx context.Context, id int64) (*Revision, error)
	// Changes returns a revision's changes with their objects.
	Changes(ctx context.Context, id int64) ([]plan.Change, error)
	// ChangesAfter calls fn with the changes of every revision after id,
	// newest first (what undoing back to id takes).
	ChangesAfter(ctx context.Context, id int64, fn func(id int64, changes []plan.Change) error) error
}
