package dataplane_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
	"github.com/stoa-gateway/stoa/pkg/fleet/controlplane"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// client speaks to the control plane directly, presenting cert (nil:
// none), as a data plane or an attacker would.
func (c *cp) client(cert *tls.Certificate) *http.Client {
	tc := tlspin.TLSConfig(c.fingerprint())
	if cert != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}, Timeout: 30 * time.Second}
}

// call sends a request and returns the status and the error envelope (if
// any) or the body.
func call(t testing.TB, hc *http.Client, method, url string, body any, header ...string) (int, *api.Error, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, &api.Error{Code: "transport", Message: err.Error()}, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var eb api.ErrorBody
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
			t.Fatalf("%s %s: %d without the error envelope: %s", method, url, resp.StatusCode, b)
		}
		return resp.StatusCode, eb.Error, b
	}
	return resp.StatusCode, nil, b
}

// joiner is a key and what joining with it gave.
type joiner struct {
	key  *ecdsa.PrivateKey
	cert *tls.Certificate
}

func newJoiner(t testing.TB) *joiner {
	k, err := ca.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return &joiner{key: k}
}

func (c *cp) join(t testing.TB, j *joiner, token, name string) (int, *api.Error) {
	t.Helper()
	csr, err := ca.NewCSR(j.key, name)
	if err != nil {
		t.Fatal(err)
	}
	status, ae, body := call(t, c.client(nil), http.MethodPost, "https://"+c.https.Listener.Addr().String()+fleet.PathJoin,
		fleet.JoinRequest{Token: token, Name: name, CSR: string(csr), KeyID: c.keyID})
	if status == http.StatusOK {
		var resp fleet.JoinResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode([]byte(resp.Certificate))
		leaf, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		j.cert = &tls.Certificate{Certificate: [][]byte{b.Bytes}, PrivateKey: j.key, Leaf: leaf}
	}
	return status, ae
}

func (c *cp) direct(path string) string { return "https://" + c.https.Listener.Addr().String() + path }

func TestJoinTokenSingleUse(t *testing.T) {
	c := newCP(t, cpOptions{})
	tok := c.token("")
	a, b := newJoiner(t), newJoiner(t)
	if st, ae := c.join(t, a, tok, "edge-1"); st != http.StatusOK {
		t.Fatalf("first join: %d %v", st, ae)
	}
	st, ae := c.join(t, b, tok, "edge-2")
	if st != http.StatusUnauthorized || !strings.Contains(ae.Message, `already used, by data plane "edge-1"`) || ae.Hint == "" {
		t.Fatalf("second join with the token: %d %+v", st, ae)
	}
	// The same key and name again within minutes is a retry of a join
	// whose answer was lost: it gets a certificate, and the first one is
	// cut off.
	first := a.cert
	if st, ae := c.join(t, a, tok, "edge-1"); st != http.StatusOK {
		t.Fatalf("retried join: %d %v", st, ae)
	}
	if st, ae, _ := call(t, c.client(first), http.MethodPost, c.direct(fleet.PathHeartbeat), fleet.Heartbeat{Health: "ok"}); st != http.StatusForbidden {
		t.Fatalf("the replaced certificate: %d %v", st, ae)
	}
	// But not another name with that key.
	if st, _ := c.join(t, a, tok, "edge-9"); st != http.StatusUnauthorized {
		t.Fatalf("retry under another name: %d", st)
	}
	toks, err := c.srv.Tokens().List(context.Background())
	if err != nil || len(toks) != 1 || toks[0].State != fleet.TokenUsed || toks[0].UsedBy != "edge-1" {
		t.Fatalf("tokens: %+v %v", toks, err)
	}
}

