package spec

import (
	"fmt"
	"strings"
	"testing"
)

// routeDocs builds a spec set: tenants, an optional Gateway spec (YAML
// under spec:) and tools given as "tenant/name route-yaml".
func routeDocs(tenants []string, gateway string, tools ...string) string {
	var b strings.Builder
	for _, t := range tenants {
		fmt.Fprintf(&b, "---\napiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: %s\n", t)
	}
	if gateway != "" {
		fmt.Fprintf(&b, "---\napiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  %s\n", gateway)
	}
	for _, t := range tools {
		ref, route, _ := strings.Cut(t, " ")
		ns, name, _ := strings.Cut(ref, "/")
		fmt.Fprintf(&b, "---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  upstream: http://127.0.0.1:1\n", name, ns)
		if route != "" {
			fmt.Fprintf(&b, "  route: %s\n", route)
		}
	}
	return b.String()
}

func TestRouteOwnership(t *testing.T) {
	two := []string{"acme", "globex"}
	grants := "routing: {grants: [{tenant: acme, pathPrefixes: [/api], hosts: [api.acme.example]}]}"
	for _, tc := range []struct {
		name, in string
		path     string // "" = no diagnostic expected
		msg      string
		related  string // substring of the first related message
	}{
		{"own space", routeDocs(two, "", "globex/a {pathPrefix: /globex/a/b}"), "", "", ""},
		{"own space root", routeDocs(two, "", "globex/a {pathPrefix: /globex}"), "", "", ""},
		{"default route", routeDocs(two, "", "globex/a"), "", "", ""},
		{"catch-all beside another tenant", routeDocs(two, "", "globex/a {pathPrefix: /}"),
			"spec.route.pathPrefix", "route / of tenant globex would capture the paths of every other tenant (acme)", "tenant acme is defined here"},
		{"catch-all on a host", routeDocs(two, "", "globex/a {pathPrefix: /, host: x.example}"),
			"spec.route.pathPrefix", "route / on host x.example of tenant globex would capture", "tenant acme"},
		{"other tenant's space", routeDocs(two, "", "globex/a {pathPrefix: /acme/nope}"),
			"spec.route.pathPrefix", "route /acme/nope of tenant globex lies in tenant acme's space /acme/", "tenant acme is defined here"},
		{"other tenant's space exactly", routeDocs(two, "", "globex/a {pathPrefix: /acme/}"),
			"spec.route.pathPrefix", "lies in tenant acme's space", ""},
		{"prefix of a name is not the space", routeDocs(two, grants+"\n", "acme/a {pathPrefix: /acmex}"),
			"spec.route.pathPrefix", "route /acmex of tenant acme lies outside its space /acme/ and no grant", ""},
		{"ungranted prefix", routeDocs(two, "", "globex/a {pathPrefix: /api}"),
			"spec.route.pathPrefix", "lies outside its space /globex/ and no grant in the Gateway", ""},
		{"granted prefix", routeDocs(two, grants, "acme/a {pathPrefix: /api/v1}"), "", "", ""},
		{"granted prefix exactly", routeDocs(two, grants, "acme/a {pathPrefix: /api/}"), "", "", ""},
		{"another tenant's grant", routeDocs(two, grants, "globex/a {pathPrefix: /api/x}"),
			"spec.route.pathPrefix", "route /api/x of tenant globex overlaps /api, granted to tenant acme", "granted to tenant acme here"},
		{"above another tenant's grant", routeDocs(two, "routing: {grants: [{tenant: acme, pathPrefixes: [/api/v1]}]}", "globex/a {pathPrefix: /api}"),
			"spec.route.pathPrefix", "route /api of tenant globex overlaps /api/v1, granted to tenant acme", ""},
		{"granted host", routeDocs(two, grants, "acme/a {pathPrefix: /, host: API.acme.example:8443}"), "", "", ""},
		{"another tenant's host", routeDocs(two, grants, "globex/a {pathPrefix: /globex/a, host: api.acme.example}"),
			"spec.route.host", "host api.acme.example is granted to tenant acme; tenant globex cannot route on it", "granted to tenant acme here"},
		{"host route in own space", routeDocs(two, "", "globex/a {pathPrefix: /globex/a, host: shared.example}", "acme/a {pathPrefix: /acme/a, host: shared.example}"), "", "", ""},
		{"mcp endpoint", routeDocs(two, "", "acme/a {pathPrefix: /mcp}"), "spec.route.pathPrefix", "route /mcp is reserved: stoad serves the MCP endpoint at /mcp", ""},
		{"under mcp", routeDocs(two, grants, "acme/a {pathPrefix: /mcp/x, host: api.acme.example}"), "spec.route.pathPrefix", "reserved", ""},
		{"well-known", routeDocs(two, "", "acme/a {pathPrefix: /.well-known/oauth-authorization-server}"), "spec.route.pathPrefix", "reserved: stoad serves the MCP OAuth metadata", ""},
		{"mcp-like", routeDocs(two, "routing: {grants: [{tenant: acme, pathPrefixes: [/mcpx]}]}", "acme/a {pathPrefix: /mcpx}"), "", "", ""},
		// Grants.
		{"grant covers a tenant", routeDocs(two, "routing: {grants: [{tenant: acme, pathPrefixes: [/globex/x]}]}"),
			"spec.routing.grants[0].pathPrefixes[0]", "path prefix /globex/x granted to tenant acme covers tenant globex's space /globex/", "tenant globex is defined here"},
		{"catch-all grant beside tenants", routeDocs([]string{"acme", "globex", "initech"}, "routing: {grants: [{tenant: acme, pathPrefixes: [/]}]}"),
			"spec.routing.grants[0].pathPrefixes[0]", "path prefix / granted to tenant acme covers the spaces of 2 other tenants (globex, initech)", ""},
		{"catch-all grant, one tenant", routeDocs([]string{"solo"}, "routing: {grants: [{tenant: solo, pathPrefixes: [/]}]}", "solo/root {pathPrefix: /}"), "", "", ""},
		{"overlapping grants", routeDocs(two, "routing: {grants: [{tenant: acme, pathPrefixes: [/api]}, {tenant: globex, pathPrefixes: [/api/v2]}]}"),
			"spec.routing.grants[1].pathPrefixes[0]", "path prefix /api/v2 granted to tenant globex overlaps /api, granted to tenant acme", "/api is granted to tenant acme here"},
		{"host granted twice", routeDocs(two, "routing: {grants: [{tenant: acme, hosts: [a.example]}, {tenant: globex, hosts: [A.example:80]}]}"),
			"spec.routing.grants[1].hosts[0]", "host a.example is granted to tenant acme and to tenant globex", ""},
		{"reserved grant", routeDocs(two, "routing: {grants: [{tenant: acme, pathPrefixes: [/.well-known/x]}]}"),
			"spec.routing.grants[0].pathPrefixes[0]", "path prefix /.well-known/x is reserved", ""},
		{"grant syntax", routeDocs(two, "routing: {grants: [{tenant: acme, pathPrefixes: [api]}]}"),
			"spec.routing.grants[0].pathPrefixes[0]", "must start with '/'", ""},
		{"empty grant", routeDocs(two, "routing: {grants: [{tenant: acme}]}"), "spec.routing.grants[0]", "needs pathPrefixes or hosts", ""},
		{"grant to unknown tenant", routeDocs(two, "routing: {grants: [{tenant: acne, hosts: [a.example]}]}"),
			"spec.routing.grants[0].tenant", `Tenant "acne" not found`, ""},
		{"reserved tenant name", routeDocs([]string{"mcp"}, ""), "metadata.name", `tenant name "mcp" is reserved`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := runPipelineText(tc.in, ValidateOptions{})
			if tc.path == "" {
				if len(diags) > 0 {
					t.Fatalf("unexpected: %v", diags)
				}
				return
			}
			d := findDiag(diags, tc.path, tc.msg)
			if d == nil || !d.IsError() || d.Line == 0 {
				t.Fatalf("want %q at %s, got:\n%v", tc.msg, tc.path, diags)
			}
			if tc.related != "" && (len(d.Related) == 0 || !strings.Contains(d.Related[0].Message, tc.related) || d.Related[0].Line == 0) {
				t.Errorf("related: %+v", d.Related)
			}
		})
	}
}

