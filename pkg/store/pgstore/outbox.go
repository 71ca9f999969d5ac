package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// outbox: "deliveries" holds each delivery (JSON without its body), its
// body, the columns the dispatchers query, and the claim of the replica
// attempting it. Leases are measured on the database's clock, the one
// clock every replica shares.
type outbox struct{ t *txn }

// nullTime is t, or NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (o outbox) Insert(ctx context.Context, ds []*store.Delivery) error {
	if err := o.t.check(store.DomainOutbox); err != nil {
		return err
	}
	b := &pgx.Batch{}
	seq := o.t.head.deliverySeq
	for _, d := range ds {
		if d.State != store.DeliveryPending {
			return fmt.Errorf("insert delivery: state %q, want %q", d.State, store.DeliveryPending)
		}
		seq++
		rec := *d
		rec.ID, rec.Body = store.DeliveryIDs.Format(seq), nil
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO deliveries (id, tenant, webhook, state, next_attempt_at, record, body) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			seq, d.Tenant, d.Webhook, d.State, nullTime(d.NextAttemptAt), v, []byte(d.Body))
	}
	if b.Len() == 0 {
		return nil
	}
	if err := o.t.tx.SendBatch(ctx, b).Close(); err != nil {
		return o.t.fail(ctx, "insert deliveries", err)
	}
	for _, d := range ds {
		o.t.head.deliverySeq++
		d.ID = store.DeliveryIDs.Format(o.t.head.deliverySeq)
	}
	return nil
}

func decodeDelivery(id int64, rec, body []byte) (store.Delivery, error) {
	var d store.Delivery
	if err := json.Unmarshal(rec, &d); err != nil {
		return d, corrupt("delivery "+store.DeliveryIDs.Format(id), err)
	}
	if len(body) > 0 {
		d.Body = body
	}
	return d, nil
}

func (o outbox) Get(ctx context.Context, id int64) (store.Delivery, error) {
	var rec, body []byte
	err := o.t.tx.QueryRow(ctx, `SELECT record, body FROM deliveries WHERE id = $1`, id).Scan(&rec, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Delivery{}, fmt.Errorf("delivery %s: %w", store.DeliveryIDs.Format(id), store.ErrNotFound)
	} else if err != nil {
		return store.Delivery{}, o.t.fail(ctx, "read delivery "+store.DeliveryIDs.Format(id), err)
	}
	return decodeDelivery(id, rec, body)
}

func (o outbox) List(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	var (
		where []string
		args  []any
	)
	for _, c := range [...]struct{ col, v string }{{"tenant", f.Tenant}, {"webhook", f.Webhook}, {"state", f.State}} {
		if c.v != "" {
			args = append(args, c.v)
			where = append(where, fmt.Sprintf("%s = $%d", c.col, len(args)))
		}
	}
	q := `SELECT id, record FROM deliveries`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limitArg(f.Limit))
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := o.t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, o.t.fail(ctx, "list deliveries", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var (
			id  int64
			rec []byte
		)
		if err := rows.Scan(&id, &rec); err != nil {
			return nil, o.t.fail(ctx, "list deliveries", err)
		}
		d, err := decodeDelivery(id, rec, nil)
		if err != nil {
			continue // a damaged record is not worth failing the listing
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, o.t.fail(ctx, "list deliveries", err)
	}
	return out, nil
}

