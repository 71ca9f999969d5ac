// Package oidctest is an in-process OpenID Connect issuer for tests: it
// serves discovery and JWKS over httptest (TLS by default), mints tokens
// with RS256, ES256 or EdDSA keys through go-jose, rotates keys, mints the
// malformed and malicious tokens a verifier must refuse, can simulate an
// outage, and counts how often its endpoints were hit.
//
// It is a real provider as far as resource servers can tell: its tokens and
// metadata are accepted by coreos/go-oidc's verifier (see the package
// tests).
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Paths served below the issuer URL.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/jwks"
)

// Key is one signing key of the provider.
type Key struct {
	// ID is the kid.
	ID string
	// Algorithm the key signs with.
	Algorithm jose.SignatureAlgorithm
	// Private is the signing key; Public its public half.
	Private crypto.Signer
	Public  crypto.PublicKey
	// OmitAlg publishes the JWK without "alg" (set before the JWKS is
	// fetched).
	OmitAlg bool
}

// Option configures New.
type Option func(*config)

type config struct {
	plainHTTP bool
	alg       jose.SignatureAlgorithm
	path      string
	now       func() time.Time
}

// WithHTTP serves plain http instead of TLS.
func WithHTTP() Option { return func(c *config) { c.plainHTTP = true } }

// WithAlgorithm sets the algorithm of the initial key (default RS256).
func WithAlgorithm(alg jose.SignatureAlgorithm) Option { return func(c *config) { c.alg = alg } }

// WithPath puts the issuer below a path, as Keycloak does
// ("/realms/acme").
func WithPath(p string) Option { return func(c *config) { c.path = "/" + strings.Trim(p, "/") } }

// WithClock sets the clock Claims uses for iat, nbf and exp.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// Provider is a running test issuer.
type Provider struct {
	srv    *httptest.Server
	issuer string
	now    func() time.Time

	mu         sync.Mutex
	keys       []*Key
	active     *Key
	rawJWKs    []json.RawMessage
	jwksStatus int
	seq        int

	jwksHits      atomic.Int64
	discoveryHits atomic.Int64
}

// New starts a provider with one active key.
func New(opts ...Option) (*Provider, error) {
	c := config{alg: jose.RS256, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	p := &Provider{now: c.now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+c.path+DiscoveryPath, p.serveDiscovery)
	mux.HandleFunc("GET "+c.path+JWKSPath, p.serveJWKS)
	if c.plainHTTP {
		p.srv = httptest.NewServer(mux)
	} else {
		p.srv = httptest.NewTLSServer(mux)
	}
	p.issuer = p.srv.URL + c.path
	if _, err := p.Rotate(c.alg); err != nil {
		p.srv.Close()
		return nil, err
	}
	return p, nil
}

// NewT is New for tests: it fails tb on error and closes the provider when
// the test ends.
func NewT(tb testing.TB, opts ...Option) *Provider {
	tb.Helper()
	p, err := New(opts...)
	if err != nil {
		tb.Fatalf("start oidc test provider: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

// Close stops the server.
func (p *Provider) Close() { p.srv.Close() }

// Issuer is the issuer URL (the iss of minted tokens).
func (p *Provider) Issuer() string { return p.issuer }

// JWKSURL is where the key set is served.
func (p *Provider) JWKSURL() string { return p.issuer + JWKSPath }

// Client returns an HTTP client that trusts the provider's TLS certificate.
func (p *Provider) Client() *http.Client { return p.srv.Client() }

// JWKSHits counts JWKS requests served (including failed ones).
func (p *Provider) JWKSHits() int64 { return p.jwksHits.Load() }

// DiscoveryHits counts discovery requests served.
func (p *Provider) DiscoveryHits() int64 { return p.discoveryHits.Load() }

// ResetHits zeroes both counters.
func (p *Provider) ResetHits() {
	p.jwksHits.Store(0)
	p.discoveryHits.Store(0)
}

// FailJWKS makes the JWKS endpoint answer status (an outage); 0 restores
// normal service.
func (p *Provider) FailJWKS(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jwksStatus = status
}

// AddKey generates and publishes a new key without making it active.
// Supported algorithms: RS256/384/512, PS256/384/512 (RSA 2048), ES256,
// ES384, ES512 and EdDSA.
func (p *Provider) AddKey(alg jose.SignatureAlgorithm) (*Key, error) {
	priv, err := generate(alg)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	k := &Key{ID: fmt.Sprintf("key-%d-%s", p.seq, strings.ToLower(string(alg))), Algorithm: alg, Private: priv, Public: priv.Public()}
	p.keys = append(p.keys, k)
	return k, nil
}

// Rotate adds a key and makes it the one Mint signs with. Older keys stay
// published until RemoveKey.
func (p *Provider) Rotate(alg jose.SignatureAlgorithm) (*Key, error) {
	k, err := p.AddKey(alg)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.active = k
	p.mu.Unlock()
	return k, nil
}

// NewUnpublishedKey generates a key that the JWKS never shows (to forge
// tokens with).
func NewUnpublishedKey(alg jose.SignatureAlgorithm, kid string) (*Key, error) {
	priv, err := generate(alg)
	if err != nil {
		return nil, err
	}
	return &Key{ID: kid, Algorithm: alg, Private: priv, Public: priv.Public()}, nil
}

// RemoveKey unpublishes a key.
func (p *Provider) RemoveKey(kid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, k := range p.keys {
		if k.ID == kid {
			p.keys = append(p.keys[:i], p.keys[i+1:]...)
			return
		}
	}
}

// PublishRawJWK adds a verbatim entry to the JWKS (an "oct" key, an
// unknown key type, garbage) to test how verifiers cope.
func (p *Provider) PublishRawJWK(raw string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rawJWKs = append(p.rawJWKs, json.RawMessage(raw))
}

// ActiveKey is the key Mint signs with.
func (p *Provider) ActiveKey() *Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	p.discoveryHits.Add(1)
	p.mu.Lock()
	algs := []string{}
	for _, k := range p.keys {
		if !contains(algs, string(k.Algorithm)) {
			algs = append(algs, string(k.Algorithm))
		}
	}
	p.mu.Unlock()
	writeJSON(w, map[string]any{
		"issuer":                                p.issuer,
		"jwks_uri":                              p.JWKSURL(),
		"authorization_endpoint":                p.issuer + "/authorize",
		"token_endpoint":                        p.issuer + "/token",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": algs,
	})
}

func (p *Provider) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	p.jwksHits.Add(1)
	p.mu.Lock()
	status := p.jwksStatus
	keys := make([]any, 0, len(p.keys)+len(p.rawJWKs))
	for _, k := range p.keys {
		j := jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Use: "sig"}
		if !k.OmitAlg {
			j.Algorithm = string(k.Algorithm)
		}
		keys = append(keys, j)
	}
	for _, r := range p.rawJWKs {
		keys = append(keys, r)
	}
	p.mu.Unlock()
	if status != 0 {
		http.Error(w, "jwks unavailable", status)
		return
	}
	writeJSON(w, map[string]any{"keys": keys})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func generate(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		return rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("generate key: unsupported algorithm %s", alg)
}

func contains(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}
