package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
	"github.com/stoa-gateway/stoa/pkg/fleet/controlplane"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

var (
	signerOnce sync.Once
	testSigner signature.SignerVerifier
	testPub    []byte
	signerErr  error
)

// bundleKeys is one cosign key pair per test binary (scrypt is slow);
// it returns the signer and the public key's file.
func bundleKeys(t *testing.T) (signature.Signer, string) {
	t.Helper()
	signerOnce.Do(func() {
		var priv []byte
		if priv, testPub, signerErr = bundle.GenerateKeyPair([]byte("pw")); signerErr == nil {
			testSigner, signerErr = bundle.LoadSigner(priv, []byte("pw"))
		}
	})
	if signerErr != nil {
		t.Fatal(signerErr)
	}
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pub, testPub, 0o644); err != nil {
		t.Fatal(err)
	}
	return testSigner, pub
}

// signedBundle builds revision rev of yaml's objects (defaulted, as
// stoa bundle build does) and signs it.
func signedBundle(t *testing.T, s signature.Signer, rev int64, yaml string) (*bundle.Bundle, []byte) {
	t.Helper()
	objs := loadYAML(t, yaml)
	for _, o := range objs {
		spec.Default(o)
	}
	b, err := bundle.Build(rev, objs)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := bundle.Sign(b.Bytes(), s)
	if err != nil {
		t.Fatal(err)
	}
	return b, sig
}

// publishFile writes a bundle and its signature the way a pipeline does:
// each to a temporary file renamed into place.
func publishFile(t *testing.T, path string, raw, sig []byte) {
	t.Helper()
	for p, b := range map[string][]byte{path: raw, path + ".sig": sig} {
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
}

// await polls cond until it holds, failing after 60s (a failure bound,
// not a performance assertion).
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricValue reads a counter of the daemon's /metrics registry.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// publicSpecs is a tenant with a public tool: 200 through the proxy
// when served, 404 when not.
func publicSpecs(up string) string {
	return doc("Tenant", "", "globex", "") + doc("Tool", "globex", "pub", "upstream: "+up+"\nauth: {type: none}")
}

// checkReadOnly: apply, delete and rollback over the LocalAPI, dry runs
// included, are refused with 403 forbidden and msg, and change nothing.
func checkReadOnly(t *testing.T, ld *liveDaemon, yaml, msg string) {
	t.Helper()
	ctx := context.Background()
	rev := ld.d.Live().Revision
	objs := loadYAML(t, yaml)
	for what, call := range map[string]func() error{
		"apply":         func() error { _, err := ld.c.Apply(ctx, &api.ApplyRequest{Objects: objs}); return err },
		"forced apply":  func() error { _, err := ld.c.Apply(ctx, &api.ApplyRequest{Objects: objs, Force: true}); return err },
		"dry-run apply": func() error { _, err := ld.c.Apply(ctx, &api.ApplyRequest{Objects: objs, DryRun: true}); return err },
		"delete": func() error {
			_, err := ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{refConsumer}})
			return err
		},
		"dry-run delete": func() error {
			_, err := ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{refConsumer}, DryRun: true})
			return err
		},
		"rollback": func() error { _, err := ld.c.Rollback(ctx, &api.RollbackRequest{}); return err },
		"forced rollback": func() error {
			_, err := ld.c.Rollback(ctx, &api.RollbackRequest{Force: true, ToEmpty: true})
			return err
		},
	} {
		err := call()
		ae, ok := err.(*api.Error)
		if !ok || ae.Code != api.CodeForbidden || ae.Message != msg || ae.Hint == "" {
			t.Errorf("%s on a read-only stoad: %#v, want forbidden %q with a hint", what, err, msg)
		}
	}
	if got := ld.d.Live().Revision; got != rev {
		t.Fatalf("refused changes moved the revision %d → %d", rev, got)
	}
}