func TestJoinTokenExpired(t *testing.T) {
	c := newCP(t, cpOptions{})
	tok, err := c.srv.Tokens().Create(context.Background(), controlplane.CreateTokenOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c.clock.Advance(time.Minute)
	st, ae := c.join(t, newJoiner(t), tok.Token, "edge-1")
	if st != http.StatusUnauthorized || !strings.Contains(ae.Message, "expired") {
		t.Fatalf("expired token: %d %+v", st, ae)
	}
	toks, _ := c.srv.Tokens().List(context.Background())
	if len(toks) != 1 || toks[0].State != fleet.TokenExpired {
		t.Fatalf("tokens: %+v", toks)
	}
}

func TestJoinTokenConcurrentOneWins(t *testing.T) {
	c := newCP(t, cpOptions{})
	tok := c.token("")
	const n = 8
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ok  int
		got = map[int]int{}
	)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		j := newJoiner(t)
		name := "edge-" + string(rune('a'+i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, _ := c.join(t, j, tok, name)
			mu.Lock()
			got[st]++
			if st == http.StatusOK {
				ok++
			}
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if ok != 1 || got[http.StatusUnauthorized] != n-1 {
		t.Fatalf("concurrent joins with one token: %v, want one 200 and %d 401", got, n-1)
	}
}

func TestJoinRefusalsDoNotSpendTheToken(t *testing.T) {
	c := newCP(t, cpOptions{})
	tok := c.token("edge-1")
	j := newJoiner(t)
	// Another name than the token's.
	if st, ae := c.join(t, j, tok, "edge-2"); st != http.StatusForbidden || !strings.Contains(ae.Message, `admits only data plane "edge-1"`) {
		t.Fatalf("wrong name: %d %+v", st, ae)
	}
	// A data plane pinning another bundle key.
	csr, _ := ca.NewCSR(j.key, "edge-1")
	st, ae, _ := call(t, c.client(nil), http.MethodPost, c.direct(fleet.PathJoin),
		fleet.JoinRequest{Token: tok, Name: "edge-1", CSR: string(csr), KeyID: "sha256:00"})
	if st != http.StatusConflict || !strings.Contains(ae.Message, "not spent") || !strings.Contains(ae.Hint, "--bundle-key") {
		t.Fatalf("other bundle key: %d %+v", st, ae)
	}
	// A request whose CSR is not signed by its key.
	bad := strings.Replace(string(csr), "\n", "\nAAAA", 1)
	if st, _, _ := call(t, c.client(nil), http.MethodPost, c.direct(fleet.PathJoin),
		fleet.JoinRequest{Token: tok, Name: "edge-1", CSR: bad, KeyID: c.keyID}); st != http.StatusBadRequest {
		t.Fatalf("bad CSR: %d", st)
	}
	// Unknown fields, unknown tokens, junk.
	if st, _, _ := call(t, c.client(nil), http.MethodPost, c.direct(fleet.PathJoin), map[string]any{"token": tok, "admin": true}); st != http.StatusBadRequest {
		t.Fatalf("unknown field: %d", st)
	}
	for _, bogus := range []string{"", "nope", controlplane.TokenPrefix + "AAAA"} {
		if st, ae := c.join(t, newJoiner(t), bogus, "edge-1"); st != http.StatusUnauthorized {
			t.Fatalf("token %q: %d %+v", bogus, st, ae)
		}
	}
	// No name anywhere: an unscoped token and no --name.
	open := c.token("")
	if st, ae := c.join(t, newJoiner(t), open, ""); st != http.StatusUnprocessableEntity || !strings.Contains(ae.Hint, "--name") {
		t.Fatalf("no name: %d %+v", st, ae)
	}
	// After all that, both tokens still work; a scoped token names the
	// data plane when it gives no name.
	if st, ae := c.join(t, j, tok, ""); st != http.StatusOK {
		t.Fatalf("join with the token at last: %d %+v", st, ae)
	}
	if name, _ := ca.NameOf(j.cert.Leaf); name != "edge-1" {
		t.Fatalf("named %q", name)
	}
	if st, ae := c.join(t, newJoiner(t), open, "edge-2"); st != http.StatusOK {
		t.Fatalf("join with the open token at last: %d %+v", st, ae)
	}
}

// A name that is live cannot be taken over; a revoked name needs a token
// made for it after the revocation.
func TestJoinNameLiveOrRevoked(t *testing.T) {
	c := newCP(t, cpOptions{heartbeat: 10 * time.Second})
	a := newJoiner(t)
	if st, ae := c.join(t, a, c.token("edge-1"), "edge-1"); st != http.StatusOK {
		t.Fatalf("join: %d %v", st, ae)
	}
	if st, ae := c.join(t, newJoiner(t), c.token("edge-1"), "edge-1"); st != http.StatusConflict || !strings.Contains(ae.Hint, "revoke") {
		t.Fatalf("join under a live name: %d %+v", st, ae)
	}
	// Once stale (three intervals without a heartbeat) the name may be
	// reused, which cuts the old certificate off.
	c.clock.Advance(31 * time.Second)
	b := newJoiner(t)
	if st, ae := c.join(t, b, c.token("edge-1"), "edge-1"); st != http.StatusOK {
		t.Fatalf("join under a stale name: %d %+v", st, ae)
	}
	if st, _, _ := call(t, c.client(a.cert), http.MethodPost, c.direct(fleet.PathHeartbeat), fleet.Heartbeat{Health: "ok"}); st != http.StatusForbidden {
		t.Fatalf("the old data plane: %d", st)
	}

	old := c.token("edge-1")
	if err := c.srv.Revoke(context.Background(), "edge-1"); err != nil {
		t.Fatal(err)
	}
	c.clock.Advance(time.Second)
	if st, ae := c.join(t, newJoiner(t), old, "edge-1"); st != http.StatusForbidden || !strings.Contains(ae.Message, "revoked") {
		t.Fatalf("join a revoked name with an older token: %d %+v", st, ae)
	}
	if st, ae := c.join(t, newJoiner(t), c.token(""), "edge-1"); st != http.StatusForbidden {
		t.Fatalf("join a revoked name with an unscoped token: %d %+v", st, ae)
	}
	if st, ae := c.join(t, newJoiner(t), c.token("edge-1"), "edge-1"); st != http.StatusOK {
		t.Fatalf("join a revoked name with a token made for it afterwards: %d %+v", st, ae)
	}
}

// Every route but join needs a client certificate of the fleet CA whose
// identity is current; bearer tokens and foreign certificates get nothing.
func TestFleetRoutesRequireClientCertificate(t *testing.T) {
	for _, mode := range []struct {
		name string
		auth *tls.ClientAuthType
	}{
		{"verify-if-given", nil},
		// A listener that checks nothing must not open the routes: the
		// handlers verify again.
		{"request-any", ptr(tls.RequestClientCert)},
	} {
		t.Run(mode.name, func(t *testing.T) {
			c := newCP(t, cpOptions{clientAuth: mode.auth, certTTL: time.Hour})
			c.publish(1, smallConfig(t, 2, ""))
			good := newJoiner(t)
			if st, ae := c.join(t, good, c.token("edge-1"), "edge-1"); st != http.StatusOK {
				t.Fatalf("join: %d %v", st, ae)
			}
			// A certificate from another CA, for a name that exists.
			other, err := ca.Generate(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			forged := newJoiner(t)
			csr, _ := ca.NewCSR(forged.key, "edge-1")
			iss, err := other.Sign(csr, "edge-1", time.Now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			forged.cert = &tls.Certificate{Certificate: [][]byte{iss.Cert.Raw}, PrivateKey: forged.key, Leaf: iss.Cert}

			routes := []struct{ method, path string }{
				{http.MethodGet, fleet.PathWatch + "?wait=0s"},
				{http.MethodPost, fleet.PathHeartbeat},
				{http.MethodPost, fleet.PathRenew},
			}
			for _, r := range routes {
				body := any(nil)
				if r.method == http.MethodPost {
					body = fleet.Heartbeat{Health: "ok"}
				}
				// No certificate, with or without the CLI's bearer token.
				for _, hdr := range [][]string{nil, {"Authorization", "Bearer cli-token"}} {
					st, ae, _ := call(t, c.client(nil), r.method, c.direct(r.path), body, hdr...)
					if st != http.StatusUnauthorized || ae.Code != api.CodeUnauthorized || !strings.Contains(ae.Hint, "--join") {
						t.Fatalf("%s %s without a certificate (%v): %d %+v", r.method, r.path, hdr, st, ae)
					}
				}
				// A foreign certificate: refused by the TLS layer or the
				// handler, never served.
				st, ae, _ := call(t, c.client(forged.cert), r.method, c.direct(r.path), body)
				if st == http.StatusOK || (st != 0 && st != http.StatusUnauthorized) {
					t.Fatalf("%s %s with a foreign certificate: %d %+v", r.method, r.path, st, ae)
				}
			}
			// The good certificate works; the CLI's route still wants
			// its bearer token, certificate or not.
			if st, ae, _ := call(t, c.client(good.cert), http.MethodPost, c.direct(fleet.PathHeartbeat), fleet.Heartbeat{Health: "ok"}); st != http.StatusOK {
				t.Fatalf("heartbeat: %d %+v", st, ae)
			}
			if st, _, _ := callPlain(c.client(good.cert), c.direct("/v1/status")); st != http.StatusUnauthorized {
				t.Fatalf("LocalAPI route with only a data plane certificate: %d", st)
			}
			// Expired (the control plane's clock past its end): refused.
			c.clock.Advance(2 * time.Hour)
			if st, _, _ := call(t, c.client(good.cert), http.MethodPost, c.direct(fleet.PathHeartbeat), fleet.Heartbeat{Health: "ok"}); st == http.StatusOK {
				t.Fatalf("expired certificate accepted")
			}
			c.clock.Advance(-2 * time.Hour)
			// Revoked: refused on every route.
			if err := c.srv.Revoke(context.Background(), "edge-1"); err != nil {
				t.Fatal(err)
			}
			for _, r := range routes {
				st, ae, _ := call(t, c.client(good.cert), r.method, c.direct(r.path), fleet.Heartbeat{Health: "ok"})
				if st != http.StatusForbidden || !strings.Contains(ae.Message, "revoked") {
					t.Fatalf("%s %s revoked: %d %+v", r.method, r.path, st, ae)
				}
			}
			l, _ := c.srv.DataPlanes(context.Background())
			if len(l.Items) != 1 || l.Items[0].Health != fleet.HealthRevoked {
				t.Fatalf("listing: %+v", l.Items)
			}
		})
	}
}

func callPlain(hc *http.Client, url string) (int, []byte, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}

func ptr[T any](v T) *T { return &v }

// Malformed requests get the error envelope with the right status, not
// a panic or a plain-text error.
func TestFleetRoutesBadRequests(t *testing.T) {
	c := newCP(t, cpOptions{})
	j := newJoiner(t)
	if st, ae := c.join(t, j, c.token("edge-1"), "edge-1"); st != http.StatusOK {
		t.Fatalf("join: %d %v", st, ae)
	}
	hc := c.client(j.cert)
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
	}{
		{http.MethodGet, fleet.PathJoin, nil, http.StatusMethodNotAllowed},
		{http.MethodPost, fleet.PathWatch, nil, http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/fleet/nope", nil, http.StatusNotFound},
		{http.MethodGet, fleet.PathWatch + "?have=-1", nil, http.StatusBadRequest},
		{http.MethodGet, fleet.PathWatch + "?have=x", nil, http.StatusBadRequest},
		{http.MethodGet, fleet.PathWatch + "?digest=md5:00", nil, http.StatusBadRequest},
		{http.MethodGet, fleet.PathWatch + "?skip=sha256:zz", nil, http.StatusBadRequest},
		{http.MethodGet, fleet.PathWatch + "?wait=forever", nil, http.StatusBadRequest},
		{http.MethodPost, fleet.PathHeartbeat, fleet.Heartbeat{Health: "great"}, http.StatusUnprocessableEntity},
		{http.MethodPost, fleet.PathHeartbeat, fleet.Heartbeat{Health: "ok", Revision: -1}, http.StatusUnprocessableEntity},
		{http.MethodPost, fleet.PathHeartbeat, fleet.Heartbeat{Health: "ok", Digest: "sha256:1"}, http.StatusUnprocessableEntity},
		{http.MethodPost, fleet.PathHeartbeat, fleet.Heartbeat{Health: "ok", Address: "a b"}, http.StatusUnprocessableEntity},
		{http.MethodPost, fleet.PathHeartbeat, map[string]any{"health": "ok", "name": "edge-2"}, http.StatusBadRequest},
		{http.MethodPost, fleet.PathHeartbeat, map[string]string{"health": strings.Repeat("x", 100<<10)}, http.StatusBadRequest},
		{http.MethodPost, fleet.PathRenew, fleet.RenewRequest{CSR: "junk"}, http.StatusBadRequest},
	} {
		st, ae, _ := call(t, hc, tc.method, c.direct(tc.path), tc.body)
		if st != tc.status || ae == nil || ae.Message == "" {
			t.Errorf("%s %s: %d %+v, want %d", tc.method, tc.path, st, ae, tc.status)
		}
	}
	// A heartbeat names only the data plane whose certificate sent it.
	if st, ae, _ := call(t, hc, http.MethodPost, c.direct(fleet.PathHeartbeat), fleet.Heartbeat{Health: "ok", Revision: 7}); st != http.StatusOK {
		t.Fatalf("heartbeat: %d %+v", st, ae)
	}
	l, _ := c.srv.DataPlanes(t.Context())
	if len(l.Items) != 1 || l.Items[0].Name != "edge-1" || l.Items[0].Revision != 7 {
		t.Fatalf("listing: %+v", l.Items)
	}
}
