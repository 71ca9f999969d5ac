package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// testAudience is the default token audience of test environments (the
// daemon uses its MCP resource URL).
const testAudience = "http://stoa.test/mcp"

// testEnv is one proxy serving on loopback, configured from YAML specs the
// way the daemon configures it: parse, default, snapshot, Prepare, swap.
type testEnv struct {
	t      testing.TB
	p      *Proxy
	auth   *auth.Authenticator
	stats  *telemetry.Registry
	logs   *lockedBuffer
	events *eventLog
	keySet *auth.KeySets
	addr   string
	base   string // http://addr
	rev    int64
	client *http.Client

	mu   sync.Mutex
	keys []auth.KeyRecord
}

type envOption func(*Options)

// newEnv starts a proxy loaded with specs (YAML, several documents).
func newEnv(t testing.TB, specs string, opts ...envOption) *testEnv {
	t.Helper()
	e := &testEnv{t: t, logs: &lockedBuffer{}, events: &eventLog{}, keySet: auth.NewKeySets(auth.KeySetOptions{})}
	o := Options{
		Listen:  "127.0.0.1:0",
		Log:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Auth:    &auth.Authenticator{},
		Limiter: limits.New(limits.Options{}),
		Stats:   telemetry.NewRegistry(),
		OnEvent: e.events.add,
	}
	for _, f := range opts {
		f(&o)
	}
	e.auth, e.stats = o.Auth, o.Stats
	e.p = New(o)
	e.apply(specs)
	if err := e.p.Start(context.Background()); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.p.Stop(ctx)
	})
	e.addr = e.p.Addr()
	e.base = "http://" + e.addr
	e.client = &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(e.client.CloseIdleConnections)
	return e
}

// snapshot parses YAML specs into a sorted snapshot, failing the test on
// any diagnostic error. state.New defaults the objects, as for the daemon.
func snapshot(t testing.TB, rev int64, specs string) *state.Revision {
	t.Helper()
	objs, diags := spec.Parse("test.yaml", []byte(specs))
	if diags.HasErrors() {
		t.Fatalf("parse specs: %v\n%s", diags, specs)
	}
	slices.SortStableFunc(objs, func(a, b *spec.Object) int {
		if a.Ref().Less(b.Ref()) {
			return -1
		}
		if b.Ref().Less(a.Ref()) {
			return 1
		}
		return 0
	})
	return state.New(rev, objs)
}

// apply loads specs as the next revision: the token resolver first (as the
// daemon's identity runtime does), then the proxy's Prepare and swap.
func (e *testEnv) apply(specs string) {
	e.t.Helper()
	if err := e.tryApply(specs); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) tryApply(specs string) error {
	st := snapshot(e.t, e.rev+1, specs)
	res, err := auth.NewResolver(resolverConfig(st, e.keySet))
	if err != nil {
		return fmt.Errorf("resolver: %w", err)
	}
	swap, err := e.p.Prepare(st)
	if err != nil {
		return fmt.Errorf("prepare revision %d: %w", st.Revision, err)
	}
	e.auth.SetResolver(res)
	swap()
	e.rev = st.Revision
	return nil
}

// resolverConfig mirrors the daemon's identity runtime: tenants' identity
// issuers and the Gateway's admin rules.
func resolverConfig(st *state.Revision, ks *auth.KeySets) auth.ResolverConfig {
	cfg := auth.ResolverConfig{KeySets: ks, DefaultAudiences: []string{testAudience}}
	for _, o := range st.OfKind(spec.KindTenant) {
		id := o.Spec.(*spec.TenantSpec).Identity
		if id == nil || id.Issuer == "" {
			continue
		}
		var tc *auth.ClaimMatch
		if id.TenantClaim != nil {
			tc = &auth.ClaimMatch{Claim: id.TenantClaim.Claim, Value: id.TenantClaim.Value}
		}
		cfg.Identities = append(cfg.Identities, auth.Identity{Tenant: o.Metadata.Name, Issuer: id.Issuer,
			JWKSURL: id.JWKSURL, Audiences: id.Audiences, TenantClaim: tc, Algorithms: id.Algorithms})
	}
	for _, a := range st.Gateway().Admins {
		cfg.Admins = append(cfg.Admins, auth.AdminRule{Issuer: a.Issuer, JWKSURL: a.JWKSURL, Audiences: a.Audiences,
			Claim: auth.ClaimMatch{Claim: a.Claim, Value: a.Value}})
	}
	return cfg
}

