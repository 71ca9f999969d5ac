// Package pgstore implements pkg/store on PostgreSQL (through pgx), for a
// control plane of several stoad replicas sharing one database.
//
// Every Update is one database transaction that first locks the single
// row of the head table: writers take turns, as they do on bbolt, so a
// transaction reads the state every earlier commit left and no other
// writer changes it under its feet; sequences (revisions, events,
// snapshots, deliveries) are kept in that row and assigned in commit
// order, with no gaps. A View is a REPEATABLE READ READ ONLY transaction:
// a consistent snapshot that takes no lock. Changes reach every replica's
// watchers through LISTEN/NOTIFY (see listen.go). The schema is versioned
// and migrated at Open (see migrate.go and docs/store.md).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/internal/changefeed"
)

// Options tune a Store; the zero value is the default.
type Options struct {
	// MaxConns bounds the connection pool (0: pgxpool's default, the
	// larger of 4 and the number of CPUs). The change listener holds one
	// more connection.
	MaxConns int32
	// Logger receives the listener's reconnections (nil: none).
	Logger *slog.Logger
}

// Defaults applied to a URL that does not set them.
const (
	// connectTimeout: a database that does not answer fails a request
	// (503) in seconds rather than hanging it.
	connectTimeout = 5 * time.Second
	// idleInTransactionTimeout: a writer holds the head lock for its
	// whole transaction; a process stuck inside one (stopped, partitioned)
	// must not stall every replica's writes for longer than this.
	idleInTransactionTimeout = "60s"
)

// Store is a PostgreSQL-backed store.Store.
type Store struct {
	pool *pgxpool.Pool
	loc  string
	feed *changefeed.Hub
	lis  *listener
	log  *slog.Logger
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (postgres://user:password@host:port/db
// or a key=value string, as libpq takes), migrates its schema to this
// version's (refusing a schema newer than it knows) and starts listening
// for the changes other replicas commit. A database that cannot be
// reached is an error wrapping store.ErrUnavailable.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's message quotes the URL with its password masked.
		return nil, fmt.Errorf("open postgres store: %v (want postgres://user:password@host:5432/database)", err)
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = connectTimeout
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "stoad"
	}
	if _, ok := cc.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cc.RuntimeParams["idle_in_transaction_session_timeout"] = idleInTransactionTimeout
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{loc: location(cc), feed: changefeed.New(), log: log}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open postgres store %s: %v", s.loc, err)
	}
	if err := migrate(ctx, s.pool); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", s.loc, hint(err))
	}
	if s.lis, err = startListener(ctx, cc.Copy(), s.feed, log); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", s.loc, hint(err))
	}
	return s, nil
}

// hint adds how to fix an unreachable database to err.
func hint(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w (is PostgreSQL running, and do the URL's host, port, user and password let stoad in?)", err)
	}
	return err
}

// location is where the database is, without user or password.
func location(cc *pgx.ConnConfig) string {
	if strings.HasPrefix(cc.Host, "/") {
		return fmt.Sprintf("postgres:///%s?host=%s&port=%d", cc.Database, cc.Host, cc.Port)
	}
	return fmt.Sprintf("postgres://%s/%s", net.JoinHostPort(cc.Host, fmt.Sprint(cc.Port)), cc.Database)
}

// Location is the database's URL without credentials.
func (s *Store) Location() string { return s.loc }

// Close stops the listener, ends every watch and closes the pool once
// the transactions in flight have finished.
func (s *Store) Close() error {
	s.lis.stop()
	s.feed.Close()
	s.pool.Close()
	return nil
}

// Watch sends the changes every process sharing the database commits.
func (s *Store) Watch(ctx context.Context) <-chan store.Change { return s.feed.Subscribe(ctx) }

// Update runs fn in one READ COMMITTED transaction that holds the head
// row's lock from its first statement to its commit.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.begin(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	t := &txn{s: s, tx: tx, writable: true}
	defer t.rollback()
	if err := t.lockHead(ctx); err != nil {
		return err
	}
	if err := fn(t); err != nil {
		return err
	}
	if t.err != nil {
		// fn went on after a failed statement: PostgreSQL has aborted the
		// transaction, and nothing of it may commit.
		return fmt.Errorf("commit: the transaction was aborted by an earlier error: %w", t.err)
	}
	if err := t.finish(ctx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		err = classify(ctx, "commit", err)
		if errors.Is(err, store.ErrUnavailable) {
			// The COMMIT may have reached the server before the connection
			// went: whole or not at all, but which is unknown here.
			err = fmt.Errorf("%w (the connection was lost during the commit: it landed whole or not at all; read the state to know which)", err)
		}
		return err
	}
	t.done = true
	return nil
}

// View runs fn in one REPEATABLE READ READ ONLY transaction.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.begin(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	t := &txn{s: s, tx: tx}
	defer t.rollback()
	return fn(t)
}

