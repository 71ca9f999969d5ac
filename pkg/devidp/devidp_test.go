package devidp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/devidp/devidptest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestConfigValidation(t *testing.T) {
	ok := baseConfig()
	ok.Issuer = "https://127.0.0.1:8443"
	tests := []struct {
		name string
		edit func(*devidp.Config)
		want string // substring of the error; "" means valid
	}{
		{"valid", func(*devidp.Config) {}, ""},
		{"http loopback", func(c *devidp.Config) { c.Issuer = "http://127.0.0.1:5556" }, ""},
		{"localhost", func(c *devidp.Config) { c.Issuer = "https://localhost:8443/dev" }, ""},
		{"ipv6 loopback", func(c *devidp.Config) { c.Issuer = "https://[::1]:8443" }, ""},
		{"non-loopback", func(c *devidp.Config) { c.Issuer = "https://idp.example.com" }, "not a loopback address"},
		{"private address", func(c *devidp.Config) { c.Issuer = "https://10.0.0.1" }, "not a loopback address"},
		{"unsafe override", func(c *devidp.Config) { c.Issuer = "https://idp.example.com"; c.UnsafeAllowNonLoopback = true }, ""},
		{"http off loopback even when unsafe", func(c *devidp.Config) { c.Issuer = "http://idp.example.com"; c.UnsafeAllowNonLoopback = true }, "plain http"},
		{"no issuer", func(c *devidp.Config) { c.Issuer = "" }, "not a URL"},
		{"ftp issuer", func(c *devidp.Config) { c.Issuer = "ftp://127.0.0.1" }, "https://"},
		{"query in issuer", func(c *devidp.Config) { c.Issuer = "https://127.0.0.1?a=b" }, "without credentials, query or fragment"},
		{"trailing slash", func(c *devidp.Config) { c.Issuer = "https://127.0.0.1/" }, "trailing slash"},
		{"no audience", func(c *devidp.Config) { c.Audience = "" }, "no audience"},
		{"no users", func(c *devidp.Config) { c.Users = nil }, "no users"},
		{"bad username", func(c *devidp.Config) { c.Users = []devidp.User{{Username: "a b"}} }, "username"},
		{"duplicate user", func(c *devidp.Config) { c.Users = append(c.Users, devidp.User{Username: "alice"}) }, "listed twice"},
		{"auto-approve unknown", func(c *devidp.Config) { c.AutoApprove = "carol" }, "not among the users"},
		{"duplicate client", func(c *devidp.Config) { c.Clients = append(c.Clients, devidp.Client{ID: "ci"}) }, "listed twice"},
		{"public client off loopback", func(c *devidp.Config) {
			c.Clients = []devidp.Client{{ID: "x", RedirectURIs: []string{"https://app.example.com/cb"}}}
		}, "not a loopback URL"},
		{"public client with groups", func(c *devidp.Config) { c.Clients = []devidp.Client{{ID: "x", Groups: []string{"g"}}} }, "only confidential clients"},
		{"bad redirect", func(c *devidp.Config) {
			c.Clients = []devidp.Client{{ID: "x", Secret: "s", RedirectURIs: []string{"/cb"}}}
		}, "absolute http(s) URL"},
		{"negative ttl", func(c *devidp.Config) { c.AccessTokenTTL = -time.Second }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Users = slices.Clone(ok.Users)
			c.Clients = slices.Clone(ok.Clients)
			tt.edit(&c)
			_, err := devidp.New(c)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("New: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckListenAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:5556": true, "[::1]:5556": true, "localhost:5556": true, "127.1.2.3:0": true,
		":5556": false, "0.0.0.0:5556": false, "[::]:5556": false, "192.168.1.10:5556": false,
		"idp.example.com:443": false, "127.0.0.1": false,
	} {
		err := devidp.CheckListenAddr(addr, false)
		if (err == nil) != ok {
			t.Errorf("CheckListenAddr(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
	if err := devidp.CheckListenAddr("0.0.0.0:5556", true); err != nil {
		t.Errorf("unsafe override refused: %v", err)
	}
	if ln, err := devidp.Listen("0.0.0.0:0", false); err == nil {
		ln.Close()
		t.Fatal("Listen on every interface succeeded without the unsafe override")
	}
	ln, err := devidp.Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func TestDiscovery(t *testing.T) {
	s := devidptest.Start(t, baseConfig())
	resp, err := s.Client().Get(s.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Issuer        string   `json:"issuer"`
		Auth          string   `json:"authorization_endpoint"`
		Token         string   `json:"token_endpoint"`
		Device        string   `json:"device_authorization_endpoint"`
		JWKS          string   `json:"jwks_uri"`
		Grants        []string `json:"grant_types_supported"`
		PKCE          []string `json:"code_challenge_methods_supported"`
		SigningAlgs   []string `json:"id_token_signing_alg_values_supported"`
		ScopesOffered []string `json:"scopes_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != s.URL || !strings.HasPrefix(d.Auth, s.URL) || !strings.HasPrefix(d.Token, s.URL) ||
		!strings.HasPrefix(d.Device, s.URL) || !strings.HasPrefix(d.JWKS, s.URL) {
		t.Fatalf("discovery endpoints not under the issuer: %+v", d)
	}
	for _, g := range []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"} {
		if !slices.Contains(d.Grants, g) {
			t.Errorf("grant %s not advertised: %v", g, d.Grants)
		}
	}
	if !slices.Contains(d.PKCE, "S256") {
		t.Errorf("S256 not advertised: %v", d.PKCE)
	}
	if !slices.Contains(d.ScopesOffered, "groups") {
		t.Errorf("groups scope not advertised: %v", d.ScopesOffered)
	}
}

func TestAuthorizationCodePKCE(t *testing.T) {
	s := devidptest.Start(t, baseConfig())
	b := s.NewBrowser("alice", "alice-pw")
	tok := codeFlow(t, s, b)
	if tok.RefreshToken == "" {
		t.Error("no refresh token despite offline_access")
	}
	if id, _ := tok.Extra("id_token").(string); id == "" {
		t.Error("no id_token")
	}
	p, err := verifier(t, s).Authenticate(context.Background(), []byte(tok.AccessToken), time.Now())
	if err != nil {
		t.Fatalf("pkg/auth refused the access token: %v", err)
	}
	if p.Subject != "alice" || p.Tenant != "acme" || p.ClientID != devidp.DefaultClientID {
		t.Errorf("principal = %+v", p)
	}
	for _, g := range []string{"stoa:admin", "acme:editor"} {
		if !p.Matches(auth.ClaimMatch{Claim: "groups", Value: g}) {
			t.Errorf("groups claim lacks %s", g)
		}
	}
	if p.Matches(auth.ClaimMatch{Claim: "groups", Value: "acme:viewer"}) {
		t.Error("alice got bob's group")
	}
	if !p.HasAudience([]string{testAudience}) {
		t.Errorf("aud = %v", p.Audiences)
	}
	if got := p.ExpiresAt.Sub(time.Now()); got <= 0 || got > 16*time.Minute {
		t.Errorf("access token expires in %v, want the 15m default", got)
	}
}

// A native app picks its loopback port and host at run time (RFC 8252
// §7.3); any of them is accepted as long as the path is registered.
func TestLoopbackRedirectAnyPort(t *testing.T) {
	s := devidptest.Start(t, baseConfig())
	noFollow := *s.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	try := func(redirect string) (int, string) {
		cfg := oauthConfig(s, redirect)
		u := cfg.AuthCodeURL("x", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	for _, r := range []string{"http://127.0.0.1:1234/callback", "http://localhost:50000/callback", "http://[::1]:8080/callback", "http://127.0.0.1:9/callback"} {
		if code, loc := try(r); code != http.StatusFound || !strings.HasPrefix(loc, s.URL+devidp.LoginPath) {
			t.Errorf("redirect %s: got %d to %q, want the login page", r, code, loc)
		}
	}
	for _, r := range []string{"http://127.0.0.1:1234/other", "https://evil.example/callback", "http://evil.example:1234/callback", "http://127.0.0.1.evil.example/callback"} {
		if code, loc := try(r); code == http.StatusFound && strings.HasPrefix(loc, s.URL+devidp.LoginPath) {
			t.Errorf("redirect %s accepted", r)
		} else if strings.HasPrefix(loc, r) {
			t.Errorf("redirect %s: the error was sent to the unregistered redirect", r)
		}
	}
}

func TestPKCERequired(t *testing.T) {
	s := devidptest.Start(t, baseConfig())
	noFollow := *s.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg := oauthConfig(s, "http://127.0.0.1:1234/callback")
	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"no challenge": nil,
		"plain":        {oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")},
	} {
		resp, err := noFollow.Get(cfg.AuthCodeURL("x", opts...))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("%s: got %d to %q, want an invalid_request error redirect", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	// A wrong verifier, and a second use of the same code, are refused.
	lb := newLoopback(t)
	cfg = oauthConfig(s, lb.srv.URL+"/callback")
	v := oauth2.GenerateVerifier()
	if _, err := s.NewBrowser("bob", "bob-pw").Login(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v))); err != nil {
		t.Fatal(err)
	}
	code := lb.last(t).Get("code")
	if _, err := cfg.Exchange(clientCtx(s), code, oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("wrong verifier: %v, want invalid_grant", err)
	}
	if _, err := cfg.Exchange(clientCtx(s), code, oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("right verifier: %v", err)
	}
	if _, err := cfg.Exchange(clientCtx(s), code, oauth2.VerifierOption(v)); err == nil {
		t.Fatal("a code was exchanged twice")
	}
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func TestLoginForm(t *testing.T) {
	s := devidptest.Start(t, baseConfig())
	lb := newLoopback(t)
	cfg := oauthConfig(s, lb.srv.URL+"/callback")
	v := oauth2.GenerateVerifier()
	b := s.NewBrowser("alice", "wrong")
	page, err := b.Login(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusUnauthorized || !strings.Contains(page.Body, "wrong password") || !strings.Contains(page.Body, devidp.Label) {
		t.Fatalf("wrong password: %d\n%s", page.Status, page.Body)
	}
	// The same request can still be completed with the right password.
	form := page.FormValues()
	form.Set("password", "alice-pw")
	page, err = b.Post(s.URL+devidp.LoginPath, form)
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusOK || lb.last(t).Get("code") == "" {
		t.Fatalf("retry: %d %s", page.Status, page.URL)
	}
	// A password-less user (only for auto-approve) cannot log in with the form.
	cfg2 := baseConfig()
	cfg2.Users = append(cfg2.Users, devidp.User{Username: "nopw"})
	s2 := devidptest.Start(t, cfg2)
	page, err = s2.NewBrowser("nopw", "").Login(oauthConfig(s2, lb.srv.URL+"/callback").AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusUnauthorized {
		t.Fatalf("password-less user logged in: %d", page.Status)
	}
}

func TestEveryPageIsLabelled(t *testing.T) {
	s := devidptest.Start(t, baseConfig())
	b := s.NewBrowser("alice", "alice-pw")
	cfg := oauthConfig(s, "http://127.0.0.1:1/callback")
	pages := map[string]string{
		"login form":      cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())),
		"unknown request": s.URL + devidp.LoginPath + "?id=nope",
		"device form":     s.URL + devidp.DevicePath,
		"bad user code":   s.URL + devidp.DevicePath + "?user_code=XXXX-XXXX",
	}
	for name, u := range pages {
		page, err := b.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(page.Body, devidp.Label) {
			t.Errorf("%s page has no development label:\n%s", name, page.Body)
		}
	}
	page, _ := b.Post(s.URL+devidp.LoginPath, url.Values{"id": {"x"}})
	if page.Status != http.StatusForbidden || !strings.Contains(page.Body, devidp.Label) {
		t.Errorf("forbidden page: %d\n%s", page.Status, page.Body)
	}
}

// A web page in the developer's browser must not be able to drive the
// issuer: cross-site form posts, forged CSRF tokens, other Host names
// (DNS rebinding) and cross-origin reads are refused.
func TestCrossSiteRefused(t *testing.T) {
	cfg := baseConfig()
	cfg.AutoApprove = "alice"
	s := devidptest.Start(t, cfg)
	c := s.Client()
	// Start a device authorization the way a malicious page would try to.
	da, err := oauthConfig(s, "").DeviceAuth(clientCtx(s))
	if err != nil {
		t.Fatal(err)
	}
	csrf := (*browserT)(s.NewBrowser("alice", "")).mustForm(t, s.URL+devidp.DevicePath).Get("csrf")
	post := func(form url.Values, hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, s.URL+devidp.DevicePath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	approve := url.Values{"user_code": {da.UserCode}, "username": {"alice"}, "action": {"approve"}, "csrf": {csrf}}
	noCSRF := url.Values{"user_code": {da.UserCode}, "username": {"alice"}, "action": {"approve"}}
	forged := url.Values{"user_code": {da.UserCode}, "username": {"alice"}, "action": {"approve"}, "csrf": {"AAAA"}}
	for name, tc := range map[string]struct {
		form url.Values
		hdr  map[string]string
	}{
		"other origin":     {approve, map[string]string{"Origin": "https://evil.example"}},
		"null origin":      {approve, map[string]string{"Origin": "null"}},
		"cross-site fetch": {approve, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"other referer":    {approve, map[string]string{"Referer": "https://evil.example/x"}},
		"no csrf token":    {noCSRF, map[string]string{"Origin": s.URL}},
		"forged csrf":      {forged, map[string]string{"Origin": s.URL}},
	} {
		if got := post(tc.form, tc.hdr); got != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, got)
		}
	}
	for _, path := range []string{devidp.DevicePath, devidp.LoginPath, "/oauth/token", "/.well-known/openid-configuration", "/keys"} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Host = "rebound.evil.example"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("%s with a foreign Host: %d, want 421", path, resp.StatusCode)
		}
	}
	for origin, allowed := range map[string]bool{"https://evil.example": false, s.URL: true} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/device_authorization", strings.NewReader("client_id=stoa-cli"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin") != ""; got != allowed {
			t.Errorf("origin %s: cross-origin read allowed=%v, want %v", origin, got, allowed)
		}
	}
	// None of the above approved the code; a same-origin post does.
	if got := post(approve, map[string]string{"Origin": s.URL}); got != http.StatusOK {
		t.Fatalf("same-origin approval: %d", got)
	}
}

func (b *browserT) mustForm(t *testing.T, u string) url.Values {
	t.Helper()
	page, err := (*devidptest.Browser)(b).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return page.FormValues()
}

func TestClientCredentials(t *testing.T) {
	s := devidptest.Start(t, baseConfig())
	cc := clientcredentials.Config{ClientID: "ci", ClientSecret: "ci-secret", TokenURL: s.URL + "/oauth/token"}
	tok, err := cc.Token(clientCtx(s))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Error("client credentials returned a refresh token")
	}
	p, err := verifier(t, s).Authenticate(context.Background(), []byte(tok.AccessToken), time.Now())
	if err != nil {
		t.Fatalf("pkg/auth refused the token: %v", err)
	}
	if p.Subject != "ci" || !p.Matches(auth.ClaimMatch{Claim: "groups", Value: "acme:editor"}) {
		t.Errorf("principal %+v", p)
	}
	for name, c := range map[string]clientcredentials.Config{
		"wrong secret":  {ClientID: "ci", ClientSecret: "nope", TokenURL: cc.TokenURL},
		"unknown":       {ClientID: "ghost", ClientSecret: "ci-secret", TokenURL: cc.TokenURL},
		"public client": {ClientID: devidp.DefaultClientID, ClientSecret: "", TokenURL: cc.TokenURL},
	} {
		if _, err := c.Token(clientCtx(s)); err == nil {
			t.Errorf("%s: got a token", name)
		}
	}
}

func TestDeviceFlow(t *testing.T) {
	s := devidptest.Start(t, baseConfig())
	cfg := oauthConfig(s, "")
	ctx := clientCtx(s)

	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(da.VerificationURI, s.URL+devidp.DevicePath) || !strings.Contains(da.VerificationURIComplete, "user_code=") {
		t.Fatalf("verification URIs %q %q", da.VerificationURI, da.VerificationURIComplete)
	}
	b := s.NewBrowser("bob", "bob-pw")
	done := make(chan error, 1)
	go func() {
		// The user types the code by hand, in lower case without the dash.
		page, err := b.Device(da.VerificationURI, strings.ToLower(strings.ReplaceAll(da.UserCode, "-", "")), true)
		if err == nil && (page.Status != http.StatusOK || !strings.Contains(page.Body, "Approved")) {
			err = errors.New("approval page: " + page.Body)
		}
		done <- err
	}()
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p, err := verifier(t, s).Authenticate(context.Background(), []byte(tok.AccessToken), time.Now())
	if err != nil {
		t.Fatalf("pkg/auth refused the token: %v", err)
	}
	if p.Subject != "bob" || !p.Matches(auth.ClaimMatch{Claim: "groups", Value: "acme:viewer"}) {
		t.Errorf("principal %+v", p)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token despite offline_access")
	}
	// The device code is single use.
	if _, err := cfg.DeviceAccessToken(ctx, da); err == nil {
		t.Error("a device code was exchanged twice")
	}
	// A used code cannot be approved again.
	if page, _ := b.Device(da.VerificationURIComplete, "", true); page.Status == http.StatusOK {
		t.Error("a used user code was approved again")
	}
}

func TestDeviceFlowDenied(t *testing.T) {
	s := devidptest.Start(t, baseConfig())
	cfg := oauthConfig(s, "")
	ctx := clientCtx(s)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A wrong password does not approve.
	if page, _ := s.NewBrowser("bob", "nope").Device(da.VerificationURIComplete, "", true); page.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", page.Status)
	}
	if page, err := s.NewBrowser("bob", "").Device(da.VerificationURIComplete, "", false); err != nil || page.Status != http.StatusOK {
		t.Fatalf("deny: %v", err)
	}
	if _, err := cfg.DeviceAccessToken(ctx, da); !isOAuthError(err, "access_denied") {
		t.Fatalf("denied code: %v, want access_denied", err)
	}
}

func TestAutoApprove(t *testing.T) {
	cfg := baseConfig()
	cfg.AutoApprove = "bob"
	s := devidptest.Start(t, cfg)
	tok := codeFlow(t, s, s.NewBrowser("", ""))
	p, err := verifier(t, s).Authenticate(context.Background(), []byte(tok.AccessToken), time.Now())
	if err != nil || p.Subject != "bob" {
		t.Fatalf("auto-approved token: %v %+v", err, p)
	}
}

func TestRefreshRotation(t *testing.T) {
	s := devidptest.Start(t, baseConfig())
	tok := codeFlow(t, s, s.NewBrowser("alice", "alice-pw"))
	cfg := oauthConfig(s, "")
	ctx := clientCtx(s)
	refresh := func(rt string) (*oauth2.Token, error) {
		return cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	}
	t2, err := refresh(tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if t2.RefreshToken == "" || t2.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh token not rotated: %q", t2.RefreshToken)
	}
	if _, err := verifier(t, s).Authenticate(context.Background(), []byte(t2.AccessToken), time.Now()); err != nil {
		t.Fatalf("refreshed access token refused: %v", err)
	}
	// Reusing the rotated-out token fails and revokes the family, so the
	// token that replaced it stops working too.
	if _, err := refresh(tok.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("reuse: %v, want invalid_grant", err)
	}
	if _, err := refresh(t2.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("after reuse detection the family must be revoked: %v", err)
	}
}

func TestRefreshFamilyExpires(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	cfg.RefreshTokenTTL = time.Hour
	s := devidptest.Start(t, cfg)
	tok := codeFlow(t, s, s.NewBrowser("alice", "alice-pw"))
	ts := oauthConfig(s, "")
	clk.Add(30 * time.Minute)
	t2, err := ts.TokenSource(clientCtx(s), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	// Rotation does not extend the family past the login's RefreshTokenTTL.
	clk.Add(31 * time.Minute)
	if _, err := ts.TokenSource(clientCtx(s), &oauth2.Token{RefreshToken: t2.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("expired family: %v, want invalid_grant", err)
	}
}

func TestKeyRotation(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	cfg.KeyRetention = time.Hour
	s := devidptest.Start(t, cfg)
	old, err := s.MintToken("alice", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	firstKID := s.KeyIDs()[0]
	newKID, err := s.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if ids := s.KeyIDs(); !slices.Equal(ids, []string{newKID, firstKID}) {
		t.Fatalf("JWKS after rotation = %v, want [%s %s]", ids, newKID, firstKID)
	}
	fresh, err := s.MintToken("alice", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if _, err := verifier(t, s).Authenticate(context.Background(), []byte(tok), now); err != nil {
			t.Errorf("%s-key token refused after rotation: %v", name, err)
		}
	}
	// After the retention the old key leaves the JWKS and its tokens no
	// longer verify; the new key's still do.
	clk.Add(time.Hour + time.Second)
	if ids := s.KeyIDs(); !slices.Equal(ids, []string{newKID}) {
		t.Fatalf("JWKS after retention = %v", ids)
	}
	if _, err := verifier(t, s).Authenticate(context.Background(), []byte(old), now); !errors.Is(err, auth.ErrTokenSignature) && !errors.Is(err, auth.ErrTokenUnknownKey) {
		t.Errorf("old-key token after retention: %v, want a key/signature error", err)
	}
	if _, err := verifier(t, s).Authenticate(context.Background(), []byte(fresh), now); err != nil {
		t.Errorf("new-key token: %v", err)
	}
}

func TestMintToken(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	s := devidptest.Start(t, cfg)
	tok, err := s.MintToken("bob", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, s)
	p, err := v.Authenticate(context.Background(), []byte(tok), clk.Now())
	if err != nil || p.Subject != "bob" || !p.Matches(auth.ClaimMatch{Claim: "groups", Value: "acme:viewer"}) {
		t.Fatalf("minted token: %v %+v", err, p)
	}
	if _, err := v.Authenticate(context.Background(), []byte(tok), clk.Now().Add(time.Minute)); !errors.Is(err, auth.ErrTokenExpired) {
		t.Fatalf("at exp: %v, want expired", err)
	}
	if ct, err := s.MintClientToken("ci", time.Minute); err != nil {
		t.Fatal(err)
	} else if p, err := v.Authenticate(context.Background(), []byte(ct), clk.Now()); err != nil || p.Subject != "ci" {
		t.Fatalf("client token: %v", err)
	}
	for _, bad := range []func() error{
		func() error { _, err := s.MintToken("carol", time.Minute); return err },
		func() error { _, err := s.MintToken("bob", 0); return err },
		func() error { _, err := s.MintClientToken(devidp.DefaultClientID, time.Minute); return err },
	} {
		if bad() == nil {
			t.Error("bad mint succeeded")
		}
	}
}