// TestBundleFile: stoad --bundle serves a signed bundle file, verified
// before anything is prepared, under the bundle's revision number; takes
// a newer one when the file changes; refuses a tampered, a foreign-signed
// and an older one (events, metric, status), keeping what it serves; and
// after a restart serves the last good bundle even when the file is bad.
func TestBundleFile(t *testing.T) {
	up := okServer(t)
	signer, pub := bundleKeys(t)
	path := filepath.Join(t.TempDir(), "bundle.json")
	b3, sig3 := signedBundle(t, signer, 3, shopSpecs(up))
	publishFile(t, path, b3.Bytes(), sig3)

	ld := startDaemon(t, func(c *Config) {
		c.Source = SourceConfig{Bundle: path, BundleKey: pub, BundlePoll: 20 * time.Millisecond}
	})
	if got := ld.d.Live().Revision; got != 3 {
		t.Fatalf("ready at revision %d, want the bundle's 3", got)
	}
	if st := ld.keyStatus(""); st != http.StatusUnauthorized {
		t.Fatalf("tool api of the bundle: %d, want 401 (served, key required)", st)
	}
	revs, err := ld.c.Revisions(context.Background(), 0)
	if err != nil || revs.Current != 3 || len(revs.Items) != 1 || revs.Items[0].ID != 3 || revs.Items[0].Action != "sync" || revs.Items[0].Actor != "bundle:"+path {
		t.Fatalf("history: %+v %v", revs, err)
	}
	s := ld.d.Status()
	if s.Bundle == nil || s.Bundle.Revision != 3 || s.Bundle.Digest != b3.Digest().String() || s.Bundle.Origin != api.OriginFile || s.Fleet != nil {
		t.Fatalf("status: %+v", s.Bundle)
	}
	// The runtimes compiled it as revision 3 too.
	for _, c := range s.Components {
		if c.Name == "mcp" && !strings.Contains(c.Detail, "(revision 3)") {
			t.Fatalf("mcp compiled another revision: %s", c.Detail)
		}
	}
	checkReadOnly(t, ld, shopSpecs(up), "this stoad serves the signed bundle "+path+"; its configuration comes from that file; change it there")

	// A newer revision in the file is served.
	b5, sig5 := signedBundle(t, signer, 5, shopSpecs(up)+publicSpecs(up))
	publishFile(t, path, b5.Bytes(), sig5)
	await(t, "revision 5 from the file", func() bool { return ld.d.Live().Revision == 5 })
	if st, _ := ld.get("/globex/pub/x"); st != http.StatusOK {
		t.Fatalf("tool of revision 5: %d", st)
	}

	// Refused: bytes changed after signing, a bundle signed with another
	// key, an older revision. Each is an event and a metric; revision 5
	// stays.
	b6, sig6 := signedBundle(t, signer, 6, publicSpecs(up))
	tampered := bytes.Replace(b6.Bytes(), []byte(up), []byte("http://evil.example"), 1)
	otherPriv, _, err := bundle.GenerateKeyPair([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := bundle.LoadSigner(otherPriv, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	b7, foreignSig := signedBundle(t, other, 7, publicSpecs(up))
	b4, sig4 := signedBundle(t, signer, 4, publicSpecs(up))
	for i, c := range []struct {
		raw, sig []byte
		reason   string
	}{
		{tampered, sig6, "signature"},
		{b7.Bytes(), foreignSig, "signature"},
		{b4.Bytes(), sig4, "stale"},
	} {
		publishFile(t, path, c.raw, c.sig)
		await(t, "refusal "+c.reason, func() bool { return len(ld.eventsOf("fleet.bundle.refused")) == i+1 })
		ev := ld.eventsOf("fleet.bundle.refused")[i]
		if ev.Data["reason"] != c.reason || !strings.Contains(ev.Message, "still serving revision 5") {
			t.Fatalf("refusal %d: %+v, want reason %s", i, ev, c.reason)
		}
		if got := ld.d.Live().Revision; got != 5 {
			t.Fatalf("after a refused file, revision %d is live, want 5", got)
		}
		if r := ld.d.Status().Bundle.LastRefusal; r == nil || r.Reason != c.reason || r.Message == "" {
			t.Fatalf("status refusal: %+v", r)
		}
	}
	if n := metricValue(t, ld.d.metrics, "stoa_fleet_bundle_refusals_total", "reason", "signature"); n != 2 {
		t.Fatalf("signature refusals metric %v, want 2", n)
	}
	if n := metricValue(t, ld.d.metrics, "stoa_fleet_bundle_refusals_total", "reason", "stale"); n != 1 {
		t.Fatalf("stale refusals metric %v, want 1", n)
	}
	if st, _ := ld.get("/globex/pub/x"); st != http.StatusOK {
		t.Fatalf("revision 5 no longer served: %d", st)
	}

	// Restarted with the tampered file: the last good bundle on disk is
	// served, and the file refused again.
	publishFile(t, path, tampered, sig6)
	await(t, "the tampered file refused again", func() bool { return len(ld.eventsOf("fleet.bundle.refused")) == 4 })
	ld.restart()
	s = ld.d.Status()
	if ld.d.Live().Revision != 5 || s.Bundle.Revision != 5 || s.Bundle.Origin != api.OriginDisk || s.Bundle.LastRefusal == nil || s.Bundle.LastRefusal.Reason != "signature" {
		t.Fatalf("after a restart on a tampered file: live %d, status %+v", ld.d.Live().Revision, s.Bundle)
	}
	if st, _ := ld.get("/globex/pub/x"); st != http.StatusOK {
		t.Fatalf("revision 5 not served after the restart: %d", st)
	}
}

// TestBundleFileSIGHUPAndFailures: with polling far away, a new file is
// read on SIGHUP (reloadSource); a missing signature is an error in
// status, not a refusal; a signed bundle the runtimes cannot load is
// refused whole (apply_failed) and the served revision stays.
func TestBundleFileSIGHUPAndFailures(t *testing.T) {
	up := okServer(t)
	signer, pub := bundleKeys(t)
	path := filepath.Join(t.TempDir(), "bundle.json")
	ld := startDaemon(t, func(c *Config) {
		c.Source = SourceConfig{Bundle: path, BundleKey: pub, BundlePoll: time.Hour}
	})
	s := ld.d.Status().Bundle
	if ld.d.Live().Revision != 0 || s.Revision != 0 || !strings.Contains(s.LastError, "no such file") || s.Hint == "" {
		t.Fatalf("started without the file: live %d, status %+v", ld.d.Live().Revision, s)
	}
	b1, sig1 := signedBundle(t, signer, 1, shopSpecs(up))
	publishFile(t, path, b1.Bytes(), sig1)
	ld.d.reloadSource()
	await(t, "revision 1 on SIGHUP", func() bool { return ld.d.Status().Bundle.Revision == 1 })
	if s := ld.d.Status().Bundle; s.LastError != "" || ld.d.Live().Revision != 1 {
		t.Fatalf("status after the reload: %+v", s)
	}

	// Signed, but invalid for the runtimes: a Subscription naming a plan
	// that does not exist.
	bad := shopSpecs(up) + doc("Subscription", "acme", "ghost", "consumer: shop\nplan: gold\ntool: api")
	objs := loadYAML(t, bad)
	for _, o := range objs {
		spec.Default(o)
	}
	b2, err := bundle.Build(2, objs)
	if err != nil {
		t.Fatal(err)
	}
	sig2, _ := bundle.Sign(b2.Bytes(), signer)
	publishFile(t, path, b2.Bytes(), sig2)
	ld.d.reloadSource()
	await(t, "apply_failed", func() bool { return len(ld.eventsOf("fleet.bundle.apply_failed")) == 1 })
	if got := ld.d.Live().Revision; got != 1 {
		t.Fatalf("an invalid bundle moved the revision to %d", got)
	}
	if s := ld.d.Status().Bundle; !strings.Contains(s.LastError, "apply revision 2") {
		t.Fatalf("status after a failed apply: %+v", s)
	}
	if n := metricValue(t, ld.d.metrics, "stoa_fleet_apply_failures_total", "", ""); n != 1 {
		t.Fatalf("apply failures metric %v, want 1", n)
	}
}

// TestBundleFileWaitsForThePair: a change is read only once the bundle
// and its signature have stayed the same for a poll, so a bundle published
// a moment before its signature is not refused half-written. The polls
// are driven by hand (check) to make the steps exact.
func TestBundleFileWaitsForThePair(t *testing.T) {
	up := okServer(t)
	signer, pub := bundleKeys(t)
	path := filepath.Join(t.TempDir(), "bundle.json")
	b1, sig1 := signedBundle(t, signer, 1, shopSpecs(up))
	publishFile(t, path, b1.Bytes(), sig1)
	ld := startDaemon(t, func(c *Config) {
		c.Source = SourceConfig{Bundle: path, BundleKey: pub, BundlePoll: time.Hour}
	})
	fsrc := ld.d.source.(*fileSource)
	b2, sig2 := signedBundle(t, signer, 2, shopSpecs(up)+publicSpecs(up))
	write := func(p string, b []byte) {
		if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Fatal(err)
		}
	}
	write(path, b2.Bytes()) // the bundle first: the pair does not match yet
	fsrc.check(false)
	write(path+".sig", sig2)
	fsrc.check(false) // changed again since the last poll: still waiting
	if ld.d.Live().Revision != 1 || len(ld.eventsOf("fleet.bundle.refused")) != 0 {
		t.Fatalf("read before the pair settled: revision %d, refusals %v", ld.d.Live().Revision, ld.eventsOf("fleet.bundle.refused"))
	}
	fsrc.check(false) // unchanged for a poll: read
	if ld.d.Live().Revision != 2 || len(ld.eventsOf("fleet.bundle.refused")) != 0 {
		t.Fatalf("after the pair settled: revision %d, refusals %v", ld.d.Live().Revision, ld.eventsOf("fleet.bundle.refused"))
	}
	fsrc.check(false) // nothing changed: nothing read
	if n := metricValue(t, ld.d.metrics, "stoa_fleet_bundles_applied_total", "via", "file"); n != 2 {
		t.Fatalf("applied from the file %v times, want 2", n)
	}
}

// testCP is an in-process control plane: the fleet handlers of
// pkg/fleet/controlplane on a TLS listener, a bbolt store, the fleet CA.
type testCP struct {
	srv   *controlplane.Server
	src   *controlplane.MemorySource
	https *httptest.Server
}

func newTestCP(t *testing.T) *testCP {
	t.Helper()
	_, pub := bundleKeys(t)
	v, err := bundle.LoadVerifierFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := v.PublicKey()
	keyID, err := fleet.KeyID(pk)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	authority, err := ca.FromStore(context.Background(), st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := &testCP{src: controlplane.NewMemorySource(4)}
	c.srv, err = controlplane.NewServer(controlplane.Config{Store: st, CA: authority, Source: c.src, KeyID: keyID,
		Log: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	c.https = httptest.NewUnstartedServer(c.srv.Handler())
	c.https.EnableHTTP2 = true
	c.https.TLS = authority.ServerTLSConfig(nil)
	c.https.StartTLS()
	t.Cleanup(c.https.Close)
	return c
}

func (c *testCP) publish(t *testing.T, b *bundle.Bundle, sig []byte) {
	t.Helper()
	if err := c.src.Publish(&controlplane.Signed{Bundle: b, Signature: sig}); err != nil {
		t.Fatal(err)
	}
}

func (c *testCP) token(t *testing.T, name string) string {
	t.Helper()
	tok, err := c.srv.Tokens().Create(context.Background(), controlplane.CreateTokenOptions{Name: name, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// TestDataPlane: stoad --join serves what its control plane publishes,
// through the apply pipeline and under the control plane's revision
// numbers; refuses a bundle whose signature does not verify (event,
// metric on /metrics, status) and keeps serving; refuses applies over
// the LocalAPI naming its control plane; and, restarted while the control
// plane is gone, serves the last good bundle from disk.
func TestDataPlane(t *testing.T) {
	up := okServer(t)
	signer, pub := bundleKeys(t)
	cp := newTestCP(t)
	b5, sig5 := signedBundle(t, signer, 5, shopSpecs(up))
	cp.publish(t, b5, sig5)
	url := cp.https.URL
	ld := startDaemon(t, func(c *Config) {
		c.Source = SourceConfig{Join: url, JoinToken: cp.token(t, "edge-1"), Name: "edge-1", BundleKey: pub,
			JoinFingerprint: tlspin.Of(cp.https.Certificate().Raw).String()}
	})
	await(t, "revision 5", func() bool { return ld.d.Live().Revision == 5 })
	if st := ld.keyStatus(""); st != http.StatusUnauthorized {
		t.Fatalf("tool of revision 5: %d, want 401 (served, key required)", st)
	}
	revs, err := ld.c.Revisions(context.Background(), 0)
	if err != nil || revs.Current != 5 || len(revs.Items) != 1 || revs.Items[0].ID != 5 || revs.Items[0].Actor != "controlplane:"+url {
		t.Fatalf("history: %+v %v", revs, err)
	}
	await(t, "connected status", func() bool {
		f := ld.d.Status().Fleet
		return f != nil && f.State == fleet.StateConnected && f.Revision == 5 && f.Origin == api.OriginControlPlane && f.Name == "edge-1"
	})
	checkReadOnly(t, ld, shopSpecs(up), "this stoad is a data plane; its configuration comes from "+url+"; apply there")

	// Revision 6's bytes under revision 5's signature.
	b6, _ := signedBundle(t, signer, 6, shopSpecs(up)+publicSpecs(up))
	cp.publish(t, b6, sig5)
	await(t, "the refusal event", func() bool { return len(ld.eventsOf("fleet.bundle.refused")) == 1 })
	if ev := ld.eventsOf("fleet.bundle.refused")[0]; ev.Data["reason"] != "signature" {
		t.Fatalf("refusal: %+v", ev)
	}
	if n := metricValue(t, ld.d.metrics, "stoa_fleet_bundle_refusals_total", "reason", "signature"); n != 1 {
		t.Fatalf("refusal metric on /metrics: %v", n)
	}
	if f := ld.d.Status().Fleet; f.Revision != 5 || f.LastRefusal == nil || f.LastRefusal.Reason != "signature" || f.Lag != 1 {
		t.Fatalf("status after the refusal: %+v", f)
	}
	if ld.d.Live().Revision != 5 {
		t.Fatalf("a refused bundle moved the revision to %d", ld.d.Live().Revision)
	}

	b7, sig7 := signedBundle(t, signer, 7, shopSpecs(up)+publicSpecs(up))
	cp.publish(t, b7, sig7)
	// The status moves after the counters of the revision's arrival.
	await(t, "revision 7", func() bool { f := ld.d.Status().Fleet; return f != nil && f.Revision == 7 })
	if st, _ := ld.get("/globex/pub/x"); st != http.StatusOK {
		t.Fatalf("tool of revision 7: %d", st)
	}
	if n := metricValue(t, ld.d.metrics, "stoa_fleet_bundles_applied_total", "via", "delta"); n != 1 {
		t.Fatalf("revision 7 should arrive as a delta: applied{via=delta} = %v", n)
	}

	// The control plane goes away; restarted, the data plane serves
	// revision 7 from disk, says so, and keeps trying.
	cp.https.CloseClientConnections()
	cp.https.Close()
	ld.restart()
	if ld.d.Live().Revision != 7 {
		t.Fatalf("restarted without a control plane at revision %d", ld.d.Live().Revision)
	}
	await(t, "origin disk, partitioned", func() bool {
		f := ld.d.Status().Fleet
		return f.Revision == 7 && f.Origin == api.OriginDisk && f.State == fleet.StatePartitioned
	})
	if st, _ := ld.get("/globex/pub/x"); st != http.StatusOK {
		t.Fatalf("revision 7 not served from disk: %d", st)
	}
}

// TestDataPlaneCannotJoin: a data plane with no identity and no join
// token cannot ever sync; stoad stops with the Syncer's error instead of
// serving nothing forever.
func TestDataPlaneCannotJoin(t *testing.T) {
	_, pub := bundleKeys(t)
	dir := sockDir(t)
	cfg := Config{StateDir: filepath.Join(t.TempDir(), "state"), Socket: filepath.Join(dir, "s.sock"), Listen: "127.0.0.1:0",
		Source: SourceConfig{Join: "https://127.0.0.1:1", BundleKey: pub}}
	d, err := New(&cfg, quietLogger(), Options{Runtimes: DefaultRuntimes})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no join token was given") {
			t.Fatalf("stoad without identity or token: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("stoad without identity or token kept running")
	}

	// A bundle key that is not one is refused before anything starts.
	bad := filepath.Join(t.TempDir(), "cosign.pub")
	os.WriteFile(bad, []byte("not a key"), 0o644)
	cfg.Source.BundleKey = bad
	if _, err := New(&cfg, quietLogger(), Options{Runtimes: DefaultRuntimes}); err == nil || !strings.Contains(err.Error(), "--bundle-key") {
		t.Fatalf("a bad bundle key: %v", err)
	}
}

// TestSourceFlags: one source of configuration, each with what it needs.
func TestSourceFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		args []string
		env  map[string]string
		err  string
	}{
		{args: []string{"--join", "https://cp:8443", "--bundle-key", "k.pub"}},
		{args: []string{"--bundle", "b.json", "--bundle-key", "k.pub", "--bundle-poll", "1s"}},
		{env: map[string]string{"STOAD_JOIN": "https://cp:8443/", "STOAD_BUNDLE_KEY": "k.pub", "STOAD_JOIN_TOKEN": "t"}},
		{args: []string{"--join", "https://cp:8443"}, err: "need --bundle-key cosign.pub"},
		{args: []string{"--bundle", "b.json"}, err: "need --bundle-key cosign.pub"},
		{args: []string{"--join", "http://cp:8443", "--bundle-key", "k"}, err: "want the control plane's https:// URL"},
		{args: []string{"--join", "cp:8443", "--bundle-key", "k"}, err: "want the control plane's https:// URL"},
		{args: []string{"--join", "https://cp", "--bundle", "b", "--bundle-key", "k"}, err: "give one"},
		{args: []string{"--join", "https://cp", "--specs", "dir", "--bundle-key", "k"}, err: "--specs cannot be combined"},
		{args: []string{"--join-token", "t"}, err: "--join-token configures a data plane: add --join"},
		{env: map[string]string{"STOAD_NAME": "edge"}, err: "--name configures a data plane"},
		{args: []string{"--bundle-key", "k.pub"}, err: "go with --join URL"},
		{args: []string{"--bundle-poll", "1s"}, err: "--bundle-poll goes with --bundle"},
		{args: []string{"--join", "https://cp", "--bundle-key", "k", "--name", "Edge_1"}, err: "--name: data plane name"},
		{args: []string{"--join", "https://cp", "--bundle-key", "k", "--join-fingerprint", "nope"}, err: "--join-fingerprint"},
		{args: []string{"--join", "https://cp", "--bundle-key", "k", "--join-token", "a", "--join-token-file", "f"}, err: "give one"},
		{args: []string{"--bundle", "b", "--bundle-key", "k", "--bundle-poll", "0s"}, err: "want a positive duration"},
	} {
		c, err := ParseFlags(tc.args, env(tc.env), io.Discard)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%v %v: %v", tc.args, tc.env, err)
			} else if !c.Source.Enabled() || strings.HasSuffix(c.Source.Join, "/") {
				t.Errorf("%v %v: source %+v", tc.args, tc.env, c.Source)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v %v: error %v, want %q", tc.args, tc.env, err, tc.err)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
