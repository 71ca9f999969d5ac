package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/daemon"
	"github.com/stoa-gateway/stoa/pkg/devidp/devidptest"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// The tests in this file run the real commands against real stoads
// through a remote context: a control plane stand-in (HTTPS, OIDC bearer
// tokens from a development issuer, roles from the token's groups) in
// front of an in-process stoad's LocalAPI, and compare what they print
// and how they exit with the same commands on a local socket.

// startStoad runs an in-process stoad on a temporary socket until the
// test ends and returns the socket.
func startStoad(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "stoa-remote")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := &daemon.Config{StateDir: filepath.Join(t.TempDir(), "state"), Socket: filepath.Join(dir, "s.sock"), Listen: "127.0.0.1:0",
		SpecsPoll: time.Second, LogLevel: "error"}
	d, err := daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Runtimes: daemon.DefaultRuntimes})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stoad: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !d.Ready(); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("stoad stopped during start-up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("stoad did not become ready")
		}
	}
	return cfg.Socket
}

// controlPlane stands in for stoad --role control-plane: it serves the
// LocalAPI of a stoad over HTTPS to bearers of tokens from its issuer,
// with the answers the remote client expects — 401 and the error
// envelope for a missing, expired or foreign token; 403 naming the
// missing role for a token whose groups do not allow the call
// ("stoa:admin" may do anything, "acme:viewer" only read).
type controlPlane struct {
	srv      *httptest.Server
	pin      tlspin.Fingerprint
	resolver *auth.Resolver
	// now is the clock tokens are judged by.
	now atomic.Pointer[time.Time]

	mu     sync.Mutex
	tokens []string // the bearer tokens of accepted requests
}

func startControlPlane(t *testing.T, idp *devidptest.Server, socket string) *controlPlane {
	t.Helper()
	r, err := auth.NewResolver(auth.ResolverConfig{
		Identities: []auth.Identity{{Tenant: "acme", Issuer: idp.URL, Audiences: []string{testAudience}}},
		KeySets:    auth.NewKeySets(auth.KeySetOptions{HTTPClient: idp.Client()}),
		CacheTTL:   -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	cp := &controlPlane{resolver: r}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: "stoad"})
			pr.Out.Header.Del("Authorization")
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
		FlushInterval: -1, // NDJSON streams flush per event
	}
	cp.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stoa"`)
			writeJSONResp(w, 401, api.ErrorBody{Error: &api.Error{Code: api.CodeUnauthorized, Message: "no bearer token"}})
			return
		}
		now := time.Now()
		if p := cp.now.Load(); p != nil {
			now = *p
		}
		p, err := cp.resolver.Authenticate(req.Context(), []byte(tok), now)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stoa", error="invalid_token"`)
			writeJSONResp(w, 401, api.ErrorBody{Error: &api.Error{Code: api.CodeUnauthorized, Message: "token refused: " + err.Error()}})
			return
		}
		groups, _ := p.Claim("groups")
		var have []string
		if gs, ok := groups.([]any); ok {
			for _, g := range gs {
				have = append(have, fmt.Sprint(g))
			}
		}
		if !slices.Contains(have, "stoa:admin") && (req.Method != http.MethodGet || !slices.Contains(have, "acme:viewer")) {
			writeJSONResp(w, 403, api.ErrorBody{Error: &api.Error{Code: api.CodeForbidden,
				Message: fmt.Sprintf("role editor (or cluster admin) required for %s %s; %s has %s", req.Method, req.URL.Path, p.Subject, strings.Join(have, ", ")),
				Hint:    "ask a cluster admin for the role"}})
			return
		}
		cp.mu.Lock()
		cp.tokens = append(cp.tokens, tok)
		cp.mu.Unlock()
		proxy.ServeHTTP(w, req)
	}))
	cp.srv.StartTLS()
	t.Cleanup(cp.srv.Close)
	cp.pin = tlspin.Of(cp.srv.Certificate().Raw)
	return cp
}

func (cp *controlPlane) lastToken() string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if len(cp.tokens) == 0 {
		return ""
	}
	return cp.tokens[len(cp.tokens)-1]
}

