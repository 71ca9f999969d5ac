package identity

import (
	"log/slog"
	"reflect"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

func object(kind spec.Kind, ns, name string, s spec.Spec) *spec.Object {
	return &spec.Object{APIVersion: spec.APIVersion, Kind: kind, Metadata: spec.Metadata{Name: name, Namespace: ns}, Spec: s}
}

// TestResolverConfig: tenants' issuers, tools' own issuers (once per
// tenant, with the tenant's claim) and the Gateway's admin rules.
func TestResolverConfig(t *testing.T) {
	r := New(&auth.Authenticator{}, func() string { return "http://gw/mcp" }, slog.New(slog.DiscardHandler))
	claim := &spec.ClaimMatch{Claim: "org", Value: "acme"}
	rev := state.New(1, []*spec.Object{
		object(spec.KindGateway, "", "default", &spec.GatewaySpec{Admins: []spec.AdminRule{{Issuer: "https://corp", Claim: "role", Value: "admin"}}}),
		object(spec.KindTenant, "", "acme", &spec.TenantSpec{Identity: &spec.TenantIdentity{Issuer: "https://idp", TenantClaim: claim}}),
		object(spec.KindTenant, "", "globex", &spec.TenantSpec{}),
		object(spec.KindTool, "acme", "a", &spec.ToolSpec{Auth: &spec.ToolAuth{Type: "jwt", Issuer: "https://idp"}}), // the tenant's own
		object(spec.KindTool, "acme", "b", &spec.ToolSpec{Auth: &spec.ToolAuth{Type: "jwt", Issuer: "https://partner", Audiences: []string{"b"}}}),
		object(spec.KindTool, "acme", "c", &spec.ToolSpec{Auth: &spec.ToolAuth{Type: "jwt", Issuer: "https://partner"}}),
		object(spec.KindTool, "globex", "d", &spec.ToolSpec{Auth: &spec.ToolAuth{Type: "apiKey"}}),
	})
	cfg := r.resolverConfig(rev)
	if !reflect.DeepEqual(cfg.DefaultAudiences, []string{"http://gw/mcp"}) {
		t.Fatalf("default audiences %v", cfg.DefaultAudiences)
	}
	want := []auth.Identity{
		{Tenant: "acme", Issuer: "https://idp", TenantClaim: &auth.ClaimMatch{Claim: "org", Value: "acme"}},
		{Tenant: "acme", Issuer: "https://partner", Audiences: []string{"b"}, TenantClaim: &auth.ClaimMatch{Claim: "org", Value: "acme"}},
	}
	if !reflect.DeepEqual(cfg.Identities, want) {
		t.Fatalf("identities:\n%+v\nwant\n%+v", cfg.Identities, want)
	}
	if len(cfg.Admins) != 1 || cfg.Admins[0].Issuer != "https://corp" || cfg.Admins[0].Claim != (auth.ClaimMatch{Claim: "role", Value: "admin"}) {
		t.Fatalf("admins: %+v", cfg.Admins)
	}
	if c := r.Status(); c.State != "ok" || c.Detail != "no token issuers configured (API keys only)" {
		t.Fatalf("status before a swap: %+v", c)
	}
}
