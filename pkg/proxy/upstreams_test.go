package proxy

import (
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWeightedSplit sends 2000 requests over a 90/10 canary split and
// checks the distribution, and that weight 0 drains an upstream.
func TestWeightedSplit(t *testing.T) {
	stable, canary, drained := newUpstream(t, "stable"), newUpstream(t, "canary"), newUpstream(t, "drained")
	e := newEnv(t, tool("acme", "api", "", `
upstreams:
  - {url: `+stable.URL+`, weight: 90}
  - {url: `+canary.URL+`, weight: 10}
  - {url: `+drained.URL+`, weight: 0}
`))
	const total, workers = 2000, 4
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < total/workers; i++ {
				resp, err := e.client.Get(e.base + "/acme/api/x")
				if err != nil {
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d requests failed", n)
	}
	s, c, d := stable.hits.Load(), canary.hits.Load(), drained.hits.Load()
	if s+c != total || d != 0 {
		t.Fatalf("hits stable=%d canary=%d drained=%d, want %d in all and none drained", s, c, d, total)
	}
	// Smooth weighted round robin is exact over whole rounds; allow 2%.
	if share := float64(c) / total; math.Abs(share-0.10) > 0.02 {
		t.Fatalf("canary share %.3f (%d/%d), want 0.10±0.02", share, c, total)
	}
}

func TestBuildSchedule(t *testing.T) {
	cases := []struct {
		weights []int
		want    []int // count per member
	}{
		{[]int{90, 10}, []int{9, 1}},
		{[]int{1, 1, 1}, []int{1, 1, 1}},
		{[]int{3, 0}, []int{1, 0}},
		{[]int{0, 0}, nil},
		{[]int{5, 3, 2}, []int{5, 3, 2}},
	}
	for _, c := range cases {
		s := buildSchedule(c.weights)
		if c.want == nil {
			if len(s) != 0 {
				t.Errorf("%v: schedule %v, want empty", c.weights, s)
			}
			continue
		}
		got := make([]int, len(c.weights))
		for _, i := range s {
			got[i]++
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%v: counts %v, want %v (schedule %v)", c.weights, got, c.want, s)
				break
			}
		}
		// Smooth: the heavy member never runs more than ceil(w/others)+1 in a row.
		if c.weights[0] == 90 {
			for i := 1; i < len(s); i++ {
				if s[i] == 1 && s[i-1] == 1 {
					t.Errorf("canary scheduled twice in a row: %v", s)
				}
			}
		}
	}
}

func TestUpstreamTimeout(t *testing.T) {
	slow := newUpstream(t, "slow")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow.handle(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	e := newEnv(t, tool("acme", "slow", slow.URL, "timeouts: {total: 300ms}"))
	start := time.Now()
	r := e.get("/acme/slow/x")
	expectError(t, r, http.StatusGatewayTimeout, errTimeout)
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("504 took %s; the total timeout is 300ms", d)
	}
}

func TestUpstreamHeaderTimeout(t *testing.T) {
	slow := newUpstream(t, "slow")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow.handle(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	e := newEnv(t, tool("acme", "slow", slow.URL, "timeouts: {header: 200ms, total: 10s}\nretries: {attempts: 0}"))
	start := time.Now()
	expectError(t, e.get("/acme/slow/x"), http.StatusGatewayTimeout, errTimeout)
	if d := time.Since(start); d > 1900*time.Millisecond {
		t.Fatalf("504 took %s; the header timeout is 200ms", d)
	}
}

func TestUpstreamConnectFailure(t *testing.T) {
	e := newEnv(t, tool("acme", "dead", "http://"+deadAddr(t), "retries: {attempts: 0}"))
	expectError(t, e.get("/acme/dead/x"), http.StatusBadGateway, errBadUpstream)
}

// TestNoHealthyUpstream ejects the only upstream (one failure ejects it)
// and expects 503 without a connection attempt.
func TestNoHealthyUpstream(t *testing.T) {
	e := newEnv(t, tool("acme", "dead", "http://"+deadAddr(t), `
retries: {attempts: 0}
circuitBreaker: {consecutiveFailures: 1, ejection: 1m}
`))
	expectError(t, e.get("/acme/dead/x"), http.StatusBadGateway, errBadUpstream)
	expectError(t, e.get("/acme/dead/x"), http.StatusServiceUnavailable, errNoUpstream)
	waitFor(t, 10*time.Second, "the upstream.ejected event", func() bool { return e.events.has("upstream.ejected") }) // emitted after the state changes
	if st := e.p.Status(); st.State != "degraded" {
		t.Fatalf("status %q, want degraded (%s)", st.State, st.Detail)
	}
}

// TestRetriesIdempotentOnly puts a dead and a live upstream behind a tool:
// GETs that first pick the dead one are retried on the live one; POSTs are
// never retried.
func TestRetriesIdempotentOnly(t *testing.T) {
	live := newUpstream(t, "live")
	e := newEnv(t, tool("acme", "api", "", `
upstreams:
  - {url: http://`+deadAddr(t)+`}
  - {url: `+live.URL+`}
retries: {attempts: 2}
circuitBreaker: {consecutiveFailures: 1000}
`))
	for _, m := range []string{"GET", "HEAD", "PUT", "DELETE", "OPTIONS"} {
		for i := 0; i < 4; i++ {
			if r := e.do(m, "/acme/api/x"); r.Status != 200 {
				t.Fatalf("%s #%d: status %d (body %q); want retried to the live upstream", m, i, r.Status, r.Body)
			}
		}
	}
	for _, m := range []string{"POST", "PATCH"} {
		before := live.hits.Load()
		ok, bad := 0, 0
		for i := 0; i < 6; i++ {
			switch r := e.doBody(m, "/acme/api/x", `{"n":1}`); r.Status {
			case 200:
				ok++
			case 502:
				bad++
			default:
				t.Fatalf("%s: status %d", m, r.Status)
			}
		}
		// Round robin over two members: half the requests pick the dead
		// one first and must fail rather than be re-sent.
		if bad == 0 || int64(ok) != live.hits.Load()-before {
			t.Fatalf("%s: %d ok, %d failed, live upstream hit %d times; want failures and one hit per success", m, ok, bad, live.hits.Load()-before)
		}
	}
}

// TestRetryOnReset uses an upstream that accepts and immediately closes:
// a GET is retried (each attempt costs one connection), a POST is not.
func TestRetryOnReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST
			}
			c.Close()
		}
	}()
	e := newEnv(t, tool("acme", "api", "http://"+ln.Addr().String(), `
retries: {attempts: 2}
circuitBreaker: {consecutiveFailures: 1000}
`))
	r := e.get("/acme/api/x")
	expectError(t, r, http.StatusBadGateway, errBadUpstream)
	if n := accepted.Load(); n != 3 {
		t.Fatalf("GET: upstream accepted %d connections, want 3 (1 + 2 retries)", n)
	}
	accepted.Store(0)
	expectError(t, e.doBody("POST", "/acme/api/x", "x"), http.StatusBadGateway, errBadUpstream)
	if n := accepted.Load(); n != 1 {
		t.Fatalf("POST: upstream accepted %d connections, want 1 (never retried)", n)
	}
}