// remoteEnv is a configuration directory with a context "cp" for the
// control plane (both certificates pinned), and the streams of one run.
type remoteEnv struct {
	t     *testing.T
	idp   *devidptest.Server
	cp    *controlPlane
	local string // the local stoad's socket
	// now is the CLI's clock (token expiry); nil is time.Now.
	now func() time.Time
	// openBrowser plays the user's browser for stoa login.
	openBrowser func(string) error
}

func newRemoteEnv(t *testing.T) *remoteEnv {
	t.Helper()
	idp := startIdP(t)
	e := &remoteEnv{t: t, idp: idp, cp: startControlPlane(t, idp, startStoad(t)), local: startStoad(t)}
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	writeFile(t, filepath.Join(dir, "stoa", "config.yaml"), fmt.Sprintf(`contexts:
  - name: cp
    server: %s
    issuer: %s
    clientID: ci
    fingerprint: %s
    issuerFingerprint: %s
`, e.cp.srv.URL, idp.URL, e.cp.pin, idp.Fingerprint))
	return e
}

// run runs one stoa command line in-process, as the stoa binary does.
func (e *remoteEnv) run(ctx context.Context, args ...string) runResult {
	e.t.Helper()
	var out, errOut syncBuffer
	now := e.now
	if now == nil {
		now = time.Now
	}
	f := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Now: now, TokenStore: fileTokens, OpenBrowser: e.openBrowser}
	if ctx == nil {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		ctx = c
	}
	code := execute(ctx, f, args)
	return runResult{code: code, out: out.String(), errOut: errOut.String()}
}

func (e *remoteEnv) login() {
	e.t.Helper()
	e.t.Setenv("STOA_CLIENT_SECRET", "ci-secret")
	if r := e.run(nil, "login", "--context", "cp", "--client-credentials"); r.code != 0 {
		e.t.Fatalf("login: exit %d\n%s", r.code, r.errOut)
	}
	os.Unsetenv("STOA_CLIENT_SECRET")
}

// volatile is what differs between two stoads given the same commands:
// times, durations, API keys and their ids, process ids.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?`), "<time>"},
	{regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m|h)\b( ago)?`), "<dur>"},
	{regexp.MustCompile(`stoa_sk_[A-Za-z0-9_]+`), "<key>"},
	{regexp.MustCompile(`"(id|keyId|consumerUid|uid|rotatedTo)": ?"[^"]*"`), `"$1":"<id>"`},
	{regexp.MustCompile(`\b[a-z0-9]{16}\b`), "<id>"},
	{regexp.MustCompile(`\b[0-9a-f]{64}\b`), "<hash>"},
}

