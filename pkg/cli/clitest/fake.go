// Package clitest is an in-memory stoad for testing commands: FakeAPI
// implements client.API with canned answers, records every call with its
// arguments, and fails the calls a test names. Commands take it through
// cli.Factory.NewClient, so a command's flags, output formats and exit
// codes are tested without a socket or a daemon.
package clitest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// T0 is the time of every canned answer.
var T0 = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

// Call is one recorded API call: the method's name and its arguments after
// the context (callbacks left out).
type Call struct {
	Method string
	Args   []any
}

// String renders a call as Method(arg, …), pointers followed and structs
// with their field names, so tests compare calls as text.
func (c Call) String() string {
	parts := make([]string, len(c.Args))
	for i, a := range c.Args {
		parts[i] = formatArg(a)
	}
	return c.Method + "(" + strings.Join(parts, ", ") + ")"
}

func formatArg(a any) string {
	switch v := a.(type) {
	case json.RawMessage:
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return "<invalid JSON>"
		}
		return fmt.Sprintf("[%d objects]", len(items))
	case string:
		return fmt.Sprintf("%q", v)
	}
	rv := reflect.ValueOf(a)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		a = rv.Elem().Interface()
	}
	return fmt.Sprintf("%+v", a)
}

// FakeAPI is an in-memory client.API. Its exported fields are the daemon's
// state and canned answers: set them before running a command, and guard
// changes made while a command runs with Lock (or use Commit). The zero
// value answers empty lists; New fills in one plausible item of each.
type FakeAPI struct {
	mu    sync.Mutex
	calls []Call

	// Errs makes calls fail: the API method's name (e.g. "Status") to
	// the error it returns, before anything else happens.
	Errs map[string]error

	EndpointName string
	StatusAnswer api.Status

	// LiveObjects are the live objects (defaulted, as stoad stores them)
	// at LiveRevision; Objects, Digests and Status answer from them.
	LiveObjects  []*spec.Object
	LiveRevision int64
	// ChangeAnswer is what ApplyEncoded, Delete and Rollback return
	// unless their Func is set.
	ChangeAnswer api.ApplyResponse
	ApplyFunc    func(req *api.ApplyRequest, objects json.RawMessage) (*api.ApplyResponse, error)
	DeleteFunc   func(req *api.DeleteRequest) (*api.ApplyResponse, error)
	RollbackFunc func(req *api.RollbackRequest) (*api.ApplyResponse, error)

	RevisionList []api.Revision
	// EventLog is the events stoad keeps; Events sends the last N (or
	// those after Since) of it, then with Follow whatever arrives on
	// EventStream until it is closed or the context ends. A nil
	// EventStream ends a followed stream after the backlog, as a stopping
	// stoad does.
	EventLog    []api.Event
	EventStream chan api.Event

	KeyList      api.KeyList
	QuotaList    api.QuotaList
	Deliveries   api.WebhookDeliveryList
	Attempt      api.WebhookAttemptResponse
	SnapshotList api.SnapshotList
	SnapshotByID map[string]api.Snapshot
	Replay       api.ReplayResult
	AuditLog     []api.AuditEntry
	Verify       api.AuditVerify
	// StatsStream is what FollowStats sends; Stats answers its last.
	StatsStream []api.StatsSample
	XDP         api.XDPStatus
	Blocks      api.XDPBlockList
	// DataPlaneList answers DataPlanes; JoinTokenList JoinTokens (a
	// created token is added, a revoked one removed).
	DataPlaneList fleet.DataPlaneList
	JoinTokenList api.JoinTokenList
}

var _ client.API = (*FakeAPI)(nil)

