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
//
// After the rotation the new token is checked by a relying party that
// discovers the provider afresh, not by the one that cached the old key
// set. A cached go-oidc RemoteKeySet does refetch on an unknown kid, but
// v3.21.0 releases the waiters of a fetch before it stores the keys and
// clears its in-flight marker (oidc/jwks.go:213-225), so a refetch asked
// for within microseconds of the previous one joins that finished fetch,
// gets the pre-rotation keys back, and fails with "failed to verify id
// token signature" in about 1 of 75 subtests on a busy machine.
// That race is go-oidc's, not the provider's, and stoa does not use go-oidc
// to verify tokens: pkg/auth has its own key sets, whose refresh-on-rotation
// TestKeyRotationPickedUp and TestRefreshPublishesBeforeReleasingWaiters
// cover. What a rotation must give every relying party — a kid it has not
// seen, so that it refetches, and a key set that holds the new key beside
// the old one — is asserted here directly.
func TestGoOIDCAcceptsProvider(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			p := oidctest.NewT(t, oidctest.WithAlgorithm(alg), oidctest.WithPath("/realms/acme"))
			ctx := oidc.ClientContext(context.Background(), p.Client())
			verifier := func() *oidc.IDTokenVerifier {
				t.Helper()
				prov, err := oidc.NewProvider(ctx, p.Issuer())
				if err != nil {
					t.Fatalf("discover: %v", err)
				}
				return prov.Verifier(&oidc.Config{ClientID: "stoa", SupportedSigningAlgs: []string{string(alg), "ES256"}})
			}
			v := verifier()

			tok := p.MustMint(p.Claims("alice", "stoa"))
			idt, err := v.Verify(ctx, tok)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if idt.Subject != "alice" || idt.Issuer != p.Issuer() {
				t.Errorf("got sub %q iss %q", idt.Subject, idt.Issuer)
			}

			old := p.ActiveKey()
			next, err := p.Rotate(jose.ES256)
			if err != nil {
				t.Fatal(err)
			}
			if next.ID == old.ID {
				t.Fatalf("rotation reused kid %s: relying parties would never refetch", old.ID)
			}
			rotated := verifier()
			idt, err = rotated.Verify(ctx, p.MustMint(p.Claims("bob", "stoa")))
			if err != nil {
				t.Fatalf("verify after rotation: %v", err)
			}
			if idt.Subject != "bob" {
				t.Errorf("after rotation: got sub %q", idt.Subject)
			}
			// The old key stays published until RemoveKey: its tokens still
			// verify, for a relying party that cached it and one that did not.
			for name, rp := range map[string]*oidc.IDTokenVerifier{"cached": v, "fresh": rotated} {
				if _, err := rp.Verify(ctx, tok); err != nil {
					t.Errorf("%s relying party, token of the old key: %v", name, err)
				}
				if _, err := rp.Verify(ctx, oidctest.TamperSignature(tok)); err == nil {
					t.Errorf("%s relying party accepted a tampered token", name)
				}
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
