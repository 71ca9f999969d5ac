package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/auth/oidctest"
)

const consumers = `---
apiVersion: stoa.io/v1alpha1
kind: Consumer
metadata: {name: shop, namespace: acme}
spec: {displayName: shop}
---
apiVersion: stoa.io/v1alpha1
kind: Consumer
metadata: {name: bot, namespace: globex}
spec: {displayName: bot}
`

func TestAuthNone(t *testing.T) {
	up := newUpstream(t, "u")
	e := newEnv(t, tool("acme", "open", up.URL, "auth: {type: none}"))
	if r := e.get("/acme/open/x"); r.Status != 200 {
		t.Fatalf("auth none: %d", r.Status)
	}
	// A credential on an open route is not checked (and an unknown stoa
	// key is not forwarded either; see TestCredentialsNotForwarded).
	if r := e.get("/acme/open/x", "X-Api-Key", "stoa_sk_garbage"); r.Status != 200 {
		t.Fatalf("auth none with a junk key: %d", r.Status)
	}
}

func TestAPIKeyAuth(t *testing.T) {
	up := newUpstream(t, "u")
	e := newEnv(t, tenant("acme", "")+tenant("globex", "")+consumers+
		tool("acme", "billing", up.URL, "auth: {type: apiKey}"))
	good := e.addKey("acme", "shop", nil)
	revoked := e.addKey("acme", "shop", func(r *auth.KeyRecord) { r.RevokedAt = time.Now().Add(-time.Minute) })
	expired := e.addKey("acme", "shop", func(r *auth.KeyRecord) { r.ExpiresAt = time.Now().Add(-time.Minute) })
	rotated := e.addKey("acme", "shop", func(r *auth.KeyRecord) { r.NotAfter = time.Now().Add(-time.Second); r.RotatedTo = "x" })
	unknown, _, _ := auth.GenerateKey(auth.KeyOptions{Tenant: "acme", Consumer: "shop"})
	tampered := good[:len(good)-10] + strings.Repeat("a", 10)

	ok := []struct{ name, header, value string }{
		{"X-Api-Key", "X-Api-Key", good},
		{"Authorization Bearer", "Authorization", "Bearer " + good},
		{"bearer scheme is case-insensitive", "Authorization", "bearer " + good},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			if r := e.get("/acme/billing/x", c.header, c.value); r.Status != 200 {
				t.Fatalf("status %d body %q", r.Status, r.Body)
			}
		})
	}
	hits := up.hits.Load()
	bad := []struct {
		name    string
		headers []string
		status  int
		code    string
		chall   string // WWW-Authenticate
	}{
		{"no credential", nil, 401, errUnauthorized, "Bearer"},
		{"unknown key", []string{"X-Api-Key", unknown}, 401, errUnauthorized, `Bearer error="invalid_token"`},
		{"tampered key", []string{"X-Api-Key", tampered}, 401, errUnauthorized, `Bearer error="invalid_token"`},
		{"revoked key", []string{"X-Api-Key", revoked}, 401, errUnauthorized, `Bearer error="invalid_token"`},
		{"expired key", []string{"X-Api-Key", expired}, 401, errUnauthorized, `Bearer error="invalid_token"`},
		{"rotated key past grace", []string{"X-Api-Key", rotated}, 401, errUnauthorized, `Bearer error="invalid_token"`},
		{"not a key", []string{"X-Api-Key", "hunter2"}, 401, errUnauthorized, `Bearer error="invalid_token"`},
		{"basic auth", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, errUnauthorized, ""},
		{"repeated X-Api-Key", []string{"X-Api-Key", good, "X-Api-Key", good}, 400, errBadRequest, ""},
		{"repeated Authorization", []string{"Authorization", "Bearer " + good, "Authorization", "Bearer " + good}, 400, errBadRequest, ""},
		{"key in both headers", []string{"X-Api-Key", good, "Authorization", "Bearer " + good}, 400, errBadRequest, ""},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			r := e.get("/acme/billing/x", c.headers...)
			expectError(t, r, c.status, c.code)
			if c.status == 401 {
				got := r.Header.Get("WWW-Authenticate")
				if got == "" || (c.chall != "" && got != c.chall) {
					t.Fatalf("WWW-Authenticate %q, want %q", got, c.chall)
				}
			}
		})
	}
	if n := up.hits.Load() - hits; n != 0 {
		t.Fatalf("refused requests reached the upstream %d times", n)
	}
}

