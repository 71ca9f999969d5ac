package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/int128/oauth2cli"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// DefaultClientID is the public client stoa logs in with.
const DefaultClientID = "stoa-cli"

// CallbackPath is the path of the loopback redirect URI
// (http://127.0.0.1:<port>/callback); register it with the issuer.
const CallbackPath = "/callback"

// Config describes one issuer and client.
type Config struct {
	// Issuer is the OpenID Connect issuer URL, exactly as it names itself.
	Issuer string
	// ClientID defaults to DefaultClientID.
	ClientID string
	// ClientSecret is the confidential client's secret for
	// ClientCredentials (never stored).
	ClientSecret string
	// Audience, when set, is sent as the "audience" parameter (Auth0 and
	// others pick the access token's aud from it) and recorded with the
	// token.
	Audience string
	// Scopes default to "openid offline_access" for the user flows (so a
	// refresh token is issued) and to none for client credentials.
	Scopes []string
	// HTTPClient talks to the issuer; use tlspin.HTTPClient for a
	// self-signed issuer. Default http.DefaultClient.
	HTTPClient *http.Client
	// Stderr receives instructions (URLs, codes). Default io.Discard.
	Stderr io.Writer
	// OpenBrowser opens a URL in the user's browser (SystemBrowser does);
	// nil or an error means the URL is printed for the user to open.
	OpenBrowser func(url string) error
	// BindAddress is where the loopback server listens. Default
	// 127.0.0.1:0 (a free port).
	BindAddress []string
	// Now is the clock tokens are stamped with. Default time.Now.
	Now func() time.Time
}

// Login runs login flows against one issuer.
type Login struct {
	cfg Config
	ep  *Endpoints
}

