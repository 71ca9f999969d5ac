package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// request is what a test server saw of one request.
type request struct {
	Method, Path, Query, Body, Auth string
}

// recorder answers every LocalAPI route with an empty JSON object (one
// NDJSON line for streams) and records what it was sent.
type recorder struct {
	mu   sync.Mutex
	seen []request
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.seen = append(rec.seen, request{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Get("Authorization")})
	rec.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintln(w, "{}")
}

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.seen...)
}

func (rec *recorder) reset() {
	rec.mu.Lock()
	rec.seen = nil
	rec.mu.Unlock()
}

// everyCall calls every method of API once with arguments that use every
// query parameter and body field kind.
func everyCall(ctx context.Context, c API) []error {
	since := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	nop := func(api.Event) error { return nil }
	var errs []error
	add := func(_ any, err error) { errs = append(errs, err) }
	add(c.Status(ctx))
	add(c.ApplyEncoded(ctx, &api.ApplyRequest{DryRun: true, Prune: true, Message: "m"}, json.RawMessage(`[{"kind":"Tenant"}]`)))
	add(c.Digests(ctx))
	add(c.Delete(ctx, &api.DeleteRequest{Cascade: true, IfRevision: 3}))
	add(c.Rollback(ctx, &api.RollbackRequest{Revision: 2}))
	add(c.Objects(ctx, "Tool", "acme", "billing api"))
	add(c.Revisions(ctx, 5))
	add(c.Revision(ctx, 7))
	errs = append(errs, c.Events(ctx, EventsOptions{Since: 4, Last: 2, Follow: true}, nop))
	add(c.Keys(ctx, KeysOptions{Namespace: "acme", Consumer: "shop"}))
	add(c.CreateKey(ctx, &api.KeyCreateRequest{Tenant: "acme", Consumer: "shop", ExpiresIn: "90d"}))
	add(c.RevokeKey(ctx, "k/1"))
	add(c.RotateKey(ctx, "k1", &api.KeyRotateRequest{Grace: "1h"}))
	add(c.Quotas(ctx, "acme"))
	add(c.WebhookDeliveries(ctx, DeliveriesOptions{Namespace: "acme", Webhook: "ops", State: "failed", Limit: 3}))
	add(c.WebhookDelivery(ctx, "dlv 1"))
	add(c.Redeliver(ctx, "dlv_1", true))
	add(c.TestWebhook(ctx, api.WebhookTestRequest{}))
	add(c.Snapshots(ctx, SnapshotsOptions{Namespace: "acme", Tool: "t", Since: since, Limit: 2}))
	add(c.Snapshot(ctx, "snp_1"))
	add(c.ReplaySnapshot(ctx, "snp_1"))
	errs = append(errs, c.Audit(ctx, AuditOptions{Since: since, Actor: "alice", Action: "apply", Namespace: "acme", Limit: 9}, func(api.AuditEntry) error { return nil }))
	add(c.AuditVerify(ctx))
	add(c.Stats(ctx))
	errs = append(errs, c.FollowStats(ctx, func(*api.StatsSample) error { return nil }))
	add(c.XDPStatus(ctx))
	add(c.XDPBlocks(ctx))
	add(c.XDPBlock(ctx, &api.XDPBlockRequest{CIDR: "198.51.100.0/24", For: "10m"}))
	add(c.XDPUnblock(ctx, "198.51.100.0/24"))
	add(c.DataPlanes(ctx))
	add(c.CreateJoinToken(ctx, &api.JoinTokenCreateRequest{Name: "edge-1", TTL: "1h"}))
	add(c.JoinTokens(ctx))
	add(c.RevokeJoinToken(ctx, "0123ab"))
	add(c.RevokeDataPlane(ctx, "edge-1"))
	return errs
}

// tlsServer serves h over TLS on 127.0.0.1 and returns it with a pool
// trusting it.
func tlsServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func trusting(srv *httptest.Server) *x509.CertPool {
	return srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}

