package rbac

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// roles renders grants as "cluster" or "acme=editor,globex=viewer".
func roles(g Grants) string {
	if g.Cluster() {
		return "cluster"
	}
	var parts []string
	for _, t := range g.Tenants() {
		parts = append(parts, t+"="+g.Role(t).String())
	}
	return strings.Join(parts, ",")
}

func TestRolesMatching(t *testing.T) {
	b := fixture(t)
	cases := []struct {
		name string
		id   Identity
		want string
	}{
		{"groups as an array", tok(t, "bob", `{"groups": ["acme-view", "unrelated"]}`), "acme=viewer"},
		{"groups as a space-separated string", tok(t, "bob", `{"groups": "unrelated acme-dev"}`), "acme=editor"},
		{"groups as a comma-separated string", tok(t, "bob", `{"groups": "acme-view,globex-admins"}`), "acme=viewer,globex=admin"},
		{"groups with commas and spaces", tok(t, "bob", `{"groups": " acme-view ,, acme-dev "}`), "acme=editor"},
		{"highest role per tenant", tok(t, "bob", `{"groups": ["acme-dev", "acme-view"]}`), "acme=editor"},
		{"a group is matched whole", tok(t, "bob", `{"groups": ["acme-viewer", "acme", "ACME-VIEW"]}`), ""},
		{"array elements are not split", tok(t, "bob", `{"groups": ["x acme-view"]}`), ""},
		{"groups claim of another type", tok(t, "bob", `{"groups": {"acme-view": true}}`), ""},
		{"no groups claim", tok(t, "bob", `{}`), ""},
		{"issuer-pinned subject", tok(t, "alice", `{}`), "acme=admin"},
		{"pinned subject, other issuer", tokOf(t, issB, "alice", `{}`), ""},
		{"subject from the groups claim does not count", tok(t, "bob", `{"groups": ["alice"]}`), ""},
		{"cluster admin by group", tok(t, "carol", `{"groups": ["platform", "acme-view"]}`), "cluster"},
		{"bootstrap admin by subject", tok(t, "root", `{}`), "cluster"},
		{"bootstrap subject of any issuer", tokOf(t, issB, "root", `{}`), "cluster"},
		{"claims: string equal", tok(t, "dave", `{"department": "audit"}`), "globex=viewer"},
		{"claims: array member", tok(t, "dave", `{"department": ["sales", "audit"]}`), "globex=viewer"},
		{"claims: string not split", tok(t, "dave", `{"department": "sales audit"}`), ""},
		{"claims: different value", tok(t, "dave", `{"department": "Audit"}`), ""},
		{"roles add up across matchers", tok(t, "alice", `{"groups": ["globex-admins"], "department": "audit"}`), "acme=admin,globex=admin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := roles(b.Roles(c.id)); got != c.want {
				t.Fatalf("roles = %q, want %q", got, c.want)
			}
		})
	}
}

