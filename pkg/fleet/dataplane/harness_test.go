package dataplane_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stoa-gateway/stoa/internal/benchspecs"
	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
	"github.com/stoa-gateway/stoa/pkg/fleet/controlplane"
	"github.com/stoa-gateway/stoa/pkg/fleet/dataplane"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// The harness runs a real control plane (the controlplane handlers on an
// httptest TLS server, a bbolt store, a fleet CA, cosign-signed bundles)
// and real Syncers against it, all in-process. Data planes reach it
// through a gate, a TCP relay that can be cut to make a partition.

var (
	keyOnce sync.Once
	keySV   signature.SignerVerifier
	keyPub  []byte
	keyErr  error
)

// signingKey is one cosign key pair per test binary (scrypt is slow).
func signingKey(t testing.TB) (signature.SignerVerifier, signature.Verifier) {
	t.Helper()
	keyOnce.Do(func() {
		var priv []byte
		if priv, keyPub, keyErr = bundle.GenerateKeyPair([]byte("pw")); keyErr != nil {
			return
		}
		keySV, keyErr = bundle.LoadSigner(priv, []byte("pw"))
	})
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	v, err := bundle.LoadVerifier(keyPub)
	if err != nil {
		t.Fatal(err)
	}
	return keySV, v
}

// clock is a settable clock shared by the control plane and the data
// planes, for certificate lifetimes and staleness.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// counting counts the bytes a listener's connections write (the server's
// side: what goes to data planes, TLS records included).
type counting struct {
	net.Listener
	written atomic.Int64
}

func (l *counting) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.written}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// cp is a control plane under test.
type cp struct {
	t        testing.TB
	store    store.Store
	ca       *ca.CA
	src      source
	srv      *controlplane.Server
	https    *httptest.Server
	counter  *counting
	gate     *gate
	signer   signature.Signer
	verifier signature.Verifier
	keyID    string
	clock    *clock
	events   *eventLog
	// tamper, when set, rewrites the body of watch answers in transit.
	// While tampering is on, every watch answer is buffered uncompressed
	// and tamper is read when the answer is ready, not when the request
	// came in: a long poll already waiting when a test sets tamper is
	// rewritten too.
	tamper    atomic.Pointer[func([]byte) []byte]
	tampering atomic.Bool
}

// source is the control plane's bundle source: a MemorySource, or a
// rewindable one for tests that make a control plane go backwards.
type source interface {
	controlplane.Source
	Publish(*controlplane.Signed) error
}

type cpOptions struct {
	certTTL   time.Duration
	heartbeat time.Duration
	source    source
	// clientAuth overrides the listener's client authentication (the
	// handlers must hold even when the TLS layer checks nothing).
	clientAuth *tls.ClientAuthType
}

