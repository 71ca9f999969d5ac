package login_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/devidp/devidptest"
	"github.com/stoa-gateway/stoa/pkg/login"
)

const audience = "https://control-plane.test"

func startIdP(t *testing.T, edit ...func(*devidp.Config)) *devidptest.Server {
	t.Helper()
	cfg := devidp.Config{
		Audience: audience,
		Users: []devidp.User{
			{Username: "alice", Password: "alice-pw", Groups: []string{"stoa:admin"}},
		},
		Clients: []devidp.Client{
			{ID: devidp.DefaultClientID},
			{ID: "ci", Secret: "ci-secret", Groups: []string{"acme:editor"}},
		},
		DevicePollInterval: time.Second,
	}
	for _, e := range edit {
		e(&cfg)
	}
	return devidptest.Start(t, cfg)
}

// counting wraps a client and counts requests to the token endpoint.
type counting struct {
	base   http.RoundTripper
	tokens atomic.Int64
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/oauth/token") {
		c.tokens.Add(1)
	}
	return c.base.RoundTrip(r)
}

func countingClient(s *devidptest.Server) (*http.Client, *counting) {
	c := &counting{base: s.Client().Transport}
	return &http.Client{Transport: c}, c
}

// stderr is a test's stderr: it records what was written and hands each
// URL it sees to a channel, the way a person reads a URL off the terminal.
type stderr struct {
	mu   sync.Mutex
	b    strings.Builder
	urls chan string
}

func newStderr() *stderr { return &stderr{urls: make(chan string, 8)} }

var urlRE = regexp.MustCompile(`https?://[^\s)]+`)

func (s *stderr) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	for _, u := range urlRE.FindAllString(string(p), -1) {
		select {
		case s.urls <- u:
		default:
		}
	}
	return len(p), nil
}

func (s *stderr) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *stderr) nextURL(t *testing.T) string {
	t.Helper()
	select {
	case u := <-s.urls:
		return u
	case <-time.After(30 * time.Second):
		// Errorf, not Fatalf: this runs on the goroutine playing the user.
		t.Errorf("no URL was printed; stderr:\n%s", s.String())
		return ""
	}
}

// verify checks an access token the way the control plane will.
func verify(t *testing.T, s *devidptest.Server, token string) *auth.Principal {
	t.Helper()
	r, err := auth.NewResolver(auth.ResolverConfig{
		Identities: []auth.Identity{{Tenant: "acme", Issuer: s.URL, Audiences: []string{audience}}},
		KeySets:    auth.NewKeySets(auth.KeySetOptions{HTTPClient: s.Client()}),
		CacheTTL:   -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Authenticate(context.Background(), []byte(token), time.Now())
	if err != nil {
		t.Fatalf("pkg/auth refused the access token: %v", err)
	}
	return p
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newLogin(t *testing.T, s *devidptest.Server, cfg login.Config) *login.Login {
	t.Helper()
	cfg.Issuer = s.URL
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = s.Client()
	}
	l, err := login.New(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
