package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Planted secrets: none of them may be stored anywhere.
const (
	plantUpstreamToken = "upstream-token-PLANTED-7d1e"
	plantPassword      = "hunter2-PLANTED-pw"
	plantNested        = "nested-PLANTED-secret"
	plantCookie        = "cookie-PLANTED-sid"
	plantSetCookie     = "setcookie-PLANTED-sid"
	plantQuery         = "query-PLANTED-token"
	plantCustomHeader  = "custom-PLANTED-header"
	plantSSN           = "ssn-PLANTED-123"
	plantJWT           = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJQTEFOVEVEIn0.UExBTlRFRC1zaWduYXR1cmU"
	plantAWSKey        = "AKIAPLANTEDEXAMPLE01"
	plantAWSSecret     = "PLANTEDsecretKEYwJalrXUtnFEMIK7MDENGbPxRfiCY"
	plantRespToken     = "resp-PLANTED-token"
)

// snapUpstream fails with a body full of secrets until told otherwise and
// records what it receives.
type snapUpstream struct {
	url  string
	ok   atomic.Bool
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func newSnapUpstream(t *testing.T) *snapUpstream {
	u := &snapUpstream{}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs, u.body = append(u.reqs, r), append(u.body, string(b))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if u.ok.Load() {
			io.WriteString(w, `{"ok":true}`)
			return
		}
		w.Header().Set("Set-Cookie", "sid="+plantSetCookie+"; HttpOnly")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":"database unavailable","debug":"aws_secret_access_key=`+plantAWSSecret+`","token":"`+plantRespToken+`"}`)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	u.url = "http://" + ln.Addr().String()
	return u
}

func (u *snapUpstream) last() (*http.Request, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.reqs[len(u.reqs)-1], u.body[len(u.body)-1]
}

// TestAPIMgmtSnapshots plants secrets in every part of a failing exchange
// and checks that the snapshot keeps the exchange but none of the secrets
// (not in the CLI output, the log or the database file), that connection
// failures are captured too, and that replay re-sends through the tool's
// current route.
func TestAPIMgmtSnapshots(t *testing.T) {
	up := newSnapUpstream(t)
	d := NewDaemon(t)
	d.Env = []string{"STOA_E2E_UPSTREAM_TOKEN=" + plantUpstreamToken}
	d.Start()
	dead := freePort(t) // nothing listens here
	apply(t, d, doc("Gateway", "", "default", "snapshots: {maxCount: 10, maxAge: 24h, maxBodyBytes: 4096, redactHeaders: [X-Custom-Secret], redactFields: [ssn]}")+
		doc("Tenant", "", "acme", "")+
		doc("Tool", "acme", "orders", "upstream: "+up.url+"/v2\nauth: {type: apiKey}\nupstreamAuth: {header: X-Upstream-Token, secretRef: {env: STOA_E2E_UPSTREAM_TOKEN}}")+
		doc("Tool", "acme", "down", "upstream: http://"+dead+"\nauth: {type: apiKey}")+
		doc("Plan", "acme", "basic", "")+doc("Consumer", "acme", "shop", "")+
		doc("Subscription", "acme", "s1", "consumer: shop\nplan: basic\ntool: orders")+
		doc("Subscription", "acme", "s2", "consumer: shop\nplan: basic\ntool: down"))
	key := createKey(t, d, "acme", "shop")
	body := `{"item":"widget","qty":2,"password":"` + plantPassword + `","card":{"secret":"` + plantNested + `"},"ssn":"` + plantSSN + `","note":"` + plantAWSKey + `"}`
	r := call(t, d, "POST", "/acme/orders/orders?access_token="+plantQuery+"&expand=1", body,
		"X-Api-Key", key, "Content-Type", "application/json", "Cookie", "session="+plantCookie,
		"X-Custom-Secret", plantCustomHeader, "X-Debug", "Bearer "+plantJWT)
	if r.Status != 500 {
		t.Fatalf("upstream failure: %d %s", r.Status, r.Body)
	}
	if r := call(t, d, "GET", "/acme/down/ping", "", "X-Api-Key", key); r.Status != 502 {
		t.Fatalf("dead upstream: %d %s", r.Status, r.Body)
	}

	var list struct {
		Items []struct {
			ID, Tool, Method, Target, Reason, Consumer string
			Status                                     int
		}
	}
	waitUntil(t, 10*time.Second, "two snapshots", func() bool {
		jsonOut(t, d, &list, "snapshots", "list", "-n", "acme")
		return len(list.Items) == 2
	})
	byTool := map[string]int{}
	for i, s := range list.Items {
		byTool[s.Tool] = i
	}
	failed, down := list.Items[byTool["orders"]], list.Items[byTool["down"]]
	if failed.Status != 500 || failed.Reason != "5xx" || failed.Method != "POST" || failed.Consumer != "shop" ||
		failed.Target != "/orders?access_token=%5BREDACTED%5D&expand=1" {
		t.Fatalf("5xx snapshot: %+v", failed)
	}
	if down.Status != 502 || down.Reason != "connect" {
		t.Fatalf("connection failure snapshot: %+v", down)
	}

	rj := d.Stoa("snapshots", "get", failed.ID, "-o", "json")
	expect(t, rj, 0, "snapshots get -o json")
	var snap struct {
		Tenant, Tool, Upstream, Curl string
		Revision                     int64
		Request, Response            struct {
			Method, URL, Body string
			Status            int
			Headers           []struct {
				Name, Value string
				Redacted    bool
			}
		}
		Redactions []string
	}
	if err := json.Unmarshal([]byte(rj.Stdout), &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Revision == 0 || snap.Upstream != up.url+"/v2" || snap.Response.Status != 500 ||
		!strings.Contains(snap.Request.Body, `"item":"widget"`) || !strings.Contains(snap.Response.Body, "database unavailable") {
		t.Fatalf("snapshot lost the exchange: %s", rj.Stdout)
	}
	redacted := map[string]bool{}
	for _, h := range append(snap.Request.Headers, snap.Response.Headers...) {
		if h.Redacted {
			redacted[strings.ToLower(h.Name)] = true
		}
	}
	for _, h := range []string{"cookie", "x-custom-secret", "x-upstream-token", "set-cookie", "x-debug"} {
		if !redacted[h] {
			t.Errorf("header %s not marked redacted", h)
		}
	}
	if !strings.Contains(snap.Curl, "curl -sS -X 'POST' '"+up.url+"/v2/orders?access_token=%5BREDACTED%5D&expand=1'") ||
		!strings.Contains(snap.Curl, "# redacted") || !strings.Contains(snap.Curl, "X-Upstream-Token: [REDACTED]") {
		t.Errorf("curl:\n%s", snap.Curl)
	}
	rt := d.Stoa("snapshots", "get", failed.ID)
	expect(t, rt, 0, "snapshots get")
	if !strings.Contains(rt.Stdout, "curl -sS") || !strings.Contains(rt.Stdout, "< 500 (upstream answer)") {
		t.Errorf("text output:\n%s", rt.Stdout)
	}
	rl := d.Stoa("snapshots", "list", "-n", "acme", "--since", "1h")
	expect(t, rl, 0, "snapshots list --since")
	if strings.Count(rl.Stdout, "snp_") != 2 {
		t.Errorf("list --since 1h:\n%s", rl.Stdout)
	}

	// Replay through the current route: the upstream now answers 200 and
	// gets the tool's real credential, never a redacted value.
	up.ok.Store(true)
	rr := d.Stoa("snapshots", "replay", failed.ID)
	expect(t, rr, 0, "snapshots replay")
	if !strings.Contains(rr.Stdout, "before: 500 (5xx)") || !strings.Contains(rr.Stdout, "now:    200") {
		t.Fatalf("replay output:\n%s", rr)
	}
	req, sent := up.last()
	if req.Header.Get("X-Upstream-Token") != plantUpstreamToken || req.Header.Get("X-Stoa-Replay") != failed.ID ||
		req.URL.Path != "/v2/orders" || !strings.Contains(sent, `"item":"widget"`) || req.Header.Get("Cookie") != "" {
		t.Fatalf("replayed request: %s %v %s", req.URL, req.Header, sent)
	}

	// No planted secret anywhere: CLI output, log, database file.
	all := rj.Stdout + rt.Stdout + rl.Stdout + rr.Stdout + d.Stoa("audit", "-o", "json").Stdout
	d.Stop()
	db, err := os.ReadFile(filepath.Join(d.StateDir, "stoa.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{plantUpstreamToken, plantPassword, plantNested, plantCookie, plantSetCookie, plantQuery,
		plantCustomHeader, plantSSN, plantJWT, "UExBTlRFRC1zaWduYXR1cmU", plantAWSKey, plantAWSSecret, plantRespToken, key[25:]} {
		for where, text := range map[string]string{"CLI output": all, "stoad log": d.Log(), "database": string(db)} {
			if strings.Contains(text, s) {
				t.Errorf("planted secret %q found in the %s", s, where)
			}
		}
	}
}