func newRemote(t *testing.T, o RemoteOptions) *Remote {
	t.Helper()
	if o.Context == "" {
		o.Context = "prod"
	}
	if o.LoginCommand == "" {
		o.LoginCommand = "stoa login --context " + o.Context
	}
	r, err := NewRemote(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRemoteSendsTheSocketsRequests: every call of the API goes out over
// HTTPS exactly as over the unix socket — method, path, query and body —
// plus the bearer token.
func TestRemoteSendsTheSocketsRequests(t *testing.T) {
	rec := &recorder{}
	sock := filepath.Join(shortDir(t), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	unix := &http.Server{Handler: rec}
	go unix.Serve(ln)
	t.Cleanup(func() { unix.Close() })
	srv := tlsServer(t, http.StripPrefix("/cp", rec))

	ctx := context.Background()
	for i, err := range everyCall(ctx, New(sock)) {
		if err != nil {
			t.Fatalf("socket call %d: %v", i, err)
		}
	}
	local := rec.requests()
	rec.reset()
	r := newRemote(t, RemoteOptions{Server: srv.URL + "/cp/", RootCAs: trusting(srv), Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok-1"})})
	for i, err := range everyCall(ctx, r) {
		if err != nil {
			t.Fatalf("remote call %d: %v", i, err)
		}
	}
	remote := rec.requests()
	if len(local) != 34 || len(remote) != len(local) {
		t.Fatalf("%d socket requests, %d remote ones; want 34 each", len(local), len(remote))
	}
	for i := range local {
		if remote[i].Auth != "Bearer tok-1" || local[i].Auth != "" {
			t.Errorf("request %d: Authorization %q over HTTPS, %q over the socket", i, remote[i].Auth, local[i].Auth)
		}
		remote[i].Auth = ""
		if remote[i] != local[i] {
			t.Errorf("request %d differs:\n socket %+v\n remote %+v", i, local[i], remote[i])
		}
	}
	if r.Endpoint() != srv.URL+"/cp" {
		t.Errorf("Endpoint %q", r.Endpoint())
	}
}

// counter counts requests and answers them with fn.
type counter struct {
	n  atomic.Int64
	fn http.HandlerFunc
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.fn(w, r)
}

func envelope(status int, code, msg, hint string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(api.ErrorBody{Error: &api.Error{Code: code, Message: msg, Hint: hint}})
	}
}

// TestRemoteAnswers: the error envelope decodes to the socket client's
// errors; 401 becomes an *AuthError telling how to log in; GETs alone
// are retried, and only for a gateway's temporary failures.
func TestRemoteAnswers(t *testing.T) {
	tok := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"})
	for _, tc := range []struct {
		name     string
		fn       http.HandlerFunc
		post     bool
		attempts int64
		check    func(t *testing.T, err error)
	}{
		{"invalid", envelope(422, api.CodeInvalid, "specs invalid", "fix them"), true, 1, func(t *testing.T, err error) {
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeInvalid || ae.Hint != "fix them" {
				t.Errorf("%T %v", err, err)
			}
		}},
		{"role missing", envelope(403, api.CodeForbidden, "role editor on tenant acme required to apply (alice has viewer)", ""), true, 1, func(t *testing.T, err error) {
			var ae *api.Error
			var auth *AuthError
			if !errors.As(err, &ae) || ae.Code != api.CodeForbidden || errors.As(err, &auth) || err.Error() != "role editor on tenant acme required to apply (alice has viewer)" {
				t.Errorf("%T %v", err, err)
			}
		}},
		{"token refused", envelope(401, api.CodeUnauthorized, "token expired", ""), false, 1, func(t *testing.T, err error) {
			var auth *AuthError
			if !errors.As(err, &auth) || !strings.Contains(err.Error(), `refused the token of context "prod": token expired`) || auth.Hint() != "log in again: stoa login --context prod" {
				t.Errorf("%T %v", err, err)
			}
		}},
		{"401 without envelope", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", 401) }, false, 1, func(t *testing.T, err error) {
			var auth *AuthError
			var ae *api.Error
			if !errors.As(err, &auth) || !errors.As(err, &ae) || ae.Code != api.CodeUnauthorized {
				t.Errorf("%T %v", err, err)
			}
		}},
		{"gateway error, GET", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "<html>bad gateway</html>", 502) }, false, 3, func(t *testing.T, err error) {
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeUnavailable || !strings.Contains(ae.Message, "the control plane answered 502 Bad Gateway") {
				t.Errorf("%T %v", err, err)
			}
		}},
		{"unavailable, POST", envelope(503, api.CodeUnavailable, "shutting down", ""), true, 1, func(t *testing.T, err error) {
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeUnavailable {
				t.Errorf("%T %v", err, err)
			}
		}},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/v1/status", 302)
		}, false, 1, func(t *testing.T, err error) {
			var h interface{ Hint() string }
			if err == nil || !strings.Contains(err.Error(), "redirecting to https://elsewhere.example/v1/status") || !errors.As(err, &h) || !strings.Contains(h.Hint(), "--server URL") {
				t.Errorf("%T %v", err, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &counter{fn: tc.fn}
			srv := tlsServer(t, c)
			r := newRemote(t, RemoteOptions{Server: srv.URL, RootCAs: trusting(srv), Tokens: tok, RetryWait: time.Millisecond})
			var err error
			if tc.post {
				_, err = r.Delete(context.Background(), &api.DeleteRequest{})
			} else {
				_, err = r.Status(context.Background())
			}
			tc.check(t, err)
			if n := c.n.Load(); n != tc.attempts {
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
		})
	}
}

// TestRemoteTokenProblems: without a usable token nothing is sent and the
// error says how to log in; a refused token from $STOA_TOKEN or a context
// without an issuer say what applies to them.
func TestRemoteTokenProblems(t *testing.T) {
	c := &counter{fn: envelope(401, api.CodeUnauthorized, "token is for another audience", "")}
	srv := tlsServer(t, c)
	ctx := context.Background()

	notLoggedIn := errors.New(`not logged in to context "prod" (run ` + "`stoa login`)")
	r := newRemote(t, RemoteOptions{Server: srv.URL, RootCAs: trusting(srv), Tokens: failingSource{notLoggedIn}})
	_, err := r.Status(ctx)
	var auth *AuthError
	if !errors.As(err, &auth) || !errors.Is(err, notLoggedIn) || auth.Hint() != "log in again: stoa login --context prod" || c.n.Load() != 0 {
		t.Fatalf("no token: %T %v (%d requests)", err, err, c.n.Load())
	}

	issuerDown := &url.Error{Op: "Post", URL: "https://idp.example/token", Err: errors.New("connection refused")}
	r = newRemote(t, RemoteOptions{Server: srv.URL, RootCAs: trusting(srv), Tokens: failingSource{issuerDown}})
	_, err = r.Status(ctx)
	var ue *RemoteUnreachableError
	if !errors.As(err, &ue) || !ue.Issuer || !strings.Contains(ue.Hint(), "issuer") || c.n.Load() != 0 {
		t.Fatalf("issuer down: %T %v", err, err)
	}

	r = newRemote(t, RemoteOptions{Server: srv.URL, RootCAs: trusting(srv), Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"}), TokenFromEnv: true})
	_, err = r.Status(ctx)
	if !errors.As(err, &auth) || !strings.Contains(err.Error(), "refused the token in $STOA_TOKEN: token is for another audience") || !strings.Contains(auth.Hint(), "unset it") {
		t.Fatalf("STOA_TOKEN: %v / %s", err, auth.Hint())
	}

	r = newRemote(t, RemoteOptions{Server: srv.URL, RootCAs: trusting(srv)})
	_, err = r.Status(ctx)
	if !errors.As(err, &auth) || !strings.Contains(err.Error(), `requires a token, and context "prod" has none`) || !strings.Contains(auth.Hint(), "--issuer URL") {
		t.Fatalf("no issuer: %v / %s", err, auth.Hint())
	}
}

type failingSource struct{ err error }

func (f failingSource) Token() (*oauth2.Token, error) { return nil, f.err }

// TestRemoteUnreachable: no answer is an *RemoteUnreachableError naming
// the server and the context; a change whose answer never came is
// flagged as possibly made.
func TestRemoteUnreachable(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + ln.Addr().String()
	ln.Close()
	r := newRemote(t, RemoteOptions{Server: closed, RetryWait: time.Millisecond})
	for _, call := range []func() error{
		func() error { _, err := r.Status(ctx); return err },
		func() error { _, err := r.Rollback(ctx, &api.RollbackRequest{}); return err },
		func() error { return r.Events(ctx, EventsOptions{Follow: true}, func(api.Event) error { return nil }) },
	} {
		err := call()
		var ue *RemoteUnreachableError
		if !errors.As(err, &ue) || ue.Unsure || !strings.Contains(err.Error(), "cannot reach the control plane at "+closed+` (context "prod")`) ||
			!strings.Contains(err.Error(), "connection refused") || !strings.Contains(ue.Hint(), "stoa context list") {
			t.Errorf("%T %v", err, err)
		}
	}

	// A server that takes the request and never answers.
	// (A handler that leaves a request body unread does not see the
	// client go away: release them before the server closes.)
	release := make(chan struct{})
	hang := &counter{fn: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}}
	srv := tlsServer(t, hang)
	t.Cleanup(func() { close(release) })
	r = newRemote(t, RemoteOptions{Server: srv.URL, RootCAs: trusting(srv), ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond})
	_, err = r.Status(ctx)
	var ue *RemoteUnreachableError
	if !errors.As(err, &ue) || ue.Timeout != 100*time.Millisecond || ue.Unsure || !strings.Contains(err.Error(), "no answer from the control plane") {
		t.Errorf("GET: %T %v", err, err)
	}
	_, err = r.ApplyEncoded(ctx, &api.ApplyRequest{}, json.RawMessage(`[]`))
	if !errors.As(err, &ue) || !ue.Unsure || !strings.Contains(err.Error(), "may or may not have been made") || !strings.Contains(ue.Hint(), "stoa history --context prod") {
		t.Errorf("POST: %T %v", err, err)
	}
	err = r.Events(ctx, EventsOptions{Follow: true}, func(api.Event) error { return nil })
	if !errors.As(err, &ue) || ue.Timeout == 0 {
		t.Errorf("stream: %T %v", err, err)
	}

	// A connection cut after the request was sent: a GET is sent again,
	// a change is not, and is flagged.
	cut := &counter{fn: func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}}
	srv = httptest.NewUnstartedServer(cut)
	srv.EnableHTTP2 = false
	srv.StartTLS()
	t.Cleanup(srv.Close)
	r = newRemote(t, RemoteOptions{Server: srv.URL, RootCAs: trusting(srv), RetryWait: time.Millisecond})
	if _, err := r.Status(ctx); !errors.As(err, &ue) || ue.Unsure || cut.n.Load() != 3 {
		t.Errorf("GET cut: %v after %d attempts, want 3", err, cut.n.Load())
	}
	cut.n.Store(0)
	if _, err := r.CreateKey(ctx, &api.KeyCreateRequest{}); !errors.As(err, &ue) || !ue.Unsure || cut.n.Load() != 1 {
		t.Errorf("POST cut: %v after %d attempts, want 1", err, cut.n.Load())
	}
}

// TestRemoteCertificates: a certificate the system does not trust is
// refused with its fingerprint and the command that pins it (never
// trusted on its own); a pin admits exactly its certificate; nothing is
// ever sent over a refused connection.
func TestRemoteCertificates(t *testing.T) {
	ctx := context.Background()
	c := &counter{fn: func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"version":"v1"}`) }}
	srv := tlsServer(t, c)
	presented := tlspin.Of(srv.Certificate().Raw)

	r := newRemote(t, RemoteOptions{Server: srv.URL, PinCommand: func(fp string) string {
		return "stoa context add prod --server " + srv.URL + " --fingerprint " + fp + " --overwrite"
	}})
	_, err := r.Status(ctx)
	var ce *CertificateError
	if !errors.As(err, &ce) || ce.Pinned || ce.Presented != presented || !strings.Contains(err.Error(), "the server presented "+presented.String()) {
		t.Fatalf("untrusted: %T %v", err, err)
	}
	if h := ce.Hint(); !strings.Contains(h, "stoa context add prod --server "+srv.URL+" --fingerprint "+presented.String()+" --overwrite") ||
		!strings.Contains(h, "openssl x509 -noout -fingerprint -sha256") || !strings.Contains(h, "never pin a fingerprint you have not checked") {
		t.Errorf("hint: %s", h)
	}

	r = newRemote(t, RemoteOptions{Server: srv.URL, Pin: &presented})
	if s, err := r.Status(ctx); err != nil || s.Version != "v1" {
		t.Fatalf("pinned: %v", err)
	}

	other := tlspin.Of([]byte("another certificate"))
	r = newRemote(t, RemoteOptions{Server: srv.URL, Pin: &other, RetryWait: time.Millisecond})
	_, err = r.Status(ctx)
	if !errors.As(err, &ce) || !ce.Pinned || ce.Want != other || ce.Presented != presented ||
		!strings.Contains(err.Error(), "expected "+other.String()) || !strings.Contains(err.Error(), "got      "+presented.String()) ||
		!strings.Contains(ce.Hint(), "nothing was sent") {
		t.Fatalf("mismatch: %T %v", err, err)
	}
	if n := c.n.Load(); n != 1 {
		t.Errorf("%d requests reached the server; only the pinned one may", n)
	}

	// Not TLS at all on that port.
	plain := httptest.NewServer(c)
	t.Cleanup(plain.Close)
	r = newRemote(t, RemoteOptions{Server: strings.Replace(plain.URL, "http://", "https://", 1), RetryWait: time.Millisecond})
	_, err = r.Status(ctx)
	var ue *RemoteUnreachableError
	if !errors.As(err, &ue) || !ue.NotTLS || !strings.Contains(ue.Hint(), "does not serve HTTPS") {
		t.Errorf("plain http port: %T %v", err, err)
	}

	// TLS 1.1 servers are refused even when pinned.
	old := httptest.NewUnstartedServer(c)
	old.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	old.StartTLS()
	t.Cleanup(old.Close)
	oldPin := tlspin.Of(old.Certificate().Raw)
	before := c.n.Load()
	r = newRemote(t, RemoteOptions{Server: old.URL, Pin: &oldPin, RetryWait: time.Millisecond})
	if _, err := r.Status(ctx); err == nil || c.n.Load() != before {
		t.Errorf("TLS 1.1: %v", err)
	}
}

// TestRemoteURLs: https, plain http only on loopback, no credentials in
// the URL; a pin needs https.
func TestRemoteURLs(t *testing.T) {
	pin := tlspin.Of([]byte("x"))
	for _, tc := range []struct {
		url string
		pin *tlspin.Fingerprint
		ok  bool
	}{
		{"https://cp.example.com:7443", nil, true},
		{"https://cp.example.com/stoa", &pin, true},
		{"http://127.0.0.1:7443", nil, true},
		{"http://[::1]:7443", nil, true},
		{"http://cp.example.com", nil, false},
		{"http://127.0.0.1:7443", &pin, false},
		{"https://user:pw@cp.example.com", nil, false},
		{"ftp://cp.example.com", nil, false},
		{"cp.example.com", nil, false},
	} {
		_, err := NewRemote(RemoteOptions{Server: tc.url, Pin: tc.pin})
		if (err == nil) != tc.ok {
			t.Errorf("%s (pin %v): %v", tc.url, tc.pin != nil, err)
		}
	}
}

// TestRemoteStreams: NDJSON arrives as it is written, beyond the read
// timeout (which bounds only the start of a stream), until ctx ends.
func TestRemoteStreams(t *testing.T) {
	next := make(chan struct{})
	srv := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("follow") != "1" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "bad request", 400)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := 1; ; i++ {
			fmt.Fprintf(w, `{"seq":%d,"type":"config.applied"}`+"\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	r := newRemote(t, RemoteOptions{Server: srv.URL, RootCAs: trusting(srv), Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"}),
		ReadTimeout: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []int64
	connected := false
	done := make(chan error, 1)
	go func() {
		done <- r.Events(ctx, EventsOptions{Follow: true, Connected: func() error { connected = true; return nil }}, func(e api.Event) error {
			got = append(got, e.Seq)
			if len(got) == 3 {
				cancel()
			}
			return nil
		})
	}()
	// The second event comes after the read timeout: it only bounds the
	// wait for the stream's start.
	time.Sleep(2500 * time.Millisecond)
	next <- struct{}{}
	next <- struct{}{}
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("events: %v", err)
	}
	if !connected || len(got) != 3 || got[2] != 3 {
		t.Fatalf("connected %v, events %v", connected, got)
	}
}
