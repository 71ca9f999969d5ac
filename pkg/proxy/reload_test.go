package proxy

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReloadDropsNothing runs a keep-alive load generator through the
// proxy while 50 revisions are applied — routes added and removed,
// upstreams re-weighted, one route moved to a new upstream pool every time
// — and requires every request to routes that exist in all revisions to
// succeed.
func TestReloadDropsNothing(t *testing.T) {
	revisions := 50
	if v := os.Getenv("STOA_RELOAD_REVISIONS"); v != "" {
		fmt.Sscan(v, &revisions)
	}
	a, b, extra := newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "extra")
	rev := func(i int) string {
		var s strings.Builder
		s.WriteString(tenant("acme", "") + consumers)
		s.WriteString(tool("acme", "stable", "", fmt.Sprintf("upstreams:\n  - {url: %s, weight: %d}\n  - {url: %s, weight: %d}\n",
			a.URL, 1+i%10, b.URL, 10-i%10)))
		// A new URL (and so a new pool) in every revision.
		s.WriteString(tool("acme", "moving", fmt.Sprintf("%s/m%d", a.URL, i), fmt.Sprintf("timeouts: {total: %dms}", 5000+i)))
		s.WriteString(tool("acme", "keyed", b.URL, "auth: {type: apiKey}\nrateLimit: 100000/s"))
		// Routes that come and go: extra-i … extra-i+2 exist in revision i.
		for j := i; j < i+3; j++ {
			s.WriteString(tool("acme", fmt.Sprintf("extra-%d", j), fmt.Sprintf("%s/e%d", extra.URL, j), ""))
		}
		return s.String()
	}
	e := newEnv(t, rev(0))
	key := e.addKey("acme", "shop", nil)

	type result struct{ ok, failed atomic.Int64 }
	var stable result
	var fails sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	paths := []string{"/acme/stable/x", "/acme/moving/x", "/acme/keyed/x"}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
			defer c.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := paths[(i+w)%len(paths)]
				req, _ := http.NewRequest("GET", e.base+p, nil)
				req.Header.Set("X-Api-Key", key)
				resp, err := c.Do(req)
				if err != nil {
					stable.failed.Add(1)
					fails.Store(p+": "+err.Error(), true)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					stable.failed.Add(1)
					fails.Store(fmt.Sprintf("%s: status %d", p, resp.StatusCode), true)
					continue
				}
				stable.ok.Add(1)
			}
		}(w)
	}
	var current atomic.Int64
	// A fifth client follows the routes that come and go (their answers
	// may be 404 around a reload; it only adds churn).
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &http.Client{Timeout: 10 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if resp, err := c.Get(fmt.Sprintf("%s/acme/extra-%d/x", e.base, current.Load()+int64(i%3))); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()

	waitFor(t, 5*time.Second, "load to start", func() bool { return stable.ok.Load() > 20 })
	for i := 1; i <= revisions; i++ {
		e.apply(rev(i))
		current.Store(int64(i))
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d revisions applied under load: %d requests ok, %d failed", revisions, stable.ok.Load(), stable.failed.Load())
	if n := stable.failed.Load(); n > 0 {
		var msgs []string
		fails.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return len(msgs) < 10 })
		t.Fatalf("%d requests failed during reloads: %s", n, strings.Join(msgs, "; "))
	}
	if stable.ok.Load() < 100 {
		t.Fatalf("only %d requests completed: the load did not overlap the reloads", stable.ok.Load())
	}
	// Added routes are live and removed ones are gone.
	if r := e.get(fmt.Sprintf("/acme/extra-%d/x", revisions+2)); r.Status != 200 {
		t.Fatalf("route added by the last revision: %d", r.Status)
	}
	expectError(t, e.get("/acme/extra-0/x"), http.StatusNotFound, errNoRoute)
	// Both weighted members served.
	if a.hits.Load() == 0 || b.hits.Load() == 0 {
		t.Fatalf("hits a=%d b=%d", a.hits.Load(), b.hits.Load())
	}
}

// TestReloadKeepsUpstreamConnections: a revision that keeps a tool's
// upstream settings reuses its keep-alive pool.
func TestReloadKeepsUpstreamConnections(t *testing.T) {
	up := newUpstream(t, "u")
	specs := tool("acme", "a", up.URL, "")
	e := newEnv(t, specs)
	for i := 0; i < 5; i++ {
		e.get("/acme/a/x")
		e.apply(specs + tool("acme", fmt.Sprintf("other-%d", i), up.URL+"/o", ""))
	}
	e.get("/acme/a/x")
	up.mu.Lock()
	defer up.mu.Unlock()
	conns := map[string]bool{}
	for _, r := range up.reqs {
		conns[r.RemoteAddr] = true
	}
	if len(conns) != 1 || len(up.reqs) != 6 {
		t.Fatalf("%d requests came over %d connections across reloads, want 6 over 1 (pool reused)", len(up.reqs), len(conns))
	}
}