// TestCrossTenant: a valid credential of one tenant never reaches another
// tenant's upstream: 403 by default, 404 with crossTenant: notFound.
func TestCrossTenant(t *testing.T) {
	acme, globex := newUpstream(t, "acme"), newUpstream(t, "globex")
	specs := tenant("acme", "") + tenant("globex", "") + consumers +
		tool("acme", "billing", acme.URL, "auth: {type: apiKey}") +
		tool("globex", "weather", globex.URL, "auth: {type: apiKey}")
	e := newEnv(t, specs)
	acmeKey, globexKey := e.addKey("acme", "shop", nil), e.addKey("globex", "bot", nil)

	if r := e.get("/globex/weather/x", "X-Api-Key", globexKey); r.Status != 200 {
		t.Fatalf("own tenant: %d", r.Status)
	}
	expectError(t, e.get("/globex/weather/x", "X-Api-Key", acmeKey), 403, errForbidden)
	expectError(t, e.get("/acme/billing/x", "Authorization", "Bearer "+globexKey), 403, errForbidden)
	if acme.hits.Load() != 0 || globex.hits.Load() != 1 {
		t.Fatalf("upstream hits acme=%d globex=%d, want 0 and 1", acme.hits.Load(), globex.hits.Load())
	}

	e.apply(specs + gateway("crossTenant: notFound"))
	r := e.get("/globex/weather/x", "X-Api-Key", acmeKey)
	expectError(t, r, 404, errNoRoute)
	// Indistinguishable from a path with no route at all.
	miss := e.get("/globex/nothing/x", "X-Api-Key", acmeKey)
	if strings.Replace(r.Body, r.Header.Get("X-Request-Id"), "", 1) != strings.Replace(miss.Body, miss.Header.Get("X-Request-Id"), "", 1) {
		t.Fatalf("cross-tenant 404 differs from a real 404:\n%s\n%s", r.Body, miss.Body)
	}
	if globex.hits.Load() != 1 {
		t.Fatal("cross-tenant request reached the upstream")
	}
}

// TestToolSetAuthRequired: a ToolSet with auth: required makes its auth:
// none tools demand a credential of the tenant.
func TestToolSetAuthRequired(t *testing.T) {
	up, other := newUpstream(t, "in-set"), newUpstream(t, "outside")
	e := newEnv(t, tenant("acme", "")+tenant("globex", "")+consumers+
		tool("acme", "inventory", up.URL, "auth: {type: none}")+
		tool("acme", "public", other.URL, "auth: {type: none}")+
		object("ToolSet", "acme", "set", "tools: [inventory]\npolicies: {auth: required}"))
	key, foreign := e.addKey("acme", "shop", nil), e.addKey("globex", "bot", nil)
	r := e.get("/acme/inventory/x")
	expectError(t, r, 401, errUnauthorized)
	if r.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	expectError(t, e.get("/acme/inventory/x", "X-Api-Key", foreign), 403, errForbidden)
	if r := e.get("/acme/inventory/x", "X-Api-Key", key); r.Status != 200 {
		t.Fatalf("with key: %d", r.Status)
	}
	if r := e.get("/acme/public/x"); r.Status != 200 {
		t.Fatalf("tool outside the set: %d", r.Status)
	}
	// The key that authenticated is still not passed upstream.
	if got := up.last(t).Header.Get("X-Api-Key"); got != "" {
		t.Fatalf("client key forwarded: %q", got)
	}
}

// jwtEnv serves a jwt tool of acme and one of globex; the tenants share
// one issuer and are told apart by the "org" claim. A separate issuer mints
// admin tokens.
type jwtEnv struct {
	*testEnv
	idp, admin, rogue *oidctest.Provider
	acme, globex      *backend
}