func newCP(t testing.TB, o cpOptions) *cp {
	t.Helper()
	sv, v := signingKey(t)
	pub, err := v.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	keyID, err := fleet.KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{}
	authority, err := ca.FromStore(context.Background(), st, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if o.source == nil {
		o.source = controlplane.NewMemorySource(4)
	}
	c := &cp{t: t, store: st, ca: authority, src: o.source, signer: sv, verifier: v, keyID: keyID, clock: clk, events: &eventLog{}}
	c.srv, err = controlplane.NewServer(controlplane.Config{
		Store: st, CA: authority, Source: o.source, KeyID: keyID,
		CertTTL: o.certTTL, HeartbeatInterval: o.heartbeat, Now: clk.Now,
		Log: quietLog(), OnEvent: c.events.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	fleetHandler := c.srv.Handler()
	mux.Handle(fleet.PathPrefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.tampering.Load() && r.URL.Path == fleet.PathWatch {
			rec := httptest.NewRecorder()
			r.Header.Del("Accept-Encoding") // tamper with plain bytes
			fleetHandler.ServeHTTP(rec, r)
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			body := rec.Body.Bytes()
			if f := c.tamper.Load(); f != nil {
				body = (*f)(body)
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		fleetHandler.ServeHTTP(w, r)
	}))
	// What the LocalAPI would serve beside the fleet routes: bearer
	// tokens only.
	mux.HandleFunc("/v1/status", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer cli-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	})
	c.https = httptest.NewUnstartedServer(mux)
	c.https.EnableHTTP2 = true
	c.https.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	c.counter = &counting{Listener: c.https.Listener}
	c.https.Listener = c.counter
	// The control plane's listener: its own server certificate (StartTLS
	// adds httptest's), and client certificates of the fleet CA.
	c.https.TLS = authority.ServerTLSConfig(nil)
	c.https.TLS.Time = clk.Now
	if o.clientAuth != nil {
		c.https.TLS.ClientAuth = *o.clientAuth
	}
	c.https.StartTLS()
	t.Cleanup(c.https.Close)
	c.gate = newGate(t, c.https.Listener.Addr().String())
	return c
}

// url is the control plane as data planes reach it (through the gate).
func (c *cp) url() string { return "https://" + c.gate.addr() }

// fingerprint pins the control plane's certificate.
func (c *cp) fingerprint() tlspin.Fingerprint { return tlspin.Of(c.https.Certificate().Raw) }

// publish signs and publishes revision rev of objs; with a previous
// bundle it builds incrementally, as the Follower does.
func (c *cp) publish(rev int64, objs []*spec.Object) *controlplane.Signed {
	c.t.Helper()
	b, err := bundle.Build(rev, objs)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.publishBundle(b)
}

func (c *cp) publishBundle(b *bundle.Bundle) *controlplane.Signed {
	c.t.Helper()
	sig, err := bundle.Sign(b.Bytes(), c.signer)
	if err != nil {
		c.t.Fatal(err)
	}
	s := &controlplane.Signed{Bundle: b, Signature: sig}
	if err := c.src.Publish(s); err != nil {
		c.t.Fatal(err)
	}
	return s
}

func (c *cp) token(name string) string {
	c.t.Helper()
	tok, err := c.srv.Tokens().Create(context.Background(), controlplane.CreateTokenOptions{Name: name, TTL: time.Hour})
	if err != nil {
		c.t.Fatal(err)
	}
	return tok.Token
}

// dp is a data plane under test: a Syncer and what it applied.
type dp struct {
	*dataplane.Syncer
	dir     string
	applied *applyLog
	events  *eventLog
	cancel  context.CancelFunc
	done    chan struct{}
}

type dpOptions struct {
	name     string
	token    string
	dir      string
	wait     time.Duration
	apply    func(rev int64, objs []*spec.Object) error
	maxBytes int64
}

// startDP runs a Syncer until the test ends (or stop).
func (c *cp) startDP(t testing.TB, o dpOptions) *dp {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.wait == 0 {
		o.wait = 10 * time.Second
	}
	d := &dp{dir: o.dir, applied: &applyLog{}, events: &eventLog{}, done: make(chan struct{})}
	apply := func(rev int64, objs []*spec.Object) error {
		if o.apply != nil {
			if err := o.apply(rev, objs); err != nil {
				return err
			}
		}
		d.applied.add(rev, len(objs))
		return nil
	}
	s, err := dataplane.New(dataplane.Config{
		ControlPlane: c.url(), JoinToken: o.token, Name: o.name, Address: "https://" + o.name + ".example:8443",
		StateDir: o.dir, Verifier: c.verifier, Fingerprint: c.fingerprint(), Apply: apply, OnEvent: d.events.add,
		Version: "test", Wait: o.wait, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Now: c.clock.Now, Log: quietLog(), MaxBundleBytes: o.maxBytes,
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Syncer = s
	// A revision counts as applied once the Syncer has taken it (status
	// and metrics), which is after the Apply callback returned.
	d.applied.settled = func(rev int64) bool { return d.Status().Revision >= rev }
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() {
		defer close(d.done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("syncer %s: %v", o.name, err)
		}
	}()
	t.Cleanup(d.stop)
	return d
}

func (d *dp) stop() {
	d.cancel()
	<-d.done
}

// applyLog records what a data plane applied, in order.
type applyLog struct {
	mu   sync.Mutex
	revs []int64
	objs []int
	at   []time.Time
	cond chan struct{}
	// settled, when set, says whether the data plane has taken rev after
	// its Apply returned; wait waits for it too.
	settled func(rev int64) bool
}

func (a *applyLog) add(rev int64, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revs = append(a.revs, rev)
	a.objs = append(a.objs, n)
	a.at = append(a.at, time.Now())
	if a.cond != nil {
		close(a.cond)
		a.cond = nil
	}
}

func (a *applyLog) last() (int64, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.revs) == 0 {
		return 0, 0
	}
	return a.revs[len(a.revs)-1], a.objs[len(a.objs)-1]
}

func (a *applyLog) all() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int64(nil), a.revs...)
}

// when returns the time revision rev was applied (zero if not).
func (a *applyLog) when(rev int64) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, r := range a.revs {
		if r == rev {
			return a.at[i]
		}
	}
	return time.Time{}
}

