package auth

import (
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stoa-gateway/stoa/pkg/auth/oidctest"
)

// Run with: go test -run '^$' -bench . -benchmem ./pkg/auth/

func benchResolver(b *testing.B, alg jose.SignatureAlgorithm, cacheTTL int) (*Resolver, []byte) {
	b.Helper()
	p := newProvider(b, oidctest.WithAlgorithm(alg))
	cfg := ResolverConfig{}
	if cacheTTL < 0 {
		cfg.CacheTTL = -1
	}
	r := newResolver(b, p, cfg)
	if err := r.Prefetch(bg, t0); err != nil {
		b.Fatal(err)
	}
	// A realistic access token: ~15 claims, ~900 bytes.
	c := p.Claims("0b9e6c1a-3f51-4c3e-9c1e-7d2f3a4b5c6d", testAud, "account").
		With("azp", "stoa-cli").With("scope", "openid profile email tools:read tools:call").
		With("realm_access", map[string]any{"roles": []string{"offline_access", "uma_authorization", "default-roles-acme"}}).
		With("email", "alice@acme.example").With("preferred_username", "alice").With("sid", "5e7a0c2d-9a1b-4c3d-8e2f-1a2b3c4d5e6f").
		With("jti", "onrtac:6b1f9c1e-2d3a-4b5c-9d8e-7f6a5b4c3d2e").With("typ", "Bearer")
	tok := mint(b, p, c)
	if _, err := r.Authenticate(bg, tok, t0); err != nil {
		b.Fatal(err)
	}
	return r, tok
}

func benchAuthenticate(b *testing.B, r *Resolver, tok []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(tok)))
	for b.Loop() {
		if _, err := r.Authenticate(bg, tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenCached(b *testing.B) {
	r, tok := benchResolver(b, jose.RS256, 0)
	benchAuthenticate(b, r, tok)
}

func BenchmarkTokenCachedParallel(b *testing.B) {
	r, tok := benchResolver(b, jose.RS256, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Authenticate(bg, tok, t0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkTokenUncachedRS256(b *testing.B) {
	r, tok := benchResolver(b, jose.RS256, -1)
	benchAuthenticate(b, r, tok)
}

func BenchmarkTokenUncachedES256(b *testing.B) {
	r, tok := benchResolver(b, jose.ES256, -1)
	benchAuthenticate(b, r, tok)
}

func BenchmarkTokenUncachedEdDSA(b *testing.B) {
	r, tok := benchResolver(b, jose.EdDSA, -1)
	benchAuthenticate(b, r, tok)
}

func benchKeys(b *testing.B, n int) (*KeyIndex, []byte) {
	b.Helper()
	var recs []KeyRecord
	var key string
	for i := range n {
		k, rec, err := GenerateKey(KeyOptions{Tenant: "acme", Consumer: "c", Now: t0})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			key = k
		}
		recs = append(recs, rec)
	}
	ix, err := NewKeyIndex(recs)
	if err != nil {
		b.Fatal(err)
	}
	return ix, []byte(key)
}

func BenchmarkKeyLookup(b *testing.B) {
	ix, key := benchKeys(b, 10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ix.Lookup(key, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeyLookupParallel(b *testing.B) {
	ix, key := benchKeys(b, 10000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ix.Lookup(key, t0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkExtractCredential(b *testing.B) {
	authz := []byte("Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ExtractCredential(authz, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticatorCachedJWT is the whole hot path for a repeat
// token: header parsing, hash, cache lookup.
func BenchmarkAuthenticatorCachedJWT(b *testing.B) {
	r, tok := benchResolver(b, jose.RS256, 0)
	var a Authenticator
	a.SetResolver(r)
	authz := append([]byte("Bearer "), tok...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(bg, authz, nil, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticatorAPIKey is the whole hot path for an API key.
func BenchmarkAuthenticatorAPIKey(b *testing.B) {
	ix, key := benchKeys(b, 10000)
	var a Authenticator
	a.SetKeys(ix)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(bg, nil, key, t0); err != nil {
			b.Fatal(err)
		}
	}
}
