package mcprt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/mcp/federation"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

func TestDefaultResourceURL(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080/mcp",
		"[::1]:8080":     "http://[::1]:8080/mcp",
		"gw.local:80":    "http://gw.local:80/mcp",
		"0.0.0.0:8080":   "", // derived from each request's Host
		"[::]:8080":      "",
		":8080":          "",
		"nonsense":       "",
	} {
		if got := defaultResourceURL(listen); got != want {
			t.Errorf("defaultResourceURL(%q) = %q, want %q", listen, got, want)
		}
	}
}

func TestMCPAuthErrorMapping(t *testing.T) {
	cases := []struct {
		err          error
		status       int
		code         string
		tokenPresent bool
	}{
		{auth.ErrNoCredential, 0, "", false},
		{auth.ErrKeyRevoked, 0, "", true},
		{fmt.Errorf("x: %w", auth.ErrTokenExpired), 0, "", true},
		{auth.ErrAmbiguousCredential, 400, "invalid_request", true},
		{auth.ErrInsufficientScope, 403, "insufficient_scope", true},
		{auth.ErrKeySetUnavailable, 503, "", false},
	}
	for _, c := range cases {
		ae := authError(c.err)
		if ae.Status != c.status || ae.Code != c.code || ae.TokenPresent != c.tokenPresent {
			t.Errorf("%v: got %+v", c.err, ae)
		}
		// Never which check failed.
		if strings.Contains(ae.Error(), "revoked") || strings.Contains(ae.Error(), "expired") {
			t.Errorf("%v: answer reveals the reason: %s", c.err, ae.Error())
		}
	}
}

func TestMCPRefusalText(t *testing.T) {
	got := refusal(&proxy.Rejection{Status: 429, Code: "rate_limited", Message: "operation", RetryAfter: 1500 * time.Millisecond}).Error()
	if want := "not sent: the gateway refused the call (HTTP 429 rate_limited): rate limit exceeded (operation limit); retry after 2 s"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	got = refusal(&proxy.Rejection{Status: 403, Code: "no_subscription", Message: "no active subscription"}).Error()
	if !strings.Contains(got, "no active subscription") || strings.Contains(got, "retry") {
		t.Errorf("got %q", got)
	}
	if errors.Is(refusal(&proxy.Rejection{}), proxy.ErrNoRoute) {
		t.Error("a refusal must not hide the tool")
	}
}

func TestMCPIndexSubjects(t *testing.T) {
	objs := []*spec.Object{
		{APIVersion: spec.APIVersion, Kind: spec.KindConsumer, Metadata: spec.Metadata{Name: "bot", Namespace: "acme"},
			Spec: &spec.ConsumerSpec{Subjects: []string{"sub-1", "client-a"}}},
		{APIVersion: spec.APIVersion, Kind: spec.KindConsumer, Metadata: spec.Metadata{Name: "bot", Namespace: "globex"},
			Spec: &spec.ConsumerSpec{Subjects: []string{"sub-1"}}},
	}
	idx := newIndex(state.New(1, objs))
	if idx.subjects[[2]string{"acme", "client-a"}] != "bot" || idx.subjects[[2]string{"globex", "sub-1"}] != "bot" ||
		idx.subjects[[2]string{"globex", "client-a"}] != "" {
		t.Errorf("subjects = %v", idx.subjects)
	}
}

func TestLoopbackListen(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.0.0.2:8080": true, "[::1]:8080": true, "localhost:8080": true,
		"LocalHost.:80": true, "[::ffff:127.0.0.1]:80": true,
		"0.0.0.0:8080": false, "[::]:8080": false, ":8080": false, "10.0.0.5:8080": false,
		"gw.local:80": false, "nonsense": false,
	} {
		if got := loopbackListen(listen); got != want {
			t.Errorf("loopbackListen(%q) = %v, want %v", listen, got, want)
		}
	}
}

// fedRevision is a revision with a Gateway granting grants (tenant →
// command) and the given Tools with protocol: mcp (name → mcp block).
func fedRevision(t *testing.T, rev int64, grants map[string]string, tools map[string]*spec.MCPUpstream) *state.Revision {
	t.Helper()
	gw := &spec.GatewaySpec{MCP: &spec.GatewayMCP{Federation: &spec.MCPFederation{}}}
	for tenant, cmd := range grants {
		gw.MCP.Federation.AllowStdio = append(gw.MCP.Federation.AllowStdio, spec.StdioGrant{Tenant: tenant, Commands: []string{cmd}})
	}
	objs := []*spec.Object{{APIVersion: spec.APIVersion, Kind: spec.KindGateway, Metadata: spec.Metadata{Name: "default"}, Spec: gw}}
	for name, m := range tools {
		objs = append(objs, &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool, Metadata: spec.Metadata{Name: name, Namespace: "acme"},
			Spec: &spec.ToolSpec{Protocol: spec.ProtocolMCP, MCP: m}})
	}
	return state.New(rev, objs)
}

