package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
	"github.com/stoa-gateway/stoa/pkg/fleet/controlplane"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// The data plane end-to-end tests run the real stoad binary as a data
// plane (--join) against a control plane made of pkg/fleet/controlplane's
// handlers in the test process, and as a server of a signed bundle file
// (--bundle). Bundles and keys are made with the real stoa CLI (bundle
// keygen, build, sign).

// bundleKit makes keys and signed bundles with the stoa binary.
type bundleKit struct {
	t   *testing.T
	d   *Daemon // only for running stoa; bundle commands contact nothing
	dir string
}

func newBundleKit(t *testing.T, d *Daemon) *bundleKit {
	t.Helper()
	t.Setenv("COSIGN_PASSWORD", "e2e")
	k := &bundleKit{t: t, d: d, dir: t.TempDir()}
	expect(t, d.Stoa("bundle", "keygen", "--output-key-prefix", k.path("cosign")), 0, "bundle keygen")
	return k
}

func (k *bundleKit) path(name string) string { return filepath.Join(k.dir, name) }
func (k *bundleKit) pub() string             { return k.path("cosign.pub") }

// build writes specs into a directory and makes revision rev's bundle
// (out) and its signature (out.sig) with stoa bundle build and sign.
func (k *bundleKit) build(rev int64, specs, out string) {
	k.t.Helper()
	dir := filepath.Join(k.dir, fmt.Sprintf("specs-%d-%d", rev, time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		k.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "specs.yaml"), []byte(specs), 0o644); err != nil {
		k.t.Fatal(err)
	}
	expect(k.t, k.d.Stoa("bundle", "build", "-f", dir, "--revision", fmt.Sprint(rev), "--out", out), 0, "bundle build")
	expect(k.t, k.d.Stoa("bundle", "sign", out, "--key", k.path("cosign.key")), 0, "bundle sign")
}

// read returns a built bundle and its signature.
func (k *bundleKit) read(out string) (*bundle.Bundle, []byte) {
	k.t.Helper()
	raw, err := os.ReadFile(out)
	if err != nil {
		k.t.Fatal(err)
	}
	sig, err := os.ReadFile(out + ".sig")
	if err != nil {
		k.t.Fatal(err)
	}
	b, err := bundle.Parse(raw)
	if err != nil {
		k.t.Fatal(err)
	}
	return b, sig
}

// publicTools is tenant acme with public tools named after names, each
// proxied to up.
func publicTools(up string, names ...string) string {
	s := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: acme}\nspec: {}\n"
	for _, n := range names {
		s += fmt.Sprintf("---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: %s, namespace: acme}\nspec:\n  upstream: %s/%s\n  auth: {type: none}\n", n, up, n)
	}
	return s
}

// echoUpstream answers every request with its path.
func echoUpstream(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// proxyGet calls the data plane's proxy.
func proxyGet(t *testing.T, d *Daemon, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.Listen + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// statusOf reads stoa status -o json.
func statusOf(t *testing.T, d *Daemon) api.Status {
	t.Helper()
	r := d.Stoa("status", "-o", "json")
	expect(t, r, 0, "status")
	var s api.Status
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r.Stdout)
	}
	return s
}

// eventTypes reads the event log through stoa events.
func eventsOfType(t *testing.T, d *Daemon, typ string) []api.Event {
	t.Helper()
	r := d.Stoa("events", "--last", "1000", "--type", typ, "-o", "json")
	expect(t, r, 0, "events")
	var list struct{ Items []api.Event }
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
		t.Fatalf("events -o json: %v\n%s", err, r.Stdout)
	}
	return list.Items
}

// within polls cond until it holds (a failure bound of 90s for a busy
// machine, not a performance assertion).
func within(t *testing.T, d *Daemon, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n--- stoad:\n%s", what, d.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricLine reports whether the daemon's /metrics has the line.
func metricLine(t *testing.T, d *Daemon, line string) bool {
	t.Helper()
	resp, err := http.Get("http://" + d.Ops + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), line)
}

// checkWritesRefused: apply (of a change), delete and rollback through
// the real CLI exit 4 with msg on stderr.
func checkWritesRefused(t *testing.T, d *Daemon, specs, msg string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "change.yaml")
	if err := os.WriteFile(f, []byte(specs), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"apply", "-f", f},
		{"diff", "-f", f},
		{"delete", "tool", "one", "-n", "acme"},
		{"rollback", "--yes"},
	} {
		r := d.Stoa(args...)
		if r.Code != 4 || !strings.Contains(r.Stderr, msg) || !strings.Contains(r.Stderr, "hint:") {
			t.Errorf("stoa %v on a read-only stoad: want exit 4 with %q and a hint, got:\n%s", args, msg, r)
		}
	}
}

