package login_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/login"
	"golang.org/x/oauth2"
)

func TestTokenSourceRefreshesBeforeExpiry(t *testing.T) {
	s := startIdP(t)
	l := newLogin(t, s, login.Config{OpenBrowser: func(u string) error {
		go func() { _, _ = s.NewBrowser("alice", "alice-pw").Login(u) }()
		return nil
	}})
	tok, err := l.Browser(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	st := &login.Store{Dir: t.TempDir()}
	if _, err := st.Save("dev", tok); err != nil {
		t.Fatal(err)
	}
	client, count := countingClient(s)
	now := tok.Expiry.Add(-5 * time.Minute)
	ts, err := login.LoadTokenSource(context.Background(), st, "dev", s.URL, "", "", login.SourceOptions{
		HTTPClient: client, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	// Well before expiry: the stored token, no request.
	got, err := ts.Token()
	if err != nil || got.AccessToken != tok.AccessToken || count.tokens.Load() != 0 {
		t.Fatalf("early Token: %v, %d token requests", err, count.tokens.Load())
	}
	// Within the margin: concurrent callers share one renewal, and the
	// rotated refresh token is saved.
	now = tok.Expiry.Add(-30 * time.Second)
	toks := make(chan *oauth2.Token, 8)
	for range 8 {
		go func() {
			got, err := ts.Token()
			if err != nil {
				t.Error(err)
			}
			toks <- got
		}()
	}
	for range 8 {
		if g := <-toks; g != nil && got.AccessToken == tok.AccessToken {
			got = g
		} else if g != nil && g.AccessToken != got.AccessToken {
			t.Fatal("concurrent callers got different tokens")
		}
	}
	if got.AccessToken == tok.AccessToken || count.tokens.Load() != 1 {
		t.Fatalf("not renewed: %d token requests", count.tokens.Load())
	}
	verify(t, s, got.AccessToken)
	saved, _, err := st.Load("dev")
	if err != nil || saved.AccessToken != got.AccessToken || saved.RefreshToken == tok.RefreshToken || saved.RefreshToken == "" {
		t.Fatalf("the renewed token was not saved with its rotated refresh token: %+v %v", saved, err)
	}
	// The renewed token is fresh by the same clock: concurrent callers
	// get it without another request.
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			got2, err := ts.Token()
			if err == nil && got2.AccessToken != got.AccessToken {
				err = errors.New("another token")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := count.tokens.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	// A new process starting from the store renews from the rotated token.
	now = saved.Expiry.Add(time.Second)
	ts2, err := login.LoadTokenSource(context.Background(), st, "dev", s.URL, login.DefaultClientID, "", login.SourceOptions{
		HTTPClient: client, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts2.Token(); err != nil {
		t.Fatalf("renew from the saved token: %v", err)
	}
}

func TestTokenSourceSessionExpired(t *testing.T) {
	s := startIdP(t)
	l := newLogin(t, s, login.Config{OpenBrowser: func(u string) error {
		go func() { _, _ = s.NewBrowser("alice", "alice-pw").Login(u) }()
		return nil
	}})
	tok, err := l.Browser(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	// Someone used the refresh token (say, another copy of the store): the
	// issuer revokes the family on the replay below, and the source says
	// to log in again.
	oc := &oauth2.Config{ClientID: tok.ClientID, Endpoint: oauth2.Endpoint{TokenURL: tok.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.Client())
	if _, err := oc.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatal(err)
	}
	after := tok.Expiry.Add(time.Second)
	ts := login.NewTokenSource(context.Background(), tok, login.SourceOptions{Key: "dev", HTTPClient: s.Client(), Now: func() time.Time { return after }})
	_, err = ts.Token()
	if !errors.Is(err, login.ErrSessionExpired) || !strings.Contains(err.Error(), "stoa login") {
		t.Fatalf("refused refresh: %v", err)
	}
	// Without a refresh token an expired token cannot be renewed either.
	bare := *tok
	bare.RefreshToken = ""
	ts = login.NewTokenSource(context.Background(), &bare, login.SourceOptions{Key: "dev", Now: func() time.Time { return after }})
	if _, err := ts.Token(); !errors.Is(err, login.ErrSessionExpired) {
		t.Fatalf("no refresh token: %v", err)
	}
	// An unreachable issuer while the token is still valid (inside the
	// margin) keeps the current token.
	almost := tok.Expiry.Add(-10 * time.Second)
	down := *tok
	down.TokenURL = "https://127.0.0.1:1/oauth/token"
	ts = login.NewTokenSource(context.Background(), &down, login.SourceOptions{Now: func() time.Time { return almost }})
	if got, err := ts.Token(); err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("issuer down, token still valid: %v", err)
	}
}

func TestTokenSourceClientCredentials(t *testing.T) {
	s := startIdP(t)
	tok, err := newLogin(t, s, login.Config{ClientID: "ci", ClientSecret: "ci-secret"}).ClientCredentials(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	after := tok.Expiry.Add(time.Second)
	ts := login.NewTokenSource(context.Background(), tok, login.SourceOptions{HTTPClient: s.Client(), ClientSecret: "ci-secret", Now: func() time.Time { return after }})
	got, err := ts.Token()
	if err != nil || got.AccessToken == tok.AccessToken {
		t.Fatalf("renew with the secret: %v", err)
	}
	verify(t, s, got.AccessToken)
	ts = login.NewTokenSource(context.Background(), tok, login.SourceOptions{HTTPClient: s.Client(), Now: func() time.Time { return after }})
	if _, err := ts.Token(); !errors.Is(err, login.ErrSessionExpired) {
		t.Fatalf("renew without the secret: %v", err)
	}
}

func TestLoadTokenSourceChecksContext(t *testing.T) {
	st := &login.Store{Dir: t.TempDir()}
	if _, err := login.LoadTokenSource(context.Background(), st, "none", "https://x", "", "", login.SourceOptions{}); !errors.Is(err, login.ErrNotLoggedIn) {
		t.Fatalf("nothing stored: %v", err)
	}
	tok := sampleToken("a")
	if _, err := st.Save("c", tok); err != nil {
		t.Fatal(err)
	}
	if _, err := login.LoadTokenSource(context.Background(), st, "c", "https://other-issuer", "", "", login.SourceOptions{}); !errors.Is(err, login.ErrNotLoggedIn) {
		t.Fatalf("issuer changed: %v", err)
	}
	if _, err := login.LoadTokenSource(context.Background(), st, "c", tok.Issuer, "", "", login.SourceOptions{}); err != nil {
		t.Fatalf("matching settings: %v", err)
	}
}

func TestStaticTokenSource(t *testing.T) {
	got, err := login.StaticTokenSource("abc").Token()
	if err != nil || got.AccessToken != "abc" || got.Type() != "Bearer" {
		t.Fatalf("%+v %v", got, err)
	}
}
