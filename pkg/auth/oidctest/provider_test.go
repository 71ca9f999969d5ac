package oidctest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/stoa-gateway/stoa/pkg/auth/oidctest"
)

// TestGoOIDCAcceptsProvider proves the provider is spec-conformant from a
// relying party's point of view: coreos/go-oidc discovers it, fetches its
// JWKS and verifies its tokens, for every key type and across a rotation.
func TestGoOIDCAcceptsProvider(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			p := oidctest.NewT(t, oidctest.WithAlgorithm(alg), oidctest.WithPath("/realms/acme"))
			ctx := oidc.ClientContext(context.Background(), p.Client())
			prov, err := oidc.NewProvider(ctx, p.Issuer())
			if err != nil {
				t.Fatalf("discover: %v", err)
			}
			v := prov.Verifier(&oidc.Config{ClientID: "stoa", SupportedSigningAlgs: []string{string(alg), "ES256"}})

			tok := p.MustMint(p.Claims("alice", "stoa"))
			idt, err := v.Verify(ctx, tok)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if idt.Subject != "alice" || idt.Issuer != p.Issuer() {
				t.Errorf("got sub %q iss %q", idt.Subject, idt.Issuer)
			}

			if _, err := p.Rotate(jose.ES256); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(ctx, p.MustMint(p.Claims("bob", "stoa"))); err != nil {
				t.Fatalf("verify after rotation: %v", err)
			}
			if _, err := v.Verify(ctx, oidctest.TamperSignature(tok)); err == nil {
				t.Error("go-oidc accepted a tampered token")
			}
		})
	}
}

func TestProviderCountsAndFails(t *testing.T) {
	p := oidctest.NewT(t, oidctest.WithHTTP())
	get := func(path string) int {
		resp, err := http.Get(p.Issuer() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(oidctest.JWKSPath); got != 200 {
		t.Fatalf("jwks status %d", got)
	}
	p.FailJWKS(http.StatusBadGateway)
	if got := get(oidctest.JWKSPath); got != http.StatusBadGateway {
		t.Fatalf("jwks status during outage %d", got)
	}
	get(oidctest.DiscoveryPath)
	if p.JWKSHits() != 2 || p.DiscoveryHits() != 1 {
		t.Errorf("hits: jwks %d discovery %d", p.JWKSHits(), p.DiscoveryHits())
	}
}

func TestMaliciousTokensAreRejectedByGoOIDC(t *testing.T) {
	p := oidctest.NewT(t)
	ctx := oidc.ClientContext(context.Background(), p.Client())
	prov, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	v := prov.Verifier(&oidc.Config{ClientID: "stoa"})
	c := p.Claims("mallory", "stoa")
	confused, err := oidctest.MintHS256WithPublicKey(c, p.ActiveKey())
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"none":     oidctest.MintNone(c, p.ActiveKey().ID),
		"hs256":    confused,
		"tampered": oidctest.TamperPayload(p.MustMint(c), func(c oidctest.Claims) { c["sub"] = "admin" }),
	} {
		if _, err := v.Verify(ctx, tok); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var expired *oidc.TokenExpiredError
	_, err = v.Verify(ctx, p.MustMint(p.Claims("x", "stoa").With("exp", 1000)))
	if !errors.As(err, &expired) {
		t.Errorf("expired token: got %v", err)
	}
}