// TestDataPlaneServesAndSurvives: a real stoad joins an in-process control
// plane, serves two revisions through its proxy, refuses a tampered one
// (event, /metrics, status), refuses writes with exit 4, keeps serving when
// the control plane dies, and restarted with it still down serves the last
// good bundle from disk.
func TestDataPlaneServesAndSurvives(t *testing.T) {
	up := echoUpstream(t)
	d := NewDaemon(t)
	kit := newBundleKit(t, d)

	// The control plane: the fleet handlers on TLS, a bbolt store, the
	// fleet CA, bundles signed with kit's key.
	v, err := bundle.LoadVerifierFile(kit.pub())
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := v.PublicKey()
	keyID, _ := fleet.KeyID(pk)
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	authority, err := ca.FromStore(context.Background(), st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	src := controlplane.NewMemorySource(4)
	srv, err := controlplane.NewServer(controlplane.Config{Store: st, CA: authority, Source: src, KeyID: keyID,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cp := httptest.NewUnstartedServer(srv.Handler())
	cp.EnableHTTP2 = true
	cp.TLS = authority.ServerTLSConfig(nil)
	cp.StartTLS()
	defer cp.Close()
	publish := func(rev int64, specs string) (*bundle.Bundle, []byte) {
		out := kit.path(fmt.Sprintf("bundle-%d.json", rev))
		kit.build(rev, specs, out)
		b, sig := kit.read(out)
		if err := src.Publish(&controlplane.Signed{Bundle: b, Signature: sig}); err != nil {
			t.Fatal(err)
		}
		return b, sig
	}
	tok, err := srv.Tokens().Create(context.Background(), controlplane.CreateTokenOptions{Name: "edge-1", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(tok.Token+"\n"), 0o600)

	publish(1, publicTools(up, "one"))
	d.Args = []string{"--join", cp.URL, "--join-token-file", tokenFile, "--name", "edge-1", "--bundle-key", kit.pub(),
		"--join-fingerprint", tlspin.Of(cp.Certificate().Raw).String()}
	d.Start()
	within(t, d, "revision 1 served", func() bool { s := statusOf(t, d); return s.Revision == 1 && s.Fleet.Revision == 1 })
	if code, body := proxyGet(t, d, "/acme/one/x"); code != 200 || body != "upstream /one/x" {
		t.Fatalf("revision 1 through the proxy: %d %q", code, body)
	}
	s := statusOf(t, d)
	if s.Fleet == nil || s.Fleet.ControlPlane != cp.URL || s.Fleet.Name != "edge-1" || s.Fleet.Origin != "control-plane" {
		t.Fatalf("status: %+v", s.Fleet)
	}

	publish(2, publicTools(up, "one", "two"))
	within(t, d, "revision 2 served", func() bool { s := statusOf(t, d); return s.Revision == 2 && s.Fleet.Revision == 2 })
	if code, body := proxyGet(t, d, "/acme/two/y"); code != 200 || body != "upstream /two/y" {
		t.Fatalf("revision 2 through the proxy: %d %q", code, body)
	}
	r := d.Stoa("history", "-o", "json")
	expect(t, r, 0, "history")
	if !strings.Contains(r.Stdout, `"actor": "controlplane:`+cp.URL+`"`) || !strings.Contains(r.Stdout, `"current": 2`) {
		t.Fatalf("history on the data plane:\n%s", r.Stdout)
	}
	checkWritesRefused(t, d, publicTools(up, "one", "two", "three"), "this stoad is a data plane; its configuration comes from "+cp.URL+"; apply there")

	// Revision 3's bytes under revision 2's signature: refused, 2 stays.
	_, sig2 := kit.read(kit.path("bundle-2.json"))
	out := kit.path("bundle-3.json")
	kit.build(3, publicTools(up, "evil"), out)
	b3, _ := kit.read(out)
	src.Publish(&controlplane.Signed{Bundle: b3, Signature: sig2})
	within(t, d, "the refusal event", func() bool { return len(eventsOfType(t, d, "fleet.bundle.refused")) == 1 })
	if !metricLine(t, d, `stoa_fleet_bundle_refusals_total{reason="signature"} 1`) {
		t.Fatal("/metrics lacks the refusal")
	}
	if s := statusOf(t, d); s.Revision != 2 || s.Fleet.LastRefusal == nil || s.Fleet.LastRefusal.Reason != "signature" {
		t.Fatalf("status after the refusal: revision %d, %+v", s.Revision, s.Fleet)
	}
	if code, _ := proxyGet(t, d, "/acme/evil/x"); code != 404 {
		t.Fatalf("the refused revision's tool answers %d, want 404", code)
	}

	// The control plane dies: the data plane keeps serving revision 2.
	cp.CloseClientConnections()
	cp.Close()
	within(t, d, "partitioned", func() bool { return statusOf(t, d).Fleet.State == fleet.StatePartitioned })
	if code, body := proxyGet(t, d, "/acme/two/y"); code != 200 || body != "upstream /two/y" {
		t.Fatalf("revision 2 after the control plane died: %d %q", code, body)
	}

	// Restarted with the control plane still down: revision 2 from disk.
	d.Stop()
	d.Start()
	s = statusOf(t, d)
	if s.Revision != 2 || s.Fleet == nil || s.Fleet.Revision != 2 || s.Fleet.Origin != "disk" {
		t.Fatalf("restarted without a control plane: revision %d, %+v", s.Revision, s.Fleet)
	}
	if code, body := proxyGet(t, d, "/acme/two/y"); code != 200 || body != "upstream /two/y" {
		t.Fatalf("revision 2 from disk: %d %q", code, body)
	}
	r = d.Stoa("status")
	expect(t, r, 0, "status")
	for _, want := range []string{"source:      control plane " + cp.URL + " as data plane edge-1", "serving      revision 2 (sha256:", "from disk"} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("stoa status lacks %q:\n%s", want, r.Stdout)
		}
	}
}

// TestBundleFileServesAndReloads: stoad --bundle serves a signed file;
// a tampered file is refused on SIGHUP (event, /metrics, status) and the
// served revision stays; a newer signed file is taken on SIGHUP; writes
// exit 4.
func TestBundleFileServesAndReloads(t *testing.T) {
	up := echoUpstream(t)
	d := NewDaemon(t)
	kit := newBundleKit(t, d)
	file := kit.path("bundle.json")
	kit.build(1, publicTools(up, "one"), file)
	// Polling far away: only SIGHUP makes stoad look again.
	d.Args = []string{"--bundle", file, "--bundle-key", kit.pub(), "--bundle-poll", "1h"}
	d.Start()
	if s := statusOf(t, d); s.Revision != 1 || s.Bundle == nil || s.Bundle.Origin != "file" || s.Bundle.File != file {
		t.Fatalf("status: revision %d, %+v", s.Revision, s.Bundle)
	}
	if code, body := proxyGet(t, d, "/acme/one/x"); code != 200 || body != "upstream /one/x" {
		t.Fatalf("revision 1 through the proxy: %d %q", code, body)
	}
	checkWritesRefused(t, d, publicTools(up, "one", "two"), "this stoad serves the signed bundle "+file)

	// Tampered after signing: the tool's upstream changed in the file.
	raw, _ := os.ReadFile(file)
	os.WriteFile(file, []byte(strings.Replace(string(raw), up+"/one", "http://127.0.0.1:1/one", 1)), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	within(t, d, "the refusal", func() bool { return len(eventsOfType(t, d, "fleet.bundle.refused")) == 1 })
	if !metricLine(t, d, `stoa_fleet_bundle_refusals_total{reason="signature"} 1`) {
		t.Fatal("/metrics lacks the refusal")
	}
	if s := statusOf(t, d); s.Revision != 1 || s.Bundle.LastRefusal == nil || s.Bundle.LastRefusal.Reason != "signature" {
		t.Fatalf("status after the refusal: revision %d, %+v", s.Revision, s.Bundle)
	}
	if code, body := proxyGet(t, d, "/acme/one/x"); code != 200 || body != "upstream /one/x" {
		t.Fatalf("revision 1 after the refusal: %d %q", code, body)
	}

	kit.build(2, publicTools(up, "one", "two"), file)
	d.cmd.Process.Signal(syscall.SIGHUP)
	within(t, d, "revision 2 on SIGHUP", func() bool { s := statusOf(t, d); return s.Revision == 2 && s.Bundle.Revision == 2 })
	if code, body := proxyGet(t, d, "/acme/two/y"); code != 200 || body != "upstream /two/y" {
		t.Fatalf("revision 2 through the proxy: %d %q", code, body)
	}
	if s := statusOf(t, d); s.Bundle.LastRefusal != nil || s.Bundle.Revision != 2 {
		t.Fatalf("status after revision 2: %+v", s.Bundle)
	}
}
