package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// keys: id → the JSON KeyRecord.
type keys struct{ t *txn }

func (k keys) Get(ctx context.Context, id string) (auth.KeyRecord, error) {
	var (
		r auth.KeyRecord
		v []byte
	)
	err := k.t.tx.QueryRow(ctx, `SELECT record FROM keys WHERE id = $1`, id).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("key %s: %w", id, store.ErrNotFound)
	} else if err != nil {
		return r, k.t.fail(ctx, "read key "+id, err)
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, corrupt("key "+id, err)
	}
	return r, nil
}

func (k keys) Put(ctx context.Context, recs ...auth.KeyRecord) error {
	if err := k.t.check(store.DomainKeys); err != nil {
		return err
	}
	ids, vals := make([]string, 0, len(recs)), make([][]byte, 0, len(recs))
	at := map[string]int{}
	for _, r := range recs {
		if r.ID == "" {
			return fmt.Errorf("store key: empty id")
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if i, ok := at[r.ID]; ok { // the last record of an id wins, as one at a time would
			vals[i] = v
			continue
		}
		at[r.ID] = len(ids)
		ids, vals = append(ids, r.ID), append(vals, v)
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := k.t.tx.Exec(ctx, `INSERT INTO keys (id, record) SELECT * FROM unnest($1::text[], $2::bytea[])
		ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record`, ids, vals)
	if err != nil {
		return k.t.fail(ctx, "store keys", err)
	}
	return nil
}

func (k keys) List(ctx context.Context) ([]auth.KeyRecord, error) {
	rows, err := k.t.tx.Query(ctx, `SELECT id, record FROM keys ORDER BY id`)
	if err != nil {
		return nil, k.t.fail(ctx, "list keys", err)
	}
	defer rows.Close()
	var out []auth.KeyRecord
	for rows.Next() {
		raw := rows.RawValues()
		var r auth.KeyRecord
		if err := json.Unmarshal(raw[1], &r); err != nil {
			return nil, corrupt("key "+string(raw[0]), err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, k.t.fail(ctx, "list keys", err)
	}
	return out, nil
}