// addKey creates an API key for tenant/consumer; edit may change its
// record (revoke, expire) before it is installed.
func (e *testEnv) addKey(tenant, consumer string, edit func(*auth.KeyRecord)) string {
	e.t.Helper()
	key, rec, err := auth.GenerateKey(auth.KeyOptions{Tenant: tenant, Consumer: consumer})
	if err != nil {
		e.t.Fatal(err)
	}
	if edit != nil {
		edit(&rec)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys = append(e.keys, rec)
	ix, err := auth.NewKeyIndex(e.keys)
	if err != nil {
		e.t.Fatal(err)
	}
	e.auth.SetKeys(ix)
	return key
}

// response is a finished request.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// do sends a request through the proxy; headers are name, value pairs.
func (e *testEnv) do(method, path string, headers ...string) response {
	e.t.Helper()
	return e.doBody(method, path, "", headers...)
}

func (e *testEnv) get(path string, headers ...string) response {
	e.t.Helper()
	return e.do(http.MethodGet, path, headers...)
}

func (e *testEnv) doBody(method, path, body string, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// gatewayError decodes a gateway error body, failing the test when it is
// not the documented JSON shape.
func gatewayError(t testing.TB, r response) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error content type %q, want application/json (status %d, body %q)", ct, r.Status, r.Body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, r.Body)
	}
	for _, k := range []string{"error", "message"} {
		if s, _ := m[k].(string); s == "" {
			t.Fatalf("error body lacks %q: %q", k, r.Body)
		}
	}
	return m
}

// expectError checks status and error code of a gateway answer.
func expectError(t testing.TB, r response, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (body %q)", r.Status, status, r.Body)
	}
	m := gatewayError(t, r)
	if m["error"] != code {
		t.Fatalf("error code %v, want %q (body %q)", m["error"], code, r.Body)
	}
	return m
}

// upstream is a loopback HTTP server that records what reaches it.
type backend struct {
	Name string
	URL  string // http://127.0.0.1:port
	Addr string
	srv  *httptest.Server
	hits atomic.Int64

	mu      sync.Mutex
	reqs    []seenRequest
	handler http.HandlerFunc
}

// seenRequest is what an upstream received.
type seenRequest struct {
	Method, URI, Host string
	RemoteAddr        string
	Header            http.Header
	Body              string
}

// newUpstream starts a recording upstream. By default it answers 200 with
// its name in the body and X-Upstream, and the request URI it received in
// X-Echo-Uri.
func newUpstream(t testing.TB, name string) *backend {
	t.Helper()
	u := &backend{Name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.hits.Add(1)
		u.mu.Lock()
		u.reqs = append(u.reqs, seenRequest{Method: r.Method, URI: r.RequestURI, Host: r.Host, RemoteAddr: r.RemoteAddr, Header: r.Header.Clone(), Body: string(b)})
		if len(u.reqs) > 1000 {
			u.reqs = u.reqs[len(u.reqs)-1000:]
		}
		h := u.handler
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("X-Upstream", name)
		w.Header().Set("X-Echo-Uri", r.RequestURI)
		fmt.Fprint(w, name)
	}))
	t.Cleanup(u.srv.Close)
	u.URL = u.srv.URL
	u.Addr = strings.TrimPrefix(u.srv.URL, "http://")
	return u
}

// handle replaces the upstream's handler (nil restores the default).
func (u *backend) handle(h http.HandlerFunc) {
	u.mu.Lock()
	u.handler = h
	u.mu.Unlock()
}

// last is the last request the upstream received.
func (u *backend) last(t testing.TB) seenRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatalf("upstream %s received no request", u.Name)
	}
	return u.reqs[len(u.reqs)-1]
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// lockedBuffer is a concurrency-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// eventLog records OnEvent calls.
type eventLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *eventLog) add(typ, tenant, msg string, data map[string]any) {
	l.mu.Lock()
	l.evs = append(l.evs, typ+" "+msg)
	l.mu.Unlock()
}

func (l *eventLog) has(prefix string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.evs {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tool renders a minimal Tool spec; extra is YAML indented under spec.
func tool(tenant, name, upstreamURL, extra string) string {
	s := fmt.Sprintf("---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: %s, namespace: %s}\nspec:\n  protocol: rest\n", name, tenant)
	if upstreamURL != "" {
		s += "  upstream: " + upstreamURL + "\n"
	}
	// A Tool without auth requires an API key; a test that gives none
	// means a public tool, which has to say so.
	if !hasTopKey(extra, "auth") {
		s += "  auth: {type: none}\n"
	}
	return s + indent(extra, "  ")
}

// hasTopKey reports whether the YAML snippet s sets key at its top level.
func hasTopKey(s, key string) bool {
	for _, l := range strings.Split(strings.Trim(s, "\n"), "\n") {
		if strings.HasPrefix(l, key+":") {
			return true
		}
	}
	return false
}

// tenant renders a Tenant spec; extra is YAML indented under spec.
func tenant(name, extra string) string {
	s := fmt.Sprintf("---\napiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: %s}\nspec:\n  displayName: %s\n", name, name)
	return s + indent(extra, "  ")
}

// gateway renders the Gateway spec; extra is YAML indented under spec.
func gateway(extra string) string {
	return "---\napiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n" + indent(extra, "  ")
}

// object renders any tenant-scoped object.
func object(kind, tenant, name, extra string) string {
	return fmt.Sprintf("---\napiVersion: stoa.io/v1alpha1\nkind: %s\nmetadata: {name: %s, namespace: %s}\nspec:\n", kind, name, tenant) + indent(extra, "  ")
}

func indent(s, pfx string) string {
	s = strings.Trim(s, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pfx + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
