package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/specload"
)

// fakeAPI is a LocalAPI on a unix socket with canned, plausible answers for
// every route the CLI uses; tests drive the real command tree against it
// (Run with --socket). Objects start as the quickstart example, defaulted
// as stoad stores them.
type fakeAPI struct {
	t      *testing.T
	socket string

	mu       sync.Mutex
	objects  []*spec.Object
	revision int64
	events   []api.Event
	live     chan api.Event // events sent to followers
	rotate   []api.KeyRotateRequest
	calls    []string
}

var t0 = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

func quickstartObjects(t testing.TB) []*spec.Object {
	t.Helper()
	res, err := specload.Load(context.Background(), []string{filepath.Join("..", "..", "examples", "quickstart")}, specload.Options{})
	if err != nil || res.Diagnostics.HasErrors() {
		t.Fatalf("load quickstart: %v %v", err, res.Diagnostics)
	}
	for _, o := range res.Objects {
		o.Source = nil
	}
	return res.Objects
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	dir, err := os.MkdirTemp("", "stoa-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	fa := &fakeAPI{t: t, socket: filepath.Join(dir, "s.sock"), objects: quickstartObjects(t), revision: 3,
		live: make(chan api.Event, 16)}
	fa.events = []api.Event{
		{Seq: 1, Time: t0, Type: "config.applied", Message: "revision 1", Data: map[string]any{"revision": 1}},
		{Seq: 2, Time: t0, Type: "key.created", Tenant: "acme", Message: "key created"},
		{Seq: 3, Time: t0, Type: "config.applied", Message: "revision 3", Data: map[string]any{"revision": 3}},
	}
	ln, err := net.Listen("unix", fa.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fa.mux()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return fa
}

// run runs one stoa command line against the fake.
func (fa *fakeAPI) run(args ...string) (code int, stdout, stderr string) {
	return fa.runCtx(context.Background(), args...)
}

func (fa *fakeAPI) runCtx(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Run(ctx, append([]string{"--socket", fa.socket}, args...), &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errb})
	return code, out.String(), errb.String()
}

