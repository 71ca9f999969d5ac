package login_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/login"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

func TestBrowserLoginOpensBrowser(t *testing.T) {
	s := startIdP(t)
	b := s.NewBrowser("alice", "alice-pw")
	errs := make(chan error, 1)
	var opened string
	l := newLogin(t, s, login.Config{
		Audience: "",
		OpenBrowser: func(u string) error {
			opened = u
			go func() {
				page, err := b.Login(u)
				if err == nil && (page.Status != http.StatusOK || !strings.Contains(page.Body, "Logged in")) {
					err = errors.New("browser ended on " + page.URL.String() + ": " + page.Body)
				}
				errs <- err
			}()
			return nil
		},
	})
	tok, err := l.Browser(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(opened, "http://127.0.0.1:") {
		t.Errorf("opened %q, want the loopback server", opened)
	}
	// The browser went loopback → issuer authorize → login form → issuer
	// callback → loopback /callback.
	var sawCallback bool
	for _, u := range b.Visited {
		if strings.HasPrefix(u, "http://127.0.0.1:") && strings.Contains(u, login.CallbackPath+"?code=") {
			sawCallback = true
		}
	}
	if !sawCallback {
		t.Errorf("the browser never reached the loopback callback: %v", b.Visited)
	}
	if tok.Flow != login.FlowBrowser || tok.RefreshToken == "" || tok.Issuer != s.URL || tok.ClientID != login.DefaultClientID || tok.TokenURL == "" {
		t.Errorf("token = %+v", tok)
	}
	p := verify(t, s, tok.AccessToken)
	if p.Subject != "alice" || !p.Matches(auth.ClaimMatch{Claim: "groups", Value: "stoa:admin"}) {
		t.Errorf("principal %+v", p)
	}
}

func TestBrowserLoginPrintsURLWithoutBrowser(t *testing.T) {
	s := startIdP(t)
	out := newStderr()
	l := newLogin(t, s, login.Config{
		Stderr:      out,
		OpenBrowser: func(string) error { return errors.New("no display") },
	})
	errs := make(chan error, 1)
	go func() {
		_, err := s.NewBrowser("alice", "alice-pw").Login(out.nextURL(t))
		errs <- err
	}()
	tok, err := l.Browser(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Open this URL") || !strings.Contains(out.String(), "--device") {
		t.Errorf("stderr:\n%s", out)
	}
	verify(t, s, tok.AccessToken)
}

func TestBrowserLoginCancelled(t *testing.T) {
	s := startIdP(t)
	l := newLogin(t, s, login.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Browser(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled login: %v", err)
	}
}

func TestDeviceLogin(t *testing.T) {
	s := startIdP(t)
	out := newStderr()
	l := newLogin(t, s, login.Config{Stderr: out})
	errs := make(chan error, 1)
	go func() {
		// The person reads the first URL (verification URI) and the code
		// off the terminal.
		uri := out.nextURL(t)
		var code string
		for _, line := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(line); len(f) == 1 && strings.Count(f[0], "-") == 1 {
				code = f[0]
			}
		}
		page, err := s.NewBrowser("alice", "alice-pw").Device(uri, code, true)
		if err == nil && page.Status != http.StatusOK {
			err = errors.New("device approval: " + page.Body)
		}
		errs <- err
	}()
	tok, err := l.Device(testCtx(t))
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, out)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if tok.Flow != login.FlowDevice || tok.RefreshToken == "" {
		t.Errorf("token %+v", tok)
	}
	if p := verify(t, s, tok.AccessToken); p.Subject != "alice" {
		t.Errorf("subject %s", p.Subject)
	}
	if !strings.Contains(out.String(), "enter the code") {
		t.Errorf("stderr:\n%s", out)
	}
}

func TestDeviceLoginDenied(t *testing.T) {
	s := startIdP(t)
	out := newStderr()
	l := newLogin(t, s, login.Config{Stderr: out})
	go func() {
		out.nextURL(t) // the verification URI
		complete := out.nextURL(t)
		_, _ = s.NewBrowser("alice", "").Device(complete, "", false)
	}()
	if _, err := l.Device(testCtx(t)); !errors.Is(err, login.ErrLoginDenied) {
		t.Fatalf("denied device login: %v", err)
	}
}