// New checks cfg and discovers the issuer's endpoints.
func New(ctx context.Context, cfg Config) (*Login, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("log in: no issuer (set the context's issuer)")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if len(cfg.BindAddress) == 0 {
		cfg.BindAddress = []string{"127.0.0.1:0"}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ep, err := Discover(ctx, cfg.HTTPClient, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("log in: %w", err)
	}
	return &Login{cfg: cfg, ep: ep}, nil
}

// Endpoints returns the discovered endpoints.
func (l *Login) Endpoints() Endpoints { return *l.ep }

func (l *Login) userScopes() []string {
	if len(l.cfg.Scopes) > 0 {
		return slices.Clone(l.cfg.Scopes)
	}
	return []string{"openid", "offline_access"}
}

func (l *Login) oauth2Config() *oauth2.Config {
	return &oauth2.Config{
		ClientID: l.cfg.ClientID,
		Scopes:   l.userScopes(),
		Endpoint: oauth2.Endpoint{
			AuthURL:       l.ep.AuthorizationEndpoint,
			TokenURL:      l.ep.TokenEndpoint,
			DeviceAuthURL: l.ep.DeviceAuthorizationEndpoint,
			// A public client authenticates with its client_id in the
			// body; auto-detection would first send an empty Basic
			// password.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

func (l *Login) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, l.cfg.HTTPClient)
}

func (l *Login) audienceOpts() []oauth2.AuthCodeOption {
	if l.cfg.Audience == "" {
		return nil
	}
	return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("audience", l.cfg.Audience)}
}

func (l *Login) token(t *oauth2.Token, flow Flow) (*Token, error) {
	if t.AccessToken == "" {
		return nil, errors.New("the issuer returned no access token")
	}
	return &Token{
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: onClock(t.Expiry, l.cfg.Now),
		Issuer: l.cfg.Issuer, ClientID: l.cfg.ClientID, Audience: l.cfg.Audience,
		TokenURL: l.ep.TokenEndpoint, Flow: flow,
	}, nil
}

const successHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stoa: logged in</title></head>
<body style="font-family:sans-serif;margin:3em"><h1>Logged in</h1>
<p>stoa has its token. You can close this window and return to the terminal.</p></body></html>`

// Browser runs the authorization code flow with PKCE: it starts a
// loopback server, opens (or prints) its URL, which redirects to the
// issuer's login, and exchanges the code that comes back.
func (l *Login) Browser(ctx context.Context) (*Token, error) {
	if l.ep.AuthorizationEndpoint == "" {
		return nil, fmt.Errorf("log in: issuer %s has no authorization endpoint; try: stoa login --device", l.cfg.Issuer)
	}
	if len(l.ep.CodeChallengeMethods) > 0 && !slices.Contains(l.ep.CodeChallengeMethods, "S256") {
		return nil, fmt.Errorf("log in: issuer %s does not support PKCE with S256, which stoa requires", l.cfg.Issuer)
	}
	verifier := oauth2.GenerateVerifier()
	ready := make(chan string, 1)
	cfg := oauth2cli.Config{
		OAuth2Config:            *l.oauth2Config(),
		AuthCodeOptions:         append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, l.audienceOpts()...),
		TokenRequestOptions:     []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)},
		RedirectURLHostname:     "127.0.0.1", // RFC 8252 §7.3: the IP literal, not "localhost"
		LocalServerBindAddress:  l.cfg.BindAddress,
		LocalServerCallbackPath: CallbackPath,
		LocalServerSuccessHTML:  successHTML,
		LocalServerReadyChan:    ready,
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case u := <-ready:
			l.showURL(u)
		case <-ctx.Done():
		}
	}()
	t, err := oauth2cli.GetToken(l.ctx(ctx), cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("log in: %w", context.Cause(ctx))
		}
		if strings.Contains(err.Error(), "access_denied") {
			return nil, fmt.Errorf("log in: %w in the browser: %w", ErrLoginDenied, err)
		}
		return nil, fmt.Errorf("log in: %w", err)
	}
	tok, err := l.token(t, FlowBrowser)
	if err != nil {
		return nil, fmt.Errorf("log in: %w", err)
	}
	return tok, nil
}

func (l *Login) showURL(u string) {
	if l.cfg.OpenBrowser != nil {
		if err := l.cfg.OpenBrowser(u); err == nil {
			fmt.Fprintf(l.cfg.Stderr, "Opened a browser to log in. If it did not open, visit:\n  %s\n", u)
			return
		}
	}
	fmt.Fprintf(l.cfg.Stderr, "Open this URL in a browser on this machine to log in:\n  %s\n(no browser here? use: stoa login --device)\n", u)
}

// Device runs the device authorization grant: it prints where to go and
// the code to enter, then polls until the user approves, denies or the
// code expires.
func (l *Login) Device(ctx context.Context) (*Token, error) {
	if l.ep.DeviceAuthorizationEndpoint == "" {
		return nil, fmt.Errorf("log in: issuer %s does not support the device flow (no device_authorization_endpoint); log in without --device", l.cfg.Issuer)
	}
	oc := l.oauth2Config()
	da, err := oc.DeviceAuth(l.ctx(ctx), l.audienceOpts()...)
	if err != nil {
		return nil, fmt.Errorf("log in: start device authorization: %w", err)
	}
	fmt.Fprintf(l.cfg.Stderr, "To log in, open %s in a browser on any device and enter the code:\n  %s\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(l.cfg.Stderr, "(or open %s)\n", da.VerificationURIComplete)
	}
	fmt.Fprintln(l.cfg.Stderr, "Waiting for approval…")
	t, err := oc.DeviceAccessToken(l.ctx(ctx), da)
	if err != nil {
		var re *oauth2.RetrieveError
		switch {
		case errors.As(err, &re) && re.ErrorCode == "access_denied":
			return nil, fmt.Errorf("log in: %w: the code was denied", ErrLoginDenied)
		case errors.As(err, &re) && re.ErrorCode == "expired_token",
			errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return nil, errors.New("log in: the code expired before it was approved; run `stoa login --device` again")
		}
		return nil, fmt.Errorf("log in: %w", err)
	}
	tok, err := l.token(t, FlowDevice)
	if err != nil {
		return nil, fmt.Errorf("log in: %w", err)
	}
	return tok, nil
}

// ClientCredentials gets a token with the confidential client's id and
// secret. No refresh token comes with it: a TokenSource given the secret
// fetches a new one when it expires.
func (l *Login) ClientCredentials(ctx context.Context) (*Token, error) {
	if l.cfg.ClientSecret == "" {
		return nil, errors.New("log in: client credentials need a client secret (set STOA_CLIENT_SECRET)")
	}
	t, err := l.clientCredentialsConfig().Token(l.ctx(ctx))
	if err != nil {
		return nil, fmt.Errorf("log in with client credentials: %w", describeTokenError(err))
	}
	tok, err := l.token(t, FlowClientCredentials)
	if err != nil {
		return nil, fmt.Errorf("log in with client credentials: %w", err)
	}
	return tok, nil
}

func (l *Login) clientCredentialsConfig() *clientcredentials.Config {
	return clientCredentialsConfig(l.cfg.ClientID, l.cfg.ClientSecret, l.ep.TokenEndpoint, l.cfg.Scopes, l.cfg.Audience)
}

func clientCredentialsConfig(id, secret, tokenURL string, scopes []string, audience string) *clientcredentials.Config {
	c := &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: tokenURL, Scopes: scopes}
	if audience != "" {
		c.EndpointParams = map[string][]string{"audience": {audience}}
	}
	return c
}

// describeTokenError turns an OAuth error response into a sentence that
// names the error code, never the request (which may hold a secret).
func describeTokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	msg := re.ErrorCode
	if re.ErrorDescription != "" {
		msg += ": " + re.ErrorDescription
	}
	if msg == "" {
		msg = re.Response.Status
	}
	switch re.ErrorCode {
	case "invalid_client", "unauthorized_client":
		msg += " (check the client id and secret)"
	}
	return fmt.Errorf("the issuer refused: %s", msg)
}
