package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// eras: the stateful SDK server speaks only the initialize era (with
// Mcp-Session-Id); the stateless one serves 2026-07-28 (and legacy).
var eras = []struct {
	name      string
	stateless bool
	pin       string
	want      string
	session   bool
	json      bool
}{
	{"legacy-session", false, "", "2025-11-25", true, false},
	{"modern", true, "", VersionModern, false, false},
	{"legacy-pinned-stateless", true, VersionLegacy, "2025-11-25", false, false},
	{"legacy-session-json", false, "", "2025-11-25", true, true},
	{"modern-json", true, "", VersionModern, false, true},
}

func TestCallBothEras(t *testing.T) {
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			f := newFixture(t, era.stateless, era.json)
			cfg := httpConfig(f.ts.URL)
			cfg.ProtocolVersion = era.pin
			u := startUpstream(t, cfg, testOptions(t))
			st := u.Status()
			if st.State != StateReady || st.Protocol != era.want || st.Session != era.session {
				t.Fatalf("status = %+v; want ready, protocol %s, session %v", st, era.want, era.session)
			}
			if st.Server != "fed-test" {
				t.Errorf("server = %q", st.Server)
			}
			want := []string{"acme__up__add", "acme__up__echo", "acme__up__env", "acme__up__fail", "acme__up__hidden_admin", "acme__up__regional", "acme__up__slow", "acme__up__weird_name_v2"}
			if got := toolNames(u); !slices.Equal(got, want) {
				t.Fatalf("tools = %v; want %v", got, want)
			}
			echo, _ := u.Tool("echo")
			if echo.Description != "Echo text" || !strings.Contains(string(echo.InputSchema), `"text"`) ||
				echo.Annotations.ReadOnly == nil || !*echo.Annotations.ReadOnly {
				t.Errorf("echo tool = %+v", echo)
			}
			res := mustCall(t, u, "echo", `{"text":"héllo"}`)
			if res.IsError || text(t, res.Raw) != "echo: héllo" {
				t.Errorf("echo = %s", res.Raw)
			}
			res = mustCall(t, u, "add", `{"a":2,"b":40}`)
			var sc struct{ StructuredContent map[string]int }
			json.Unmarshal(res.Raw, &sc)
			if sc.StructuredContent["sum"] != 42 {
				t.Errorf("add = %s", res.Raw)
			}
			res = mustCall(t, u, "fail", ``)
			if !res.IsError || text(t, res.Raw) != "it failed" {
				t.Errorf("fail = %s (isError %v)", res.Raw, res.IsError)
			}
			if _, err := u.Call(context.Background(), "nope", nil); !isKind(err, ErrUnknownTool) {
				t.Errorf("unknown tool: %v", err)
			}
			// Invalid arguments are the upstream's to judge: a JSON-RPC error
			// or an isError result, never a transport failure.
			_, err := u.Call(context.Background(), "add", json.RawMessage(`{"a":"x"}`))
			if err != nil && !strings.Contains(err.Error(), "upstream error") {
				t.Errorf("invalid args: %v", err)
			}
			if u.Status().State != StateReady {
				t.Errorf("state after calls = %s", u.Status().State)
			}
			// x-mcp-header arguments are mirrored into Mcp-Param-* (2026-07-28;
			// the SDK server checks them).
			if res := mustCall(t, u, "regional", `{"region":"eu-wést","n":1}`); text(t, res.Raw) != "region eu-wést" {
				t.Errorf("regional = %s", res.Raw)
			}
			if era.stateless && era.pin == "" {
				var sawParam bool
				for _, h := range f.seenHeaders() {
					sawParam = sawParam || h.Get("Mcp-Param-Region") == "=?base64?ZXUtd8Opc3Q=?="
				}
				if !sawParam {
					t.Error("no request carried Mcp-Param-Region")
				}
				// 2026-07-28 requests carry the per-request metadata headers.
				var sawName bool
				for _, h := range f.seenHeaders() {
					if h.Get("Mcp-Method") == "tools/call" && h.Get("Mcp-Name") == "echo" && h.Get("Mcp-Protocol-Version") == VersionModern {
						sawName = true
					}
				}
				if !sawName {
					t.Error("no tools/call request carried Mcp-Method, Mcp-Name and MCP-Protocol-Version")
				}
			}
		})
	}
}

