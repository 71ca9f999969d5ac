package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

type received struct {
	header http.Header
	body   []byte
}

// receiver records requests and answers with the statuses in plan (the
// last one repeats).
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	got   []received
	plan  []int
	calls atomic.Int32
}

func newReceiver(t *testing.T, plan ...int) *receiver {
	r := &receiver{plan: plan}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), b})
		i := min(len(r.got)-1, len(r.plan)-1)
		status := 200
		if i >= 0 {
			status = r.plan[i]
		}
		r.mu.Unlock()
		r.calls.Add(1)
		w.WriteHeader(status)
		io.WriteString(w, "ok\x00\n")
	}))
	t.Cleanup(r.Close)
	return r
}

func newDispatcher(t *testing.T, st store.Store) *Dispatcher {
	t.Helper()
	d, err := New(Options{Store: st, Backoff: func(int) time.Duration { return 20 * time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func openStore(t *testing.T, dir string) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func hook(url string, events ...string) *Hook {
	return &Hook{Tenant: "acme", Name: "ops", URL: url, Events: events, Secret: []byte("whsec"), AllowPrivate: true,
		Timeout: 2 * time.Second, MaxAttempts: 3}
}

func waitState(t *testing.T, d *Dispatcher, id, state string) Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		del, err := d.Get(id)
		if err == nil && del.State == state {
			return del
		}
		time.Sleep(10 * time.Millisecond)
	}
	del, _ := d.Get(id)
	t.Fatalf("delivery %s: state %s after 10s, want %s (%+v)", id, del.State, state, del)
	return del
}

func TestDeliverSigned(t *testing.T) {
	rcv := newReceiver(t, 200)
	st := openStore(t, t.TempDir())
	defer st.Close()
	d := newDispatcher(t, st)
	d.SetHooks([]*Hook{hook(rcv.URL, "key.*")})
	d.Start()
	defer d.Stop()
	ev := Event{ID: "evt_7", Type: "key.created", Time: time.Now().UTC(), Tenant: "acme", Data: map[string]any{"key": "stoa_sk_x"}}
	ds, err := d.Enqueue([]Event{ev, {ID: "evt_8", Type: "quota.exhausted", Tenant: "acme"}, {ID: "evt_9", Type: "key.created", Tenant: "globex"}}, nil)
	if err != nil || len(ds) != 1 {
		t.Fatalf("enqueue: %d deliveries, %v (want 1: other types and tenants do not match)", len(ds), err)
	}
	del := waitState(t, d, ds[0].ID, StateSucceeded)
	if del.Attempts != 1 || del.LastStatus != 200 || del.LastResponse != "ok.." {
		t.Fatalf("delivery %+v", del)
	}
	got := rcv.got[0]
	if got.header.Get(HeaderEvent) != "key.created" || got.header.Get(HeaderDelivery) != ds[0].ID {
		t.Fatalf("headers %v", got.header)
	}
	if !receiverCheck("whsec", got.header.Get(HeaderSignature), got.body) {
		t.Fatal("signature does not verify")
	}
	var body map[string]any
	json.Unmarshal(got.body, &body)
	if body["id"] != "evt_7" || body["type"] != "key.created" || body["tenant"] != "acme" || body["data"].(map[string]any)["key"] != "stoa_sk_x" {
		t.Fatalf("body %s", got.body)
	}
	if _, ok := body["time"]; !ok {
		t.Fatalf("body lacks time: %s", got.body)
	}
}

func TestRetryThenFail(t *testing.T) {
	rcv := newReceiver(t, 500, 503, 200)
	st := openStore(t, t.TempDir())
	defer st.Close()
	d := newDispatcher(t, st)
	d.SetHooks([]*Hook{hook(rcv.URL, "*")})
	d.Start()
	defer d.Stop()
	ds, _ := d.Enqueue([]Event{{ID: "evt_1", Type: "key.created", Tenant: "acme"}}, nil)
	del := waitState(t, d, ds[0].ID, StateSucceeded)
	if del.Attempts != 3 {
		t.Fatalf("attempts %d, want 3", del.Attempts)
	}
	// Every attempt carries the same delivery id and body.
	if rcv.got[0].header.Get(HeaderDelivery) != rcv.got[2].header.Get(HeaderDelivery) || string(rcv.got[0].body) != string(rcv.got[2].body) {
		t.Fatal("retries differ from the first attempt")
	}

	down := newReceiver(t, 500)
	d.SetHooks([]*Hook{hook(down.URL, "*")})
	ds, _ = d.Enqueue([]Event{{ID: "evt_2", Type: "key.created", Tenant: "acme"}}, nil)
	del = waitState(t, d, ds[0].ID, StateFailed)
	if del.Attempts != 3 || del.LastStatus != 500 || !strings.Contains(del.LastError, "HTTP 500") {
		t.Fatalf("failed delivery %+v", del)
	}
	// Redelivery after the receiver recovered: a new delivery, same event.
	down.plan = []int{204}
	re, err := d.Redeliver(del.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Wait(context.Background(), re.ID)
	if err != nil || got.State != StateSucceeded || got.RedeliveryOf != del.ID || got.EventID != "evt_2" {
		t.Fatalf("redelivery %+v %v", got, err)
	}
	list, _ := d.List(Filter{Tenant: "acme", Webhook: "ops", State: StateFailed})
	if len(list) != 1 || list[0].ID != del.ID || list[0].Body != nil {
		t.Fatalf("list failed: %+v", list)
	}
}

func TestSSRFRefusal(t *testing.T) {
	rcv := newReceiver(t, 200)
	st := openStore(t, t.TempDir())
	defer st.Close()
	d := newDispatcher(t, st)
	h := hook(rcv.URL, "*")
	h.AllowPrivate = false
	d.SetHooks([]*Hook{h})
	d.Start()
	defer d.Stop()
	del, err := d.SendTest("acme", "ops", "tester")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := d.Wait(context.Background(), del.ID)
	if got.State != StateFailed || got.Attempts != 1 || !strings.Contains(got.LastError, "loopback") {
		t.Fatalf("want an immediate refusal, got %+v", got)
	}
	if rcv.calls.Load() != 0 {
		t.Fatal("the receiver was reached")
	}
	if _, err := d.SendTest("acme", "nope", "tester"); err == nil {
		t.Fatal("test of an unknown webhook should fail")
	}
}

// TestSurvivesRestart queues deliveries, closes everything before any
// attempt, and delivers them from a fresh dispatcher on the reopened store.
func TestSurvivesRestart(t *testing.T) {
	rcv := newReceiver(t, 200)
	dir := t.TempDir()
	st := openStore(t, dir)
	d := newDispatcher(t, st)
	d.SetHooks([]*Hook{hook(rcv.URL, "*")})
	ctx := context.Background()
	ds, err := d.Enqueue([]Event{{ID: "evt_1", Type: "key.created", Tenant: "acme"}, {ID: "evt_2", Type: "key.revoked", Tenant: "acme"}},
		func(tx store.Tx) error {
			return tx.Meta().Put(ctx, store.MetaWebhookFeed, "cursor", store.EncodeSeq(2))
		})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	st = openStore(t, dir)
	defer st.Close()
	d = newDispatcher(t, st)
	if d.Pending() != 2 {
		t.Fatalf("pending after restart: %d", d.Pending())
	}
	d.SetHooks([]*Hook{hook(rcv.URL, "*")})
	d.Start()
	defer d.Stop()
	for _, del := range ds {
		waitState(t, d, del.ID, StateSucceeded)
	}
	st.View(ctx, func(tx store.Tx) error {
		if v, _ := tx.Meta().Get(ctx, store.MetaWebhookFeed, "cursor"); string(v) != string(store.EncodeSeq(2)) {
			t.Error("cursor not committed with the deliveries")
		}
		return nil
	})
}

func TestDisabledHoldsAndDeletedFails(t *testing.T) {
	rcv := newReceiver(t, 200)
	st := openStore(t, t.TempDir())
	defer st.Close()
	d := newDispatcher(t, st)
	h := hook(rcv.URL, "*")
	h.Disabled = true
	d.SetHooks([]*Hook{h})
	d.Start()
	defer d.Stop()
	ds, _ := d.Enqueue([]Event{{ID: "evt_1", Type: "key.created", Tenant: "acme"}}, nil)
	time.Sleep(100 * time.Millisecond)
	if del, _ := d.Get(ds[0].ID); del.State != StatePending || del.Attempts != 0 || rcv.calls.Load() != 0 {
		t.Fatalf("disabled webhook was attempted: %+v", del)
	}
	d.SetHooks(nil)
	// Deleted: the held delivery fails at its next check. Shorten it.
	d.mu.Lock()
	n, _ := ParseID(ds[0].ID)
	d.sched[n] = time.Now()
	d.mu.Unlock()
	d.poke()
	del := waitState(t, d, ds[0].ID, StateFailed)
	if !strings.Contains(del.LastError, "no longer exists") {
		t.Fatalf("%+v", del)
	}
}

func TestTrimKeepsPending(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	d, err := New(Options{Store: st, Keep: 5})
	if err != nil {
		t.Fatal(err)
	}
	d.SetHooks([]*Hook{hook("http://192.0.2.1/", "*")})
	for i := 0; i < 20; i++ {
		ds, _ := d.Enqueue([]Event{{ID: "e", Type: "key.created", Tenant: "acme"}}, nil)
		if i > 0 {
			// Mark all but the first finished, as delivery would.
			del, _ := d.Get(ds[0].ID)
			del.State = StateSucceeded
			n, _ := ParseID(del.ID)
			d.finish(n, &del)
		}
	}
	list, _ := d.List(Filter{Limit: 100})
	if len(list) > 7 || list[len(list)-1].ID != "dlv_1" {
		t.Fatalf("kept %d deliveries, oldest %s; want about 5 plus the pending dlv_1", len(list), list[len(list)-1].ID)
	}
}

// TestTwoDispatchersDeliverOnce: dispatchers sharing one store (replicas
// on one database) both see every pending delivery, and each delivery is
// attempted by whichever claims it first, once.
func TestTwoDispatchersDeliverOnce(t *testing.T) {
	rcv := newReceiver(t, 200)
	st := openStore(t, t.TempDir())
	defer st.Close()
	a := newDispatcher(t, st)
	a.SetHooks([]*Hook{hook(rcv.URL, "*")})
	var evs []Event
	for i := range 20 {
		evs = append(evs, Event{ID: fmt.Sprintf("evt_%d", i), Type: "key.created", Tenant: "acme"})
	}
	ds, err := a.Enqueue(evs, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newDispatcher(t, st) // loads the same pending deliveries
	b.SetHooks([]*Hook{hook(rcv.URL, "*")})
	if a.Pending() != 20 || b.Pending() != 20 {
		t.Fatalf("pending: %d and %d", a.Pending(), b.Pending())
	}
	a.Start()
	defer a.Stop()
	b.Start()
	defer b.Stop()
	for _, del := range ds {
		waitState(t, a, del.ID, StateSucceeded)
	}
	deadline := time.Now().Add(10 * time.Second)
	for (a.Pending() > 0 || b.Pending() > 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := rcv.calls.Load(); n != 20 {
		t.Fatalf("%d requests for 20 deliveries", n)
	}
	seen := map[string]bool{}
	rcv.mu.Lock()
	for _, r := range rcv.got {
		id := r.header.Get(HeaderDelivery)
		if seen[id] {
			t.Errorf("delivery %s sent twice", id)
		}
		seen[id] = true
	}
	rcv.mu.Unlock()
}