// refusedURL is an MCP endpoint nothing listens on.
func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/mcp"
}

// TestFederationConfigsStdioGrant: the runtime refuses a stdio Tool whose
// command the Gateway does not grant its tenant, whatever validation did.
func TestFederationConfigsStdioGrant(t *testing.T) {
	tools := map[string]*spec.MCPUpstream{
		"files": {Command: []string{"/usr/bin/mcp-files", "/srv"}},
		"web":   {URL: "https://mcp.example.com/mcp"},
	}
	_, err := federationConfigs(fedRevision(t, 1, map[string]string{"acme": "/usr/bin/other", "globex": "/usr/bin/mcp-files"}, tools))
	if err == nil || !strings.Contains(err.Error(), `tool acme/files: command "/usr/bin/mcp-files" runs on the gateway host`) ||
		!strings.Contains(err.Error(), "allowStdio: [{tenant: acme, commands: [/usr/bin/mcp-files]}]") {
		t.Fatalf("ungranted stdio: %v", err)
	}
	cfgs, err := federationConfigs(fedRevision(t, 1, map[string]string{"acme": "/usr/bin/mcp-files"}, tools))
	if err != nil || len(cfgs) != 2 {
		t.Fatalf("granted: %v %+v", err, cfgs)
	}
	for _, c := range cfgs {
		if c.Tenant != "acme" || (c.Tool == "files") != (c.Transport == federation.TransportStdio) {
			t.Errorf("config %+v", c)
		}
	}
}

// TestFederationPrepareSwapDiscard: a prepared revision that is never
// swapped is discarded (its upstreams stopped) by the next Prepare; a
// swapped one is installed and survives a later discard.
func TestFederationPrepareSwapDiscard(t *testing.T) {
	r := &Runtime{log: slog.New(slog.DiscardHandler),
		fed: federation.NewManager(federation.Options{Logger: slog.New(slog.DiscardHandler), BackoffInitial: time.Hour})}
	defer r.fed.Stop(context.Background())
	st := fedRevision(t, 1, nil, map[string]*spec.MCPUpstream{"web": {URL: refusedURL(t)}})
	dry, err := r.prepareFederation(st)
	if err != nil {
		t.Fatal(err)
	}
	dryUp, _ := dry.pending.Upstream("acme", "web")
	next, err := r.prepareFederation(st)
	if err != nil {
		t.Fatal(err)
	}
	if s := dryUp.Status().State; s != federation.StateStopped {
		t.Errorf("upstream of an abandoned Prepare: %s, want stopped", s)
	}
	r.swapFederation(next)
	realUp, _ := next.pending.Upstream("acme", "web")
	if live, ok := r.fed.Get("acme", "web"); !ok || live != realUp || realUp == dryUp {
		t.Fatalf("live upstream after swap: %v %v", live, ok)
	}
	next.discard() // late: a no-op
	if s := realUp.Status().State; s == federation.StateStopped {
		t.Error("discard after swap stopped the live upstream")
	}
	// The status line names the down upstream.
	state, detail, data := federationStatus(r.fed.Upstreams())
	if state != "degraded" || !strings.Contains(detail, "1 MCP servers, 0 ready, 0 tools; down: acme/web") ||
		!strings.Contains(fmt.Sprint(data["acme/web"]), "down, 0 tools, 0 restarts, last error: ") {
		t.Errorf("status: %s %q %v", state, detail, data)
	}
	if s, has := tenantFederationState(r.fed.Upstreams(), "acme"); s != "degraded" || !has {
		t.Errorf("acme's federation state: %s %v", s, has)
	}
	if _, has := tenantFederationState(r.fed.Upstreams(), "globex"); has {
		t.Error("globex has no federated server")
	}
	if s, _, _ := federationStatus(nil); s != "off" {
		t.Errorf("no servers: %s", s)
	}
}

