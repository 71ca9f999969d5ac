package rbac

import (
	"fmt"
	"testing"
)

// largeBindings are 1,000 tenants with three entries each (a viewer group,
// an editor group, an issuer-pinned admin subject), every tenth also
// granting editor by two claims, and two cluster admin groups.
func largeBindings(tb testing.TB) *Bindings {
	tb.Helper()
	cfg := Config{Tenants: map[string][]AccessEntry{}, Gateway: GatewayAccess{Admins: Matchers{Groups: []string{"platform", "sre"}}}}
	for i := range 1000 {
		t := fmt.Sprintf("tenant-%04d", i)
		es := []AccessEntry{
			{Role: "viewer", Groups: []string{t + "-view"}},
			{Role: "editor", Groups: []string{t + "-dev"}},
			{Role: "admin", Subjects: []string{issA + "#" + t + "-owner"}},
		}
		if i%10 == 0 {
			es = append(es, AccessEntry{Role: "editor", Claims: map[string]string{"department": t, "email_verified": "true"}})
		}
		cfg.Tenants[t] = es
	}
	b, err := Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// requestTokens are the shapes of token seen per request.
func requestTokens(tb testing.TB) map[string]Identity {
	return map[string]Identity{
		"groups-array":  tok(tb, "bob", `{"groups": ["employees", "tenant-0042-dev", "vpn", "tenant-0007-view", "everyone"], "email_verified": true}`),
		"groups-string": tok(tb, "bob", `{"groups": "employees tenant-0042-dev,vpn tenant-0007-view everyone"}`),
		"claims":        tok(tb, "carol", `{"groups": ["employees"], "department": ["x", "tenant-0030"], "email_verified": true}`),
		"subject":       tok(tb, "tenant-0500-owner", `{}`),
		"cluster":       tok(tb, "ops", `{"groups": ["employees", "platform"]}`),
		"no-role":       tok(tb, "eve", `{"groups": ["employees", "vpn"]}`),
	}
}

// TestRolesDoesNotAllocate: the check runs on every request, so finding a
// caller's roles and deciding an action must not allocate.
func TestRolesDoesNotAllocate(t *testing.T) {
	b := largeBindings(t)
	a := NewAuthorizer(b)
	for name, id := range requestTokens(t) {
		allocs := testing.AllocsPerRun(200, func() {
			g := a.Roles(id)
			_ = g.Allows(ActionApply, "tenant-0042")
			_ = g.Sees("tenant-0007")
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per check, want 0", name, allocs)
		}
	}
	// And the decisions are the expected ones.
	toks := requestTokens(t)
	if g := a.Roles(toks["groups-array"]); g.Role("tenant-0042") != RoleEditor || g.Role("tenant-0007") != RoleViewer || g.Role("tenant-0001") != RoleNone {
		t.Errorf("groups-array: %s", roles(g))
	}
	if g := a.Roles(toks["groups-string"]); roles(g) != "tenant-0007=viewer,tenant-0042=editor" {
		t.Errorf("groups-string: %s", roles(g))
	}
	if g := a.Roles(toks["claims"]); roles(g) != "tenant-0030=editor" {
		t.Errorf("claims: %s", roles(g))
	}
	if g := a.Roles(toks["subject"]); roles(g) != "tenant-0500=admin" {
		t.Errorf("subject: %s", roles(g))
	}
	if !a.Roles(toks["cluster"]).Cluster() || a.Roles(toks["no-role"]).Any() {
		t.Error("cluster / no-role")
	}
}

func BenchmarkRoles(b *testing.B) {
	a := NewAuthorizer(largeBindings(b))
	for name, id := range requestTokens(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g := a.Roles(id)
				if g.Allows(ActionApply, "tenant-0042") && name == "no-role" {
					b.Fatal("allowed")
				}
			}
		})
	}
}

// BenchmarkCheckChanges is an apply of 1,000 objects of the caller's
// tenant (allowed) and of 1,000 objects of which every tenth is refused.
func BenchmarkCheckChanges(b *testing.B) {
	bs := largeBindings(b)
	g := bs.Roles(tok(b, "bob", `{"groups": ["tenant-0042-dev"]}`))
	allowed := make([]Change, 1000)
	mixed := make([]Change, 1000)
	for i := range allowed {
		allowed[i] = toolIn(OpUpdate, "tenant-0042", fmt.Sprintf("tool-%d", i))
		mixed[i] = allowed[i]
		if i%10 == 0 {
			mixed[i] = toolIn(OpUpdate, "tenant-0043", fmt.Sprintf("tool-%d", i))
		}
	}
	b.Run("allowed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := CheckChanges(g, allowed); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("refused", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := CheckChanges(g, mixed); err == nil {
				b.Fatal("allowed")
			}
		}
	})
}
