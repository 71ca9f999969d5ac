package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// snapshots: "snapshots" holds each snapshot's document with the fields
// List filters on; ids come from the head row.
type snapshots struct{ t *txn }

func (s snapshots) NextID(context.Context) (int64, error) {
	if err := s.t.check(store.DomainSnapshots); err != nil {
		return 0, err
	}
	s.t.head.snapshotSeq++
	return s.t.head.snapshotSeq, nil
}

func (s snapshots) Put(ctx context.Context, rec store.SnapshotRecord) error {
	if err := s.t.check(store.DomainSnapshots); err != nil {
		return err
	}
	if rec.ID <= 0 {
		return fmt.Errorf("store snapshot: bad id %d", rec.ID)
	}
	_, err := s.t.tx.Exec(ctx, `INSERT INTO snapshots (id, tenant, tool, time, data) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET tenant = EXCLUDED.tenant, tool = EXCLUDED.tool, time = EXCLUDED.time, data = EXCLUDED.data`,
		rec.ID, rec.Tenant, rec.Tool, rec.Time, rec.Data)
	if err != nil {
		return s.t.fail(ctx, fmt.Sprintf("store snapshot %d", rec.ID), err)
	}
	return nil
}

func scanSnapshot(row pgx.Row) (store.SnapshotRecord, error) {
	var rec store.SnapshotRecord
	err := row.Scan(&rec.ID, &rec.Tenant, &rec.Tool, &rec.Time, &rec.Data)
	rec.Time = rec.Time.UTC()
	return rec, err
}

func (s snapshots) Get(ctx context.Context, id int64) (store.SnapshotRecord, error) {
	rec, err := scanSnapshot(s.t.tx.QueryRow(ctx, `SELECT id, tenant, tool, time, data FROM snapshots WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, fmt.Errorf("snapshot %d: %w", id, store.ErrNotFound)
	} else if err != nil {
		return rec, s.t.fail(ctx, fmt.Sprintf("read snapshot %d", id), err)
	}
	return rec, nil
}

func (s snapshots) List(ctx context.Context, f store.SnapshotFilter) ([]store.SnapshotRecord, error) {
	var (
		where []string
		args  []any
	)
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Tenant != "" {
		arg("tenant = $%d", f.Tenant)
	}
	if f.Tool != "" {
		arg("tool = $%d", f.Tool)
	}
	if !f.Since.IsZero() {
		arg("time >= $%d", f.Since)
	}
	q := `SELECT id, tenant, tool, time, data FROM snapshots`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limitArg(f.Limit))
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := s.t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, s.t.fail(ctx, "list snapshots", err)
	}
	defer rows.Close()
	var out []store.SnapshotRecord
	for rows.Next() {
		rec, err := scanSnapshot(rows)
		if err != nil {
			return nil, s.t.fail(ctx, "list snapshots", err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, s.t.fail(ctx, "list snapshots", err)
	}
	return out, nil
}

// Trim drops by count (the oldest beyond keep), then by age: oldest
// first, up to the first snapshot taken after before.
func (s snapshots) Trim(ctx context.Context, tenant string, keep int, before time.Time) (int, error) {
	if err := s.t.check(store.DomainSnapshots); err != nil {
		return 0, err
	}
	dropped := 0
	if keep > 0 {
		tag, err := s.t.tx.Exec(ctx, `DELETE FROM snapshots WHERE id IN
			(SELECT id FROM snapshots WHERE tenant = $1 ORDER BY id DESC OFFSET $2)`, tenant, keep)
		if err != nil {
			return 0, s.t.fail(ctx, "trim snapshots", err)
		}
		dropped += int(tag.RowsAffected())
	}
	if !before.IsZero() {
		tag, err := s.t.tx.Exec(ctx, `DELETE FROM snapshots WHERE tenant = $1 AND id <
			COALESCE((SELECT min(id) FROM snapshots WHERE tenant = $1 AND time > $2), 9223372036854775807)`, tenant, before)
		if err != nil {
			return dropped, s.t.fail(ctx, "trim snapshots", err)
		}
		dropped += int(tag.RowsAffected())
	}
	return dropped, nil
}

func (s snapshots) Tenants(ctx context.Context) ([]string, error) {
	rows, err := s.t.tx.Query(ctx, `SELECT DISTINCT tenant FROM snapshots ORDER BY tenant`)
	if err != nil {
		return nil, s.t.fail(ctx, "list snapshot tenants", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.t.fail(ctx, "list snapshot tenants", err)
	}
	return out, nil
}
