package audit

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

func openLog(t *testing.T) (*Log, *boltstore.Store) {
	t.Helper()
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := Open(st)
	if err != nil {
		t.Fatal(err)
	}
	return l, st
}

func fill(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		_, err := l.Append([]Entry{{Actor: "alice (uid 1000)", Action: "apply", Target: "revision", Revision: int64(i + 1),
			Details: map[string]string{"b": "2", "a": "<&>"}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestChainVerifies(t *testing.T) {
	l, _ := openLog(t)
	if r, err := l.Verify(); err != nil || !r.OK || r.Entries != 0 {
		t.Fatalf("empty log: %+v %v", r, err)
	}
	fill(t, l, 5)
	r, err := l.Verify()
	if err != nil || !r.OK || r.Entries != 5 || len(r.Head) != 64 {
		t.Fatalf("verify: %+v %v", r, err)
	}
	var got []Entry
	l.List(Filter{}, func(e Entry) error { got = append(got, e); return nil })
	if got[0].Prev != Genesis || got[1].Prev != got[0].Hash || got[4].Hash != r.Head {
		t.Fatalf("links: %+v", got)
	}
	if !strings.Contains(string(Canonical(got[0])), `"a":"<&>","b":"2"`) {
		t.Fatalf("canonical form: %s", Canonical(got[0]))
	}
}

// tamper rewrites stored entry seq with fn, as someone with the file would.
func tamper(t *testing.T, st *boltstore.Store, seq int64, fn func(e map[string]any)) {
	t.Helper()
	raw(t, st, "audit", seq, func(v []byte) []byte {
		var e map[string]any
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatal(err)
		}
		fn(e)
		nv, _ := json.Marshal(e)
		return nv
	})
}

// raw replaces (nil: deletes) stored record seq of bucket.
func raw(t *testing.T, st *boltstore.Store, bucket string, seq int64, fn func([]byte) []byte) {
	t.Helper()
	if err := st.Tamper(bucket, store.EncodeSeq(seq), fn); err != nil {
		t.Fatal(err)
	}
}

func TestTamperDetected(t *testing.T) {
	tests := []struct {
		name   string
		modify func(t *testing.T, st *boltstore.Store)
		at     int64
		want   string
	}{
		{"field edited", func(t *testing.T, st *boltstore.Store) {
			tamper(t, st, 3, func(e map[string]any) { e["actor"] = "mallory" })
		}, 3, "modified"},
		{"field edited and hash recomputed", func(t *testing.T, st *boltstore.Store) {
			tamper(t, st, 3, func(e map[string]any) {
				e["actor"] = "mallory"
				b, _ := json.Marshal(e)
				var en Entry
				json.Unmarshal(b, &en)
				e["hash"] = HashOf(en)
			})
		}, 4, "does not link"},
		{"entry removed", func(t *testing.T, st *boltstore.Store) {
			raw(t, st, "audit", 2, func([]byte) []byte { return nil })
		}, 3, "missing"},
		{"last entry removed", func(t *testing.T, st *boltstore.Store) {
			raw(t, st, "audit", 5, func([]byte) []byte { return nil })
		}, 5, "removed"},
		{"unknown field added", func(t *testing.T, st *boltstore.Store) {
			tamper(t, st, 1, func(e map[string]any) { e["note"] = "x" })
		}, 1, "does not decode"},
		{"garbage", func(t *testing.T, st *boltstore.Store) {
			raw(t, st, "audit", 4, func([]byte) []byte { return []byte("{") })
		}, 4, "does not decode"},
		{"head garbage", func(t *testing.T, st *boltstore.Store) {
			if err := st.Tamper("audit_meta", []byte("head"), func([]byte) []byte { return []byte("{") }); err != nil {
				t.Fatal(err)
			}
		}, 5, "head does not decode"},
		{"entry inserted at the end", func(t *testing.T, st *boltstore.Store) {
			raw(t, st, "audit", 6, func([]byte) []byte { return []byte(`{"seq":6}`) })
		}, 6, "does not link"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, st := openLog(t)
			fill(t, l, 5)
			tc.modify(t, st)
			r, err := l.Verify()
			if err != nil {
				t.Fatal(err)
			}
			if r.OK || r.BrokenAt != tc.at || !strings.Contains(r.Problem, tc.want) {
				t.Fatalf("got %+v, want broken at %d (%s)", r, tc.at, tc.want)
			}
		})
	}
}

func TestAppendConcurrentAndCursor(t *testing.T) {
	l, _ := openLog(t)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if _, err := l.Append([]Entry{{Actor: "x", Action: "a"}, {Actor: "y", Action: "b"}}, map[string]int64{"events": int64(i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if r, _ := l.Verify(); !r.OK || r.Entries != 80 {
		t.Fatalf("verify: %+v", r)
	}
	if c, ok, err := l.Cursor("events"); err != nil || !ok || c != 9 {
		t.Fatalf("cursor %d %v %v", c, ok, err)
	}
}

func TestListFilter(t *testing.T) {
	l, _ := openLog(t)
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.Append([]Entry{
		{Time: t1, Actor: "alice (uid 1000)", Action: "apply", Target: "revision 1"},
		{Time: t1.Add(time.Hour), Actor: "bob (uid 1001)", Action: "key.created", Target: "key stoa_sk_x", Tenant: "acme"},
		{Time: t1.Add(2 * time.Hour), Actor: "alice (uid 1000)", Action: "key.revoked", Target: "key stoa_sk_x", Tenant: "acme"},
	}, nil)
	count := func(f Filter) int {
		n := 0
		l.List(f, func(Entry) error { n++; return nil })
		return n
	}
	for _, tc := range []struct {
		f    Filter
		want int
	}{
		{Filter{}, 3},
		{Filter{Actor: "ALICE"}, 2},
		{Filter{Since: t1.Add(30 * time.Minute)}, 2},
		{Filter{Action: "key.*"}, 2},
		{Filter{Action: "apply"}, 1},
		{Filter{Tenant: "acme", Actor: "bob"}, 1},
		{Filter{Limit: 2}, 2},
	} {
		if got := count(tc.f); got != tc.want {
			t.Errorf("%+v: %d entries, want %d", tc.f, got, tc.want)
		}
	}
}
