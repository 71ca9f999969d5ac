package proxy

import (
	"strings"
	"testing"
)

// TestRouteOwnerGuard: the route table refuses routes that capture another
// tenant's paths even when validation was skipped (validation refuses
// them first, with positions).
func TestRouteOwnerGuard(t *testing.T) {
	up := newUpstream(t, "u")
	base := tenant("acme", "") + tenant("globex", "") + tool("acme", "billing", up.URL, "")
	e := newEnv(t, base)
	for _, tc := range []struct{ name, extra, want string }{
		{"other tenant's space", "route: {pathPrefix: /acme/nope}", "lies in tenant acme's space"},
		{"catch-all beside other tenants", "route: {pathPrefix: /}", "would capture tenant acme's paths"},
		{"mcp endpoint", "route: {pathPrefix: /mcp}", "reserved"},
		{"under well-known", "route: {pathPrefix: /.well-known/oauth-authorization-server}", "reserved"},
		{"granted host", "route: {pathPrefix: /globex/x, host: api.acme.example}", "granted to tenant acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := gateway("routing: {grants: [{tenant: acme, hosts: [API.acme.example]}]}")
			err := e.tryApply(base + gw + tool("globex", "grab", up.URL, tc.extra))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
			if r := e.get("/acme/billing/x"); r.Status != 200 {
				t.Fatalf("a refused revision changed the live one: %d", r.Status)
			}
		})
	}
	// Neighbours that stay allowed: a tenant's own space, another path, a
	// host route inside its own space.
	e.apply(base + tool("globex", "own", up.URL, "route: {pathPrefix: /globex/x}") +
		tool("globex", "api", up.URL, "route: {pathPrefix: /api}") +
		tool("globex", "hosted", up.URL, "route: {pathPrefix: /globex/h, host: globex.example}") +
		tool("globex", "acmeish", up.URL, "route: {pathPrefix: /acmex}"))
}

// TestCatchAllSkipsReservedPaths: a granted catch-all answers every path
// except the ones stoad serves itself, mounted or not.
func TestCatchAllSkipsReservedPaths(t *testing.T) {
	up := newUpstream(t, "u")
	e := newEnv(t, tenant("solo", "")+tool("solo", "root", up.URL, "route: {pathPrefix: /}"))
	for _, p := range []string{"/x", "/mcpx", "/well-known", "/solo/a"} {
		if r := e.get(p); r.Status != 200 {
			t.Errorf("GET %s = %d, want the catch-all", p, r.Status)
		}
	}
	for _, p := range []string{"/mcp/x", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/.well-known"} {
		r := e.get(p)
		expectError(t, r, 404, errNoRoute)
	}
}

// TestFederatedToolHasNoRoute: a protocol: mcp Tool compiles into no HTTP
// route (it has no upstream, timeouts or circuit breaker of its own).
func TestFederatedToolHasNoRoute(t *testing.T) {
	up := newUpstream(t, "u")
	e := newEnv(t, tenant("acme", "")+tool("acme", "rest", up.URL, "auth: {type: none}")+
		strings.Replace(tool("acme", "fed", "", "mcp: {url: 'http://127.0.0.1:1/mcp'}"), "protocol: rest", "protocol: mcp", 1))
	if r := e.get("/acme/fed/x"); r.Status != 404 {
		t.Fatalf("federated tool answered over HTTP: %d %s", r.Status, r.Body)
	}
	if r := e.get("/acme/rest/x"); r.Status != 200 {
		t.Fatalf("rest tool beside it: %d %s", r.Status, r.Body)
	}
}