func newJWTEnv(t *testing.T) *jwtEnv {
	j := &jwtEnv{
		idp:   oidctest.NewT(t, oidctest.WithHTTP()),
		admin: oidctest.NewT(t, oidctest.WithHTTP(), oidctest.WithAlgorithm(jose.ES256)),
		rogue: oidctest.NewT(t, oidctest.WithHTTP()),
		acme:  newUpstream(t, "acme"), globex: newUpstream(t, "globex"),
	}
	identity := func(org string) string {
		return "identity:\n  issuer: " + j.idp.Issuer() + "\n  audiences: [stoa-test]\n  tenantClaim: {claim: org, value: " + org + "}\n"
	}
	j.testEnv = newEnv(t, tenant("acme", identity("acme"))+tenant("globex", identity("globex"))+consumers+
		gateway("admins:\n  - {issuer: "+j.admin.Issuer()+", claim: roles, value: \"stoa:admin\"}")+
		tool("acme", "billing", j.acme.URL, "auth: {type: jwt}")+
		tool("acme", "reports", j.acme.URL+"/reports", "auth: {type: oauth2, scopes: [reports:read]}")+
		tool("acme", "keyed", j.acme.URL+"/keyed", "auth: {type: apiKey}")+
		tool("globex", "weather", j.globex.URL, "auth: {type: oauth2}"))
	return j
}

func (j *jwtEnv) token(c oidctest.Claims, opts ...oidctest.TokenOption) string {
	return j.idp.MustMint(c, opts...)
}

func TestJWTAuth(t *testing.T) {
	j := newJWTEnv(t)
	claims := func() oidctest.Claims { return j.idp.Claims("alice", "stoa-test").With("org", "acme") }
	now := time.Now()
	noneTok := oidctest.MintNone(claims(), j.idp.ActiveKey().ID)
	confused, err := oidctest.MintHS256WithPublicKey(claims(), j.idp.ActiveKey())
	if err != nil {
		t.Fatal(err)
	}
	hmacTok, err := oidctest.MintHMAC(jose.HS256, []byte("0123456789abcdef0123456789abcdef"), claims(), "")
	if err != nil {
		t.Fatal(err)
	}
	forgeKey, err := oidctest.NewUnpublishedKey(jose.RS256, j.idp.ActiveKey().ID)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := oidctest.MintWith(forgeKey, claims())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		path   string
		token  string
		status int
	}{
		{"valid", "/acme/billing/x", j.token(claims()), 200},
		{"valid with scope", "/acme/reports/x", j.token(claims().With("scope", "openid reports:read")), 200},
		{"missing scope", "/acme/reports/x", j.token(claims().With("scope", "openid")), 403},
		{"expired", "/acme/billing/x", j.token(claims().With("exp", now.Add(-time.Hour).Unix())), 401},
		{"not yet valid", "/acme/billing/x", j.token(claims().With("nbf", now.Add(time.Hour).Unix())), 401},
		{"no exp", "/acme/billing/x", j.token(claims().Without("exp")), 401},
		{"wrong audience", "/acme/billing/x", j.token(claims().With("aud", "someone-else")), 401},
		{"no audience", "/acme/billing/x", j.token(claims().Without("aud")), 401},
		{"wrong issuer claim", "/acme/billing/x", j.token(claims().With("iss", "http://127.0.0.1:1/other")), 401},
		{"untrusted issuer", "/acme/billing/x", j.rogue.MustMint(j.rogue.Claims("alice", "stoa-test").With("org", "acme")), 401},
		{"alg none", "/acme/billing/x", noneTok, 401},
		{"HS256 signed with the public key", "/acme/billing/x", confused, 401},
		{"HS256", "/acme/billing/x", hmacTok, 401},
		{"forged with an unpublished key", "/acme/billing/x", forged, 401},
		{"tampered signature", "/acme/billing/x", oidctest.TamperSignature(j.token(claims())), 401},
		{"tampered payload", "/acme/billing/x", oidctest.TamperPayload(j.token(claims()), func(c oidctest.Claims) { c["sub"] = "mallory" }), 401},
		{"no tenant claim", "/acme/billing/x", j.token(claims().Without("org")), 401},
		{"other tenant's token", "/acme/billing/x", j.token(claims().With("org", "globex")), 403},
		{"token on an apiKey tool", "/acme/keyed/x", j.token(claims()), 403},
		{"globex token on globex", "/globex/weather/x", j.token(claims().With("org", "globex")), 200},
		{"acme token on globex", "/globex/weather/x", j.token(claims()), 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := j.acme.hits.Load() + j.globex.hits.Load()
			r := j.get(c.path, "Authorization", "Bearer "+c.token)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d (body %q)", r.Status, c.status, r.Body)
			}
			hits := j.acme.hits.Load() + j.globex.hits.Load() - before
			if c.status == 200 {
				if hits != 1 {
					t.Fatalf("upstream hits %d, want 1", hits)
				}
				return
			}
			gatewayError(t, r)
			if hits != 0 {
				t.Fatal("refused request reached the upstream")
			}
			if c.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// A flood of tokens with unknown kids costs the IdP at most one
	// refresh per interval.
	j.idp.ResetHits()
	for i := 0; i < 20; i++ {
		tok := j.token(claims(), oidctest.WithKID("unknown-"+strings.Repeat("k", i)))
		if r := j.get("/acme/billing/x", "Authorization", "Bearer "+tok); r.Status != 401 {
			t.Fatalf("unknown kid: %d", r.Status)
		}
	}
	if n := j.idp.JWKSHits(); n > 1 {
		t.Fatalf("unknown kids fetched the JWKS %d times", n)
	}
}

