package webhook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/audit"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

// TestRuntimeDeliversEvents runs the runtime on a real store against a
// real receiver: a tenant's event becomes a signed delivery, a test
// event and a redelivery are waited for and audited, and a Webhook
// whose secret cannot be read rejects the revision.
func TestRuntimeDeliversEvents(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []string
		sigs []string
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, sigs = append(got, string(b)), append(sigs, r.Header.Get(HeaderSignature))
		mu.Unlock()
	}))
	defer recv.Close()
	t.Setenv("STOA_TEST_WEBHOOK_SECRET", "s3cret")

	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	evl := events.NewLog(st, log)
	trail, err := audit.NewTrail(audit.TrailOptions{Store: st, Events: evl, Log: log, Revision: func() int64 { return 1 }})
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewRuntime(RuntimeOptions{Store: st, Events: evl, Metrics: prometheus.NewRegistry(), Log: log, Audit: trail})
	if err != nil {
		t.Fatal(err)
	}
	hook := func(secretEnv string) *state.Revision {
		o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindWebhook, Metadata: spec.Metadata{Name: "ops", Namespace: "acme"},
			Spec: &spec.WebhookSpec{URL: recv.URL, Events: []string{"key.*"}, SecretRef: spec.SecretRef{Env: secretEnv}, AllowPrivate: true}}
		return state.New(1, []*spec.Object{o})
	}
	if _, err := w.Prepare(hook("STOA_TEST_NO_SUCH_SECRET")); err == nil || !strings.Contains(err.Error(), "webhook acme/ops") {
		t.Fatalf("a hook without its secret: %v", err)
	}
	swap, err := w.Prepare(hook("STOA_TEST_WEBHOOK_SECRET"))
	if err != nil {
		t.Fatal(err)
	}
	swap()
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())

	evl.Emit("key.created", "acme", "key stoa_x created", map[string]any{"key": "stoa_x"})
	evl.Emit("key.created", "globex", "not acme's", nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := w.List(Filter{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].State == StateSucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}

	d, waited, err := w.Test(context.Background(), "acme", "ops", "alice", true)
	if err != nil || !waited || d.State != StateSucceeded {
		t.Fatalf("test: %+v waited %v %v", d, waited, err)
	}
	re, waited, err := w.Redeliver(context.Background(), d.ID, "bob", true)
	if err != nil || !waited || re.RedeliveryOf != d.ID {
		t.Fatalf("redeliver: %+v waited %v %v", re, waited, err)
	}
	if _, _, err := w.Test(context.Background(), "acme", "nope", "alice", false); !errors.Is(err, ErrNoHook) {
		t.Fatalf("test of a missing hook: %v", err)
	}
	mu.Lock()
	if len(got) != 3 || !strings.Contains(got[0], `"key.created"`) || sigs[0] == "" {
		t.Errorf("received %d: %q (signatures %q)", len(got), got, sigs)
	}
	mu.Unlock()
	var actions []string
	trail.List(audit.Filter{}, func(e audit.Entry) error { actions = append(actions, e.Action+" "+e.Actor); return nil })
	if strings.Join(actions, ",") != "key.create stoad,key.create stoad,webhook.test alice,webhook.redeliver bob" {
		t.Fatalf("audit: %v", actions)
	}
}