func writeJSONResp(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (fa *fakeAPI) mux() http.Handler {
	mux := http.NewServeMux()
	ok := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { writeJSONResp(w, 200, v) }
	}
	change := api.ApplyResponse{Changes: []plan.Change{{Op: plan.Create, Ref: spec.Ref{Kind: spec.KindTenant, Name: "initech"}}},
		Summary: plan.Summary{Create: 1}, Revision: 4, Created: true}
	key := api.KeyInfo{ID: "k3v7q2m4x5c6b7n2", Prefix: "stoa_sk_k3v7q2m4x5c6b7n2", Tenant: "acme", Consumer: "web-shop", State: "active",
		CreatedAt: t0, ExpiresAt: t0.Add(90 * 24 * time.Hour)}
	delivery := api.WebhookDelivery{ID: "dlv_1", Tenant: "acme", Webhook: "ops", EventID: "evt_1", EventType: "key.created",
		State: "succeeded", Attempts: 1, CreatedAt: t0, LastStatus: 204}
	snap := api.Snapshot{ID: "snp_1", Time: t0, Source: "proxy", Tenant: "acme", Tool: "billing-api", Revision: 3, Reason: "5xx",
		UpstreamStatus: 502, Request: api.SnapshotMessage{Method: "GET", URL: "http://u/x"}, Response: api.SnapshotMessage{Status: 502},
		Curl: "curl -sS 'http://u/x'\n"}
	sample := api.StatsSample{Time: t0, IntervalSeconds: 1, Revision: 3, Daemon: api.DaemonInfo{Version: "v0.0.0-test", PID: 42},
		Tenants: []api.TenantStats{{Name: "acme", Tools: []api.ToolStats{{Name: "billing-api"}}}}}

	mux.HandleFunc("GET "+api.PathStatus, func(w http.ResponseWriter, r *http.Request) {
		fa.mu.Lock()
		defer fa.mu.Unlock()
		counts := map[string]int{}
		for _, o := range fa.objects {
			counts[string(o.Kind)]++
		}
		writeJSONResp(w, 200, api.Status{Version: "v0.0.0-test", PID: 42, StartedAt: t0, Uptime: "1h0m0s", Revision: fa.revision,
			Objects: counts, StateDir: "/var/lib/stoa", Listeners: []api.Listener{{Name: "proxy", Address: "127.0.0.1:8080"}},
			Components: []api.Component{{Name: "proxy", State: "ok", Data: map[string]any{"routes": 3}}}})
	})
	mux.HandleFunc("GET "+api.PathObjects, func(w http.ResponseWriter, r *http.Request) {
		fa.mu.Lock()
		defer fa.mu.Unlock()
		q := r.URL.Query()
		var kind spec.Kind
		if k := q.Get("kind"); k != "" {
			kind, _ = spec.ParseKind(k)
		}
		list := api.ObjectList{Revision: fa.revision, Items: []*spec.Object{}}
		for _, o := range fa.objects {
			if (kind == "" || o.Kind == kind) && (q.Get("namespace") == "" || o.Metadata.Namespace == q.Get("namespace")) &&
				(q.Get("name") == "" || o.Metadata.Name == q.Get("name")) {
				list.Items = append(list.Items, spec.Mask(o))
			}
		}
		if q.Get("name") != "" && len(list.Items) == 0 {
			writeJSONResp(w, 404, api.ErrorBody{Error: &api.Error{Code: api.CodeNotFound, Message: "not found"}})
			return
		}
		writeJSONResp(w, 200, list)
	})
	mux.HandleFunc("GET "+api.PathDigests, ok(api.DigestList{Revision: 3, Items: []api.ObjectDigest{}}))
	mux.HandleFunc("POST "+api.PathApply, ok(change))
	mux.HandleFunc("POST "+api.PathDelete, ok(change))
	mux.HandleFunc("POST "+api.PathRollback, ok(change))
	rev := api.Revision{ID: 3, Time: t0, Actor: "alice (uid 1000)", Action: "apply", Summary: plan.Summary{Create: 2}, Message: "initial"}
	mux.HandleFunc("GET "+api.PathRevisions, ok(api.RevisionList{Current: 3, Items: []api.Revision{rev, {ID: 2, Time: t0, Actor: "bob", Action: "delete"}}}))
	mux.HandleFunc("GET "+api.PathRevisions+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		rv := rev
		rv.Changes = change.Changes
		writeJSONResp(w, 200, rv)
	})
	mux.HandleFunc("GET "+api.PathEvents, fa.serveEvents)
	mux.HandleFunc("GET "+api.PathKeys, ok(api.KeyList{Items: []api.KeyInfo{key, {ID: "r3v0k3d0000000aa", Prefix: "stoa_sk_r3v0k3d0000000aa",
		Tenant: "globex", Consumer: "bot", State: "revoked", CreatedAt: t0}}}))
	mux.HandleFunc("POST "+api.PathKeys, ok(api.KeyCreateResponse{Key: "stoa_sk_k3v7q2m4x5c6b7n2_secret", Info: key}))
	mux.HandleFunc("POST "+api.PathKeys+"/{id}/revoke", ok(key))
	mux.HandleFunc("POST "+api.PathKeys+"/{id}/rotate", func(w http.ResponseWriter, r *http.Request) {
		var req api.KeyRotateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		fa.mu.Lock()
		fa.rotate = append(fa.rotate, req)
		fa.mu.Unlock()
		writeJSONResp(w, 200, api.KeyRotateResponse{Key: "stoa_sk_n3wn3wn3wn3wn3wn_secret", New: key, Old: key})
	})
	mux.HandleFunc("GET "+api.PathQuotas, ok(api.QuotaList{Now: t0, Items: []api.QuotaStatus{{Tenant: "acme", Name: "web-shop-tools",
		Consumer: "web-shop", Plan: "basic", Tool: "billing-api", State: "active", DailyReset: t0, MonthlyReset: t0}}}))
	mux.HandleFunc("GET "+api.PathWebhookDeliveries, ok(api.WebhookDeliveryList{Items: []api.WebhookDelivery{delivery}}))
	mux.HandleFunc("GET "+api.PathWebhookDeliveries+"/{id}", ok(delivery))
	mux.HandleFunc("POST "+api.PathWebhookDeliveries+"/{id}/redeliver", ok(api.WebhookAttemptResponse{Delivery: delivery, Waited: true}))
	mux.HandleFunc("POST "+api.PathWebhookTest, ok(api.WebhookAttemptResponse{Delivery: delivery, Waited: true}))
	mux.HandleFunc("GET "+api.PathSnapshots, ok(api.SnapshotList{Items: []api.SnapshotSummary{{ID: "snp_1", Time: t0, Tenant: "acme",
		Tool: "billing-api", Method: "GET", Target: "/x", Status: 502, Reason: "5xx"}}, Dropped: 2}))
	mux.HandleFunc("GET "+api.PathSnapshots+"/{id}", ok(snap))
	mux.HandleFunc("POST "+api.PathSnapshots+"/{id}/replay", ok(api.ReplayResult{Snapshot: "snp_1", URL: "http://u/x", OldStatus: 502, OldReason: "5xx", Status: 200}))
	mux.HandleFunc("GET "+api.PathAudit, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := int64(1); i <= 3; i++ {
			_ = json.NewEncoder(w).Encode(api.AuditEntry{Seq: i, Time: t0, Actor: "alice", Action: "apply", Target: "revision " + strconv.FormatInt(i, 10), Revision: i})
		}
	})
	mux.HandleFunc("GET "+api.PathAuditVerify, ok(api.AuditVerify{OK: true, Entries: 3, Head: strings.Repeat("ab", 32)}))
	mux.HandleFunc("GET "+api.PathStats, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("follow") == "" {
			writeJSONResp(w, 200, sample)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		first := sample
		first.IntervalSeconds = 0
		for _, s := range []api.StatsSample{first, sample, sample} {
			_ = json.NewEncoder(w).Encode(s)
		}
	})
	mux.HandleFunc("GET "+api.PathXDPStatus, ok(api.XDPStatus{Enabled: true, Attached: true, Mode: "generic", Ports: []int{8080}}))
	mux.HandleFunc("GET "+api.PathXDPBlocks, ok(api.XDPBlockList{Items: []api.XDPBlock{{Source: "198.51.100.7/32", Reason: "test", Until: t0}}}))
	mux.HandleFunc("POST "+api.PathXDPBlocks, ok(api.XDPBlock{Source: "198.51.100.9/32", Until: t0}))
	tok := fleet.JoinToken{ID: "5bc1dc0e9a3f", Name: "edge-9", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), CreatedBy: "alice", State: fleet.TokenActive}
	mux.HandleFunc("GET "+api.PathDataPlanes, ok(fleet.DataPlaneList{Revision: 3, Items: []fleet.DataPlane{{Name: "edge-1", Address: "10.0.4.7", Revision: 3, LastSeen: t0, Health: fleet.HealthOK}}}))
	mux.HandleFunc("GET "+api.PathJoinTokens, ok(api.JoinTokenList{Items: []fleet.JoinToken{tok}}))
	mux.HandleFunc("POST "+api.PathJoinTokens, ok(fleet.NewJoinToken{JoinToken: tok, Token: "stoajoin_x"}))
	mux.HandleFunc("DELETE "+api.PathJoinTokens+"/{id}", ok(api.JoinTokenRevokeResponse{ID: "5bc1dc", Revoked: true}))
	mux.HandleFunc("POST "+api.PathDataPlanes+"/{name}/revoke", ok(api.DataPlaneRevokeResponse{Name: "edge-1", Revoked: true}))
	mux.HandleFunc("POST "+api.PathXDPUnblock, ok(api.XDPUnblockResponse{Source: "198.51.100.7/32", Removed: true}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fa.mu.Lock()
		fa.calls = append(fa.calls, r.Method+" "+r.URL.Path)
		fa.mu.Unlock()
		if _, pattern := mux.Handler(r); pattern == "" {
			writeJSONResp(w, 404, api.ErrorBody{Error: &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("fake: no route %s %s", r.Method, r.URL.Path)}})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// serveEvents sends the stored events (the last N, or after since), then
// with follow=1 what is sent on fa.live until the client goes or live is
// closed.
func (fa *fakeAPI) serveEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	last, _ := strconv.Atoi(q.Get("last"))
	since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
	fa.mu.Lock()
	evs := fa.events
	fa.mu.Unlock()
	var backlog []api.Event
	for _, e := range evs {
		if e.Seq > since {
			backlog = append(backlog, e)
		}
	}
	if last > 0 && len(backlog) > last {
		backlog = backlog[len(backlog)-last:]
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(200)
	enc := json.NewEncoder(w)
	for _, e := range backlog {
		_ = enc.Encode(e)
	}
	w.(http.Flusher).Flush()
	if q.Get("follow") != "1" {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-fa.live:
			if !ok {
				return
			}
			_ = enc.Encode(e)
			w.(http.Flusher).Flush()
		}
	}
}

// commit replaces the objects (as an apply would) and announces the new
// revision to followers.
func (fa *fakeAPI) commit(objs []*spec.Object) {
	fa.mu.Lock()
	fa.objects = objs
	fa.revision++
	e := api.Event{Seq: int64(len(fa.events) + 1), Time: t0, Type: "config.applied", Data: map[string]any{"revision": fa.revision}}
	fa.events = append(fa.events, e)
	fa.mu.Unlock()
	fa.live <- e
}