// wait blocks until revision rev is applied, failing the test after a
// generous deadline (a failure bound, not a performance assertion).
func (a *applyLog) wait(t testing.TB, rev int64) {
	t.Helper()
	deadline := time.After(120 * time.Second)
	for {
		a.mu.Lock()
		for _, r := range a.revs {
			if r == rev {
				settled := a.settled
				a.mu.Unlock()
				if settled != nil {
					for limit := time.Now().Add(120 * time.Second); !settled(rev); time.Sleep(5 * time.Millisecond) {
						if time.Now().After(limit) {
							t.Fatalf("revision %d was applied but the data plane did not take it in 120s", rev)
						}
					}
				}
				return
			}
		}
		if a.cond == nil {
			a.cond = make(chan struct{})
		}
		ch := a.cond
		a.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("revision %d was not applied in 120s; applied %v", rev, a.all())
		}
	}
}

// eventLog records events.
type eventLog struct {
	mu sync.Mutex
	ev []api.Event
}

func (e *eventLog) add(ev api.Event) {
	e.mu.Lock()
	e.ev = append(e.ev, ev)
	e.mu.Unlock()
}

func (e *eventLog) ofType(typ string) []api.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []api.Event
	for _, ev := range e.ev {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// eventually polls cond until it holds, failing after 120s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gate relays TCP connections to the control plane; cut closes every
// relayed connection and refuses new ones (a partition), heal lets them
// through again.
type gate struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]bool
}

func newGate(t testing.TB, target string) *gate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); g.cut() })
	go g.serve()
	return g
}

func (g *gate) addr() string { return g.ln.Addr().String() }

func (g *gate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", g.target)
		if err != nil {
			g.mu.Unlock()
			c.Close()
			continue
		}
		g.conns[c], g.conns[up] = true, true
		g.mu.Unlock()
		go g.pipe(c, up)
		go g.pipe(up, c)
	}
}

func (g *gate) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	g.mu.Lock()
	delete(g.conns, dst)
	delete(g.conns, src)
	g.mu.Unlock()
}

func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
}

func (g *gate) heal() {
	g.mu.Lock()
	g.closed = false
	g.mu.Unlock()
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// objects parses YAML specs and defaults them as stoad stores them.
func objects(t testing.TB, yaml string) []*spec.Object {
	t.Helper()
	objs, diags := spec.Parse("test.yaml", []byte(yaml))
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	for _, o := range objs {
		spec.Default(o)
	}
	return objs
}

// smallConfig is a tenant and n tools; salt changes every description.
func smallConfig(t testing.TB, n int, salt string) []*spec.Object {
	return objects(t, toolsYAML(n, 1, salt))
}

// toolsYAML generates n tools across m tenants, the configuration
// scripts/bench-apply.sh and pkg/bundle's benchmarks use.
func toolsYAML(n, m int, salt string) string { return string(benchspecs.YAML(n, m, salt)) }

var (
	bigOnce sync.Once
	bigObjs []*spec.Object
)

// bigConfig is 10,000 tools across 20 tenants, parsed once per binary.
func bigConfig(t testing.TB) []*spec.Object {
	t.Helper()
	bigOnce.Do(func() { bigObjs = objects(t, toolsYAML(10000, 20, "")) })
	if len(bigObjs) != 10020 {
		t.Fatalf("big configuration: %d objects", len(bigObjs))
	}
	return bigObjs
}

// withDescription returns objs with one tool's description changed (a
// copy of that tool; the rest shared).
func withDescription(t testing.TB, objs []*spec.Object, ref spec.Ref, desc string) []*spec.Object {
	t.Helper()
	out := append([]*spec.Object(nil), objs...)
	for i, o := range out {
		if o.Ref() == ref {
			ts := *o.Spec.(*spec.ToolSpec)
			ts.Description = desc
			c := *o
			c.Spec = &ts
			out[i] = &c
			return out
		}
	}
	t.Fatalf("no %s", ref)
	return nil
}

// rewindable is a Source that publishes anything, older revisions
// included: a control plane restored from an old backup, or a second one.
type rewindable struct {
	mu      sync.Mutex
	cur     *controlplane.Signed
	changed chan struct{}
}

func newRewindable() *rewindable { return &rewindable{changed: make(chan struct{})} }

func (r *rewindable) Publish(s *controlplane.Signed) error {
	r.mu.Lock()
	r.cur = s
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return nil
}

func (r *rewindable) Current(context.Context) (*controlplane.Signed, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, nil
}

func (r *rewindable) At(context.Context, int64) (*bundle.Bundle, error) {
	return nil, controlplane.ErrNoBundle
}

// Wait returns on any publish (a rewind included).
func (r *rewindable) Wait(ctx context.Context, after int64) error {
	r.mu.Lock()
	ch := r.changed
	newer := r.cur != nil && r.cur.Bundle.Revision() > after
	r.mu.Unlock()
	if newer {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errApply = errors.New("prepare: upstream pool refused")
