package auth

import (
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stoa-gateway/stoa/pkg/auth/oidctest"
)

func TestAuthenticateToken(t *testing.T) {
	p := newProvider(t)
	rsaKey := p.ActiveKey()
	ecKey, err := p.AddKey(jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	edKey, err := p.AddKey(jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := oidctest.NewUnpublishedKey(jose.RS256, rsaKey.ID)
	if err != nil {
		t.Fatal(err)
	}
	stranger := newProvider(t) // trusted by no tenant

	valid := func() oidctest.Claims { return p.Claims("alice", testAud) }
	confused, err := oidctest.MintHS256WithPublicKey(valid(), rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	hmacTok, err := oidctest.MintHMAC(jose.HS256, []byte(strings.Repeat("k", 32)), valid(), rsaKey.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A token carrying its own (attacker's) key in the jwk header.
	forgedJWK := mintWith(t, forged, valid(), oidctest.WithHeader("jwk", jose.JSONWebKey{Key: forged.Public, Algorithm: "RS256"}))

	tests := []struct {
		name  string
		token []byte
		now   time.Time
		want  error
	}{
		{"valid RS256", mint(t, p, valid()), t0, nil},
		{"valid ES256", mintWith(t, ecKey, valid()), t0, nil},
		{"valid EdDSA", mintWith(t, edKey, valid()), t0, nil},
		{"aud array", mint(t, p, p.Claims("alice", "other", testAud)), t0, nil},
		{"nbf within skew", mint(t, p, valid().With("nbf", t0.Add(30*time.Second).Unix())), t0, nil},
		{"fractional dates", mint(t, p, valid().With("exp", float64(t0.Unix())+0.5)), t0, nil},
		{"expired", mint(t, p, valid()), t0.Add(time.Hour), ErrTokenExpired},
		{"expired without skew", mint(t, p, valid().With("exp", t0.Unix())), t0, ErrTokenExpired},
		{"missing exp", mint(t, p, valid().Without("exp")), t0, ErrTokenExpired},
		{"exp not a number", mint(t, p, valid().With("exp", "tomorrow")), t0, ErrTokenMalformed},
		{"nbf in future", mint(t, p, valid().With("nbf", t0.Add(2*time.Minute).Unix())), t0, ErrTokenNotYetValid},
		{"iat in future", mint(t, p, valid().With("iat", t0.Add(2*time.Minute).Unix())), t0, ErrTokenNotYetValid},
		{"wrong audience", mint(t, p, p.Claims("alice", "https://elsewhere")), t0, ErrTokenAudience},
		{"missing audience", mint(t, p, p.Claims("alice")), t0, ErrTokenAudience},
		{"wrong issuer", mint(t, p, valid().With("iss", "https://evil.example")), t0, ErrTokenUnknownIssuer},
		{"issuer trusted by nobody", []byte(stranger.MustMint(stranger.Claims("alice", testAud))), t0, ErrTokenUnknownIssuer},
		{"issuer not a string", mint(t, p, valid().With("iss", 7)), t0, ErrTokenMalformed},
		{"alg none", []byte(oidctest.MintNone(valid(), rsaKey.ID)), t0, ErrTokenAlgorithm},
		{"HS256 with public key", []byte(confused), t0, ErrTokenAlgorithm},
		{"HS256 with a secret", []byte(hmacTok), t0, ErrTokenAlgorithm},
		{"alg differs from key", mint(t, p, valid(), oidctest.WithSigningAlg(jose.PS256)), t0, ErrTokenAlgorithm},
		{"tampered signature", []byte(oidctest.TamperSignature(string(mint(t, p, valid())))), t0, ErrTokenSignature},
		{"tampered payload", []byte(oidctest.TamperPayload(string(mint(t, p, valid())), func(c oidctest.Claims) { c["sub"] = "root" })), t0, ErrTokenSignature},
		{"forged with known kid", mintWith(t, forged, valid()), t0, ErrTokenSignature},
		{"embedded jwk ignored", forgedJWK, t0, ErrTokenSignature},
		{"unknown kid", mint(t, p, valid(), oidctest.WithKID("nope")), t0, ErrTokenUnknownKey},
		{"no kid, one matching key", mint(t, p, valid(), oidctest.WithoutKID()), t0, nil},
		{"garbage", []byte("not.a.jwt"), t0, ErrTokenMalformed},
		{"two segments", []byte("eyJhbGciOiJSUzI1NiJ9.e30"), t0, ErrTokenMalformed},
		{"empty", nil, t0, ErrTokenMalformed},
		{"too large", []byte(strings.Repeat("a", MaxCredentialBytes+1)), t0, ErrTokenMalformed},
	}
	// One resolver for all cases, cache disabled so every case is verified.
	r := newResolver(t, p, ResolverConfig{CacheTTL: -1})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := r.Authenticate(bg, tt.token, tt.now)
			wantErr(t, err, tt.want)
			if tt.want != nil {
				// Never log a token: the error text must not contain any
				// of its segments.
				for _, seg := range strings.Split(string(tt.token), ".") {
					if len(seg) > 8 && strings.Contains(err.Error(), seg) {
						t.Errorf("error text contains a token segment: %v", err)
					}
				}
				if got := HTTPStatus(err); got != http.StatusUnauthorized {
					t.Errorf("status %d, want 401", got)
				}
				if c := Challenge(err, ""); c != `Bearer error="invalid_token"` {
					t.Errorf("challenge %q", c)
				}
				return
			}
			if pr.Tenant != "acme" || pr.Subject != "alice" || pr.Method != MethodJWT || pr.Issuer != p.Issuer() {
				t.Errorf("principal %+v", pr)
			}
		})
	}
	if n := stranger.JWKSHits() + stranger.DiscoveryHits(); n != 0 {
		t.Errorf("an untrusted issuer was contacted %d times", n)
	}
}

func TestIssuerAlgorithmAllowList(t *testing.T) {
	p := newProvider(t, oidctest.WithAlgorithm(jose.ES256))
	r := newResolver(t, p, ResolverConfig{Identities: []Identity{{Tenant: "acme", Issuer: p.Issuer(), Audiences: []string{testAud}, Algorithms: []string{"ES384"}}}})
	_, err := r.Authenticate(bg, mint(t, p, p.Claims("a", testAud)), t0)
	wantErr(t, err, ErrTokenAlgorithm)
	if p.JWKSHits() != 0 {
		t.Errorf("keys fetched for a token whose alg the issuer does not allow")
	}
}

func TestJWKWithoutAlgUsesKeyFamily(t *testing.T) {
	p := newProvider(t)
	p.ActiveKey().OmitAlg = true
	r := newResolver(t, p, ResolverConfig{CacheTTL: -1})
	wantErr(t, func() error { _, err := r.Authenticate(bg, mint(t, p, p.Claims("a", testAud)), t0); return err }(), nil)
	wantErr(t, func() error {
		_, err := r.Authenticate(bg, mint(t, p, p.Claims("a", testAud), oidctest.WithSigningAlg(jose.PS256)), t0)
		return err
	}(), nil)
	// An EC-family alg never fits an RSA key, whatever the header says.
	ec, err := oidctest.NewUnpublishedKey(jose.ES256, p.ActiveKey().ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Authenticate(bg, mintWith(t, ec, p.Claims("a", testAud)), t0)
	wantErr(t, err, ErrTokenAlgorithm)
}

func TestScopesAndRequirement(t *testing.T) {
	p := newProvider(t)
	r := newResolver(t, p, ResolverConfig{})
	pr, err := r.Authenticate(bg, mint(t, p, p.Claims("a", testAud).With("scope", "read write").With("scp", []string{"admin:tools"}).With("azp", "cli")), t0)
	if err != nil {
		t.Fatal(err)
	}
	if pr.ClientID != "cli" {
		t.Errorf("client id %q", pr.ClientID)
	}
	// The whole claims set, for role bindings that match any claim.
	if c := pr.Claims(); c["azp"] != "cli" || c["scope"] != "read write" || c["sub"] != "a" {
		t.Errorf("claims %v", c)
	}
	if c := (&Principal{Method: MethodAPIKey}).Claims(); c != nil {
		t.Errorf("an API key has claims %v", c)
	}
	key := &Principal{Method: MethodAPIKey, Tenant: "acme"}
	tests := []struct {
		name string
		p    *Principal
		req  *Requirement
		want error
	}{
		{"nil requirement", pr, nil, nil},
		{"scopes from both claims", pr, &Requirement{Scopes: []string{"read", "admin:tools"}}, nil},
		{"missing scope", pr, &Requirement{Scopes: []string{"delete"}}, ErrInsufficientScope},
		{"issuer", pr, &Requirement{Issuer: p.Issuer()}, nil},
		{"other issuer", pr, &Requirement{Issuer: "https://other"}, ErrTokenIssuer},
		{"audience", pr, &Requirement{Audiences: []string{"x", testAud}}, nil},
		{"other audience", pr, &Requirement{Audiences: []string{"x"}}, ErrTokenAudience},
		{"jwt required, api key given", key, &Requirement{Method: MethodJWT}, ErrMethodNotAllowed},
		{"api key required, jwt given", pr, &Requirement{Method: MethodAPIKey}, ErrMethodNotAllowed},
		{"api key and scopes", key, &Requirement{Scopes: []string{"read"}}, ErrInsufficientScope},
		{"api key", key, &Requirement{Method: MethodAPIKey}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Check(tt.req)
			wantErr(t, err, tt.want)
			if tt.want == ErrInsufficientScope && HTTPStatus(err) != http.StatusForbidden {
				t.Errorf("status %d", HTTPStatus(err))
			}
		})
	}
}

func TestFromConfiguredAlgorithmsRejectsHMAC(t *testing.T) {
	for _, alg := range []string{"none", "HS256", "HS512", "RSA-OAEP", ""} {
		_, err := NewResolver(ResolverConfig{Identities: []Identity{{Tenant: "a", Issuer: "https://idp.example", Audiences: []string{"x"}, Algorithms: []string{alg}}}})
		if err == nil {
			t.Errorf("algorithm %q accepted", alg)
		}
	}
}
