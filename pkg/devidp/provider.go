package devidp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Paths of the pages the issuer adds to op's endpoints.
const (
	LoginPath  = "/login"
	DevicePath = "/device"
)

// Provider is a running development issuer. Its methods are safe for
// concurrent use.
type Provider struct {
	cfg     Config
	store   *store
	keys    *keyRing
	op      *op.Provider
	handler http.Handler
	// csrfKey signs the forms' anti-forgery tokens.
	csrfKey [32]byte
	origin  string
	host    string
}

// New validates cfg and builds a provider with a fresh signing key. It
// listens on nothing: serve Handler at cfg.Issuer.
func New(cfg Config) (*Provider, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	first, err := newSigningKey()
	if err != nil {
		return nil, fmt.Errorf("start dev issuer: %w", err)
	}
	p := &Provider{cfg: cfg, keys: &keyRing{current: first}}
	_, _ = rand.Read(p.csrfKey[:])
	iu, _ := url.Parse(cfg.Issuer) // validated by withDefaults
	p.origin = iu.Scheme + "://" + iu.Host
	p.host = iu.Host
	p.store = newStore(&p.cfg, p.keys)
	p.store.loginURL = func(id string) string { return cfg.Issuer + LoginPath + "?id=" + url.QueryEscape(id) }

	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	opCfg := &op.Config{
		CryptoKey:             cryptoKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		SupportedScopes:       []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess, "groups"},
		SupportedClaims:       append(slices.Clone(op.DefaultSupportedClaims), "groups", "scope"),
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     cfg.DeviceCodeTTL,
			PollInterval: cfg.DevicePollInterval,
			UserFormPath: DevicePath,
			UserCode:     op.UserCodeBase20,
		},
	}
	opts := []op.Option{
		// Only the issuer's own pages may read its responses from a
		// browser: op's default CORS policy allows every origin with
		// credentials, which would let any web page the developer visits
		// run the device flow against a loopback issuer and read the
		// tokens.
		op.WithCORSOptions(&cors.Options{
			AllowedOrigins: []string{p.origin},
			AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost},
			AllowedHeaders: []string{"Accept", "Authorization", "Content-Type"},
		}),
	}
	if iu.Scheme == "http" {
		// Plain http is against the OIDC specification and refused by op
		// unless allowed; withDefaults only lets it through for loopback.
		opts = append(opts, op.WithAllowInsecure())
	}
	p.op, err = op.NewProvider(opCfg, p.store, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("start dev issuer: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(LoginPath, p.serveLogin)
	mux.HandleFunc(DevicePath, p.serveDevice)
	mux.Handle("/", p.op)
	p.handler = p.guard(mux)
	return p, nil
}

// Handler serves the issuer: discovery, JWKS, the OAuth endpoints and the
// login and device pages.
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer returns the issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Audience returns the aud of access tokens.
func (p *Provider) Audience() string { return p.cfg.Audience }

// KeyIDs lists the key ids in the JWKS at the provider's clock, the
// signing key first.
func (p *Provider) KeyIDs() []string {
	var ids []string
	for _, k := range p.keys.published(p.cfg.Now()) {
		ids = append(ids, k.ID())
	}
	return ids
}

// Rotate makes a new key the signing key and keeps the previous one in the
// JWKS for KeyRetention, so tokens it signed still verify. It returns the
// new key's id.
func (p *Provider) Rotate() (string, error) {
	next, err := newSigningKey()
	if err != nil {
		return "", fmt.Errorf("rotate dev issuer key: %w", err)
	}
	p.keys.rotate(next, p.cfg.Now(), p.cfg.KeyRetention)
	p.cfg.Logger.Info("dev issuer: signing key rotated", "kid", next.id)
	return next.id, nil
}

// MintToken signs an access token for a configured user, as if the user
// had logged in with the default client, valid for ttl from the
// provider's clock. Tests and scripts use it to skip the browser.
func (p *Provider) MintToken(username string, ttl time.Duration) (string, error) {
	u := p.store.users[username]
	if u == nil {
		return "", fmt.Errorf("mint token: no user %q", username)
	}
	return p.mint(username, []string{p.cfg.Audience}, u.Groups, ttl)
}

// MintClientToken signs an access token for a confidential client, as the
// client credentials grant would.
func (p *Provider) MintClientToken(clientID string, ttl time.Duration) (string, error) {
	c := p.store.clients[clientID]
	if c == nil || c.public() {
		return "", fmt.Errorf("mint token: no confidential client %q", clientID)
	}
	return p.mint(clientID, []string{p.cfg.Audience}, c.Groups, ttl)
}

func (p *Provider) mint(subject string, aud, groups []string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", errors.New("mint token: ttl must be positive")
	}
	now := p.cfg.Now()
	claims := oidc.NewAccessTokenClaims(p.cfg.Issuer, subject, aud, now.Add(ttl), randomHex(16), p.cfg.Clients[0].ID, 0)
	claims.IssuedAt = oidc.FromTime(now)
	claims.NotBefore = oidc.FromTime(now)
	claims.Claims = map[string]any{"groups": nonNil(slices.Clone(groups))}
	signer, err := op.SignerFromKey(p.keys.signing())
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	tok, err := crypto.Sign(claims, signer)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return tok, nil
}

// guard wraps every route: requests must name the issuer's host (a DNS
// rebinding page resolves its own name to 127.0.0.1, and is refused
// here), and pages must not be framed or cached.
func (p *Provider) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != p.host {
			http.Error(w, "misdirected request: this development issuer only answers to "+p.host, http.StatusMisdirectedRequest)
			return
		}
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