// TestPassiveEjection: an upstream answering 5xx is ejected after N
// consecutive failures and the healthy one takes all traffic.
func TestPassiveEjection(t *testing.T) {
	bad, good := newUpstream(t, "bad"), newUpstream(t, "good")
	bad.handle(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	e := newEnv(t, tool("acme", "api", "", `
upstreams:
  - {url: `+bad.URL+`}
  - {url: `+good.URL+`}
circuitBreaker: {consecutiveFailures: 3, ejection: 1m}
`))
	for i := 0; i < 40; i++ {
		e.get("/acme/api/x")
	}
	if n := bad.hits.Load(); n != 3 {
		t.Fatalf("failing upstream got %d requests, want exactly 3 before ejection", n)
	}
	if n := good.hits.Load(); n != 37 {
		t.Fatalf("healthy upstream got %d requests, want 37", n)
	}
	waitFor(t, 10*time.Second, "the upstream.ejected event", func() bool { return e.events.has("upstream.ejected") }) // emitted after the state changes
	if h := e.p.UpstreamHealth(); h[bad.URL] || !h[good.URL] {
		t.Fatalf("UpstreamHealth %v", h)
	}
}

// TestEjectionExpires: after the ejection period the upstream gets traffic
// again.
func TestEjectionExpires(t *testing.T) {
	flaky, good := newUpstream(t, "flaky"), newUpstream(t, "good")
	var failing atomic.Bool
	failing.Store(true)
	flaky.handle(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(503)
		}
	})
	e := newEnv(t, tool("acme", "api", "", `
upstreams:
  - {url: `+flaky.URL+`}
  - {url: `+good.URL+`}
circuitBreaker: {consecutiveFailures: 1, ejection: 300ms}
`))
	for i := 0; i < 4; i++ {
		e.get("/acme/api/x")
	}
	if n := flaky.hits.Load(); n != 1 {
		t.Fatalf("flaky got %d requests, want 1", n)
	}
	failing.Store(false)
	time.Sleep(400 * time.Millisecond)
	for i := 0; i < 4; i++ {
		if r := e.get("/acme/api/x"); r.Status != 200 {
			t.Fatalf("status %d", r.Status)
		}
	}
	if n := flaky.hits.Load(); n < 2 {
		t.Fatalf("flaky upstream not back after its ejection: %d hits", n)
	}
}

