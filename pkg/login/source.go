package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// DefaultRefreshMargin is how long before expiry a token is renewed, so a
// request never leaves with a token that expires in flight.
const DefaultRefreshMargin = time.Minute

// SourceOptions configure a TokenSource.
type SourceOptions struct {
	// Store and Key persist renewed tokens (rotated refresh tokens must be
	// saved: the old one stops working). Nil Store keeps them in memory.
	Store *Store
	Key   string
	// HTTPClient talks to the token endpoint. Default http.DefaultClient.
	HTTPClient *http.Client
	// ClientSecret lets a client-credentials token be fetched anew when it
	// expires (such tokens have no refresh token).
	ClientSecret string
	// RefreshMargin defaults to DefaultRefreshMargin.
	RefreshMargin time.Duration
	// Now is the clock expiry is judged by. Default time.Now.
	Now func() time.Time
	// Stderr receives a warning when a renewed token could not be saved
	// (the request still proceeds). Default io.Discard.
	Stderr io.Writer
}

// TokenSource hands out a context's access token, renewing it shortly
// before it expires: with the refresh token (saving the rotated pair), or
// for client-credentials tokens with the client secret. It implements
// oauth2.TokenSource and is safe for concurrent use; concurrent callers
// share one renewal.
type TokenSource struct {
	ctx  context.Context
	opts SourceOptions
	mu   sync.Mutex
	tok  *Token
}

// NewTokenSource returns a source that starts from tok. ctx bounds renewal
// requests.
func NewTokenSource(ctx context.Context, tok *Token, opts SourceOptions) *TokenSource {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.RefreshMargin <= 0 {
		opts.RefreshMargin = DefaultRefreshMargin
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	c := *tok
	return &TokenSource{ctx: ctx, opts: opts, tok: &c}
}

// LoadTokenSource loads key's token from store and returns a source for
// it. It fails with ErrNotLoggedIn when nothing is stored, and with
// ErrNotLoggedIn too when the stored token belongs to another issuer,
// client or audience than the context now names.
func LoadTokenSource(ctx context.Context, store *Store, key, issuer, clientID, audience string, opts SourceOptions) (*TokenSource, error) {
	tok, _, err := store.Load(key)
	if err != nil {
		return nil, err
	}
	if clientID == "" {
		clientID = DefaultClientID
	}
	if !tok.Matches(issuer, clientID, audience) {
		return nil, fmt.Errorf("%w to context %q with its current settings: the stored token is for issuer %s, client %s (%s)", ErrNotLoggedIn, key, tok.Issuer, tok.ClientID, hintLogin)
	}
	opts.Store, opts.Key = store, key
	return NewTokenSource(ctx, tok, opts), nil
}

// Current returns a copy of the token the source holds now.
func (s *TokenSource) Current() Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.tok
}

// Token returns a valid access token, renewing it first when it expires
// within the margin.
func (s *TokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if s.tok.Expiry.IsZero() || now.Add(s.opts.RefreshMargin).Before(s.tok.Expiry) {
		return s.tok.OAuth2(), nil
	}
	next, err := s.renew()
	if err != nil {
		// A token that is still valid is better than none when the issuer
		// is unreachable; an expired one is not.
		if now.Before(s.tok.Expiry) && !errors.Is(err, ErrSessionExpired) {
			return s.tok.OAuth2(), nil
		}
		return nil, err
	}
	s.tok = next
	if s.opts.Store != nil {
		if _, err := s.opts.Store.Save(s.opts.Key, next); err != nil {
			fmt.Fprintf(s.opts.Stderr, "warning: renewed the token but could not save it: %v\n", err)
		}
	}
	return s.tok.OAuth2(), nil
}

func (s *TokenSource) renew() (*Token, error) {
	ctx := context.WithValue(s.ctx, oauth2.HTTPClient, s.opts.HTTPClient)
	old := s.tok
	var (
		t   *oauth2.Token
		err error
	)
	switch {
	case old.RefreshToken != "":
		oc := &oauth2.Config{ClientID: old.ClientID, Endpoint: oauth2.Endpoint{TokenURL: old.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
		if s.opts.ClientSecret != "" {
			oc.ClientSecret = s.opts.ClientSecret
			oc.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		}
		// An empty access token makes oauth2 refresh at once instead of
		// judging expiry by its own clock.
		t, err = oc.TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	case old.Flow == FlowClientCredentials && s.opts.ClientSecret != "":
		t, err = clientCredentialsConfig(old.ClientID, s.opts.ClientSecret, old.TokenURL, nil, old.Audience).Token(ctx)
	default:
		return nil, fmt.Errorf("%w for context %q: the access token expires at %s and there is no refresh token (%s)", ErrSessionExpired, s.opts.Key, old.Expiry.Format(time.RFC3339), hintLogin)
	}
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client") {
			return nil, fmt.Errorf("%w for context %q: the issuer refused to renew the token (%s) (%s)", ErrSessionExpired, s.opts.Key, re.ErrorCode, hintLogin)
		}
		return nil, fmt.Errorf("renew token for context %q: %w", s.opts.Key, err)
	}
	next := *old
	next.AccessToken, next.TokenType, next.Expiry = t.AccessToken, t.TokenType, onClock(t.Expiry, s.opts.Now)
	if t.RefreshToken != "" {
		next.RefreshToken = t.RefreshToken // rotated
	}
	return &next, nil
}

// StaticTokenSource serves a fixed token (STOA_TOKEN) without renewing
// or storing it.
func StaticTokenSource(token string) oauth2.TokenSource {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "Bearer"})
}

// onClock restates an expiry that oauth2 computed from expires_in and the
// wall clock on the given clock, so a token renewed under an injected
// clock is fresh by that clock too.
func onClock(expiry time.Time, now func() time.Time) time.Time {
	if expiry.IsZero() {
		return expiry
	}
	return now().Add(time.Until(expiry)).Round(time.Second)
}
