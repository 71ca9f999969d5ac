package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// meta: "meta" holds (namespace, key) → value; keys are bytea, since
// they may hold NUL (which text refuses), and sort bytewise as on bbolt.
type meta struct{ t *txn }

func checkNS(ns store.Namespace) error {
	if !slices.Contains(store.Namespaces(), ns) {
		return fmt.Errorf("meta namespace %q is not one of the store's", ns)
	}
	return nil
}

func (m meta) Get(ctx context.Context, ns store.Namespace, key string) ([]byte, error) {
	if err := checkNS(ns); err != nil {
		return nil, err
	}
	var v []byte
	err := m.t.tx.QueryRow(ctx, `SELECT value FROM meta WHERE ns = $1 AND key = $2`, string(ns), []byte(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s %q: %w", ns, key, store.ErrNotFound)
	} else if err != nil {
		return nil, m.t.fail(ctx, fmt.Sprintf("read %s %q", ns, key), err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (m meta) Put(ctx context.Context, ns store.Namespace, key string, value []byte) error {
	if err := m.t.check(store.DomainMeta); err != nil {
		return err
	}
	if err := checkNS(ns); err != nil {
		return err
	}
	if value == nil {
		value = []byte{} // as bbolt: stored empty
	}
	_, err := m.t.tx.Exec(ctx, `INSERT INTO meta (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value`,
		string(ns), []byte(key), value)
	if err != nil {
		return m.t.fail(ctx, fmt.Sprintf("store %s %q", ns, key), err)
	}
	return nil
}

func (m meta) Delete(ctx context.Context, ns store.Namespace, key string) error {
	if err := m.t.check(store.DomainMeta); err != nil {
		return err
	}
	if err := checkNS(ns); err != nil {
		return err
	}
	if _, err := m.t.tx.Exec(ctx, `DELETE FROM meta WHERE ns = $1 AND key = $2`, string(ns), []byte(key)); err != nil {
		return m.t.fail(ctx, fmt.Sprintf("delete %s %q", ns, key), err)
	}
	return nil
}

// List reads the namespace whole before calling fn (namespaces are
// small), so that fn may use the transaction.
func (m meta) List(ctx context.Context, ns store.Namespace, fn func(string, []byte) error) error {
	if err := checkNS(ns); err != nil {
		return err
	}
	rows, err := m.t.tx.Query(ctx, `SELECT key, value FROM meta WHERE ns = $1 ORDER BY key`, string(ns))
	if err != nil {
		return m.t.fail(ctx, "list "+string(ns), err)
	}
	type kv struct {
		k string
		v []byte
	}
	var all []kv
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return m.t.fail(ctx, "list "+string(ns), err)
		}
		all = append(all, kv{string(k), v})
	}
	if err := rows.Err(); err != nil {
		return m.t.fail(ctx, "list "+string(ns), err)
	}
	for _, e := range all {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}