// TestRouteOwnershipAgainstLive: the daemon validates the whole desired
// state; live objects are victims and grants too.
func TestRouteOwnershipAgainstLive(t *testing.T) {
	live := mustParse(t, routeDocs([]string{"acme", "globex"}, "routing: {grants: [{tenant: acme, pathPrefixes: [/api]}]}"))
	for _, o := range live {
		o.Source = nil // as stoad holds them
	}
	// The tool alone, the tenants and Gateway live.
	diags := Validate(mustParse(t, routeDocs(nil, "", "globex/a {pathPrefix: /acme/x}")), ValidateOptions{Live: live})
	d := findDiag(diags, "spec.route.pathPrefix", "lies in tenant acme's space")
	if d == nil || len(d.Related) != 1 || d.Related[0].File != "" || d.Related[0].Location() != "Tenant/acme metadata.name (live)" {
		t.Fatalf("against live: %+v", diags)
	}
	if diags := Validate(mustParse(t, routeDocs(nil, "", "acme/a {pathPrefix: /api/x}")), ValidateOptions{Live: live}); len(diags) > 0 {
		t.Errorf("live grant not honoured: %v", diags)
	}
	// A new Tenant named after another tenant's grant is refused on the
	// Tenant, pointing at the live grant.
	diags = Validate(mustParse(t, routeDocs([]string{"api"}, "")), ValidateOptions{Live: live})
	if d := findDiag(diags, "metadata.name", "tenant api's space /api/ is granted to tenant acme"); d == nil || len(d.Related) != 1 {
		t.Errorf("tenant under a grant: %v", diags)
	}
}

