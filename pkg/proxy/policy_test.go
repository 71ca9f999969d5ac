package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/policy"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// policySpecs: a Tenant guardrail and default grant, a Tool with its own
// rules, a ToolSet granting by header, a Tool whose rule cannot be
// evaluated for API keys (no claims), and a tool with no policy of its
// own.
func policySpecs(up string) string {
	return tenant("acme", `policy:
  rules:
    - name: no-admin
      deny: request.path.endsWith("/admin")
    - name: staff
      allow: caller.consumer in ["alice", "bob"]
`) +
		object("Consumer", "acme", "alice", "displayName: alice") +
		object("Consumer", "acme", "bob", "displayName: bob") +
		object("Consumer", "acme", "carol", "displayName: carol") +
		tool("acme", "billing", "http://"+up+"/b", `auth: {type: apiKey}
policy:
  rules:
    - name: no-deletes
      deny: request.method == "DELETE"
    - name: bob-only
      allow: caller.consumer == "bob"
`) +
		tool("acme", "ledger", "http://"+up+"/l", "auth: {type: apiKey}") +
		object("ToolSet", "acme", "fin", `tools: [ledger]
policy:
  rules:
    - name: fin-team
      allow: request.headers["x-team"] == "fin" && request.host == "gw.example" && source.ip == "127.0.0.1"
`) +
		tool("acme", "claims", "http://"+up+"/c", `auth: {type: apiKey}
policy:
  rules:
    - name: finance
      allow: caller.claims.dept == "finance"
`) +
		tool("acme", "plain", "http://"+up+"/p", "auth: {type: apiKey}")
}

type capturedEvent struct {
	typ, tenant, msg string
	data             map[string]any
}

type eventCapture struct {
	mu  sync.Mutex
	evs []capturedEvent
}

func (c *eventCapture) add(typ, tenant, msg string, data map[string]any) {
	c.mu.Lock()
	c.evs = append(c.evs, capturedEvent{typ, tenant, msg, data})
	c.mu.Unlock()
}

func (c *eventCapture) ofType(typ string) []capturedEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []capturedEvent
	for _, e := range c.evs {
		if e.typ == typ {
			out = append(out, e)
		}
	}
	return out
}

