package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The API-management tests share these helpers: a stoad built with the
// stoatest tag (whose admission clock honours STOAD_TEST_CLOCK_OFFSET),
// starting a Daemon on another binary, applying YAML and calling the proxy.

var (
	clockStoadOnce sync.Once
	clockStoad     string
	clockStoadErr  error
)

// testClockStoad builds (once) a stoad with -tags stoatest.
func testClockStoad(t *testing.T) string {
	t.Helper()
	clockStoadOnce.Do(func() {
		out := filepath.Join(binDir, "stoad-stoatest")
		cmd := exec.Command("go", "build", "-tags", "stoatest", "-o", out, "./cmd/stoad")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			clockStoadErr = fmt.Errorf("build stoad -tags stoatest: %v\n%s", err, b)
			return
		}
		clockStoad = out
	})
	if clockStoadErr != nil {
		t.Fatal(clockStoadErr)
	}
	return clockStoad
}

// startBin is Start with another stoad binary.
func (d *Daemon) startBin(bin string) {
	d.t.Helper()
	d.launch(bin, nil, "debug", 15*time.Second)
}

// apply applies YAML text and fails the test unless it succeeds.
func apply(t *testing.T, d *Daemon, yaml string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "specs.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	expect(t, d.Stoa("apply", "-f", f), 0, "apply")
}

// doc renders one spec document.
func doc(kind, ns, name, spec string) string {
	meta := "name: " + name
	if ns != "" {
		meta += ", namespace: " + ns
	}
	s := fmt.Sprintf("---\napiVersion: stoa.io/v1alpha1\nkind: %s\nmetadata: {%s}\n", kind, meta)
	if spec != "" {
		s += "spec:\n"
		for _, l := range strings.Split(strings.TrimSpace(spec), "\n") {
			s += "  " + l + "\n"
		}
	}
	return s
}

// gwResponse is a proxy answer.
type gwResponse struct {
	Status int
	Header http.Header
	Body   string
}

// call sends a request through the proxy.
func call(t *testing.T, d *Daemon, method, path, body string, headers ...string) gwResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+d.Listen+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return gwResponse{resp.StatusCode, resp.Header, string(b)}
}

// errorCode is the "error" member of a gateway JSON error.
func (r gwResponse) errorCode() string {
	var e struct{ Error string }
	json.Unmarshal([]byte(r.Body), &e)
	return e.Error
}

// createKey creates an API key and returns it (from -o json, the only
// place it is printed in machine-readable form).
func createKey(t *testing.T, d *Daemon, tenant, consumer string, extra ...string) string {
	t.Helper()
	r := d.Stoa(append([]string{"keys", "create", "--consumer", consumer, "-n", tenant, "-o", "json"}, extra...)...)
	expect(t, r, 0, "keys create")
	var out struct{ Key string }
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || out.Key == "" {
		t.Fatalf("keys create -o json: %v\n%s", err, r)
	}
	return out.Key
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// event is one line of `stoa events -o ndjson`.
type event struct {
	Seq     int64
	Type    string
	Tenant  string
	Message string
	Data    map[string]any
}

// events returns the stored events whose type starts with prefix.
func events(t *testing.T, d *Daemon, prefix string) []event {
	t.Helper()
	r := d.Stoa("events", "--last", "5000", "--type", prefix, "-o", "ndjson")
	expect(t, r, 0, "events")
	var out []event
	for _, l := range strings.Split(r.Stdout, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var e event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("event line %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

// jsonOut runs stoa with -o json and decodes stdout into v.
func jsonOut(t *testing.T, d *Daemon, v any, args ...string) {
	t.Helper()
	r := d.Stoa(append(args, "-o", "json")...)
	expect(t, r, 0, strings.Join(args, " "))
	if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
		t.Fatalf("%v -o json: %v\n%s", args, err, r.Stdout)
	}
}

// okUpstream answers every request with 200 and a small JSON body.
func okUpstream(t *testing.T) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"path":%q}`, r.URL.Path)
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
