package rbac

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// naiveValues is the reference reading of a claim for matching: a
// scalar's text, or the texts of an array's scalar elements.
func naiveValues(v any) []string {
	text := func(e any) (string, bool) {
		switch e := e.(type) {
		case string:
			return e, true
		case json.Number:
			return e.String(), true
		case bool:
			if e {
				return "true", true
			}
			return "false", true
		}
		return "", false
	}
	if arr, ok := v.([]any); ok {
		var out []string
		for _, e := range arr {
			if s, ok := text(e); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := text(v); ok {
		return []string{s}
	}
	return nil
}

// naiveGroups is the reference reading of a groups claim.
func naiveGroups(v any) []string {
	if s, ok := v.(string); ok {
		return strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" ,\t\n\r", r) })
	}
	var out []string
	for _, g := range naiveValues(v) {
		if g != "" {
			out = append(out, g)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FuzzClaimMatch compares Roles with a naive reading of the claims: a
// group binding (viewer) and a claims binding (editor) on one tenant, a
// token whose claims are the fuzzer's JSON. Dotted claim paths are only
// checked not to panic and to agree between calls; flat names are
// checked against the reference.
func FuzzClaimMatch(f *testing.F) {
	f.Add([]byte(`{"groups": ["a", "b"], "team": "x"}`), "groups", "a", "team", "x")
	f.Add([]byte(`{"groups": "a,b c", "team": ["y", "x"]}`), "groups", "c", "team", "x")
	f.Add([]byte(`{"roles": {"list": ["a"]}, "n": 3}`), "roles.list", "a", "n", "3")
	f.Add([]byte(`{"groups": [1, true, null, {"a": 1}, ["a"]], "ok": false}`), "groups", "1", "ok", "false")
	f.Add([]byte(`{"groups": ["ops"]}`), "groups", "https://idp.example/#ops", "iss", "https://idp.example/")
	f.Add([]byte(`{"groups": " , ,"}`), "groups", ",", "sub", "s")
	f.Add([]byte(`{"a.b": "x", "a": {"b": "y"}}`), "a.b", "x", "a.b", "y")
	f.Add([]byte(`{"groups": "\u00e9 \u00e9"}`), "groups", "\u00e9", "", "")
	f.Fuzz(func(t *testing.T, claimsJSON []byte, groupsClaim, group, claimName, claimValue string) {
		entries := []AccessEntry{{Role: "viewer", Groups: []string{group}}}
		withClaims := claimName != ""
		if withClaims {
			entries = append(entries, AccessEntry{Role: "editor", Claims: map[string]string{claimName: claimValue}})
		}
		b, err := Compile(Config{Tenants: map[string][]AccessEntry{"t": entries}, Gateway: GatewayAccess{GroupsClaim: groupsClaim}})
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("Compile error %v is not a *CompileError with problems", err)
			}
			return
		}
		var claims map[string]any
		d := json.NewDecoder(bytes.NewReader(claimsJSON))
		d.UseNumber()
		if d.Decode(&claims) != nil || claims == nil {
			return
		}
		id := Identity{Issuer: issA, Subject: "s", Claims: claims}
		g := b.Roles(id)
		if again := b.Roles(id); roles(again) != roles(g) {
			t.Fatalf("Roles disagrees with itself: %q vs %q", roles(again), roles(g))
		}
		if g.Cluster() || (g.Any() && (len(g.Tenants()) != 1 || g.Tenants()[0] != "t")) {
			t.Fatalf("roles %q beyond tenant t", roles(g))
		}
		for _, a := range Actions() {
			if g.Allows(a, "other") && !in(anyRoleActions, a) {
				t.Fatalf("Allows(%s, other) without a role there", a)
			}
		}
		if g.Any() {
			_ = g.Check(ActionXDP, "", "") // messages must not panic
		} else if err := g.Check(ActionGet, "t", ""); err == nil || !strings.Contains(err.Error(), "has no role") {
			t.Fatalf("no-role error: %v", err)
		}

		gc := b.GroupsClaim()
		if strings.Contains(gc, ".") || (withClaims && strings.Contains(claimName, ".")) {
			return
		}
		lookup := func(name string) (any, bool) {
			switch name {
			case "iss":
				return id.Issuer, true
			case "sub":
				return id.Subject, true
			}
			v, ok := claims[name]
			return v, ok
		}
		want := RoleNone
		if v, ok := lookup(gc); ok {
			g := group
			if iss, rest, ok := strings.Cut(group, "#"); ok && (strings.HasPrefix(iss, "https://") || strings.HasPrefix(iss, "http://")) {
				g = rest
				if iss != id.Issuer {
					g = "" // never matches: naiveGroups has no empty groups
				}
			}
			if contains(naiveGroups(v), g) {
				want = RoleViewer
			}
		}
		if withClaims {
			if v, ok := lookup(claimName); ok && contains(naiveValues(v), claimValue) {
				want = RoleEditor
			}
		}
		if got := g.Role("t"); got != want {
			t.Fatalf("role %s, want %s (claims %s, groups claim %q, group %q, claim %q=%q)",
				got, want, claimsJSON, gc, group, claimName, claimValue)
		}
	})
}
