package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// revisions: "objects" holds the live objects (canonical JSON, the same
// bytes boltstore keeps, so digests agree); "revisions" one row per
// revision; the live revision is the head row's.
type revisions struct{ t *txn }

func (r revisions) Current(ctx context.Context) (int64, error) {
	h, err := r.t.loadHead(ctx)
	if err != nil {
		return 0, err
	}
	return h.revision, nil
}

func (r revisions) Objects(ctx context.Context) ([]*spec.Object, error) {
	rows, err := r.t.tx.Query(ctx, `SELECT kind, namespace, name, body FROM objects`)
	if err != nil {
		return nil, r.t.fail(ctx, "read objects", err)
	}
	defer rows.Close()
	var objs []*spec.Object
	for rows.Next() {
		raw := rows.RawValues()
		o := new(spec.Object)
		if err := json.Unmarshal(raw[3], o); err != nil {
			return nil, corrupt(fmt.Sprintf("object %q", fmt.Sprintf("%s/%s/%s", raw[0], raw[1], raw[2])), err)
		}
		objs = append(objs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, r.t.fail(ctx, "read objects", err)
	}
	plan.SortObjects(objs)
	return objs, nil
}

// revisionHeader is a revision without its change list (the "header"
// column).
type revisionHeader struct {
	ID      int64        `json:"id"`
	Time    time.Time    `json:"time"`
	Actor   string       `json:"actor"`
	Action  string       `json:"action"`
	Message string       `json:"message,omitempty"`
	Summary plan.Summary `json:"summary"`
}

func (r revisions) Commit(ctx context.Context, base int64, rev store.Revision, changes []plan.Change) (int64, error) {
	if err := r.t.check(store.DomainRevisions); err != nil {
		return 0, err
	}
	// The head row is locked: no other writer can move the live revision
	// between this check and the commit.
	if cur := r.t.head.revision; cur != base {
		return 0, fmt.Errorf("commit on revision %d: %w: the live revision is %d", base, store.ErrConflict, cur)
	}
	// The last change of an object decides it (a plan has one per object;
	// one statement may not touch a row twice).
	type row struct {
		ref  spec.Ref
		body []byte // nil: delete
	}
	last := make(map[spec.Ref]int, len(changes))
	rows := make([]row, 0, len(changes))
	var buf bytes.Buffer
	for _, c := range changes {
		var body []byte
		if c.Op != plan.Delete {
			buf.Reset()
			if err := plan.Canonical(&buf, c.After); err != nil {
				return 0, fmt.Errorf("encode %s: %w", c.Ref, err)
			}
			body = bytes.Clone(buf.Bytes())
		}
		if i, ok := last[c.Ref]; ok {
			rows[i].body = body
			continue
		}
		last[c.Ref] = len(rows)
		rows = append(rows, row{c.Ref, body})
	}
	var put, del [3][]string
	var bodies [][]byte
	for _, rw := range rows {
		cols := &put
		if rw.body == nil {
			cols = &del
		} else {
			bodies = append(bodies, rw.body)
		}
		cols[0], cols[1], cols[2] = append(cols[0], string(rw.ref.Kind)), append(cols[1], rw.ref.Namespace), append(cols[2], rw.ref.Name)
	}
	id := r.t.head.revision + 1
	if rev.ID != 0 {
		// An id given by the caller (the head is locked: ids stay
		// increasing).
		if rev.ID < id {
			return 0, fmt.Errorf("commit revision %d: %w: revision %d is already recorded", rev.ID, store.ErrConflict, id-1)
		}
		id = rev.ID
	}
	rev.ID = id
	rev.Summary = plan.Summarize(changes)
	rev.Refs = make([]store.ChangeRef, len(changes))
	for i, c := range changes {
		rev.Refs[i] = store.ChangeRef{Op: c.Op, Ref: c.Ref}
	}
	hdr, err := json.Marshal(revisionHeader{ID: id, Time: rev.Time, Actor: rev.Actor, Action: rev.Action, Message: rev.Message, Summary: rev.Summary})
	if err != nil {
		return 0, err
	}
	refs, err := json.Marshal(rev.Refs)
	if err != nil {
		return 0, err
	}
	cb, err := json.Marshal(changes)
	if err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	if len(del[0]) > 0 {
		b.Queue(`DELETE FROM objects o USING unnest($1::text[], $2::text[], $3::text[]) AS d(kind, namespace, name)
			WHERE o.kind = d.kind AND o.namespace = d.namespace AND o.name = d.name`, del[0], del[1], del[2])
	}
	if len(put[0]) > 0 {
		b.Queue(`INSERT INTO objects (kind, namespace, name, body) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
			ON CONFLICT (kind, namespace, name) DO UPDATE SET body = EXCLUDED.body`, put[0], put[1], put[2], bodies)
	}
	b.Queue(`INSERT INTO revisions (id, header, refs, changes) VALUES ($1, $2, $3, $4)`, id, hdr, refs, cb)
	if err := r.t.tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, r.t.fail(ctx, fmt.Sprintf("commit revision %d", id), err)
	}
	r.t.head.revision = id
	r.t.change.Revision = id
	return id, nil
}

