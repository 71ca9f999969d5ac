package rbac

import (
	"encoding/json"
	"strings"
	"testing"
)

const (
	issA = "https://idp.example/"
	issB = "https://other-idp.example"
)

// tok builds an identity of issuer issA from a claims set given as JSON,
// decoded the way pkg/auth decodes tokens (numbers as json.Number).
func tok(t testing.TB, sub, claims string) Identity {
	t.Helper()
	return tokOf(t, issA, sub, claims)
}

func tokOf(t testing.TB, iss, sub, claims string) Identity {
	t.Helper()
	m := map[string]any{}
	if claims != "" {
		d := json.NewDecoder(strings.NewReader(claims))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatalf("claims %s: %v", claims, err)
		}
	}
	m["iss"], m["sub"] = iss, sub
	return Identity{Issuer: iss, Subject: sub, Claims: m}
}

// fixture is the bindings most tests use:
//
//	acme:   viewer  groups acme-view
//	        editor  groups acme-dev
//	        admin   subjects https://idp.example/#alice
//	globex: admin   groups globex-admins
//	        viewer  claims {department: audit}
//	Gateway admins: groups platform
//	flags:  --admin-subject root
func fixture(t testing.TB) *Bindings {
	t.Helper()
	b, err := Compile(fixtureConfig())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureConfig() Config {
	return Config{
		Tenants: map[string][]AccessEntry{
			"acme": {
				{Role: "viewer", Groups: []string{"acme-view"}},
				{Role: "editor", Groups: []string{"acme-dev"}},
				{Role: "admin", Subjects: []string{issA + "#alice"}},
			},
			"globex": {
				{Role: "admin", Groups: []string{"globex-admins"}},
				{Role: "viewer", Claims: map[string]string{"department": "audit"}},
			},
		},
		Gateway:   GatewayAccess{Admins: Matchers{Groups: []string{"platform"}}},
		Bootstrap: Matchers{Subjects: []string{"root"}},
	}
}
