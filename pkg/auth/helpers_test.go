package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stoa-gateway/stoa/pkg/auth/oidctest"
)

// t0 is the fixed "now" of token tests; providers mint with this clock and
// tests move time by passing t0.Add(d).
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const testAud = "https://gw.example/mcp"

func newProvider(t testing.TB, opts ...oidctest.Option) *oidctest.Provider {
	t.Helper()
	return oidctest.NewT(t, append([]oidctest.Option{oidctest.WithClock(func() time.Time { return t0 })}, opts...)...)
}

// testKeySets returns a registry whose HTTP client trusts p's certificate.
func testKeySets(p *oidctest.Provider, o KeySetOptions) *KeySets {
	o.HTTPClient = p.Client()
	return NewKeySets(o)
}

func newResolver(t testing.TB, p *oidctest.Provider, cfg ResolverConfig) *Resolver {
	t.Helper()
	if cfg.KeySets == nil {
		cfg.KeySets = testKeySets(p, KeySetOptions{})
	}
	if len(cfg.Identities) == 0 && len(cfg.Admins) == 0 {
		cfg.Identities = []Identity{{Tenant: "acme", Issuer: p.Issuer(), Audiences: []string{testAud}}}
	}
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatalf("new resolver: %v", err)
	}
	return r
}

func mint(t testing.TB, p *oidctest.Provider, c oidctest.Claims, opts ...oidctest.TokenOption) []byte {
	t.Helper()
	tok, err := p.Mint(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(tok)
}

func mintWith(t testing.TB, k *oidctest.Key, c oidctest.Claims, opts ...oidctest.TokenOption) []byte {
	t.Helper()
	tok, err := oidctest.MintWith(k, c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(tok)
}

func rotate(t testing.TB, p *oidctest.Provider, alg jose.SignatureAlgorithm) *oidctest.Key {
	t.Helper()
	k, err := p.Rotate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func wantErr(t testing.TB, got, want error) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Fatalf("unexpected error: %v", got)
	case want != nil && !errors.Is(got, want):
		t.Fatalf("error = %v, want %v", got, want)
	}
}

var bg = context.Background()