func (r revisions) List(ctx context.Context, limit int) ([]store.Revision, error) {
	rows, err := r.t.tx.Query(ctx, `SELECT id, header FROM revisions ORDER BY id DESC LIMIT $1`, limitArg(limit))
	if err != nil {
		return nil, r.t.fail(ctx, "list revisions", err)
	}
	defer rows.Close()
	var out []store.Revision
	for rows.Next() {
		var (
			id  int64
			hdr []byte
		)
		if err := rows.Scan(&id, &hdr); err != nil {
			return nil, r.t.fail(ctx, "list revisions", err)
		}
		var h revisionHeader
		if err := json.Unmarshal(hdr, &h); err != nil {
			return nil, corrupt(fmt.Sprintf("revision %d", id), err)
		}
		out = append(out, store.Revision{ID: h.ID, Time: h.Time, Actor: h.Actor, Action: h.Action, Message: h.Message, Summary: h.Summary})
	}
	if err := rows.Err(); err != nil {
		return nil, r.t.fail(ctx, "list revisions", err)
	}
	return out, nil
}

func (r revisions) Get(ctx context.Context, id int64) (*store.Revision, error) {
	var hdr, refs []byte
	err := r.t.tx.QueryRow(ctx, `SELECT header, refs FROM revisions WHERE id = $1`, id).Scan(&hdr, &refs)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("revision %d: %w", id, store.ErrNotFound)
	} else if err != nil {
		return nil, r.t.fail(ctx, fmt.Sprintf("read revision %d", id), err)
	}
	var h revisionHeader
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, corrupt(fmt.Sprintf("revision %d", id), err)
	}
	rev := &store.Revision{ID: h.ID, Time: h.Time, Actor: h.Actor, Action: h.Action, Message: h.Message, Summary: h.Summary}
	if err := json.Unmarshal(refs, &rev.Refs); err != nil {
		return nil, corrupt(fmt.Sprintf("revision %d", id), err)
	}
	return rev, nil
}

func (r revisions) Changes(ctx context.Context, id int64) ([]plan.Change, error) {
	var cb []byte
	err := r.t.tx.QueryRow(ctx, `SELECT changes FROM revisions WHERE id = $1`, id).Scan(&cb)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("revision %d: %w", id, store.ErrNotFound)
	} else if err != nil {
		return nil, r.t.fail(ctx, fmt.Sprintf("read revision %d", id), err)
	}
	var changes []plan.Change
	if err := json.Unmarshal(cb, &changes); err != nil {
		return nil, corrupt(fmt.Sprintf("changes of revision %d", id), err)
	}
	return changes, nil
}

// ChangesAfter reads one revision at a time, so that fn is not called
// while a result is open (and only one revision's changes are in memory).
func (r revisions) ChangesAfter(ctx context.Context, id int64, fn func(int64, []plan.Change) error) error {
	below := int64(math.MaxInt64)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var (
			rid int64
			cb  []byte
		)
		err := r.t.tx.QueryRow(ctx, `SELECT id, changes FROM revisions WHERE id > $1 AND id < $2 ORDER BY id DESC LIMIT 1`, id, below).Scan(&rid, &cb)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return r.t.fail(ctx, "read revisions", err)
		}
		var changes []plan.Change
		if err := json.Unmarshal(cb, &changes); err != nil {
			return corrupt(fmt.Sprintf("changes of revision %d", rid), err)
		}
		if err := fn(rid, changes); err != nil {
			return err
		}
		below = rid
	}
}
