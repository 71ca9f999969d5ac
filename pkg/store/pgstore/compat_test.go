package pgstore

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
	"github.com/stoa-gateway/stoa/pkg/store/storetest"
)

// TestSameObjectsAsBoltstore: the same apply on either store stores the
// canonical bytes of each object, so what a replica loads has the
// digests the apply planned with (an unchanged object plans as
// unchanged, whichever store stoad runs on).
func TestSameObjectsAsBoltstore(t *testing.T) {
	changes := storetest.Tools10k()
	var want []*spec.Object
	for _, c := range changes {
		want = append(want, c.After)
	}
	commit := func(s store.Store) {
		t.Helper()
		if err := s.Update(ctx, func(tx store.Tx) error {
			_, err := tx.Revisions().Commit(ctx, 0, store.Revision{Time: time.Now()}, changes)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	pg := open(t, freshDB(t))
	bolt, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	commit(pg)
	commit(bolt)
	fromPG, _ := load(t, pg)
	fromBolt, _ := load(t, bolt)
	wantD, pgD, boltD := plan.DigestAll(want), plan.DigestAll(fromPG), plan.DigestAll(fromBolt)
	if len(pgD) != len(want) || len(boltD) != len(want) {
		t.Fatalf("%d objects on pgstore, %d on boltstore, want %d", len(pgD), len(boltD), len(want))
	}
	for ref, d := range wantD {
		if pgD[ref] != d || boltD[ref] != d {
			t.Fatalf("%s: digest %s planned, %s on pgstore, %s on boltstore", ref, d, pgD[ref], boltD[ref])
		}
	}
	// The stored bytes are the canonical encoding itself.
	rows, err := pg.pool.Query(ctx, `SELECT body FROM objects`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var buf bytes.Buffer
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			t.Fatal(err)
		}
		o := new(spec.Object)
		if err := json.Unmarshal(body, o); err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		if err := plan.Canonical(&buf, o); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), body) {
			t.Fatalf("%s stored as\n%s\nnot its canonical encoding\n%s", o.Ref(), body, buf.Bytes())
		}
	}
}
