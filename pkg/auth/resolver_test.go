package auth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/auth/oidctest"
)

func TestTenantClaimMapping(t *testing.T) {
	p := newProvider(t)
	r := newResolver(t, p, ResolverConfig{
		DefaultAudiences: []string{testAud},
		Identities: []Identity{
			{Tenant: "acme", Issuer: p.Issuer(), TenantClaim: &ClaimMatch{Claim: "org.name", Value: "acme"}},
			{Tenant: "globex", Issuer: p.Issuer(), TenantClaim: &ClaimMatch{Claim: "groups", Value: "globex"}},
			{Tenant: "initech", Issuer: p.Issuer(), Audiences: []string{"initech-api"}, TenantClaim: &ClaimMatch{Claim: "https://initech.example/tenant", Value: "initech"}},
		},
	})
	claims := func(aud string) oidctest.Claims { return p.Claims("u", aud) }
	tests := []struct {
		name   string
		claims oidctest.Claims
		tenant string
		want   error
	}{
		{"nested claim", claims(testAud).With("org", map[string]any{"name": "acme"}), "acme", nil},
		{"array contains", claims(testAud).With("groups", []string{"x", "globex"}), "globex", nil},
		{"literal dotted claim name", claims("initech-api").With("https://initech.example/tenant", "initech"), "initech", nil},
		{"right claim, wrong audience for tenant", claims(testAud).With("https://initech.example/tenant", "initech"), "", ErrTokenNoTenant},
		{"no tenant claim", claims(testAud), "", ErrTokenNoTenant},
		{"wrong value", claims(testAud).With("org", map[string]any{"name": "globex"}), "", ErrTokenNoTenant},
		{"claim of another type", claims(testAud).With("org", "acme"), "", ErrTokenNoTenant},
		{"two tenants match", claims(testAud).With("org", map[string]any{"name": "acme"}).With("groups", []string{"globex"}), "", ErrTokenAmbiguousTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := r.Authenticate(bg, mint(t, p, tt.claims), t0)
			wantErr(t, err, tt.want)
			if err == nil && (pr.Tenant != tt.tenant || pr.Admin) {
				t.Errorf("tenant %q admin %v, want %q", pr.Tenant, pr.Admin, tt.tenant)
			}
		})
	}
}

func TestAdminRule(t *testing.T) {
	tenantIdP := newProvider(t)
	platform := newProvider(t)
	// Both providers' certificates come from httptest's one test CA, so one
	// client trusts both.
	ks := testKeySets(platform, KeySetOptions{})
	admin := ClaimMatch{Claim: "realm_access.roles", Value: "stoa:admin"}
	r := newResolver(t, platform, ResolverConfig{
		KeySets:          ks,
		DefaultAudiences: []string{testAud},
		Identities:       []Identity{{Tenant: "acme", Issuer: tenantIdP.Issuer()}, {Tenant: "ops", Issuer: platform.Issuer(), TenantClaim: &ClaimMatch{Claim: "team", Value: "ops"}}},
		Admins:           []AdminRule{{Issuer: platform.Issuer(), Claim: admin}},
	})
	roles := map[string]any{"roles": []string{"viewer", "stoa:admin"}}

	pr, err := r.Authenticate(bg, mint(t, platform, platform.Claims("root", testAud).With("realm_access", roles)), t0)
	if err != nil {
		t.Fatal(err)
	}
	if !pr.Admin || pr.Tenant != "" || !pr.CanAccess("acme") || !pr.CanAccess("globex") {
		t.Errorf("platform admin: %+v", pr)
	}
	pr, err = r.Authenticate(bg, mint(t, platform, platform.Claims("lead", testAud).With("realm_access", roles).With("team", "ops")), t0)
	if err != nil || !pr.Admin || pr.Tenant != "ops" {
		t.Errorf("admin in a tenant: %+v, %v", pr, err)
	}
	// The same claim from a tenant's own IdP grants nothing.
	pr, err = r.Authenticate(bg, mint(t, tenantIdP, tenantIdP.Claims("mallory", testAud).With("realm_access", roles)), t0)
	if err != nil || pr.Admin || pr.Tenant != "acme" || pr.CanAccess("globex") || !pr.CanAccess("acme") {
		t.Errorf("tenant token with admin claim: %+v, %v", pr, err)
	}
	// A platform token without the claim and without a tenant is refused.
	_, err = r.Authenticate(bg, mint(t, platform, platform.Claims("nobody", testAud)), t0)
	wantErr(t, err, ErrTokenNoTenant)
}