func TestDenyAllowRename(t *testing.T) {
	f := newFixture(t, false)
	cfg := httpConfig(f.ts.URL)
	cfg.Tools.Deny = []string{"hidden_*", "env"}
	cfg.Tools.Allow = []string{"e*", "a?d", "hidden_admin", "weird*"}
	cfg.Tools.Rename = map[string]string{"echo": "say", "weird.name/v2": "weird"}
	u := startUpstream(t, cfg, testOptions(t))
	want := []string{"acme__up__add", "acme__up__say", "acme__up__weird"}
	if got := toolNames(u); !slices.Equal(got, want) {
		t.Fatalf("tools = %v; want %v", got, want)
	}
	say := u.Tools()[1]
	if say.UpstreamName != "echo" {
		t.Errorf("renamed tool's upstream name = %q", say.UpstreamName)
	}
	if res := mustCall(t, u, "echo", `{"text":"x"}`); text(t, res.Raw) != "echo: x" {
		t.Errorf("renamed call = %s", res.Raw)
	}
	// Hidden tools cannot be called, whatever name is used.
	for _, name := range []string{"hidden_admin", "env", "fail", "acme__up__hidden_admin"} {
		if _, err := u.Call(context.Background(), name, nil); !isKind(err, ErrUnknownTool) {
			t.Errorf("call %s: %v; want ErrUnknownTool", name, err)
		}
	}
	if len(u.Status().Problems) != 0 {
		t.Errorf("problems = %v", u.Status().Problems)
	}
}

func TestSanitizedNameReportsRename(t *testing.T) {
	f := newFixture(t, false)
	u := startUpstream(t, httpConfig(f.ts.URL), testOptions(t))
	if _, ok := u.Tool("weird.name/v2"); !ok {
		t.Fatal("weird.name/v2 not exposed")
	}
	probs := u.Status().Problems
	if len(probs) != 1 || !strings.Contains(probs[0], `tools.rename: {"weird.name/v2": "weird_name_v2"}`) {
		t.Fatalf("problems = %q", probs)
	}
	if res := mustCall(t, u, "weird.name/v2", ``); text(t, res.Raw) != "weird" {
		t.Errorf("call = %s", res.Raw)
	}
}

func TestListChanged(t *testing.T) {
	for _, era := range eras[:2] {
		t.Run(era.name, func(t *testing.T) {
			f := newFixture(t, era.stateless)
			u := startUpstream(t, httpConfig(f.ts.URL), testOptions(t))
			var changes atomic.Int32
			u.OnChange(func() { changes.Add(1) })
			// The notification stream opens in the background; add tools
			// until one notification got through.
			n := 0
			eventually(t, "OnChange after a tool was added upstream", func() bool {
				if changes.Load() > 0 {
					return true
				}
				n++
				name := "added_" + string(rune('a'+n%26)) + strings.Repeat("x", n/26)
				f.srv.AddTool(&mcp.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)},
					func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
						return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "new"}}}, nil
					})
				time.Sleep(50 * time.Millisecond)
				return changes.Load() > 0
			})
			eventually(t, "the added tool in Tools()", func() bool {
				_, ok := u.Tool("added_b")
				return ok
			})
			if res := mustCall(t, u, "added_b", ``); text(t, res.Raw) != "new" {
				t.Errorf("call added tool = %s", res.Raw)
			}
			f.srv.RemoveTools("echo")
			eventually(t, "echo removed", func() bool { _, ok := u.Tool("echo"); return !ok })
			if _, err := u.Call(context.Background(), "echo", nil); !isKind(err, ErrUnknownTool) {
				t.Errorf("removed tool call: %v", err)
			}
		})
	}
}