// TestJWTAdmin: a token matching the Gateway's admin rule may use any
// tenant's tools; the same claim from a tenant's own issuer does not make
// an admin.
func TestJWTAdmin(t *testing.T) {
	j := newJWTEnv(t)
	admin := j.admin.MustMint(j.admin.Claims("root", testAudience).With("roles", []string{"stoa:admin"}))
	notAdmin := j.admin.MustMint(j.admin.Claims("root", testAudience).With("roles", []string{"viewer"}))
	selfMade := j.token(j.idp.Claims("eve", "stoa-test").With("org", "globex").With("roles", []string{"stoa:admin"}))
	for _, p := range []string{"/acme/billing/x", "/globex/weather/x"} {
		if r := j.get(p, "Authorization", "Bearer "+admin); r.Status != 200 {
			t.Fatalf("admin on %s: %d %q", p, r.Status, r.Body)
		}
	}
	if r := j.get("/acme/billing/x", "Authorization", "Bearer "+notAdmin); r.Status != 401 {
		t.Fatalf("admin issuer without the claim: %d", r.Status)
	}
	if r := j.get("/acme/billing/x", "Authorization", "Bearer "+selfMade); r.Status != 403 {
		t.Fatalf("tenant token with an admin claim on another tenant: %d", r.Status)
	}
}

func TestAPIKeyOnJWTTool(t *testing.T) {
	j := newJWTEnv(t)
	key := j.addKey("acme", "shop", nil)
	expectError(t, j.get("/acme/billing/x", "X-Api-Key", key), http.StatusForbidden, errForbidden)
	if r := j.get("/acme/keyed/x", "X-Api-Key", key); r.Status != 200 {
		t.Fatalf("key on apiKey tool: %d", r.Status)
	}
}

// TestSuspendedTenant: every call into a suspended tenant is refused
// before authentication, and none reaches the upstream.
func TestSuspendedTenant(t *testing.T) {
	up := newUpstream(t, "u")
	tools := tool("acme", "open", up.URL, "") + tool("acme", "keyed", up.URL, "auth: {type: apiKey}")
	e := newEnv(t, tenant("acme", "suspended: true")+consumers+tools)
	key := e.addKey("acme", "shop", nil)
	expectError(t, e.get("/acme/open/x"), http.StatusForbidden, errForbidden)
	expectError(t, e.get("/acme/keyed/x", "X-Api-Key", key), http.StatusForbidden, errForbidden)
	if up.hits.Load() != 0 {
		t.Fatal("suspended tenant's upstream was hit")
	}
	e.apply(tenant("acme", "") + consumers + tools)
	if r := e.get("/acme/keyed/x", "X-Api-Key", key); r.Status != 200 {
		t.Fatalf("after lifting the suspension: %d", r.Status)
	}
}