// begin starts a transaction. A connection that died since its last use
// fails at BEGIN, before anything is written: that is retried on another
// (the pool drops the dead one), so the first request after the database
// comes back does not fail for it.
func (s *Store) begin(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	for attempt := 0; ; attempt++ {
		tx, err := s.pool.BeginTx(ctx, opts)
		if err == nil {
			return tx, nil
		}
		err = classify(ctx, "begin transaction", err)
		if attempt < 3 && errors.Is(err, store.ErrUnavailable) && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// classify turns a driver error into one of the store's: the context's
// own error, ErrConflict for a serialization failure or deadlock,
// ErrUnavailable for a database that cannot be reached. The driver's
// error is kept as text only (no driver type crosses the interface).
func classify(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", what, cerr)
	}
	if errors.Is(err, puddle.ErrClosedPool) {
		return fmt.Errorf("%s: the store is closed", what)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001" || pe.Code == "40P01":
			return fmt.Errorf("%s: %w: %s", what, store.ErrConflict, pe.Message)
		case unavailableCode(pe.Code):
			return fmt.Errorf("%s: %w: %s (SQLSTATE %s)", what, store.ErrUnavailable, pe.Message, pe.Code)
		}
		return fmt.Errorf("%s: %s (SQLSTATE %s)", what, pe.Message, pe.Code)
	}
	if connectionLost(err) {
		return fmt.Errorf("%s: %w: %v", what, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %v", what, err)
}

// unavailableCode: SQLSTATEs of a server that cannot serve now —
// connection exceptions (08), insufficient resources (53), an operator
// or crash shutting it down (57, except a canceled statement), a system
// error (58), a standby refusing writes (25006, during a failover).
func unavailableCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"), strings.HasPrefix(code, "58"):
		return true
	case strings.HasPrefix(code, "57"):
		return code != "57014"
	}
	return code == "25006"
}

// connectionLost: err is the network's, not the server's.
func connectionLost(err error) bool {
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOENT)
}

// head is the head row.
type head struct {
	revision, eventSeq, snapshotSeq, deliverySeq, auditSeq int64
	auditHash                                              string
}

// txn is a store.Tx over one database transaction.
type txn struct {
	s        *Store
	tx       pgx.Tx
	writable bool
	done     bool
	// err is the first failed statement: PostgreSQL aborts the
	// transaction there, whatever fn does next.
	err error
	// head is the head row as this transaction leaves it; loaded says it
	// was read (an Update locks it first thing; a View reads it when
	// asked), orig what the database holds.
	head, orig head
	loaded     bool
	// events appended but not yet sent (see events.go).
	pendingEvents []pendingEvent
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

// check refuses writes in a View with store.ErrReadOnly; otherwise it
// notes, for the watchers, that the transaction writes domain d.
func (t *txn) check(d store.Domains) error {
	if !t.writable {
		return store.ErrReadOnly
	}
	t.change.Domains |= d
	return nil
}

// fail classifies the error of a statement and remembers the first.
func (t *txn) fail(ctx context.Context, what string, err error) error {
	err = classify(ctx, what, err)
	if !errors.Is(err, store.ErrUnavailable) && t.tx.Conn().IsClosed() {
		err = fmt.Errorf("%w: the connection was lost (%v)", store.ErrUnavailable, err)
	}
	if t.err == nil {
		t.err = err
	}
	return err
}

func (t *txn) rollback() {
	if t.done {
		return
	}
	// With its own context: the caller's may be what ended the
	// transaction. On a lost connection this fails, and the server rolls
	// back on its own.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.tx.Rollback(ctx)
}

const headColumns = `revision, event_seq, snapshot_seq, delivery_seq, audit_seq, audit_hash`

func (t *txn) scanHead(row pgx.Row) error {
	h := &t.head
	if err := row.Scan(&h.revision, &h.eventSeq, &h.snapshotSeq, &h.deliverySeq, &h.auditSeq, &h.auditHash); err != nil {
		return err
	}
	t.orig, t.loaded = t.head, true
	return nil
}

// lockHead takes the writers' turn.
func (t *txn) lockHead(ctx context.Context) error {
	if err := t.scanHead(t.tx.QueryRow(ctx, `SELECT `+headColumns+` FROM head WHERE id = 1 FOR UPDATE`)); err != nil {
		return t.fail(ctx, "lock the head row", err)
	}
	return nil
}

// loadHead returns the head row, reading it in a View.
func (t *txn) loadHead(ctx context.Context) (*head, error) {
	if !t.loaded {
		if err := t.scanHead(t.tx.QueryRow(ctx, `SELECT `+headColumns+` FROM head WHERE id = 1`)); err != nil {
			return nil, t.fail(ctx, "read the head row", err)
		}
	}
	return &t.head, nil
}

// finish sends what the transaction kept back, in one round trip: the
// appended events, the head row, the notification of the change.
func (t *txn) finish(ctx context.Context) error {
	b := &pgx.Batch{}
	t.queueEvents(b)
	if h := t.head; h != t.orig {
		b.Queue(`UPDATE head SET revision = $1, event_seq = $2, snapshot_seq = $3, delivery_seq = $4, audit_seq = $5, audit_hash = $6 WHERE id = 1`,
			h.revision, h.eventSeq, h.snapshotSeq, h.deliverySeq, h.auditSeq, h.auditHash)
	}
	if t.change.Domains != 0 {
		payload, err := encodeChange(t.change)
		if err != nil {
			return err
		}
		// Delivered to every listener when, and only if, the transaction
		// commits, in commit order.
		b.Queue(`SELECT pg_notify($1, $2)`, channel, payload)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return t.fail(ctx, "write the transaction's head", err)
	}
	t.orig = t.head
	return nil
}
