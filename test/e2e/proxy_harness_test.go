package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy end-to-end tests: the real stoad serving examples/quickstart in
// front of the real example upstreams (examples/upstreams, built once by
// upstreamsBin in mcp_harness_test.go), driven with the real stoa CLI and
// plain HTTP clients.

// proxyEnv is a stoad with the quickstart applied against running example
// upstreams.
type proxyEnv struct {
	t        *testing.T
	D        *Daemon
	Upstream string // example upstreams address
	Specs    string // directory applied
	client   *http.Client
}

// newProxyEnv starts upstreams and stoad and applies the quickstart plus
// extra spec files (UPSTREAM in them becomes the upstreams' address).
func newProxyEnv(t *testing.T, extra map[string]string) *proxyEnv {
	t.Helper()
	e := &proxyEnv{t: t, Upstream: startUpstreams(t), Specs: t.TempDir(),
		client: &http.Client{Timeout: 10 * time.Second}}
	src := filepath.Join(repoRoot(), "examples", "quickstart")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		b, err := os.ReadFile(filepath.Join(src, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		e.write(ent.Name(), string(bytes.ReplaceAll(b, []byte("127.0.0.1:9001"), []byte(e.Upstream))))
	}
	for name, body := range extra {
		e.write(name, body)
	}
	e.D = NewDaemon(t)
	e.D.Start()
	e.apply()
	t.Cleanup(e.client.CloseIdleConnections)
	return e
}

func (e *proxyEnv) write(name, body string) {
	e.t.Helper()
	body = strings.ReplaceAll(body, "UPSTREAM", e.Upstream)
	if err := os.WriteFile(filepath.Join(e.Specs, name), []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *proxyEnv) apply() {
	e.t.Helper()
	expect(e.t, e.D.Stoa("apply", "-f", e.Specs), 0, "apply specs")
}

// key creates an API key with `stoa keys create -o json` and returns the
// key and its id.
func (e *proxyEnv) key(tenant, consumer string) (key, id string) {
	e.t.Helper()
	r := e.D.Stoa("keys", "create", "--consumer", consumer, "-n", tenant, "-o", "json")
	expect(e.t, r, 0, "keys create")
	var resp struct {
		Key  string
		Info struct{ ID string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &resp); err != nil || !strings.HasPrefix(resp.Key, "stoa_sk_") {
		e.t.Fatalf("keys create output: %v\n%s", err, r)
	}
	return resp.Key, resp.Info.ID
}

type httpResult struct {
	Status int
	Header http.Header
	Body   string
}

// JSON decodes the body.
func (r httpResult) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("body is not JSON (status %d): %q", r.Status, r.Body)
	}
	return m
}

// do sends a request to --listen; headers are name, value pairs.
func (e *proxyEnv) do(method, path, body string, headers ...string) httpResult {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+e.D.Listen+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, resp.Header, string(b)}
}

func (e *proxyEnv) get(path string, headers ...string) httpResult {
	e.t.Helper()
	return e.do("GET", path, "", headers...)
}

// ops fetches a path on --ops-listen.
func (e *proxyEnv) ops(path string) httpResult {
	e.t.Helper()
	resp, err := e.client.Get("http://" + e.D.Ops + path)
	if err != nil {
		e.t.Fatalf("ops %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, resp.Header, string(b)}
}

func wantGatewayError(t *testing.T, r httpResult, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	m := r.JSON(t)
	if m["error"] != code || m["message"] == "" || m["requestId"] != r.Header.Get("X-Request-Id") {
		t.Fatalf("error body %s, want code %s and the request id %s", r.Body, code, r.Header.Get("X-Request-Id"))
	}
	return m
}

// metricValue finds one sample in a Prometheus text exposition.
func metricValue(t *testing.T, text, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(line, k+`="`+v+`"`) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		return f, true
	}
	return 0, false
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// countingUpstream is an in-test upstream for stoad that counts hits and
// can be told to be slow or failing.
type countingUpstream struct {
	srv   *httptest.Server
	hits  atomic.Int64
	delay atomic.Int64 // nanoseconds
	fail  atomic.Bool
}

func newCountingUpstream(t *testing.T, name string) *countingUpstream {
	u := &countingUpstream{}
	release := make(chan struct{})
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		if d := time.Duration(u.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-release:
			}
		}
		if u.fail.Load() {
			w.WriteHeader(500)
			return
		}
		w.Header().Set("X-Upstream", name)
		fmt.Fprint(w, name)
	}))
	t.Cleanup(func() { close(release); u.srv.Close() })
	return u
}