func TestClaimsAllMustMatch(t *testing.T) {
	b, err := Compile(Config{Tenants: map[string][]AccessEntry{
		"acme": {{Role: "editor", Claims: map[string]string{
			"department":         "eng",
			"realm_access.roles": "stoa-editor",
			"email_verified":     "true",
			"level":              "3",
		}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	all := `"department": "eng", "realm_access": {"roles": ["x", "stoa-editor"]}, "email_verified": true, "level": 3`
	cases := []struct {
		claims string
		want   string
	}{
		{`{` + all + `}`, "acme=editor"},
		{`{"department": "eng", "realm_access": {"roles": ["x"]}, "email_verified": true, "level": 3}`, ""},
		{`{"department": "eng", "realm_access": {"roles": "stoa-editor"}, "email_verified": false, "level": 3}`, ""},
		{`{"department": "eng", "realm_access": {"roles": "stoa-editor"}, "email_verified": true, "level": 3.5}`, ""},
		{`{"department": "eng", "realm_access": {"roles": "stoa-editor"}, "email_verified": "true", "level": "3"}`, "acme=editor"},
		{`{"realm_access": {"roles": ["stoa-editor"]}, "email_verified": true, "level": 3}`, ""},
		// A literal key with dots beats nesting, as in pkg/auth.
		{`{"department": "eng", "realm_access.roles": ["stoa-editor"], "email_verified": true, "level": 3}`, "acme=editor"},
	}
	for _, c := range cases {
		if got := roles(b.Roles(tok(t, "u", c.claims))); got != c.want {
			t.Errorf("claims %s: roles = %q, want %q", c.claims, got, c.want)
		}
	}
}

func TestClaimsPinnedByIss(t *testing.T) {
	b, err := Compile(Config{
		Issuers: []string{issA, issB},
		Tenants: map[string][]AccessEntry{
			"acme": {{Role: "viewer", Claims: map[string]string{"iss": issA, "team": "acme"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := roles(b.Roles(tok(t, "u", `{"team": "acme"}`))); got != "acme=viewer" {
		t.Fatalf("issuer A: %q", got)
	}
	if got := roles(b.Roles(tokOf(t, issB, "u", `{"team": "acme"}`))); got != "" {
		t.Fatalf("issuer B: %q", got)
	}
	// "iss" is the verified issuer, not whatever the claims map says.
	id := tokOf(t, issB, "u", `{"team": "acme"}`)
	id.Claims["iss"] = issA
	if got := roles(b.Roles(id)); got != "" {
		t.Fatalf("forged iss claim: %q", got)
	}
}

func TestPinnedGroups(t *testing.T) {
	b, err := Compile(Config{
		Issuers: []string{issA, issB},
		Tenants: map[string][]AccessEntry{"acme": {{Role: "admin", Groups: []string{issA + "#ops"}}}},
		Gateway: GatewayAccess{Admins: Matchers{Groups: []string{issA + "#platform"}, Subjects: []string{issB + "#svc#1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   Identity
		want string
	}{
		{tok(t, "u", `{"groups": ["ops"]}`), "acme=admin"},
		{tokOf(t, issB, "u", `{"groups": ["ops"]}`), ""},
		{tok(t, "u", `{"groups": ["platform"]}`), "cluster"},
		{tokOf(t, issB, "u", `{"groups": ["platform"]}`), ""},
		// The first "#" after the issuer separates: the subject keeps its own.
		{tokOf(t, issB, "svc#1", `{}`), "cluster"},
		{tok(t, "svc#1", `{}`), ""},
	} {
		if got := roles(b.Roles(c.id)); got != c.want {
			t.Errorf("%s: roles = %q, want %q", c.id.Actor(), got, c.want)
		}
	}
}

func TestGroupsClaim(t *testing.T) {
	cfg := fixtureConfig()
	cfg.Gateway.GroupsClaim = "realm_access.groups"
	cfg.GroupsClaim = "ignored-when-the-gateway-names-one"
	b, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b.GroupsClaim() != "realm_access.groups" {
		t.Fatalf("groups claim %q", b.GroupsClaim())
	}
	if got := roles(b.Roles(tok(t, "u", `{"realm_access": {"groups": ["acme-dev"]}, "groups": ["platform"]}`))); got != "acme=editor" {
		t.Fatalf("roles = %q", got)
	}
	// Before a Gateway exists the flag's claim is used.
	cfg.Gateway.GroupsClaim = ""
	cfg.GroupsClaim = "roles"
	b, err = Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := roles(b.Roles(tok(t, "u", `{"roles": "platform", "groups": ["acme-dev"]}`))); got != "cluster" {
		t.Fatalf("roles = %q", got)
	}
}

func TestBootstrapWithoutGateway(t *testing.T) {
	b, err := Compile(Config{Bootstrap: Matchers{Groups: []string{"stoa-admins"}, Subjects: []string{issA + "#ops-bot"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Roles(tok(t, "x", `{"groups": "stoa-admins"}`)).Cluster() {
		t.Fatal("bootstrap group is not cluster admin")
	}
	if !b.Roles(tok(t, "ops-bot", `{}`)).Cluster() {
		t.Fatal("bootstrap subject is not cluster admin")
	}
	if g := b.Roles(tok(t, "x", `{"groups": ["other"]}`)); g.Any() {
		t.Fatalf("unbound token has roles: %s", roles(g))
	}
}

func TestManyTenantsSpill(t *testing.T) {
	cfg := Config{Tenants: map[string][]AccessEntry{}}
	var want []string
	for i := range 3 * inlineGrants {
		ten := fmt.Sprintf("t%02d", i)
		role := []string{"viewer", "editor", "admin"}[i%3]
		cfg.Tenants[ten] = []AccessEntry{{Role: role, Groups: []string{"all"}}, {Role: "viewer", Groups: []string{"all"}}}
		want = append(want, ten+"="+role)
	}
	b, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := roles(b.Roles(tok(t, "u", `{"groups": ["all"]}`))); got != strings.Join(want, ",") {
		t.Fatalf("roles = %q\nwant %q", got, strings.Join(want, ","))
	}
}

func TestNilBindingsGrantNothing(t *testing.T) {
	var b *Bindings
	if g := b.Roles(tok(t, "root", `{"groups": ["platform"]}`)); g.Any() {
		t.Fatal("nil bindings granted a role")
	}
	a := NewAuthorizer(nil)
	if a.Roles(tok(t, "root", `{}`)).Any() {
		t.Fatal("authorizer without bindings granted a role")
	}
	a.Set(fixture(t))
	if !a.Roles(tok(t, "root", `{}`)).Cluster() {
		t.Fatal("authorizer did not take the new bindings")
	}
}

func TestCompileProblems(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string // substrings of each problem, in order
	}{
		{"unknown role", Config{Tenants: map[string][]AccessEntry{"acme": {{Role: "owner", Groups: []string{"g"}}}}},
			[]string{`Tenant acme: spec.access[0].role: unknown role "owner" (roles: viewer, editor, admin)`}},
		{"entry without matchers", Config{Tenants: map[string][]AccessEntry{"acme": {{Role: "viewer"}}}},
			[]string{"Tenant acme: spec.access[0]: access entry matches nobody"}},
		{"empty and padded values", Config{Tenants: map[string][]AccessEntry{"acme": {{Role: "viewer", Groups: []string{"", " g"}, Subjects: []string{issA + "#"}}}}},
			[]string{"spec.access[0].groups[0]: empty group", `spec.access[0].groups[1]: group " g" has surrounding spaces`,
				"spec.access[0].subjects[0]: subject \"" + issA + "#\" pins issuer " + issA + " but names no subject"}},
		{"empty claims", Config{Tenants: map[string][]AccessEntry{"acme": {{Role: "viewer", Claims: map[string]string{"team": ""}}}}},
			[]string{"spec.access[0].claims.team: empty claim value"}},
		{"flags", Config{Bootstrap: Matchers{Groups: []string{""}, Subjects: []string{" root"}}},
			[]string{"flags: --admin-group: empty group", "flags: --admin-subject: subject \" root\""}},
		{"gateway", Config{Gateway: GatewayAccess{Admins: Matchers{Subjects: []string{""}}}},
			[]string{"Gateway: spec.access.admins.subjects[0]: empty subject"}},
		{"pin to an untrusted issuer", Config{Issuers: []string{issA}, Tenants: map[string][]AccessEntry{"acme": {{Role: "viewer", Subjects: []string{issB + "#bob"}}}}},
			[]string{"is pinned to issuer " + issB + ", which this control plane does not trust"}},
		{"several issuers need pins", Config{Issuers: []string{issA, issB},
			Tenants: map[string][]AccessEntry{"acme": {{Role: "viewer", Groups: []string{"g"}, Claims: map[string]string{"team": "t"}}}},
			Gateway: GatewayAccess{Admins: Matchers{Subjects: []string{"root"}}}},
			[]string{`Gateway: spec.access.admins.subjects[0]: subject "root" matches tokens of every trusted issuer`,
				`Tenant acme: spec.access[0].groups[0]: group "g" matches tokens of every trusted issuer (this control plane trusts several issuers; pin it as ISSUER#g`,
				"Tenant acme: spec.access[0].claims: claims match tokens of every trusted issuer"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Compile(c.cfg)
			var ce *CompileError
			if !errors.As(err, &ce) || b != nil {
				t.Fatalf("Compile = %v, %v; want a *CompileError", b, err)
			}
			if len(ce.Problems) != len(c.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(ce.Problems), len(c.want), err)
			}
			for i, w := range c.want {
				if !strings.Contains(ce.Problems[i].String(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ce.Problems[i].String(), w)
				}
			}
		})
	}
}

func TestCompileIsDeterministic(t *testing.T) {
	cfg := Config{Tenants: map[string][]AccessEntry{}}
	for _, ten := range []string{"c", "a", "b"} {
		cfg.Tenants[ten] = []AccessEntry{{Role: "boss", Groups: []string{"g"}}}
	}
	var first string
	for range 20 {
		_, err := Compile(cfg)
		if first == "" {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("problems in another order:\n%s\nvs\n%s", err, first)
		}
	}
	if !slices.IsSorted([]int{strings.Index(first, "Tenant a:"), strings.Index(first, "Tenant b:"), strings.Index(first, "Tenant c:")}) {
		t.Fatalf("problems not sorted by tenant:\n%s", first)
	}
}

// TestAuthorizerSwap: requests keep checking while a revision swaps the
// bindings in (run with -race).
func TestAuthorizerSwap(t *testing.T) {
	a := NewAuthorizer(fixture(t))
	id := tok(t, "v", `{"groups": ["acme-view"]}`)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			a.Set(fixture(t))
		}
	}()
	for range 1000 {
		if a.Roles(id).Role("acme") != RoleViewer {
			t.Fatal("role lost during a swap")
		}
	}
	<-done
}