func TestUpstreamDownFailsFastThenRecovers(t *testing.T) {
	addr := freeAddr(t)
	cfg := httpConfig("http://" + addr + "/mcp")
	cfg.Timeout = time.Hour // a hang would show as a test timeout, not pass
	u := startUpstream(t, cfg, testOptions(t))
	st := u.Status()
	if st.State != StateDown || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("status = %+v", st)
	}
	if len(u.Tools()) != 0 {
		t.Fatalf("tools of a down upstream: %v", toolNames(u))
	}
	// Calls fail at once, with a clear, address-free message.
	u.view.Store(buildView(&cfg, []wireTool{{Name: "echo"}}, nil, false, 10))
	_, err := u.Call(context.Background(), "echo", nil)
	if !isKind(err, ErrUnavailable) || !strings.Contains(err.Error(), "acme/up is unavailable") ||
		!strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), addr) {
		t.Fatalf("call while down: %v", err)
	}
	// The upstream comes up at that address: the supervisor reconnects.
	f := newFixture(t, false)
	mux := http.NewServeMux()
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*f.handler.Load()).ServeHTTP(w, r) }))
	srv := httptest.NewUnstartedServer(mux)
	l, err := listenOn(addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	eventually(t, "ready after the upstream came up", func() bool { return u.Status().State == StateReady })
	if res := mustCall(t, u, "echo", `{"text":"back"}`); text(t, res.Raw) != "echo: back" {
		t.Errorf("call after recovery = %s", res.Raw)
	}
	if u.Status().Restarts == 0 {
		t.Error("restarts not counted")
	}
	// The upstream goes away while connected: the first failing call marks
	// it down, the next fails fast.
	srv.CloseClientConnections()
	srv.Close()
	_, err = u.Call(context.Background(), "echo", nil)
	if !isKind(err, ErrUnavailable) {
		t.Fatalf("call to a vanished upstream: %v", err)
	}
	eventually(t, "down", func() bool { return u.Status().State == StateDown })
	if _, err := u.Call(context.Background(), "echo", nil); !isKind(err, ErrUnavailable) {
		t.Fatalf("call while down: %v", err)
	}
}

func TestSilentUpstreamBoundedByConnectTimeout(t *testing.T) {
	// Accepts TCP connections and never answers: the handshake must give
	// up after connectTimeout, not hang.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	cfg := httpConfig("http://" + l.Addr().String() + "/mcp")
	cfg.ConnectTimeout = 300 * time.Millisecond
	cfg.Timeout = time.Hour
	u := startUpstream(t, cfg, testOptions(t))
	if st := u.Status(); st.State != StateDown || !strings.Contains(st.LastError, "deadline exceeded") {
		t.Fatalf("status = %+v", st)
	}
	if _, err := u.Call(context.Background(), "echo", nil); !isKind(err, ErrUnknownTool) && !isKind(err, ErrUnavailable) {
		t.Fatalf("call: %v", err)
	}
}

func TestSlowToolTimesOutSessionStaysUsable(t *testing.T) {
	for _, era := range eras[:2] {
		t.Run(era.name, func(t *testing.T) {
			f := newFixture(t, era.stateless)
			cfg := httpConfig(f.ts.URL)
			// The timeout covers initialize and tools/list too: long
			// enough for those on a busy machine, short against the
			// slow tool's 20 s.
			cfg.Timeout = 2 * time.Second
			u := startUpstream(t, cfg, testOptions(t))
			_, err := u.Call(context.Background(), "slow", json.RawMessage(`{"ms":20000}`))
			if !isKind(err, ErrTimeout) || !strings.Contains(err.Error(), "did not answer within 2s") {
				t.Fatalf("slow call: %v", err)
			}
			if st := u.Status(); st.State != StateReady {
				t.Fatalf("state after one timeout = %s", st.State)
			}
			if res := mustCall(t, u, "echo", `{"text":"still"}`); text(t, res.Raw) != "echo: still" {
				t.Errorf("call after timeout = %s", res.Raw)
			}
			if u.Status().Reinitializations != 0 {
				t.Error("a timeout re-initialized the session")
			}
			// The caller's own deadline wins over the configured timeout and
			// is reported as the caller's, not the upstream's.
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if _, err := u.Call(ctx, "slow", json.RawMessage(`{"ms":20000}`)); err != context.DeadlineExceeded {
				t.Errorf("caller deadline: %v", err)
			}
		})
	}
}

func TestCircuitOpensAfterRepeatedTimeouts(t *testing.T) {
	f := newFixture(t, false)
	cfg := httpConfig(f.ts.URL)
	// Long enough for initialize and tools/list on a busy machine (a
	// start that times out leaves an empty catalog); short against the
	// slow tool's 20 s.
	cfg.Timeout = 2 * time.Second
	opts := testOptions(t)
	opts.FailureThreshold = 2
	opts.BackoffInitial = time.Hour // keep it open for the assertion
	u := startUpstream(t, cfg, opts)
	for range 2 {
		if _, err := u.Call(context.Background(), "slow", json.RawMessage(`{"ms":20000}`)); !isKind(err, ErrTimeout) {
			t.Fatalf("slow call: %v", err)
		}
	}
	eventually(t, "down after 2 timeouts", func() bool { return u.Status().State == StateDown })
	if _, err := u.Call(context.Background(), "echo", nil); !isKind(err, ErrUnavailable) {
		t.Fatalf("call with open circuit: %v", err)
	}
	if !strings.Contains(u.Status().LastError, "2 calls in a row failed") {
		t.Errorf("last error = %q", u.Status().LastError)
	}
}