// TestPolicyBothPaths runs the decisions of docs/policy.md through a real
// proxy, once on the fast path (with fasthttp for what it hands over) and
// once on fasthttp's path only: the most specific allow rules win, denies
// are guardrails, a rule that cannot be evaluated denies, and a denial is
// a 403 naming the rule, an event, and nothing sent upstream.
func TestPolicyBothPaths(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "fasthttp"}[slow], func(t *testing.T) {
			up := newRecordingUpstream(t)
			up.setAnswer([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			evs := &eventCapture{}
			e := newEnv(t, policySpecs(up.ln.Addr().String()), func(o *Options) { o.OnEvent = evs.add })
			e.p.slowOnly.Store(slow)
			alice, bob, carol := e.addKey("acme", "alice", nil), e.addKey("acme", "bob", nil), e.addKey("acme", "carol", nil)

			for _, tc := range []struct {
				name, method, path, key string
				headers                 []string
				rule                    string // "" allowed; "-" denied with no rule named
				reason                  string
			}{
				{"tool allow replaces tenant's", "GET", "/acme/billing/x", bob, nil, "", ""},
				{"tenant grant does not reach a tool with its own", "GET", "/acme/billing/x", alice, nil, "-", "denied: no allow rule of Tool acme/billing policy matched"},
				{"tool deny", "DELETE", "/acme/billing/x", bob, nil, "no-deletes", `denied by Tool acme/billing policy rule "no-deletes"`},
				{"tenant guardrail over tool allow", "GET", "/acme/billing/admin", bob, nil, "no-admin", `denied by Tenant acme policy rule "no-admin"`},
				{"tenant default grant", "GET", "/acme/plain/x", alice, nil, "", ""},
				{"tenant default grant refuses", "GET", "/acme/plain/x", carol, nil, "-", "denied: no allow rule of Tenant acme policy matched"},
				{"toolset grant by header, host and source", "GET", "/acme/ledger/x", carol, []string{"X-Team", "fin", "Host", "GW.Example"}, "", ""},
				{"toolset replaces tenant's", "GET", "/acme/ledger/x", alice, []string{"Host", "gw.example"}, "fin-team", `denied: ToolSet acme/fin policy rule "fin-team" could not be evaluated`},
				{"toolset grant, wrong header", "GET", "/acme/ledger/x", alice, []string{"X-Team", "ops", "Host", "gw.example"}, "-", "denied: no allow rule of ToolSet acme/fin policy matched"},
				{"repeated header joined", "GET", "/acme/ledger/x", carol, []string{"X-Team", "fin", "X-Team", "fin", "Host", "gw.example"}, "-", "denied: no allow rule of ToolSet acme/fin policy matched"},
				{"fails closed", "GET", "/acme/claims/x", bob, nil, "finance", `denied: Tool acme/claims policy rule "finance" could not be evaluated`},
			} {
				before := len(evs.ofType("policy.denied"))
				headers := append([]string{"X-Api-Key", tc.key}, tc.headers...)
				r := e.do(tc.method, tc.path+"?token=secret-query", headers...)
				got := up.take()
				if tc.rule == "" {
					if r.Status != http.StatusOK || len(got) != 1 {
						t.Errorf("%s: status %d, %d upstream requests; want 200 and 1 (body %q)", tc.name, r.Status, len(got), r.Body)
					}
					continue
				}
				m := expectError(t, r, http.StatusForbidden, errPolicyDenied)
				if len(got) != 0 {
					t.Errorf("%s: a denied request reached the upstream: %q", tc.name, got)
				}
				if m["message"] != tc.reason {
					t.Errorf("%s: message %q, want %q", tc.name, m["message"], tc.reason)
				}
				if want := strings.TrimPrefix(tc.rule, "-"); fmt.Sprint(m["rule"]) != want && !(want == "" && m["rule"] == nil) {
					t.Errorf("%s: rule %v, want %q", tc.name, m["rule"], want)
				}
				if m["requestId"] == nil || m["requestId"] != r.Header.Get("X-Request-Id") {
					t.Errorf("%s: requestId %v, header %q", tc.name, m["requestId"], r.Header.Get("X-Request-Id"))
				}
				if strings.Contains(r.Body, "==") || strings.Contains(r.Body, "caller.") {
					t.Errorf("%s: the 403 reveals the expression: %s", tc.name, r.Body)
				}
				denied := evs.ofType("policy.denied")
				if len(denied) != before+1 {
					t.Fatalf("%s: %d policy.denied events, want %d", tc.name, len(denied), before+1)
				}
				ev := denied[len(denied)-1]
				if ev.tenant != "acme" || ev.data["via"] != "http" || ev.data["method"] != tc.method || ev.data["path"] != tc.path {
					t.Errorf("%s: event %+v", tc.name, ev)
				}
				if want := strings.TrimPrefix(tc.rule, "-"); want != "" && ev.data["rule"] != `rule "`+want+`"` {
					t.Errorf("%s: event rule %v, want %q", tc.name, ev.data["rule"], want)
				}
				if subj, _ := ev.data["subject"].(string); !strings.HasPrefix(subj, "key ") || ev.data["source"] != "127.0.0.1" {
					t.Errorf("%s: event names subject %v from %v, want the API key's id from 127.0.0.1", tc.name, ev.data["subject"], ev.data["source"])
				}
				all := fmt.Sprint(ev)
				for _, secret := range []string{tc.key, "secret-query", "token="} {
					if strings.Contains(all, secret) {
						t.Errorf("%s: the event carries %q: %s", tc.name, secret, all)
					}
				}
			}
			if n := e.stats.Get(telemetry.KindHTTP, "acme", "billing").Codes[4].Load(); n != 3 {
				t.Errorf("billing counts %d 4xx answers, want its 3 denials", n)
			}
		})
	}
}