// TestCachedGrants: the Grants a call gets from the per-index cache are
// the ones grantsFor builds at the same instant (same key), the cache
// hands the same object back while that key holds, a new key at the
// consumer's next subscription expiry, and nothing across a new index
// (a reload or apply, where subscriptions are revoked).
func TestCachedGrants(t *testing.T) {
	const t1, t2 = int64(1_000), int64(5_000)
	b := &backend{o: &Options{}}
	newIdx := func(exp ...int64) *index {
		return &index{subjects: map[[2]string]string{}, expiries: map[[2]string][]int64{{"acme", "bot"}: exp}}
	}
	idx := newIdx(t1, t2)
	p := &auth.Principal{Tenant: "acme", Consumer: "bot", KeyID: "k1", Method: auth.MethodAPIKey}
	c := mcp.Caller{Tenant: "acme", Consumer: "bot", Subject: "k1", Via: "apikey", Principal: p}
	fresh := func(idx *index, now int64) string {
		g, _ := b.grantsFor(p, idx, true, now)
		return g.key
	}
	g0 := b.cachedGrants(p, p, c, idx, true, 10)
	if g0.key != fresh(idx, 10) || g0.caller.Principal != c.Principal {
		t.Fatalf("cached key %q, built %q", g0.key, fresh(idx, 10))
	}
	if g := b.cachedGrants(p, p, c, idx, true, t1-1); g != g0 {
		t.Error("a second call before the next expiry built new grants")
	}
	// At the expiry the subscription set changes: a new key, the one
	// built without the cache.
	g1 := b.cachedGrants(p, p, c, idx, true, t1)
	if g1 == g0 || g1.key == g0.key || g1.key != fresh(idx, t1) {
		t.Errorf("at the expiry: key %q (was %q), built %q", g1.key, g0.key, fresh(idx, t1))
	}
	if g := b.cachedGrants(p, p, c, idx, true, t2-1); g != g1 {
		t.Error("the replaced entry is not used")
	}
	if g := b.cachedGrants(p, p, c, idx, true, t2+1); g.key != fresh(idx, t2+1) || g == g1 {
		t.Errorf("after the last expiry: %q, built %q", g.key, fresh(idx, t2+1))
	}
	// A new revision (the subscription expiring at t1 deleted): a new
	// index, so new grants, whose key no longer names t1.
	idx2 := newIdx(t2)
	g2 := b.cachedGrants(p, p, c, idx2, true, 10)
	if g2 == g0 || g2.key != fresh(idx2, 10) || g2.key == g0.key {
		t.Errorf("after a reload: %q, built %q, before %q", g2.key, fresh(idx2, 10), g0.key)
	}
	// Not timed (no admission): one entry for good.
	if g, h := b.cachedGrants(p, p, c, idx2, false, 0), b.cachedGrants(p, p, c, idx2, false, 0); g != h {
		t.Error("untimed grants not cached")
	}
	// A JWT principal that Authenticate copied to name its consumer: cached
	// under the authenticator's principal, keyed like the copy.
	orig := &auth.Principal{Tenant: "acme", Subject: "sub-1", Method: auth.MethodJWT, Issuer: "https://idp", Scopes: []string{"b", "a"}}
	cp := *orig
	cp.Consumer = "bot"
	gj := b.cachedGrants(orig, &cp, c, idx2, true, 10)
	want, _ := b.grantsFor(&cp, idx2, true, 10)
	if gj.key != want.key || gj.p != &cp {
		t.Errorf("JWT: %q, built %q", gj.key, want.key)
	}
	cp2 := cp
	if g := b.cachedGrants(orig, &cp2, c, idx2, true, 11); g != gj {
		t.Error("JWT grants not cached under the authenticator's principal")
	}
	// Bounded: past maxCachedGrants principals, grants are still right,
	// just not kept.
	idx3 := newIdx()
	for i := range maxCachedGrants + 10 {
		q := &auth.Principal{Tenant: "acme", Consumer: fmt.Sprintf("c%d", i), Method: auth.MethodAPIKey}
		g := b.cachedGrants(q, q, c, idx3, true, 0)
		if w, _ := b.grantsFor(q, idx3, true, 0); g.key != w.key {
			t.Fatalf("principal %d: %q, built %q", i, g.key, w.key)
		}
	}
	n := 0
	idx3.grants.Range(func(any, any) bool { n++; return true })
	if n != maxCachedGrants {
		t.Errorf("%d entries cached, want the bound %d", n, maxCachedGrants)
	}
}