// TestActiveHealthCheck flips an upstream's health endpoint: the checker
// marks it unhealthy (traffic moves away) and healthy again.
func TestActiveHealthCheck(t *testing.T) {
	t.Parallel()
	a, b := newUpstream(t, "a"), newUpstream(t, "b")
	var sick atomic.Bool
	var aProbes atomic.Int64
	a.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/base/healthz" {
			aProbes.Add(1)
			if r.Header.Get("User-Agent") != "stoa-health-check" {
				t.Errorf("probe user agent %q", r.Header.Get("User-Agent"))
			}
			if sick.Load() {
				w.WriteHeader(503)
			}
			return
		}
		w.Header().Set("X-Upstream", "a")
	})
	e := newEnv(t, tool("acme", "api", "", `
upstreams:
  - {url: `+a.URL+`/base}
  - {url: `+b.URL+`/base}
healthCheck: {path: /healthz, interval: 1s, timeout: 500ms, healthyThreshold: 1, unhealthyThreshold: 1}
`))
	healthy := func() bool { return e.p.UpstreamHealth()[a.URL+"/base"] }
	waitFor(t, 5*time.Second, "a first probe", func() bool { return aProbes.Load() > 0 })
	if !healthy() {
		t.Fatal("a unhealthy while its probe succeeds")
	}
	sick.Store(true)
	waitFor(t, 5*time.Second, "a marked unhealthy", func() bool { return !healthy() })
	waitFor(t, 10*time.Second, "the upstream.unhealthy event", func() bool { return e.events.has("upstream.unhealthy") }) // emitted after the state changes
	for i := 0; i < 6; i++ {
		if r := e.get("/acme/api/x"); r.Header.Get("X-Upstream") != "b" {
			t.Fatalf("request %d went to %q while a is unhealthy", i, r.Header.Get("X-Upstream"))
		}
	}
	sick.Store(false)
	waitFor(t, 5*time.Second, "a healthy again", healthy)
	waitFor(t, 10*time.Second, "the upstream.healthy event", func() bool { return e.events.has("upstream.healthy") }) // emitted after the state changes
	seenA := false
	for i := 0; i < 4; i++ {
		if e.get("/acme/api/x").Header.Get("X-Upstream") == "a" {
			seenA = true
		}
	}
	if !seenA {
		t.Fatal("recovered upstream gets no traffic")
	}
}

// TestUpstream5xxPassedThrough: an upstream's own 5xx answer reaches the
// client unchanged (it is not a gateway error), and 5xx is retried only
// when the tool asks for it.
func TestUpstream5xxPassedThrough(t *testing.T) {
	up := newUpstream(t, "u")
	up.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(503)
		w.Write([]byte("upstream busy"))
	})
	e := newEnv(t, tool("acme", "api", up.URL, "circuitBreaker: {consecutiveFailures: 1000}")+
		tool("acme", "retry5xx", up.URL+"/r", "retries: {attempts: 2, on: [5xx]}\ncircuitBreaker: {consecutiveFailures: 1000}"))
	r := e.get("/acme/api/x")
	if r.Status != 503 || r.Body != "upstream busy" {
		t.Fatalf("got %d %q, want the upstream's own 503", r.Status, r.Body)
	}
	if n := up.hits.Load(); n != 1 {
		t.Fatalf("5xx retried without on: [5xx]: %d hits", n)
	}
	up.hits.Store(0)
	if r := e.get("/acme/retry5xx/x"); r.Status != 503 {
		t.Fatalf("status %d", r.Status)
	}
	if n := up.hits.Load(); n != 3 {
		t.Fatalf("on: [5xx] with 2 attempts: %d hits, want 3", n)
	}
}
