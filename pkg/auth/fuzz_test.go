package auth

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stoa-gateway/stoa/pkg/auth/oidctest"
)

func FuzzExtractCredential(f *testing.F) {
	f.Add([]byte("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"), []byte(nil))
	f.Add([]byte(nil), []byte("stoa_sk_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbcccccc"))
	f.Add([]byte("bearer  stoa_sk_x=="), []byte(" "))
	f.Add([]byte("Basic dXNlcjpwYXNz"), []byte("k"))
	f.Add([]byte("Bearer\ta"), []byte("\x00"))
	f.Fuzz(func(t *testing.T, authz, apiKey []byte) {
		kind, cred, err := ExtractCredential(authz, apiKey)
		if err != nil {
			if kind != CredentialNone || cred != nil || Reason(err) == "error" {
				t.Fatalf("error %v with kind %v cred %q", err, kind, cred)
			}
			return
		}
		if kind == CredentialNone || !isToken68(cred) || len(cred) > MaxCredentialBytes {
			t.Fatalf("bad credential %v %q", kind, cred)
		}
		if !bytes.Contains(authz, cred) && !bytes.Contains(apiKey, cred) {
			t.Fatalf("credential %q not taken from the input", cred)
		}
		if kind == CredentialBearerToken && hasKeyPrefix(cred) {
			t.Fatalf("api key classified as token")
		}
		// Whatever was extracted, a lookup must not panic either.
		_, _ = (*KeyIndex)(nil).Lookup(cred, t0)
	})
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("fuzzing makes no network calls")
}

// fuzzResolver returns a resolver for issuer https://idp.fuzz.example whose
// keys are preloaded (and whose HTTP client always fails), plus a valid
// token for it.
func fuzzResolver(f *testing.F) (*Resolver, string) {
	const iss = "https://idp.fuzz.example"
	k, err := oidctest.NewUnpublishedKey(jose.ES256, "fuzz-key")
	if err != nil {
		f.Fatal(err)
	}
	ks := NewKeySets(KeySetOptions{HTTPClient: &http.Client{Transport: failingTransport{}}})
	r, err := NewResolver(ResolverConfig{
		KeySets:    ks,
		Identities: []Identity{{Tenant: "fuzz", Issuer: iss, Audiences: []string{"stoa"}, TenantClaim: &ClaimMatch{Claim: "org.id", Value: "f"}}},
		Admins:     []AdminRule{{Issuer: iss, Audiences: []string{"stoa"}, Claim: ClaimMatch{Claim: "roles", Value: "admin"}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	vk, err := newVerifyKey(&jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: "ES256"})
	if err != nil {
		f.Fatal(err)
	}
	rks := r.issuers[iss].keys
	rks.snap.Store(&keySnapshot{byKID: map[string][]*verifyKey{k.ID: {vk}}, all: []*verifyKey{vk}, fetchedAt: t0})
	rks.lastAttempt = t0 // every refresh is rate-limited: no fetch
	tok, err := oidctest.MintWith(k, oidctest.Claims{
		"iss": iss, "aud": "stoa", "sub": "s", "exp": t0.Add(time.Hour).Unix(),
		"org": map[string]any{"id": "f"}, "roles": []string{"admin"}, "scope": "a b",
	})
	if err != nil {
		f.Fatal(err)
	}
	return r, tok
}

func FuzzParseToken(f *testing.F) {
	r, valid := fuzzResolver(f)
	f.Add(valid)
	f.Add(oidctest.MintNone(oidctest.Claims{"iss": "https://idp.fuzz.example", "aud": "stoa", "exp": 1 << 40}, "fuzz-key"))
	f.Add(oidctest.TamperSignature(valid))
	f.Add("eyJhbGciOiJSUzI1NiJ9.e30.")
	f.Add("..")
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6ImZ1enota2V5In0.eyJleHAiOjEuNWUzMDh9.AA")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := r.Authenticate(bg, []byte(tok), t0)
		if err != nil {
			if p != nil || Reason(err) == "error" {
				t.Fatalf("error %v with principal %v", err, p)
			}
			if s := HTTPStatus(err); s != http.StatusUnauthorized && s != http.StatusServiceUnavailable {
				t.Fatalf("status %d for %v", s, err)
			}
			return
		}
		if p.Method != MethodJWT || p.Tenant != "fuzz" || !p.ExpiresAt.After(t0) || p.Issuer != "https://idp.fuzz.example" {
			t.Fatalf("accepted token gives principal %+v", p)
		}
	})
}

func FuzzKeyLookup(f *testing.F) {
	k, rec, err := GenerateKey(KeyOptions{Tenant: "t", Consumer: "c", Now: t0})
	if err != nil {
		f.Fatal(err)
	}
	ix, err := NewKeyIndex([]KeyRecord{rec})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k)
	f.Add(k[:len(k)-1] + "a")
	f.Add("stoa_sk_")
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := ix.Lookup([]byte(raw), t0)
		if err == nil && (raw != k || got.ID != rec.ID) {
			t.Fatalf("accepted %q", raw)
		}
		if _, ok := ParseKeyID([]byte(raw)); ok && len(raw) != KeyLen {
			t.Fatalf("parsed %q", raw)
		}
	})
}
