package devidp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/devidp/devidptest"
	"golang.org/x/oauth2"
)

const testAudience = "https://control-plane.test"

// clock is a settable clock for the provider.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func baseConfig() devidp.Config {
	return devidp.Config{
		Audience: testAudience,
		Users: []devidp.User{
			{Username: "alice", Password: "alice-pw", Groups: []string{"stoa:admin", "acme:editor"}, Email: "alice@example.test", Name: "Alice"},
			{Username: "bob", Password: "bob-pw", Groups: []string{"acme:viewer"}},
		},
		Clients: []devidp.Client{
			{ID: devidp.DefaultClientID},
			{ID: "ci", Secret: "ci-secret", Groups: []string{"acme:editor"}},
		},
		DevicePollInterval: time.Second,
	}
}

// verifier checks tokens the way the control plane will: pkg/auth's
// resolver with the issuer's JWKS fetched through discovery.
func verifier(t *testing.T, s *devidptest.Server) *auth.Resolver {
	t.Helper()
	r, err := auth.NewResolver(auth.ResolverConfig{
		Identities: []auth.Identity{{Tenant: "acme", Issuer: s.URL, Audiences: []string{testAudience}}},
		KeySets:    auth.NewKeySets(auth.KeySetOptions{HTTPClient: s.Client()}),
		CacheTTL:   -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// loopback is a native app's redirect listener on 127.0.0.1.
type loopback struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []url.Values
}

func newLoopback(t *testing.T) *loopback {
	l := &loopback{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.got = append(l.got, r.URL.Query())
		l.mu.Unlock()
		_, _ = w.Write([]byte("Authorized"))
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *loopback) last(t *testing.T) url.Values {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) == 0 {
		t.Fatal("the loopback redirect was never called")
	}
	return l.got[len(l.got)-1]
}

func oauthConfig(s *devidptest.Server, redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:    devidp.DefaultClientID,
		RedirectURL: redirect,
		Scopes:      []string{"openid", "profile", "offline_access"},
		Endpoint: oauth2.Endpoint{
			AuthURL:       s.URL + "/authorize",
			TokenURL:      s.URL + "/oauth/token",
			DeviceAuthURL: s.URL + "/device_authorization",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
}

func clientCtx(s *devidptest.Server) context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, s.Client())
}

// codeFlow runs the authorization code flow with PKCE for the browser's
// user and returns the token response.
func codeFlow(t *testing.T, s *devidptest.Server, b *devidptest.Browser) *oauth2.Token {
	t.Helper()
	lb := newLoopback(t)
	cfg := oauthConfig(s, lb.srv.URL+"/callback")
	verifier := oauth2.GenerateVerifier()
	u := cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier))
	page, err := b.Login(u)
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusOK || page.URL.Host != lb.srv.Listener.Addr().String() {
		t.Fatalf("login ended on %s (%d), not the loopback redirect:\n%s", page.URL, page.Status, page.Body)
	}
	q := lb.last(t)
	if q.Get("state") != "st4te" || q.Get("code") == "" {
		t.Fatalf("callback query %v: want the state back and a code", q)
	}
	tok, err := cfg.Exchange(clientCtx(s), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange code: %v", err)
	}
	return tok
}

type browserT devidptest.Browser