func normalizeRun(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// TestRemoteContextMatchesLocal: every command that works on the local
// socket works on a remote context unchanged — same stdout (times, ids
// and secrets aside), same stderr, same exit code — with two stoads
// given the same commands, one local and one behind the control plane.
func TestRemoteContextMatchesLocal(t *testing.T) {
	e := newRemoteEnv(t)
	e.login()
	specs2 := t.TempDir()
	writeFile(t, filepath.Join(specs2, "tenant.yaml"), "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: initech\nspec:\n  displayName: Initech\n")
	bad := t.TempDir()
	writeFile(t, filepath.Join(bad, "tool.yaml"), "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata:\n  name: x\n  namespace: acme\nspec:\n  upstrem: http://x\n")
	lines := [][]string{
		{"validate", "-f", quickstartDir},
		{"diff", "-f", quickstartDir},
		{"apply", "-f", quickstartDir, "-m", "first"},
		{"diff", "-f", quickstartDir},
		{"apply", "-f", quickstartDir},
		{"apply", "-f", bad},
		{"apply", "-f", specs2, "-m", "second"},
		{"get", "tools", "-A"},
		{"get", "tool", "billing-api", "-n", "acme", "-o", "yaml"},
		{"get", "all", "-n", "acme", "-o", "json"},
		{"get", "tool", "nope", "-n", "acme"},
		{"history"},
		{"history", "2", "-o", "json"},
		{"rollback", "1", "--yes"},
		{"history", "-o", "ndjson"},
		{"delete", "tenant", "initech", "--dry-run"},
		{"delete", "tool", "inventory-api", "-n", "acme"},
		{"delete", "tool", "inventory-api", "-n", "acme", "--cascade", "--yes"},
		{"events", "--last", "5"},
		{"events", "--last", "3", "-o", "json"},
		{"keys", "create", "--consumer", "web-shop", "-n", "acme", "--name", "ci"},
		{"keys", "list", "-A"},
		{"keys", "list", "-n", "acme", "-o", "json"},
		{"keys", "revoke", "k000000000000000"},
		{"quotas", "-A"},
		{"snapshots", "list", "-A"},
		{"webhooks", "deliveries", "-A"},
		{"audit", "verify", "-o", "json"},
		{"xdp", "blocks"},
		{"export", "-n", "acme"},
	}
	for _, args := range lines {
		local := e.run(nil, append([]string{"--socket", e.local}, args...)...)
		remote := e.run(nil, append([]string{"--context", "cp"}, args...)...)
		// Subscription events follow their config.applied event from a
		// background loop, so the two daemons' trails agree only once both
		// have announced the last change: ask again until they do.
		for deadline := time.Now().Add(30 * time.Second); args[0] == "events" && time.Now().Before(deadline) &&
			normalizeRun(local.out) != normalizeRun(remote.out); time.Sleep(200 * time.Millisecond) {
			local = e.run(nil, append([]string{"--socket", e.local}, args...)...)
			remote = e.run(nil, append([]string{"--context", "cp"}, args...)...)
		}
		name := strings.Join(args, " ")
		// Some events follow a change asynchronously (a cascade's
		// subscription.deleted): the two stoads may each still be
		// emitting them. Read again until both have settled.
		for deadline := time.Now().Add(10 * time.Second); args[0] == "events" && time.Now().Before(deadline) &&
			normalizeRun(local.out) != normalizeRun(remote.out); time.Sleep(50 * time.Millisecond) {
			local = e.run(nil, append([]string{"--socket", e.local}, args...)...)
			remote = e.run(nil, append([]string{"--context", "cp"}, args...)...)
		}
		if local.code != remote.code {
			t.Errorf("stoa %s: exit %d locally, %d remotely\nlocal stderr:\n%s\nremote stderr:\n%s", name, local.code, remote.code, local.errOut, remote.errOut)
			continue
		}
		if lo, ro := normalizeRun(local.out), normalizeRun(remote.out); lo != ro {
			t.Errorf("stoa %s: stdout differs\nlocal:\n%s\nremote:\n%s", name, lo, ro)
		}
		if le, re := normalizeRun(local.errOut), normalizeRun(remote.errOut); le != re {
			t.Errorf("stoa %s: stderr differs\nlocal:\n%s\nremote:\n%s", name, le, re)
		}
		if testing.Verbose() {
			t.Logf("stoa %s: exit %d\n%s%s", name, remote.code, remote.out, remote.errOut)
		}
	}
	if tok := e.cp.lastToken(); tok == "" {
		t.Fatal("the control plane accepted no token")
	}

	// status and version differ in the context line (and the daemon's
	// pid, uptime and directories).
	r := e.run(nil, "--context", "cp", "status")
	if r.code != 0 || !strings.Contains(r.out, "context:     cp ("+e.cp.srv.URL+")\n") || !strings.Contains(r.out, "revision:    4") {
		t.Errorf("status:\n%s%s", r.out, r.errOut)
	}
	r = e.run(nil, "--context", "cp", "version", "-o", "json")
	var v Versions
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || v.Server == nil || v.Context != (ContextInfo{Name: "cp", Endpoint: e.cp.srv.URL, Source: "--context"}) {
		t.Errorf("version: %v\n%s%s", err, r.out, r.errOut)
	}
	r = e.run(nil, "--socket", e.local, "version")
	if !strings.Contains(r.out, "context: local ("+e.local+")") {
		t.Errorf("local version:\n%s", r.out)
	}
	t.Setenv("STOA_CONTEXT", "cp")
	if r := e.run(nil, "top", "-o", "json"); r.code != 0 || !json.Valid([]byte(r.out)) {
		t.Errorf("top through $STOA_CONTEXT: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}

// TestRemoteStreams: events --follow and get --watch stream over HTTPS
// as over the socket.
func TestRemoteStreams(t *testing.T) {
	e := newRemoteEnv(t)
	e.login()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan runResult, 2)
	var follow, watch syncBuffer
	go func() {
		done <- e.runTo(ctx, &follow, "--context", "cp", "events", "--follow", "--last", "1", "-o", "json")
	}()
	go func() {
		done <- e.runTo(ctx, &watch, "--context", "cp", "get", "tenants", "--watch", "-o", "json")
	}()
	// Both streams are open (the watch has read the objects too).
	waitFor(t, func() bool { return e.cp.requests() >= 3 })
	if r := e.run(nil, "--context", "cp", "apply", "-f", quickstartDir); r.code != 0 {
		t.Fatalf("apply: %s", r.errOut)
	}
	waitFor(t, func() bool {
		return strings.Contains(follow.String(), `"config.applied"`) && strings.Contains(watch.String(), `"ADDED"`)
	})
	cancel()
	for range 2 {
		if r := <-done; r.code != 0 {
			t.Errorf("stream ended with exit %d: %s", r.code, r.errOut)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(follow.String()), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("events --follow line %q is not JSON", l)
		}
	}
}

func (e *remoteEnv) runTo(ctx context.Context, out io.Writer, args ...string) runResult {
	var errOut syncBuffer
	f := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: &errOut}, Now: time.Now, TokenStore: fileTokens}
	code := execute(ctx, f, args)
	return runResult{code: code, errOut: errOut.String()}
}

func (cp *controlPlane) requests() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return len(cp.tokens)
}