func TestSessionExpiryReinitializes(t *testing.T) {
	f := newFixture(t, false)
	u := startUpstream(t, httpConfig(f.ts.URL), testOptions(t))
	first := sessionIDs(f)
	f.reset() // the upstream forgets every session: 404 on the old id
	if res := mustCall(t, u, "echo", `{"text":"again"}`); text(t, res.Raw) != "echo: again" {
		t.Fatalf("call after expiry = %s", res.Raw)
	}
	st := u.Status()
	if st.Reinitializations < 1 || st.State != StateReady {
		t.Fatalf("status = %+v", st)
	}
	ids := sessionIDs(f)
	if len(ids) < 2 || ids[len(ids)-1] == first[0] {
		t.Fatalf("session ids = %v", ids)
	}
	// list_changed still arrives on the new session's stream.
	var changes atomic.Int32
	u.OnChange(func() { changes.Add(1) })
	eventually(t, "list_changed on the new session", func() bool {
		f.srv.AddTool(&mcp.Tool{Name: "late" + time.Now().Format("150405.000000"), InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{}, nil
			})
		time.Sleep(50 * time.Millisecond)
		return changes.Load() > 0
	})
}

// sessionIDs lists the distinct Mcp-Session-Id values the upstream saw.
func sessionIDs(f *upstreamFixture) []string {
	var out []string
	for _, h := range f.seenHeaders() {
		if id := h.Get("Mcp-Session-Id"); id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func TestUpstreamAuthNeverForwardsCaller(t *testing.T) {
	for _, tc := range []struct {
		name, header, prefix, want string
	}{
		{"bearer", "", "", "Bearer s3cret-upstream"},
		{"api-key", "X-Api-Key", "", "s3cret-upstream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false)
			t.Setenv("FED_TEST_UPSTREAM_TOKEN", "s3cret-upstream")
			cfg := httpConfig(f.ts.URL)
			cfg.Auth = &Auth{Header: tc.header, Prefix: tc.prefix, SecretRef: spec.SecretRef{Env: "FED_TEST_UPSTREAM_TOKEN"}}
			u := startUpstream(t, cfg, testOptions(t))
			// A caller reaches stoa with its own credentials; the daemon calls
			// the upstream from within that request.
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				res, err := u.Call(r.Context(), "echo", json.RawMessage(`{"text":"hi"}`))
				if err != nil {
					http.Error(w, err.Error(), 502)
					return
				}
				w.Write(res.Raw)
			}))
			defer front.Close()
			req, _ := http.NewRequest("POST", front.URL, nil)
			req.Header.Set("Authorization", "Bearer caller-token")
			req.Header.Set("X-Api-Key", "caller-key")
			req.Header.Set("Cookie", "session=caller-cookie")
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("front call: %v %v", resp, err)
			}
			resp.Body.Close()
			hs := f.seenHeaders()
			if len(hs) < 3 {
				t.Fatalf("upstream saw %d requests", len(hs))
			}
			hdr := tc.header
			if hdr == "" {
				hdr = "Authorization"
			}
			for i, h := range hs {
				if got := h.Get(hdr); got != tc.want {
					t.Errorf("request %d: %s = %q; want %q", i, hdr, got, tc.want)
				}
				for name, vals := range h {
					for _, v := range vals {
						if strings.Contains(v, "caller") {
							t.Errorf("request %d forwarded the caller's %s: %q", i, name, v)
						}
					}
				}
				if hdr != "Authorization" && h.Get("Authorization") != "" {
					t.Errorf("request %d has an Authorization header", i)
				}
			}
		})
	}
}

func TestUpstreamAuthRejected(t *testing.T) {
	f := newFixture(t, false)
	guard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer right" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		f.ts.Config.Handler.ServeHTTP(w, r)
	}))
	defer guard.Close()
	cfg := httpConfig(guard.URL)
	cfg.Auth = &Auth{SecretRef: spec.SecretRef{Env: "FED_TEST_WRONG"}}
	t.Setenv("FED_TEST_WRONG", "wrong")
	u := startUpstream(t, cfg, testOptions(t))
	if st := u.Status(); st.State != StateDown || !strings.Contains(st.LastError, "HTTP 401") {
		t.Fatalf("status = %+v", st)
	}
}

