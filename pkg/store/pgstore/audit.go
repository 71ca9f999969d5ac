package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// auditLog: "audit" holds the entries by sequence, verbatim;
// "audit_cursors" the named positions; the chain head is in the head
// row, which an Update holds locked: the head an Update reads is the one
// it extends, whichever replica appends.
type auditLog struct{ t *txn }

func (a auditLog) Head(ctx context.Context) (store.AuditHead, error) {
	h, err := a.t.loadHead(ctx)
	if err != nil {
		return store.AuditHead{}, err
	}
	return store.AuditHead{Seq: h.auditSeq, Hash: h.auditHash}, nil
}

func (a auditLog) Append(ctx context.Context, recs []store.AuditRecord, head store.AuditHead) error {
	if err := a.t.check(store.DomainAudit); err != nil {
		return err
	}
	seqs, data := make([]int64, 0, len(recs)), make([][]byte, 0, len(recs))
	seen := map[int64]bool{}
	for _, r := range recs {
		if r.Seq <= 0 {
			return fmt.Errorf("append audit entry: bad sequence %d", r.Seq)
		}
		if seen[r.Seq] {
			return fmt.Errorf("append audit entry %d: %w: it is appended twice", r.Seq, store.ErrConflict)
		}
		seen[r.Seq] = true
		seqs, data = append(seqs, r.Seq), append(data, r.Data)
	}
	if len(seqs) > 0 {
		// Checked first rather than left to the primary key: a refused
		// append must leave the transaction usable, as on bbolt.
		var taken int64
		err := a.t.tx.QueryRow(ctx, `SELECT seq FROM audit WHERE seq = ANY($1) ORDER BY seq LIMIT 1`, seqs).Scan(&taken)
		if err == nil {
			return fmt.Errorf("append audit entry %d: %w: it is already stored", taken, store.ErrConflict)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return a.t.fail(ctx, "append audit entries", err)
		}
		if _, err := a.t.tx.Exec(ctx, `INSERT INTO audit (seq, data) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, seqs, data); err != nil {
			return a.t.fail(ctx, "append audit entries", err)
		}
	}
	a.t.head.auditSeq, a.t.head.auditHash = head.Seq, head.Hash
	return nil
}

// scanPage is how many entries Scan reads at a time: fn runs between
// pages, never while a result is open.
const scanPage = 1000

func (a auditLog) Scan(ctx context.Context, reverse bool, fn func(store.AuditRecord) bool) error {
	q := `SELECT seq, data FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2`
	var from int64
	if reverse {
		q, from = `SELECT seq, data FROM audit WHERE seq < $1 ORDER BY seq DESC LIMIT $2`, math.MaxInt64
	}
	for {
		rows, err := a.t.tx.Query(ctx, q, from, scanPage)
		if err != nil {
			return a.t.fail(ctx, "read audit entries", err)
		}
		var page []store.AuditRecord
		for rows.Next() {
			var r store.AuditRecord
			if err := rows.Scan(&r.Seq, &r.Data); err != nil {
				rows.Close()
				return a.t.fail(ctx, "read audit entries", err)
			}
			page = append(page, r)
		}
		if err := rows.Err(); err != nil {
			return a.t.fail(ctx, "read audit entries", err)
		}
		for _, r := range page {
			if !fn(r) {
				return nil
			}
		}
		if len(page) < scanPage {
			return nil
		}
		from = page[len(page)-1].Seq
	}
}

func (a auditLog) Cursor(ctx context.Context, name string) (int64, bool, error) {
	var n int64
	err := a.t.tx.QueryRow(ctx, `SELECT n FROM audit_cursors WHERE name = $1`, name).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, a.t.fail(ctx, "read audit cursor "+name, err)
	}
	return n, true, nil
}

func (a auditLog) SetCursor(ctx context.Context, name string, n int64) error {
	if err := a.t.check(store.DomainAudit); err != nil {
		return err
	}
	_, err := a.t.tx.Exec(ctx, `INSERT INTO audit_cursors (name, n) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET n = EXCLUDED.n`, name, n)
	if err != nil {
		return a.t.fail(ctx, "store audit cursor "+name, err)
	}
	return nil
}