// TestRemoteAuthFailures: what a user sees when the token or the server
// is not what it should be — exit 4 with how to log in, 4 with the
// missing role, 5 naming the server and context, and a refused
// certificate that names both fingerprints.
func TestRemoteAuthFailures(t *testing.T) {
	e := newRemoteEnv(t)
	check := func(name string, r runResult, code int, errOut ...string) {
		t.Helper()
		if r.code != code || r.out != "" {
			t.Errorf("%s: exit %d, want %d; stdout %q\nstderr:\n%s", name, r.code, code, r.out, r.errOut)
			return
		}
		for _, w := range errOut {
			if !strings.Contains(r.errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", name, w, r.errOut)
			}
		}
	}
	check("never logged in", e.run(nil, "--context", "cp", "get", "tools"), ExitForbidden,
		`not logged in to context "cp"`, "hint: log in again: stoa login --context cp")
	e.login()

	// The server finds the token expired (its clock is ahead).
	later := time.Now().Add(time.Hour)
	e.cp.now.Store(&later)
	check("expired at the server", e.run(nil, "--context", "cp", "get", "tools"), ExitForbidden,
		"stoa: the control plane at "+e.cp.srv.URL+` refused the token of context "cp": token refused: token expired`,
		"hint: log in again: stoa login --context cp")
	e.cp.now.Store(nil)

	// The CLI finds it expired, and a client-credentials token cannot be
	// renewed without the secret.
	e.now = func() time.Time { return time.Now().Add(time.Hour) }
	check("session expired", e.run(nil, "--context", "cp", "history"), ExitForbidden, `session expired for context "cp"`, "stoa login --context cp")
	e.now = nil

	// A token from another issuer in $STOA_TOKEN.
	other := startIdP(t)
	foreign, err := other.MintToken("alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("STOA_TOKEN", foreign)
	check("foreign token", e.run(nil, "--context", "cp", "get", "tools"), ExitForbidden,
		"refused the token in $STOA_TOKEN: token refused:", "hint: put a fresh token for this server in STOA_TOKEN, or unset it")

	// A viewer reads but may not change.
	viewer, err := e.idp.MintToken("vera", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("STOA_TOKEN", viewer)
	check("viewer reads", e.run(nil, "--context", "cp", "get", "tools", "-A"), ExitOK)
	check("viewer applies", e.run(nil, "--context", "cp", "apply", "-f", quickstartDir), ExitForbidden,
		"stoa: role editor (or cluster admin) required for POST /v1/apply; vera has acme:viewer", "hint: ask a cluster admin for the role")
	os.Unsetenv("STOA_TOKEN")

	// Nothing listens; a certificate that is not the pinned one; one
	// that nobody trusts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "https://" + ln.Addr().String()
	ln.Close()
	wrongPin := tlspin.Of([]byte("not the control plane's certificate"))
	cfg := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "stoa", "config.yaml")
	data, _ := os.ReadFile(cfg)
	writeFile(t, cfg, string(data)+fmt.Sprintf(`  - name: down
    server: %s
  - name: mitm
    server: %s
    fingerprint: %s
  - name: tofu
    server: %s
`, down, e.cp.srv.URL, wrongPin, e.cp.srv.URL))
	before := e.cp.requests()
	check("server down", e.run(nil, "--context", "down", "get", "tools"), ExitUnreachable,
		"stoa: cannot reach the control plane at "+down+` (context "down")`, "connection refused", `hint: is the control plane running and reachable from here? context "down"'s server is `+down)
	check("pin mismatch", e.run(nil, "--context", "mitm", "apply", "-f", quickstartDir), ExitUnreachable,
		"it does not match the pinned fingerprint", "expected "+wrongPin.String(), "got      "+e.cp.pin.String(), "hint: nothing was sent")
	check("untrusted certificate", e.run(nil, "--context", "tofu", "status"), ExitUnreachable,
		"certificate signed by unknown authority", "the server presented "+e.cp.pin.String(),
		"pin it: stoa context add tofu --server "+e.cp.srv.URL+" --fingerprint "+e.cp.pin.String()+" --overwrite")
	if n := e.cp.requests(); n != before {
		t.Errorf("%d requests reached the control plane over refused connections", n-before)
	}
	// The hint's command works, once the user has checked the fingerprint.
	tofu, err := savedConfig(t).Get("tofu")
	if err != nil {
		t.Fatal(err)
	}
	tofu.Fingerprint = e.cp.pin.String()
	r := e.run(nil, strings.Fields(strings.TrimPrefix(contextAddCommand(tofu), "stoa "))...)
	if r.code != 0 {
		t.Fatalf("pin: %s", r.errOut)
	}
	check("pinned now, no token", e.run(nil, "--context", "tofu", "status"), ExitForbidden, `requires a token, and context "tofu" has none`)
}

// TestRemoteRenewsBeforeExpiry: a browser login's token is renewed a
// minute before it expires, without asking, and the rotated tokens are
// saved; before that, the stored token is sent as it is.
func TestRemoteRenewsBeforeExpiry(t *testing.T) {
	e := newRemoteEnv(t)
	cfg := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "stoa", "config.yaml")
	data, _ := os.ReadFile(cfg)
	writeFile(t, cfg, strings.Replace(string(data), "    clientID: ci\n", "", 1))
	browser := e.idp.NewBrowser("alice", "alice-pw")
	e.openBrowser = func(u string) error {
		go func() {
			if _, err := browser.Login(u); err != nil {
				t.Errorf("browser: %v", err)
			}
		}()
		return nil
	}
	r := e.run(nil, "--context", "cp", "login")
	if r.code != 0 || !strings.Contains(r.errOut, "as alice") || !strings.Contains(r.errOut, "is renewed automatically") {
		t.Fatalf("login: exit %d\n%s", r.code, r.errOut)
	}
	store := fileTokens(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "stoa"))
	first, _, err := store.Load("cp")
	if err != nil || first.RefreshToken == "" {
		t.Fatalf("stored: %+v %v", first, err)
	}

	// Well before expiry: the stored token.
	e.now = func() time.Time { return first.Expiry.Add(-5 * time.Minute) }
	if r := e.run(nil, "--context", "cp", "get", "tools"); r.code != 0 || e.cp.lastToken() != first.AccessToken {
		t.Fatalf("early: exit %d %s; the control plane got another token", r.code, r.errOut)
	}
	// Within a minute of expiry: renewed first, saved, and sent.
	e.now = func() time.Time { return first.Expiry.Add(-30 * time.Second) }
	if r := e.run(nil, "--context", "cp", "get", "tools"); r.code != 0 {
		t.Fatalf("renewing: exit %d %s", r.code, r.errOut)
	}
	second, _, err := store.Load("cp")
	if err != nil || second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken || e.cp.lastToken() != second.AccessToken {
		t.Fatalf("not renewed before expiry: %v", err)
	}
	// stoa logout forgets it.
	if r := e.run(nil, "--context", "cp", "logout"); r.code != 0 || !strings.Contains(r.errOut, "removed its token") {
		t.Fatalf("logout: %s", r.errOut)
	}
	if r := e.run(nil, "--context", "cp", "get", "tools"); r.code != ExitForbidden {
		t.Fatalf("after logout: exit %d", r.code)
	}
}