// TestRouteOwnershipOffline: without a Gateway in the files, an ungranted
// prefix is a note offline (an error with StrictRefs) and left to stoad by
// apply's local check; definite conflicts are errors everywhere.
func TestRouteOwnershipOffline(t *testing.T) {
	in := routeDocs([]string{"globex"}, "", "globex/a {pathPrefix: /api}")
	_, diags := runPipelineText(in, ValidateOptions{Offline: true})
	d := findDiag(diags, "spec.route.pathPrefix", "no Gateway in these files grants it")
	if d == nil || d.Severity != SeverityNote || diags.HasErrors() {
		t.Fatalf("offline: %v", diags)
	}
	_, diags = runPipelineText(in, ValidateOptions{Offline: true, StrictRefs: true})
	if d := findDiag(diags, "spec.route.pathPrefix", "no Gateway in these files grants it"); d == nil || !d.IsError() {
		t.Fatalf("strict: %v", diags)
	}
	if _, diags = runPipelineText(in, ValidateOptions{SkipReferences: true}); len(diags) > 0 {
		t.Fatalf("skip references: %v", diags)
	}
	// A Gateway in the files is the Gateway: no note, an error.
	_, diags = runPipelineText(routeDocs([]string{"globex"}, "crossTenant: forbidden", "globex/a {pathPrefix: /api}"), ValidateOptions{Offline: true})
	if d := findDiag(diags, "spec.route.pathPrefix", "no grant in the Gateway"); d == nil || !d.IsError() {
		t.Fatalf("offline with gateway: %v", diags)
	}
	// Another tenant's space is an error offline too.
	_, diags = runPipelineText(routeDocs([]string{"acme"}, "", "globex/a {pathPrefix: /acme/x}"), ValidateOptions{Offline: true})
	if d := findDiag(diags, "spec.route.pathPrefix", "lies in tenant acme's space"); d == nil || !d.IsError() {
		t.Fatalf("offline capture: %v", diags)
	}
}