// New returns a fake with one plausible answer for every call and no
// objects.
func New() *FakeAPI {
	key := api.KeyInfo{ID: "k3v7q2m4x5c6b7n2", Prefix: "stoa_sk_k3v7q2m4x5c6b7n2", Tenant: "acme", Consumer: "web-shop", Name: "ci",
		State: "active", CreatedAt: T0, ExpiresAt: T0.Add(90 * 24 * time.Hour), LastUsedAt: T0.Add(time.Hour)}
	revoked := api.KeyInfo{ID: "r3v0k3d0000000aa", Prefix: "stoa_sk_r3v0k3d0000000aa", Tenant: "globex", Consumer: "bot", State: "revoked",
		CreatedAt: T0, RevokedAt: T0, RevokedBy: "alice", RevokedReason: "consumer deleted"}
	delivery := api.WebhookDelivery{ID: "dlv_1", Tenant: "acme", Webhook: "ops", EventID: "evt_1", EventType: "key.created",
		State: "succeeded", Attempts: 1, CreatedAt: T0, LastAttemptAt: T0, LastStatus: 204, LastDuration: 12 * time.Millisecond,
		Body: map[string]any{"type": "key.created", "tenant": "acme"}}
	snap := api.Snapshot{ID: "snp_1", Time: T0, Source: "proxy", Tenant: "acme", Tool: "billing-api", Operation: "get_invoice",
		Consumer: "web-shop", Revision: 3, RequestID: "req-1", Upstream: "http://127.0.0.1:9001", Reason: "5xx", Duration: 40 * time.Millisecond,
		UpstreamStatus: 502, Origin: "upstream", Count: 3, LastSeen: T0.Add(time.Minute),
		Request:    api.SnapshotMessage{Method: "GET", URL: "http://127.0.0.1:9001/invoices/7", Headers: []api.SnapshotHeader{{Name: "Authorization", Value: "[REDACTED]", Redacted: true}}},
		Response:   api.SnapshotMessage{Status: 502, Body: "bad gateway", BodyBytes: 11},
		Redactions: []string{"header Authorization"}, Curl: "curl -sS 'http://127.0.0.1:9001/invoices/7'\n"}
	traffic := api.Traffic{Requests: 1200, RPS: 20, P50Ms: 3.2, P99Ms: 41, Codes: api.StatusClasses{S2xx: 1190, S5xx: 10},
		CodeRates: api.StatusRates{S2xx: 19.5, S5xx: 0.5}}
	sample := api.StatsSample{Time: T0, IntervalSeconds: 1, Revision: 3,
		Daemon: api.DaemonInfo{Version: "v0.0.0-test", PID: 42, StartedAt: T0, UptimeSeconds: 3600},
		Totals: traffic, Tenants: []api.TenantStats{{Name: "acme", Total: traffic,
			Tools: []api.ToolStats{{Tenant: "acme", Name: "billing-api", Traffic: traffic, Health: "ok"}}}},
		MCP: []api.MCPToolStats{{Tenant: "acme", Name: "acme__billing-api__get_invoice", Traffic: traffic}}}
	first := sample
	first.IntervalSeconds = 0
	return &FakeAPI{
		EndpointName: "/run/stoa/fake.sock",
		StatusAnswer: api.Status{Version: "v0.0.0-test", Commit: "abc123", PID: 42, StartedAt: T0, Uptime: "1h0m0s",
			StateDir: "/var/lib/stoa", Listeners: []api.Listener{{Name: "proxy", Address: "127.0.0.1:8080"}},
			Components: []api.Component{{Name: "proxy", State: "ok", Detail: "3 routes", Data: map[string]any{"routes": float64(3), "address": "127.0.0.1:8080"}}}},
		LiveRevision: 3,
		ChangeAnswer: api.ApplyResponse{Changes: []plan.Change{{Op: plan.Create, Ref: spec.Ref{Kind: spec.KindTenant, Name: "initech"}}},
			Summary: plan.Summary{Create: 1}, Revision: 4, Created: true},
		RevisionList: []api.Revision{
			{ID: 3, Time: T0, Actor: "alice (uid 1000)", Action: "apply", Summary: plan.Summary{Create: 1}, Message: "initial",
				Changes: []plan.Change{{Op: plan.Create, Ref: spec.Ref{Kind: spec.KindTenant, Name: "initech"},
					After: &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "initech"}, Spec: &spec.TenantSpec{DisplayName: "Initech"}}}}},
			{ID: 2, Time: T0, Actor: "bob", Action: "delete", Summary: plan.Summary{Delete: 1}},
		},
		EventLog: []api.Event{
			{Seq: 1, Time: T0, Type: "config.applied", Message: "revision 1", Data: map[string]any{"revision": float64(1)}},
			{Seq: 2, Time: T0, Type: "key.created", Tenant: "acme", Message: "key created"},
			{Seq: 3, Time: T0, Type: "config.applied", Message: "revision 3", Data: map[string]any{"revision": float64(3)}},
		},
		KeyList: api.KeyList{Items: []api.KeyInfo{key, revoked}},
		QuotaList: api.QuotaList{Now: T0, Items: []api.QuotaStatus{{Tenant: "acme", Name: "web-shop-tools", Consumer: "web-shop",
			Plan: "basic", Tool: "billing-api", State: "active", Daily: 1000, DailyUsed: 12, DailyReset: T0.Add(12 * time.Hour),
			MonthlyUsed: 340, MonthlyReset: T0.Add(27 * 24 * time.Hour)}}},
		Deliveries:   api.WebhookDeliveryList{Items: []api.WebhookDelivery{delivery}},
		Attempt:      api.WebhookAttemptResponse{Delivery: delivery, Waited: true},
		SnapshotList: api.SnapshotList{Items: []api.SnapshotSummary{{ID: "snp_1", Time: T0, Tenant: "acme", Tool: "billing-api", Consumer: "web-shop", Method: "GET", Target: "/invoices/7", Status: 502, Reason: "5xx", Duration: 40 * time.Millisecond, Count: 3, LastSeen: T0.Add(time.Minute)}}, Dropped: 2},
		SnapshotByID: map[string]api.Snapshot{"snp_1": snap},
		Replay:       api.ReplayResult{Snapshot: "snp_1", URL: "http://127.0.0.1:9001/invoices/7", OldStatus: 502, OldReason: "5xx", Status: 200, Duration: 8 * time.Millisecond, OldDuration: 40 * time.Millisecond, Body: `{"id":7}`},
		AuditLog: []api.AuditEntry{
			{Seq: 1, Time: T0, Actor: "alice", Action: "apply", Target: "revision 1", Revision: 1},
			{Seq: 2, Time: T0, Actor: "bob", Action: "key.create", Target: "key k3v7q2m4x5c6b7n2", Tenant: "acme", Revision: 1},
		},
		Verify:      api.AuditVerify{OK: true, Entries: 2, Head: strings.Repeat("ab", 32)},
		StatsStream: []api.StatsSample{first, sample, sample},
		XDP: api.XDPStatus{Enabled: true, Attached: true, Mode: "native", Interfaces: []api.XDPInterface{{Name: "eth0", Mode: "native"}},
			Ports: []int{8080, 8443}, PerSource: &api.XDPRate{Rate: "100/s", PerSecond: 100, Burst: 200, Count: "packets"}, Deny: []string{"203.0.113.0/24"},
			Escalation: &api.XDPEscalation{After: 5, WithinSeconds: 60, BlockSeconds: 600}, Counters: api.XDPCounters{Passed: 1000, DroppedRate: 7, DroppedDeny: 3},
			TrackedSources: 12, Blocks: 1, TopSources: []api.XDPSource{{Addr: "198.51.100.7", Passed: 10, Dropped: 7}}},
		Blocks: api.XDPBlockList{Items: []api.XDPBlock{{Source: "198.51.100.7/32", Reason: "test", Until: T0.Add(10 * time.Minute), ExpiresInSeconds: 600}}},
		DataPlaneList: fleet.DataPlaneList{Revision: 42, Items: []fleet.DataPlane{
			{Name: "edge-1", Address: "https://edge-1.example:8443", Revision: 42, Digest: "sha256:" + strings.Repeat("ab", 32), Lag: 0,
				LastSeen: T0.Add(-3 * time.Second), Health: fleet.HealthOK, Version: "v0.9.0", JoinedAt: T0.Add(-48 * time.Hour), CertificateExpires: T0.Add(20 * time.Hour)},
			{Name: "edge-2", Address: "10.0.4.7", Revision: 41, Digest: "sha256:" + strings.Repeat("cd", 32), Lag: 1,
				LastSeen: T0.Add(-2 * time.Minute), Health: fleet.HealthStale, LastError: "watch: connection refused", Version: "v0.9.0", JoinedAt: T0.Add(-24 * time.Hour), CertificateExpires: T0.Add(6 * time.Hour)},
		}},
		JoinTokenList: api.JoinTokenList{Items: []fleet.JoinToken{
			{ID: "5bc1dc0e9a3f", Name: "edge-3", CreatedAt: T0.Add(-10 * time.Minute), ExpiresAt: T0.Add(50 * time.Minute), CreatedBy: "alice", State: fleet.TokenActive},
			{ID: "77aa01bb42cd", CreatedAt: T0.Add(-2 * time.Hour), ExpiresAt: T0.Add(-time.Hour), CreatedBy: "alice", State: fleet.TokenUsed, UsedAt: T0.Add(-90 * time.Minute), UsedBy: "edge-2"},
		}},
	}
}