func TestResolverConfigErrors(t *testing.T) {
	const iss = "https://idp.example"
	claim := &ClaimMatch{Claim: "org", Value: "a"}
	tests := []struct {
		name string
		cfg  ResolverConfig
		want string
	}{
		{"shared issuer without claim", ResolverConfig{DefaultAudiences: []string{"x"}, Identities: []Identity{{Tenant: "a", Issuer: iss, TenantClaim: claim}, {Tenant: "b", Issuer: iss}}}, "set identity.tenantClaim"},
		{"shared issuer same claim", ResolverConfig{DefaultAudiences: []string{"x"}, Identities: []Identity{{Tenant: "a", Issuer: iss, TenantClaim: claim}, {Tenant: "b", Issuer: iss, TenantClaim: claim}}}, "same tenant claim"},
		{"no audiences", ResolverConfig{Identities: []Identity{{Tenant: "a", Issuer: iss}}}, "no audiences"},
		{"plain http issuer", ResolverConfig{DefaultAudiences: []string{"x"}, Identities: []Identity{{Tenant: "a", Issuer: "http://idp.example"}}}, "want https"},
		{"relative issuer", ResolverConfig{DefaultAudiences: []string{"x"}, Identities: []Identity{{Tenant: "a", Issuer: "idp"}}}, "want https"},
		{"two jwks urls", ResolverConfig{DefaultAudiences: []string{"x"}, Identities: []Identity{{Tenant: "a", Issuer: iss, TenantClaim: claim}, {Tenant: "b", Issuer: iss, JWKSURL: iss + "/keys", TenantClaim: &ClaimMatch{Claim: "org", Value: "b"}}}}, "two different jwks urls"},
		{"no tenant name", ResolverConfig{DefaultAudiences: []string{"x"}, Identities: []Identity{{Issuer: iss}}}, "without a tenant"},
		{"hmac", ResolverConfig{DefaultAudiences: []string{"x"}, Identities: []Identity{{Tenant: "a", Issuer: iss, Algorithms: []string{"HS256"}}}}, `"HS256" is not allowed`},
		{"admin without issuer", ResolverConfig{DefaultAudiences: []string{"x"}, Admins: []AdminRule{{Claim: ClaimMatch{Claim: "r", Value: "admin"}}}}, "admin rule 1: issuer"},
		{"admin without claim", ResolverConfig{DefaultAudiences: []string{"x"}, Admins: []AdminRule{{Issuer: iss}}}, "needs a claim"},
		{"empty tenant claim", ResolverConfig{DefaultAudiences: []string{"x"}, Identities: []Identity{{Tenant: "a", Issuer: iss, TenantClaim: &ClaimMatch{Claim: "org"}}}}, "needs a claim and a value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewResolver(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := NewResolver(ResolverConfig{DefaultAudiences: []string{"x"}, Identities: []Identity{{Tenant: "a", Issuer: "http://127.0.0.1:8080/realms/a"}}}); err != nil {
		t.Errorf("loopback http issuer refused: %v", err)
	}
}

func TestClaimLookup(t *testing.T) {
	var claims map[string]any
	d := json.NewDecoder(strings.NewReader(`{
		"realm_access": {"roles": ["a", "b"]},
		"https://x.example/roles": ["admin"],
		"a.b": {"c": "literal-then-nested"},
		"a": {"b": {"c": "nested"}},
		"n": 42, "t": true, "s": "str"
	}`))
	d.UseNumber()
	if err := d.Decode(&claims); err != nil {
		t.Fatal(err)
	}
	p := &Principal{claims: claims}
	tests := []struct {
		m    ClaimMatch
		want bool
	}{
		{ClaimMatch{"realm_access.roles", "b"}, true},
		{ClaimMatch{"realm_access.roles", "c"}, false},
		{ClaimMatch{"https://x.example/roles", "admin"}, true},
		{ClaimMatch{"a.b.c", "literal-then-nested"}, true},
		{ClaimMatch{"n", "42"}, true},
		{ClaimMatch{"t", "true"}, true},
		{ClaimMatch{"s", "str"}, true},
		{ClaimMatch{"s.x", "str"}, false},
		{ClaimMatch{"missing", ""}, false},
		{ClaimMatch{"realm_access", "a"}, false},
	}
	for _, tt := range tests {
		if got := p.Matches(tt.m); got != tt.want {
			t.Errorf("%+v: got %v", tt.m, got)
		}
	}
	if _, ok := (&Principal{}).Claim("x"); ok {
		t.Error("claim found on a principal without claims")
	}
}

func TestAuthenticator(t *testing.T) {
	var a Authenticator
	_, err := a.Authenticate(bg, []byte("Bearer abc.def.ghi"), nil, t0)
	wantErr(t, err, ErrTokenUnknownIssuer)
	_, err = a.Authenticate(bg, nil, []byte("stoa_sk_x"), t0)
	wantErr(t, err, ErrKeyMalformed)
	_, err = a.Authenticate(bg, nil, nil, t0)
	wantErr(t, err, ErrNoCredential)

	p := newProvider(t)
	a.SetResolver(newResolver(t, p, ResolverConfig{}))
	k, rec := newKey(t, KeyOptions{})
	ix, err := NewKeyIndex([]KeyRecord{rec})
	if err != nil {
		t.Fatal(err)
	}
	a.SetKeys(ix)
	if a.Keys() != ix || a.Resolver() == nil {
		t.Fatal("snapshots not installed")
	}
	for name, hdr := range map[string][2]string{
		"x-api-key":  {"", k},
		"bearer key": {"Bearer " + k, ""},
		"jwt":        {"Bearer " + string(mint(t, p, p.Claims("a", testAud))), ""},
	} {
		pr, err := a.Authenticate(bg, []byte(hdr[0]), []byte(hdr[1]), t0)
		if err != nil || pr.Tenant != "acme" {
			t.Errorf("%s: %+v %v", name, pr, err)
		}
	}
}
