package pgstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// events: "events" holds seq → the event's JSON. Append takes its
// sequence number from the head row (locked: commit order, no gaps) and
// keeps the row back until the transaction next reads events or commits,
// so a transaction appending thousands sends them in one statement.
type events struct{ t *txn }

type pendingEvent struct {
	seq int64
	v   []byte
}

func (e events) Append(_ context.Context, ev api.Event) (api.Event, error) {
	if err := e.t.check(store.DomainEvents); err != nil {
		return ev, err
	}
	e.t.head.eventSeq++
	ev.Seq = e.t.head.eventSeq
	v, err := json.Marshal(ev)
	if err != nil {
		e.t.head.eventSeq--
		return ev, fmt.Errorf("encode event: %w", err)
	}
	e.t.pendingEvents = append(e.t.pendingEvents, pendingEvent{ev.Seq, v})
	e.t.change.Event = ev.Seq
	return ev, nil
}

// queueEvents queues the kept-back events (only those the cap keeps) and
// the trim of the oldest beyond store.MaxEvents.
func (t *txn) queueEvents(b *pgx.Batch) {
	if len(t.pendingEvents) == 0 {
		return
	}
	last := t.pendingEvents[len(t.pendingEvents)-1].seq
	var (
		seqs []int64
		vals [][]byte
	)
	for _, p := range t.pendingEvents {
		if p.seq > last-store.MaxEvents {
			seqs, vals = append(seqs, p.seq), append(vals, p.v)
		}
	}
	b.Queue(`INSERT INTO events (seq, event) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, seqs, vals)
	if last > store.MaxEvents {
		b.Queue(`DELETE FROM events WHERE seq <= $1`, last-store.MaxEvents)
	}
	t.pendingEvents = nil
}

// flushEvents sends the kept-back events before a read of the log.
func (t *txn) flushEvents(ctx context.Context) error {
	if len(t.pendingEvents) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	t.queueEvents(b)
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return t.fail(ctx, "append events", err)
	}
	return nil
}

func (e events) query(ctx context.Context, what, sql string, args ...any) ([]api.Event, error) {
	if err := e.t.flushEvents(ctx); err != nil {
		return nil, err
	}
	rows, err := e.t.tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, e.t.fail(ctx, what, err)
	}
	defer rows.Close()
	var out []api.Event
	for rows.Next() {
		raw := rows.RawValues()
		var ev api.Event
		if err := json.Unmarshal(raw[1], &ev); err != nil {
			return nil, corrupt(fmt.Sprintf("event %s", raw[0]), err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, e.t.fail(ctx, what, err)
	}
	return out, nil
}

func (e events) Since(ctx context.Context, after int64, limit int) ([]api.Event, error) {
	return e.query(ctx, "read events", `SELECT seq::text AS label, event FROM events WHERE seq > $1 ORDER BY events.seq LIMIT $2`, after, limitArg(limit))
}

func (e events) Last(ctx context.Context, n int) ([]api.Event, error) {
	if n <= 0 {
		return nil, nil
	}
	return e.query(ctx, "read events", `SELECT e.seq::text AS label, e.event FROM (SELECT seq, event FROM events ORDER BY seq DESC LIMIT $1) e ORDER BY e.seq`, n)
}

// limitArg is a LIMIT parameter: NULL (no limit) for 0 or less.
func limitArg(n int) *int64 {
	if n <= 0 {
		return nil
	}
	v := int64(n)
	return &v
}

// corrupt wraps store.ErrCorrupt for a record that does not decode.
func corrupt(what string, err error) error {
	return fmt.Errorf("%s: %w: %v", what, store.ErrCorrupt, err)
}