func (o outbox) Pending(ctx context.Context) ([]store.DueDelivery, error) {
	rows, err := o.t.tx.Query(ctx, `SELECT id, next_attempt_at FROM deliveries WHERE state = 'pending' ORDER BY id`)
	if err != nil {
		return nil, o.t.fail(ctx, "list pending deliveries", err)
	}
	defer rows.Close()
	var out []store.DueDelivery
	for rows.Next() {
		var (
			d  store.DueDelivery
			at *time.Time
		)
		if err := rows.Scan(&d.ID, &at); err != nil {
			return nil, o.t.fail(ctx, "list pending deliveries", err)
		}
		if at != nil {
			d.NextAttemptAt = at.UTC()
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, o.t.fail(ctx, "list pending deliveries", err)
	}
	return out, nil
}

// claimed is a delivery as a claim or an outcome reads it.
type claimed struct {
	state     string
	rec, body []byte
	// held refuses the caller: another owner's claim has not lapsed.
	held error
}

// readClaim reads delivery n for owner's claim or outcome.
func (o outbox) readClaim(ctx context.Context, n int64, owner string) (claimed, error) {
	var (
		c      claimed
		holder *string
		until  *time.Time
		live   bool
	)
	err := o.t.tx.QueryRow(ctx, `SELECT state, record, body, claim_owner, claim_until,
			claim_until IS NOT NULL AND clock_timestamp() < claim_until
		FROM deliveries WHERE id = $1`, n).Scan(&c.state, &c.rec, &c.body, &holder, &until, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("delivery %s: %w", store.DeliveryIDs.Format(n), store.ErrNotFound)
	} else if err != nil {
		return c, o.t.fail(ctx, "read delivery "+store.DeliveryIDs.Format(n), err)
	}
	if holder != nil && until != nil && *holder != owner && live {
		c.held = fmt.Errorf("delivery %s: %w: claimed by %s until %s", store.DeliveryIDs.Format(n), store.ErrConflict,
			*holder, until.UTC().Format(time.RFC3339))
	}
	return c, nil
}

func (o outbox) Claim(ctx context.Context, id int64, owner string, lease time.Duration) (store.Delivery, error) {
	if err := o.t.check(store.DomainOutbox); err != nil {
		return store.Delivery{}, err
	}
	if owner == "" || lease <= 0 {
		return store.Delivery{}, fmt.Errorf("claim delivery: owner and a positive lease are required")
	}
	c, err := o.readClaim(ctx, id, owner)
	switch {
	case err != nil:
		return store.Delivery{}, err
	case c.state != store.DeliveryPending:
		return store.Delivery{}, fmt.Errorf("delivery %s: %w: it is %s", store.DeliveryIDs.Format(id), store.ErrConflict, c.state)
	case c.held != nil:
		return store.Delivery{}, c.held
	}
	_, err = o.t.tx.Exec(ctx, `UPDATE deliveries SET claim_owner = $2, claim_until = clock_timestamp() + $3 * interval '1 microsecond' WHERE id = $1`,
		id, owner, max(lease.Microseconds(), 1))
	if err != nil {
		return store.Delivery{}, o.t.fail(ctx, "claim delivery "+store.DeliveryIDs.Format(id), err)
	}
	return decodeDelivery(id, c.rec, c.body)
}

func (o outbox) finish(ctx context.Context, owner string, d store.Delivery, pending bool) error {
	if err := o.t.check(store.DomainOutbox); err != nil {
		return err
	}
	if (d.State == store.DeliveryPending) != pending {
		return fmt.Errorf("record delivery %s: state %q does not fit", d.ID, d.State)
	}
	n, ok := store.DeliveryIDs.Parse(d.ID)
	if !ok {
		return fmt.Errorf("record delivery: bad id %q", d.ID)
	}
	if c, err := o.readClaim(ctx, n, owner); err != nil {
		return err
	} else if c.held != nil {
		return c.held
	}
	body := []byte(d.Body)
	d.Body = nil
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	// A body left out of d is kept; one given replaces it (as on bbolt,
	// which stores d whole).
	_, err = o.t.tx.Exec(ctx, `UPDATE deliveries SET state = $2, next_attempt_at = $3, record = $4, body = COALESCE($5, body),
		claim_owner = NULL, claim_until = NULL WHERE id = $1`, n, d.State, nullTime(d.NextAttemptAt), v, body)
	if err != nil {
		return o.t.fail(ctx, "record delivery "+d.ID, err)
	}
	return nil
}

func (o outbox) Ack(ctx context.Context, owner string, d store.Delivery) error {
	return o.finish(ctx, owner, d, false)
}

func (o outbox) Retry(ctx context.Context, owner string, d store.Delivery) error {
	return o.finish(ctx, owner, d, true)
}

func (o outbox) Trim(ctx context.Context, keep, limit int) (int, error) {
	if err := o.t.check(store.DomainOutbox); err != nil {
		return 0, err
	}
	last := o.t.head.deliverySeq
	if keep <= 0 || limit <= 0 || last <= int64(keep) {
		return 0, nil
	}
	tag, err := o.t.tx.Exec(ctx, `DELETE FROM deliveries WHERE id IN
		(SELECT id FROM deliveries WHERE id <= $1 ORDER BY id LIMIT $2) AND state <> 'pending'`, last-int64(keep), limit)
	if err != nil {
		return 0, o.t.fail(ctx, "trim deliveries", err)
	}
	return int(tag.RowsAffected()), nil
}