func TestDialControlVetsAddresses(t *testing.T) {
	f := newFixture(t, false)
	opts := testOptions(t)
	var vetted atomic.Int32
	opts.DialControl = func(network, address string, _ syscall.RawConn) error {
		vetted.Add(1)
		return errors.New("destination refused by policy")
	}
	u := startUpstream(t, httpConfig(f.ts.URL), opts)
	if st := u.Status(); st.State != StateDown || !strings.Contains(st.LastError, "destination refused by policy") || vetted.Load() == 0 {
		t.Fatalf("status = %+v", st)
	}
	if len(f.seenHeaders()) != 0 {
		t.Fatal("a request reached the upstream")
	}
}

func TestResourcesNamespaced(t *testing.T) {
	f := newFixture(t, false)
	cfg := httpConfig(f.ts.URL)
	cfg.Resources.Expose = true
	u := startUpstream(t, cfg, testOptions(t))
	rs := u.Resources()
	if len(rs) != 1 || rs[0].URI != "stoa://tools/acme/up/upstream/test://doc" || rs[0].UpstreamURI != "test://doc" || rs[0].MimeType != "text/plain" {
		t.Fatalf("resources = %+v", rs)
	}
	raw, err := u.ReadResource(context.Background(), rs[0].URI)
	if err != nil {
		t.Fatal(err)
	}
	var rr struct {
		Contents []struct{ URI, Text string }
	}
	json.Unmarshal(raw, &rr)
	if len(rr.Contents) != 1 || rr.Contents[0].URI != rs[0].URI || rr.Contents[0].Text != "the doc" {
		t.Fatalf("read = %s", raw)
	}
	// Another upstream's prefix, an unlisted URI, the raw upstream URI, a
	// prefix trick: all unknown.
	for _, uri := range []string{
		"stoa://tools/acme/other/upstream/test://doc",
		"stoa://tools/other/up/upstream/test://doc",
		"stoa://tools/acme/up/upstream/file:///etc/passwd",
		"test://doc",
		"stoa://tools/acme/up/upstream/",
		"stoa://tools/acme/up/upstream/../other/upstream/test://doc",
	} {
		if _, err := u.ReadResource(context.Background(), uri); !isKind(err, ErrUnknownResource) {
			t.Errorf("read %s: %v; want ErrUnknownResource", uri, err)
		}
	}
	// Not exposed by default.
	u2 := startUpstream(t, httpConfig(f.ts.URL), testOptions(t))
	if len(u2.Resources()) != 0 {
		t.Error("resources exposed without resources.expose")
	}
	if _, err := u2.ReadResource(context.Background(), rs[0].URI); !isKind(err, ErrUnknownResource) {
		t.Errorf("read without expose: %v", err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var leaked atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "" || r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
		http.Error(w, "no", 404)
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirector.Close()
	t.Setenv("FED_TEST_KEY", "k")
	cfg := httpConfig(redirector.URL)
	cfg.Auth = &Auth{Header: "X-Api-Key", SecretRef: spec.SecretRef{Env: "FED_TEST_KEY"}}
	u := startUpstream(t, cfg, testOptions(t))
	if st := u.Status(); st.State != StateDown || !strings.Contains(st.LastError, "HTTP 307") {
		t.Fatalf("status = %+v", st)
	}
	if leaked.Load() {
		t.Fatal("the credential followed a redirect")
	}
}

// TestConnectionsReused: calls answered over SSE (the SDK server's
// default) reuse keep-alive connections. Closing an answer's stream before
// its end would cost a TCP connection (and ~0.3 ms of CPU) per call.
func TestConnectionsReused(t *testing.T) {
	for _, stateless := range []bool{false, true} {
		t.Run(fmt.Sprintf("stateless=%v", stateless), func(t *testing.T) {
			f := newFixture(t, stateless)
			var mu sync.Mutex
			peers := map[string]bool{} // client address of each connection
			sdkHandler := *f.handler.Load()
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				peers[r.RemoteAddr] = true
				mu.Unlock()
				sdkHandler.ServeHTTP(w, r)
			})
			f.handler.Store(&h)
			count := func() int {
				mu.Lock()
				defer mu.Unlock()
				return len(peers)
			}
			u := startUpstream(t, httpConfig(f.ts.URL), testOptions(t))
			mustCall(t, u, "echo", `{"text":"warm"}`)
			before := count()
			for range 200 {
				mustCall(t, u, "echo", `{"text":"x"}`)
			}
			// A call may find the previous call's connection still being
			// drained and open another: a few, not one per call.
			if n := count() - before; n > 5 {
				t.Errorf("200 sequential calls opened %d connections", n)
			}
		})
	}
}