// TestPolicyFastPathAnswersItself: on one connection, a denied request
// and then an allowed one. The second reaching the upstream with the
// client's own lower-case field line shows the connection stayed on the
// fast path (fasthttp, once it has a connection, keeps it and canonicalises
// names): the fast path decided the first itself, not by handing it over.
func TestPolicyFastPathAnswersItself(t *testing.T) {
	up := newRecordingUpstream(t)
	up.setAnswer([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	e := newEnv(t, policySpecs(up.ln.Addr().String()))
	bob := e.addKey("acme", "bob", nil)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	send := func(method string) *http.Response {
		t.Helper()
		fmt.Fprintf(c, "%s /acme/billing/x HTTP/1.1\r\nHost: gw\r\nx-api-key: %s\r\nx-lower: a\r\n\r\n", method, bob)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp
	}
	if r := send("DELETE"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("DELETE: status %d, want 403", r.StatusCode)
	}
	if got := up.take(); len(got) != 0 {
		t.Fatalf("the denied request reached the upstream: %q", got)
	}
	if r := send("GET"); r.StatusCode != http.StatusOK {
		t.Fatalf("GET: status %d, want 200", r.StatusCode)
	}
	got := up.take()
	if len(got) != 1 || !bytes.Contains(got[0], []byte("\r\nx-lower: a\r\n")) {
		t.Fatalf("the allowed request after a denial did not go the fast path: %q", got)
	}
}

// TestPolicyReload: a policy added, changed and removed by reloads
// applies from the next request, and a revision with a policy that does
// not compile is refused whole (the live one keeps serving).
func TestPolicyReload(t *testing.T) {
	up := newRecordingUpstream(t)
	up.setAnswer([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	addr := up.ln.Addr().String()
	specs := func(pol string) string {
		return tenant("acme", "") + tool("acme", "t", "http://"+addr, pol)
	}
	e := newEnv(t, specs(""))
	if r := e.do("DELETE", "/acme/t/x"); r.Status != http.StatusOK {
		t.Fatalf("no policy: status %d", r.Status)
	}
	e.apply(specs("policy: {rules: [{name: ro, deny: 'request.method == \"DELETE\"'}]}"))
	expectError(t, e.do("DELETE", "/acme/t/x"), http.StatusForbidden, errPolicyDenied)
	if r := e.do("GET", "/acme/t/x"); r.Status != http.StatusOK {
		t.Fatalf("GET under a deny-only policy: status %d", r.Status)
	}
	e.apply(specs("policy: {rules: [{name: ro, deny: 'request.method != \"DELETE\"'}]}"))
	expectError(t, e.do("GET", "/acme/t/x"), http.StatusForbidden, errPolicyDenied)
	if r := e.do("DELETE", "/acme/t/x"); r.Status != http.StatusOK {
		t.Fatalf("DELETE after the change: status %d", r.Status)
	}
	e.apply(specs(""))
	if r := e.do("GET", "/acme/t/x"); r.Status != http.StatusOK {
		t.Fatalf("policy removed: status %d", r.Status)
	}
}

// TestPolicyDecideAllocs: deciding a typical two-rule policy allocates
// nothing per request, on either path's header view.
func TestPolicyDecideAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	e := newEnv(t, tenant("acme", "")+tool("acme", "api", "http://127.0.0.1:1", benchPolicy))
	r := e.p.table.Load().lookup(nil, []byte("/acme/api/x"))
	if r == nil || r.policy == nil {
		t.Fatal("no route with a policy")
	}
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.SetRequestURI("/acme/api/x")
	req.Header.SetHost("GW.example")
	req.Header.Set("X-Team", "fin")
	pr := &auth.Principal{Method: auth.MethodAPIKey, Tenant: "acme", Consumer: "shop"}
	var fh fastHead
	raw := []byte("GET /acme/api/x HTTP/1.1\r\nHost: GW.example\r\nX-Team: fin\r\n\r\n")
	if parseFastHead(raw, &fh) <= 0 {
		t.Fatal("the fast parser refused the request")
	}
	for _, tc := range []struct {
		name string
		req  policyRequest
	}{
		{"fasthttp", policyRequest{method: req.Header.Method(), path: req.URI().Path(), host: req.Header.Host(),
			headers: (*fasthttpHeaders)(&req.Header), source: netip.MustParseAddr("10.1.2.3")}},
		{"fast", policyRequest{method: fh.method, path: fh.path, host: fh.host, headers: (*fastHeaders)(&fh),
			source: netip.MustParseAddr("10.1.2.3")}},
	} {
		if d := e.p.decide(r, pr, &tc.req); !d.Allowed() {
			t.Fatalf("%s: %s", tc.name, d)
		}
		if n := testing.AllocsPerRun(200, func() { e.p.decide(r, pr, &tc.req) }); n != 0 {
			t.Errorf("%s: %v allocations per decision, want 0", tc.name, n)
		}
	}
}

// TestPolicyHeaders: both header views give policies what docs/policy.md
// says — lower-case names, values trimmed, repeated fields joined.
func TestPolicyHeaders(t *testing.T) {
	raw := "GET /x HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\nx-b:  two \r\nX-A: 3\r\n\r\n"
	var fh fastHead
	if parseFastHead([]byte(raw), &fh) <= 0 {
		t.Fatal("the fast parser refused the request")
	}
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]policy.Headers{"fast": (*fastHeaders)(&fh), "fasthttp": (*fasthttpHeaders)(&req.Header)} {
		for k, want := range map[string]string{"x-a": "1, 3", "x-b": "two", "host": "gw"} {
			if v, ok := h.Header(k); !ok || v != want {
				t.Errorf("%s: %s = %q, %v; want %q", name, k, v, ok, want)
			}
		}
		if _, ok := h.Header("x-c"); ok {
			t.Errorf("%s: an absent header is present", name)
		}
		got := map[string]string{}
		h.Range(func(k, v string) bool { got[k] = v; return true })
		if h.Len() != 3 || len(got) != 3 || got["x-a"] != "1, 3" {
			t.Errorf("%s: Len %d, Range %v", name, h.Len(), got)
		}
	}
}

// BenchmarkPolicyDecide is the proxy's per-request policy work for the
// typical two-rule policy: the caller from its cache, the Input over the
// request, the decision.
func BenchmarkPolicyDecide(b *testing.B) {
	e := newEnv(b, tenant("acme", "")+tool("acme", "api", "http://127.0.0.1:1", benchPolicy))
	r := e.p.table.Load().lookup(nil, []byte("/acme/api/x"))
	pr := &auth.Principal{Method: auth.MethodAPIKey, Tenant: "acme", Consumer: "shop"}
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.SetRequestURI("/acme/api/x")
	req.Header.SetHost("gw.example")
	var fh fastHead
	if parseFastHead([]byte("GET /acme/api/x HTTP/1.1\r\nHost: gw.example\r\nAccept: */*\r\n\r\n"), &fh) <= 0 {
		b.Fatal("the fast parser refused the request")
	}
	src := netip.MustParseAddr("10.1.2.3")
	for _, tc := range []struct {
		name string
		req  policyRequest
	}{
		{"fasthttp", policyRequest{method: req.Header.Method(), path: req.URI().Path(), host: req.Header.Host(),
			headers: (*fasthttpHeaders)(&req.Header), source: src}},
		{"fast", policyRequest{method: fh.method, path: fh.path, host: fh.host, headers: (*fastHeaders)(&fh), source: src}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if d := e.p.decide(r, pr, &tc.req); !d.Allowed() {
					b.Fatal(d)
				}
			}
		})
	}
}