// Lock guards the fake's fields while a command runs (a --follow or
// --watch test changing the state); Unlock releases them.
func (fa *FakeAPI) Lock()   { fa.mu.Lock() }
func (fa *FakeAPI) Unlock() { fa.mu.Unlock() }

// Calls returns the calls made so far, in order.
func (fa *FakeAPI) Calls() []Call {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return append([]Call(nil), fa.calls...)
}

// CallStrings returns the calls made so far as text (Call.String).
func (fa *FakeAPI) CallStrings() []string {
	calls := fa.Calls()
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.String()
	}
	return out
}

// Fail makes method fail with err from now on.
func (fa *FakeAPI) Fail(method string, err error) {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if fa.Errs == nil {
		fa.Errs = map[string]error{}
	}
	fa.Errs[method] = err
}

// Commit replaces the live objects as an apply would: a new revision, a
// config.applied event in the log and, when EventStream is set, on it.
func (fa *FakeAPI) Commit(objs []*spec.Object) {
	fa.mu.Lock()
	fa.LiveObjects = objs
	fa.LiveRevision++
	e := api.Event{Seq: int64(len(fa.EventLog) + 1), Time: T0, Type: "config.applied",
		Message: fmt.Sprintf("revision %d", fa.LiveRevision), Data: map[string]any{"revision": float64(fa.LiveRevision)}}
	fa.EventLog = append(fa.EventLog, e)
	live := fa.EventStream
	fa.mu.Unlock()
	if live != nil {
		live <- e
	}
}

// record notes a call and returns the error the test wants it to fail
// with. Callers hold no lock.
func (fa *FakeAPI) record(method string, args ...any) error {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	fa.calls = append(fa.calls, Call{Method: method, Args: args})
	return fa.Errs[method]
}

// NotFound is the error stoad answers for a missing thing.
func NotFound(what string) error {
	return &api.Error{Code: api.CodeNotFound, Message: what + " not found"}
}

// clone returns a deep copy of v through JSON, so a command that changes
// an answer never changes the fake's state.
func clone[T any](v T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("clitest: encode %T: %v", v, err))
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("clitest: decode %T: %v", v, err))
	}
	return &out
}