func TestClientCredentialsLogin(t *testing.T) {
	s := startIdP(t)
	l := newLogin(t, s, login.Config{ClientID: "ci", ClientSecret: "ci-secret"})
	tok, err := l.ClientCredentials(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if p := verify(t, s, tok.AccessToken); p.Subject != "ci" || !p.Matches(auth.ClaimMatch{Claim: "groups", Value: "acme:editor"}) {
		t.Errorf("principal %+v", p)
	}
	if tok.Flow != login.FlowClientCredentials || tok.RefreshToken != "" {
		t.Errorf("token %+v", tok)
	}
	_, err = newLogin(t, s, login.Config{ClientID: "ci", ClientSecret: "wrong-secret-value"}).ClientCredentials(testCtx(t))
	if err == nil || !strings.Contains(err.Error(), "check the client id and secret") || strings.Contains(err.Error(), "wrong-secret-value") {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := newLogin(t, s, login.Config{ClientID: "ci"}).ClientCredentials(testCtx(t)); err == nil || !strings.Contains(err.Error(), "STOA_CLIENT_SECRET") {
		t.Fatalf("no secret: %v", err)
	}
}

func TestDiscover(t *testing.T) {
	s := startIdP(t)
	ep, err := login.Discover(testCtx(t), s.Client(), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if ep.TokenEndpoint == "" || ep.DeviceAuthorizationEndpoint == "" || ep.AuthorizationEndpoint == "" {
		t.Fatalf("endpoints %+v", ep)
	}
	// The document must name the issuer it was fetched for.
	lying := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"issuer":"https://elsewhere.example","token_endpoint":"https://elsewhere.example/token"}`))
	}))
	defer lying.Close()
	if _, err := login.Discover(testCtx(t), lying.Client(), lying.URL); err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Fatalf("mismatched issuer: %v", err)
	}
	for _, bad := range []string{"http://idp.example.com", "ftp://127.0.0.1", "not a url"} {
		if _, err := login.Discover(testCtx(t), nil, bad); err == nil {
			t.Errorf("Discover(%q) succeeded", bad)
		}
	}
	if _, err := login.Discover(testCtx(t), s.Client(), s.URL+"/nope"); err == nil {
		t.Error("a 404 discovery succeeded")
	}
}

// A self-signed dev issuer is reached through a pinned client; a wrong
// pin fails before anything is sent.
func TestPinnedIssuer(t *testing.T) {
	s := startIdP(t)
	pinned := tlspin.HTTPClient(s.Fingerprint, 10*time.Second)
	l := newLogin(t, s, login.Config{ClientID: "ci", ClientSecret: "ci-secret", HTTPClient: pinned})
	if _, err := l.ClientCredentials(testCtx(t)); err != nil {
		t.Fatalf("pinned login: %v", err)
	}
	wrong := s.Fingerprint
	wrong[31] ^= 0xff
	_, err := login.New(testCtx(t), login.Config{Issuer: s.URL, HTTPClient: tlspin.HTTPClient(wrong, 10*time.Second)})
	if !errors.Is(err, tlspin.ErrMismatch) {
		t.Fatalf("wrong pin: %v, want tlspin.ErrMismatch", err)
	}
	// And an unpinned default client refuses the self-signed certificate.
	if _, err := login.New(testCtx(t), login.Config{Issuer: s.URL, HTTPClient: &http.Client{}}); err == nil {
		t.Fatal("the self-signed issuer was trusted without a pin")
	}
}

func TestAutoApproveBrowserLogin(t *testing.T) {
	s := startIdP(t, func(c *devidp.Config) { c.AutoApprove = "alice" })
	l := newLogin(t, s, login.Config{OpenBrowser: func(u string) error {
		go func() { _, _ = s.NewBrowser("", "").Get(u) }()
		return nil
	}})
	tok, err := l.Browser(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	verify(t, s, tok.AccessToken)
}
