package pgstore

import (
	"context"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// quota: "quota_usage" holds one row of counters per subscription.
type quota struct{ t *txn }

func (q quota) List(ctx context.Context) (map[string]store.QuotaUsage, error) {
	rows, err := q.t.tx.Query(ctx, `SELECT key, day, day_count, month, month_count, day_exhausted, month_exhausted FROM quota_usage`)
	if err != nil {
		return nil, q.t.fail(ctx, "read quota usage", err)
	}
	defer rows.Close()
	out := map[string]store.QuotaUsage{}
	for rows.Next() {
		var (
			k string
			u store.QuotaUsage
		)
		if err := rows.Scan(&k, &u.Day, &u.DayCount, &u.Month, &u.MonthCount, &u.DayExhausted, &u.MonthExhausted); err != nil {
			return nil, q.t.fail(ctx, "read quota usage", err)
		}
		out[k] = u
	}
	if err := rows.Err(); err != nil {
		return nil, q.t.fail(ctx, "read quota usage", err)
	}
	return out, nil
}

func (q quota) Put(ctx context.Context, key string, u store.QuotaUsage) error {
	if err := q.t.check(store.DomainQuota); err != nil {
		return err
	}
	_, err := q.t.tx.Exec(ctx, `INSERT INTO quota_usage (key, day, day_count, month, month_count, day_exhausted, month_exhausted)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (key) DO UPDATE SET day = EXCLUDED.day, day_count = EXCLUDED.day_count, month = EXCLUDED.month,
			month_count = EXCLUDED.month_count, day_exhausted = EXCLUDED.day_exhausted, month_exhausted = EXCLUDED.month_exhausted`,
		key, u.Day, u.DayCount, u.Month, u.MonthCount, u.DayExhausted, u.MonthExhausted)
	if err != nil {
		return q.t.fail(ctx, "store quota usage "+key, err)
	}
	return nil
}

// Add is store.QuotaUsage.Plus in one statement (the SET expressions all
// read the stored row as it was).
func (q quota) Add(ctx context.Context, key string, d store.QuotaUsage) (store.QuotaUsage, error) {
	var u store.QuotaUsage
	if err := q.t.check(store.DomainQuota); err != nil {
		return u, err
	}
	err := q.t.tx.QueryRow(ctx, `INSERT INTO quota_usage AS q (key, day, day_count, month, month_count, day_exhausted, month_exhausted)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (key) DO UPDATE SET
			day = GREATEST(q.day, EXCLUDED.day),
			day_count = CASE WHEN EXCLUDED.day = q.day THEN q.day_count + EXCLUDED.day_count
				WHEN EXCLUDED.day > q.day THEN EXCLUDED.day_count ELSE q.day_count END,
			month = GREATEST(q.month, EXCLUDED.month),
			month_count = CASE WHEN EXCLUDED.month = q.month THEN q.month_count + EXCLUDED.month_count
				WHEN EXCLUDED.month > q.month THEN EXCLUDED.month_count ELSE q.month_count END,
			day_exhausted = GREATEST(q.day_exhausted, EXCLUDED.day_exhausted),
			month_exhausted = GREATEST(q.month_exhausted, EXCLUDED.month_exhausted)
		RETURNING day, day_count, month, month_count, day_exhausted, month_exhausted`,
		key, d.Day, d.DayCount, d.Month, d.MonthCount, d.DayExhausted, d.MonthExhausted,
	).Scan(&u.Day, &u.DayCount, &u.Month, &u.MonthCount, &u.DayExhausted, &u.MonthExhausted)
	if err != nil {
		return u, q.t.fail(ctx, "add quota usage "+key, err)
	}
	return u, nil
}

func (q quota) Delete(ctx context.Context, key string) error {
	if err := q.t.check(store.DomainQuota); err != nil {
		return err
	}
	if _, err := q.t.tx.Exec(ctx, `DELETE FROM quota_usage WHERE key = $1`, key); err != nil {
		return q.t.fail(ctx, "delete quota usage "+key, err)
	}
	return nil
}
