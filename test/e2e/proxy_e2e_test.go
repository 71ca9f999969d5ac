package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The data plane end to end (helpers in proxy_harness_test.go).

// proxyExtraSpecs adds a globex tool with a tiny limit, and a subscription
// to it, to the quickstart.
const proxyExtraSpecs = `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: slowpoke
  namespace: globex
spec:
  protocol: rest
  upstream: http://UPSTREAM/weather
  auth:
    type: apiKey
  rateLimit:
    rate: 1/h
    burst: 2
---
apiVersion: stoa.io/v1alpha1
kind: Plan
metadata:
  name: lab
  namespace: globex
spec:
  rateLimit: 1000/s
---
apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata:
  name: forecast-bot-slowpoke
  namespace: globex
spec:
  consumer: forecast-bot
  plan: lab
  tool: slowpoke
`

// TestProxyQuickstart walks the data plane with the real binaries:
// routing, each auth outcome, tenant isolation, injected and spoofed
// headers, a rate limit with its headers, metrics, health endpoints and
// key revocation.
func TestProxyQuickstart(t *testing.T) {
	e := newProxyEnv(t, map[string]string{"zz-extra.yaml": proxyExtraSpecs})
	acmeKey, acmeID := e.key("acme", "web-shop")
	globexKey, _ := e.key("globex", "forecast-bot")

	// Routing and injected headers, with spoofed copies sent by the client.
	r := e.get("/acme/billing-api/invoices/INV-1001", "X-Api-Key", acmeKey,
		"X-Stoa-Tenant", "globex", "X-Stoa-Consumer", "mallory", "X-Request-Id", "spoofed")
	if r.Status != 200 {
		t.Fatalf("billing: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	inv, _ := m["invoice"].(map[string]any)
	gw, _ := m["gateway"].(map[string]any)
	if inv["id"] != "INV-1001" {
		t.Fatalf("wrong upstream answer: %s", r.Body)
	}
	if gw["tenant"] != "acme" || gw["consumer"] != "web-shop" || gw["requestId"] != r.Header.Get("X-Request-Id") || gw["requestId"] == "spoofed" {
		t.Fatalf("gateway headers seen upstream %v (response X-Request-Id %q)", gw, r.Header.Get("X-Request-Id"))
	}
	for _, p := range []string{"remaining", "limit", "reset"} {
		if r.Header.Get("RateLimit-"+p) == "" {
			t.Errorf("admitted response lacks RateLimit-%s", p)
		}
	}
	// Query strings pass, the bearer form works, dot segments normalise.
	r = e.get("/acme/billing-api/invoices?status=paid", "Authorization", "Bearer "+acmeKey)
	if r.Status != 200 || !strings.Contains(r.Body, "INV-1002") || strings.Contains(r.Body, "INV-1001") {
		t.Fatalf("query string: %d %s", r.Status, r.Body)
	}
	r = e.get("/acme/billing-api/x/../invoices/INV-1002", "X-Api-Key", acmeKey)
	if r.Status != 200 || !strings.Contains(r.Body, "INV-1002") {
		t.Fatalf("dot segments: %d %s", r.Status, r.Body)
	}
	// POST reaches the upstream with its body.
	r = e.do("POST", "/acme/billing-api/invoices", `{"customer":"ACME","amount":3}`, "X-Api-Key", acmeKey, "Content-Type", "application/json")
	if r.Status != 201 || !strings.Contains(r.Body, `"customer":"ACME"`) {
		t.Fatalf("POST: %d %s", r.Status, r.Body)
	}
	if r := e.get("/globex/weather-api/current/oslo", "X-Api-Key", globexKey); r.Status != 200 || !strings.Contains(r.Body, `"city":"oslo"`) {
		t.Fatalf("weather: %d %s", r.Status, r.Body)
	}
	wantGatewayError(t, e.get("/acme/no-such-tool/x", "X-Api-Key", acmeKey), 404, "no_route")
	wantGatewayError(t, e.get("/acme/billing-apix/invoices", "X-Api-Key", acmeKey), 404, "no_route")

	// Authentication: inventory-api is auth none, but its ToolSet
	// requires a credential.
	r = e.get("/acme/inventory-api/items/sku-1")
	wantGatewayError(t, r, 401, "unauthorized")
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without a Bearer challenge: %q", r.Header.Get("WWW-Authenticate"))
	}
	if r := e.get("/acme/inventory-api/items/sku-1", "X-Api-Key", acmeKey); r.Status != 200 {
		t.Fatalf("inventory with key: %d %s", r.Status, r.Body)
	}
	wantGatewayError(t, e.get("/acme/billing-api/invoices", "X-Api-Key", "stoa_sk_notakey"), 401, "unauthorized")
	wantGatewayError(t, e.get("/acme/billing-api/invoices", "X-Api-Key", acmeKey, "X-Api-Key", acmeKey), 400, "bad_request")

	// Tenant isolation: another tenant's valid key never reaches the tool.
	wantGatewayError(t, e.get("/globex/weather-api/current/oslo", "X-Api-Key", acmeKey), 403, "forbidden")
	wantGatewayError(t, e.get("/acme/billing-api/invoices/INV-1001", "Authorization", "Bearer "+globexKey), 403, "forbidden")
	wantGatewayError(t, e.get("/acme/billing-api/../../globex/weather-api/current/oslo", "X-Api-Key", acmeKey), 403, "forbidden")

	// Hygiene: look-alike gateway headers are refused.
	wantGatewayError(t, e.get("/acme/billing-api/invoices", "X-Api-Key", acmeKey, "X_Stoa_Tenant", "globex"), 400, "bad_request")

	// Rate limit: burst 2, then 429 with headers and the JSON body.
	for i := 0; i < 2; i++ {
		if r := e.get("/globex/slowpoke/current/oslo", "X-Api-Key", globexKey); r.Status != 200 {
			t.Fatalf("slowpoke %d: %d %s", i, r.Status, r.Body)
		}
	}
	r = e.get("/globex/slowpoke/current/oslo", "X-Api-Key", globexKey)
	m = wantGatewayError(t, r, 429, "rate_limited")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || int(m["retryAfterSeconds"].(float64)) != ra {
		t.Fatalf("Retry-After %q, body %s", r.Header.Get("Retry-After"), r.Body)
	}
	if r.Header.Get("RateLimit-Limit") != "1" || r.Header.Get("RateLimit-Remaining") != "0" || r.Header.Get("RateLimit-Reset") == "" {
		t.Fatalf("429 RateLimit headers: %v", r.Header)
	}

	// Metrics, health and readiness on --ops-listen.
	met := e.ops("/metrics")
	if met.Status != 200 {
		t.Fatalf("/metrics: %d", met.Status)
	}
	if v, ok := metricValue(t, met.Body, "stoa_http_requests_total", map[string]string{"tenant": "acme", "tool": "billing-api", "code": "2xx"}); !ok || v < 4 {
		t.Fatalf("stoa_http_requests_total for acme/billing-api 2xx = %v (found %v)\n%s", v, ok, grepLines(met.Body, "stoa_http"))
	}
	if v, ok := metricValue(t, met.Body, "stoa_ratelimit_rejections_total", map[string]string{"tenant": "globex", "tool": "slowpoke"}); !ok || v != 1 {
		t.Fatalf("stoa_ratelimit_rejections_total for globex/slowpoke = %v (%v)", v, ok)
	}
	for _, name := range []string{"stoa_http_request_duration_seconds_bucket", "stoa_upstream_errors_total", "stoa_config_revision", "stoa_build_info"} {
		if !strings.Contains(met.Body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if r := e.ops("/healthz"); r.Status != 200 {
		t.Fatalf("/healthz: %d %s", r.Status, r.Body)
	}
	if r := e.ops("/readyz"); r.Status != 200 || !strings.Contains(r.Body, "ready") {
		t.Fatalf("/readyz: %d %s", r.Status, r.Body)
	}

	// Revoking the key locks it out at once.
	expect(t, e.D.Stoa("keys", "revoke", acmeID), 0, "keys revoke")
	wantGatewayError(t, e.get("/acme/billing-api/invoices", "X-Api-Key", acmeKey), 401, "unauthorized")
	if r := e.get("/globex/weather-api/current/oslo", "X-Api-Key", globexKey); r.Status != 200 {
		t.Fatalf("other key after a revoke: %d", r.Status)
	}
	// Nothing secret in stoad's log.
	for _, k := range []string{acmeKey, globexKey} {
		if strings.Contains(e.D.Log(), k) {
			t.Fatal("an API key appears in stoad's log")
		}
	}
}

// TestProxyUpstreamsE2E: weights, the total timeout, idempotent-only
// retries and passive ejection, through the real stoad.
func TestProxyUpstreamsE2E(t *testing.T) {
	stable, canary := newCountingUpstream(t, "stable"), newCountingUpstream(t, "canary")
	slow, live, failing := newCountingUpstream(t, "slow"), newCountingUpstream(t, "live"), newCountingUpstream(t, "failing")
	slow.delay.Store(int64(5 * time.Second))
	failing.fail.Store(true)
	dead := freePort(t) // nothing listens there
	tool := func(name, body string) string {
		return "---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: " + name + ", namespace: lab}\nspec:\n  protocol: rest\n  auth: {type: none}\n" + body
	}
	specs := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: lab}\nspec: {displayName: Lab}\n" +
		tool("canary", "  upstreams:\n    - {url: "+stable.srv.URL+", weight: 3}\n    - {url: "+canary.srv.URL+", weight: 1}\n") +
		tool("slow", "  upstream: "+slow.srv.URL+"\n  timeouts: {total: 300ms}\n") +
		tool("retry", "  upstreams:\n    - {url: http://"+dead+"}\n    - {url: "+live.srv.URL+"}\n  retries: {attempts: 2}\n  circuitBreaker: {consecutiveFailures: 1000}\n") +
		tool("eject", "  upstreams:\n    - {url: "+failing.srv.URL+"}\n    - {url: "+live.srv.URL+"/e}\n  circuitBreaker: {consecutiveFailures: 2, ejection: 1m}\n")
	e := newProxyEnv(t, map[string]string{"lab.yaml": specs})

	for i := 0; i < 400; i++ {
		if r := e.get("/lab/canary/x"); r.Status != 200 {
			t.Fatalf("canary %d: %d", i, r.Status)
		}
	}
	if s, c := stable.hits.Load(), canary.hits.Load(); s != 300 || c != 100 {
		t.Fatalf("3:1 split gave stable=%d canary=%d", s, c)
	}

	start := time.Now()
	wantGatewayError(t, e.get("/lab/slow/x"), 504, "upstream_timeout")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("504 after %s (total timeout 300ms)", d)
	}

	for i := 0; i < 4; i++ {
		if r := e.get("/lab/retry/x"); r.Status != 200 {
			t.Fatalf("GET %d not retried onto the live upstream: %d %s", i, r.Status, r.Body)
		}
	}
	before := live.hits.Load()
	ok := 0
	for i := 0; i < 4; i++ {
		switch r := e.do("POST", "/lab/retry/x", "{}"); r.Status {
		case 200:
			ok++
		case 502:
			wantGatewayError(t, r, 502, "bad_gateway")
		default:
			t.Fatalf("POST: %d", r.Status)
		}
	}
	if ok == 4 || int64(ok) != live.hits.Load()-before {
		t.Fatalf("POST: %d ok, live hit %d times; want some 502s and no re-sent POST", ok, live.hits.Load()-before)
	}

	for i := 0; i < 20; i++ {
		e.get("/lab/eject/x")
	}
	if n := failing.hits.Load(); n != 2 {
		t.Fatalf("failing upstream got %d requests, want 2 before ejection", n)
	}
	r := e.D.Stoa("status", "-o", "json")
	expect(t, r, 0, "status")
	if !strings.Contains(r.Stdout, "unavailable") {
		t.Logf("status does not mention the ejected upstream:\n%s", r.Stdout)
	}
}

// TestProxyReloadUnderLoadE2E applies revisions with the CLI while clients
// keep requesting a route that every revision keeps.
func TestProxyReloadUnderLoadE2E(t *testing.T) {
	// A tenant of its own, without limits, so that only reloads could
	// fail a request; every revision adds one tool and prunes another.
	lab := func(i int) string {
		return "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: lab}\nspec: {displayName: Lab}\n" +
			"---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: steady, namespace: lab}\nspec:\n  protocol: rest\n  auth: {type: none}\n  upstream: http://UPSTREAM/weather\n" +
			fmt.Sprintf("---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: churn-%d, namespace: lab}\nspec:\n  protocol: rest\n  auth: {type: none}\n  upstream: http://UPSTREAM/weather/v%d\n  timeouts: {total: %dms}\n", i, i, 10000+i)
	}
	e := newProxyEnv(t, map[string]string{"lab.yaml": lab(0)})

	var ok, failed atomic.Int64
	var mu sync.Mutex
	var fails []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			defer c.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://" + e.D.Listen + "/lab/steady/current/oslo")
				if err != nil {
					failed.Add(1)
					mu.Lock()
					fails = append(fails, err.Error())
					mu.Unlock()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					mu.Lock()
					fails = append(fails, resp.Status)
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}
	revisions := 10
	for i := 1; i <= revisions; i++ {
		e.write("lab.yaml", lab(i))
		expect(t, e.D.Stoa("apply", "-f", e.Specs, "--prune"), 0, fmt.Sprintf("apply revision %d", i))
	}
	close(stop)
	wg.Wait()
	t.Logf("%d revisions applied under load: %d ok, %d failed", revisions, ok.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed during reloads: %v", failed.Load(), fails[:min(len(fails), 5)])
	}
	if ok.Load() < 50 {
		t.Fatalf("only %d requests overlapped the reloads", ok.Load())
	}
	wantGatewayError(t, e.get("/lab/churn-0/current/x"), 404, "no_route")
	// The last churn route is live: the example upstream answers (its own
	// 404 for /weather/vN/…), not the gateway.
	if r := e.get(fmt.Sprintf("/lab/churn-%d/current/x", revisions)); strings.Contains(r.Body, "no_route") {
		t.Fatalf("route of the last revision missing: %d %s", r.Status, r.Body)
	}
}