// TestPolicyEventsKeepRequestValuesOut: an evaluation error that quotes
// a request value (a header that does not parse as a timestamp) is recorded without
// it; a missing key keeps its message.
func TestPolicyEventsKeepRequestValuesOut(t *testing.T) {
	up := newRecordingUpstream(t)
	up.setAnswer([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	evs := &eventCapture{}
	e := newEnv(t, tenant("acme", "")+tool("acme", "t", "http://"+up.ln.Addr().String(),
		"policy: {rules: [{name: level, allow: 'timestamp(request.headers[\"x-level\"]) > timestamp(\"2020-01-01T00:00:00Z\")'}]}"),
		func(o *Options) { o.OnEvent = evs.add })
	expectError(t, e.do("GET", "/acme/t/x", "X-Level", "sekrit-value"), http.StatusForbidden, errPolicyDenied)
	expectError(t, e.do("GET", "/acme/t/x"), http.StatusForbidden, errPolicyDenied)
	denied := evs.ofType("policy.denied")
	if len(denied) != 2 {
		t.Fatalf("%d events", len(denied))
	}
	if d := fmt.Sprint(denied[0].data); strings.Contains(d, "sekrit") || !strings.Contains(denied[0].data["decision"].(string), "evaluation failed") {
		t.Errorf("conversion error recorded as %s", d)
	}
	if d := denied[1].data["decision"].(string); !strings.Contains(d, "no such key: x-level") {
		t.Errorf("missing key recorded as %q", d)
	}
}

// FuzzPolicyPathsAgree sends the same request through a proxy on the fast
// path and one on fasthttp's path only, both with the policies of
// policySpecs and the same keys, and requires the same answer (a denial's
// body included) and the same upstream request from both: the two paths
// give policies the same method, path, host, headers and caller.
func FuzzPolicyPathsAgree(f *testing.F) {
	keys := map[string]string{}
	var recs []auth.KeyRecord
	for _, c := range []string{"alice", "bob", "carol"} {
		k, rec, err := auth.GenerateKey(auth.KeyOptions{Tenant: "acme", Consumer: c})
		if err != nil {
			f.Fatal(err)
		}
		keys["$"+strings.ToUpper(c)], recs = k, append(recs, rec)
	}
	mk := func(slow bool) equivEnv {
		up := newRecordingUpstream(f)
		up.setAnswer([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		e := newEnv(f, policySpecs(up.ln.Addr().String()))
		e.p.slowOnly.Store(slow)
		ix, err := auth.NewKeyIndex(recs)
		if err != nil {
			f.Fatal(err)
		}
		e.auth.SetKeys(ix)
		return equivEnv{e, up}
	}
	fast, slow := mk(false), mk(true)
	for _, r := range []string{
		"GET /acme/billing/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $BOB\r\n\r\n",
		"GET /acme/billing/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $ALICE\r\n\r\n",
		"DELETE /acme/billing/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $BOB\r\n\r\n",
		"HEAD /acme/billing/admin HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $BOB\r\n\r\n",
		"GET /acme/plain/x?a=1 HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $CAROL\r\n\r\n",
		"GET /acme/ledger/x HTTP/1.1\r\nHost: GW.Example\r\nX-Api-Key: $CAROL\r\nX-Team: fin\r\n\r\n",
		"GET /acme/ledger/x HTTP/1.1\r\nHost: gw.example\r\nX-Api-Key: $CAROL\r\nx-team:  fin \r\n\r\n",
		"GET /acme/ledger/x HTTP/1.1\r\nHost: gw.example\r\nX-Api-Key: $CAROL\r\nX-Team: fin\r\nX-Team: fin\r\n\r\n",
		"POST /acme/ledger/x HTTP/1.1\r\nHost: gw.example\r\nX-Api-Key: $ALICE\r\nContent-Length: 2\r\n\r\nhi",
		"GET /acme/claims/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $BOB\r\n\r\n",
	} {
		f.Add([]byte(r))
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		for k, v := range keys {
			req = bytes.ReplaceAll(req, []byte(k), []byte(v))
		}
		head := bytes.HasPrefix(req, []byte("HEAD "))
		a0, u0 := fast.exchangeRaw(t, req, head)
		a1, u1 := slow.exchangeRaw(t, req, head)
		a0 = strings.ReplaceAll(a0, fast.up.ln.Addr().String(), "UP")
		a1 = strings.ReplaceAll(a1, slow.up.ln.Addr().String(), "UP")
		for i := range u0 {
			u0[i] = strings.ReplaceAll(u0[i], fast.up.ln.Addr().String(), "UP")
		}
		for i := range u1 {
			u1[i] = strings.ReplaceAll(u1[i], slow.up.ln.Addr().String(), "UP")
		}
		if a0 != a1 {
			t.Errorf("client got (fast path):\n%s\n(fasthttp path):\n%s", a0, a1)
		}
		if strings.Join(u0, "\n") != strings.Join(u1, "\n") {
			t.Errorf("upstream received (fast path):\n%q\n(fasthttp path):\n%q", u0, u1)
		}
	})
}
