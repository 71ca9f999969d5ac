package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrations are migrations/NNNN_name.sql, applied in order, each once,
// each recorded in schema_migrations. A migration is never edited once
// released: a change of schema is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations; the versions must run
// 1, 2, 3, … (a test checks it, so a bad file name fails the build's
// tests, not a start).
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", n)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: want version %d (versions run 1, 2, 3, …)", m.version, m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the schema this build migrates to.
func SchemaVersion() int {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		panic(err) // the embedded files are checked by TestMigrationFiles
	}
	return len(ms)
}

// migrateLock is the advisory lock key under which one replica at a time
// migrates (advisory locks are per database).
const migrateLock = 0x73746f61 // "stoa"

// migrate brings the database's schema to this build's, in one
// transaction under an advisory lock: replicas starting together take
// turns, and the second finds the work done. A schema newer than this
// build knows is refused: an older stoad must not write to tables whose
// meaning has changed.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return classify(ctx, "migrate schema", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit, a no-op
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return classify(ctx, "migrate schema", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return classify(ctx, "migrate schema", err)
	}
	var cur int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return classify(ctx, "migrate schema", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this stoad knows (%d): run the stoad that wrote it, or a newer one", cur, len(ms))
	}
	for _, m := range ms[cur:] {
		// Without arguments pgx sends the file as one simple query: every
		// statement in it, in this transaction.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return classify(ctx, fmt.Sprintf("migrate schema to version %d (%s)", m.version, m.name), err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return classify(ctx, "migrate schema", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return classify(ctx, "migrate schema", err)
	}
	return nil
}
