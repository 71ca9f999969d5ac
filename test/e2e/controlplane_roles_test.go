package e2e

import (
	"encoding/json"
	"github.com/stoa-gateway/stoa/pkg/store/pgstore/pgtest"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/devidp"
)

// TestControlPlaneRoles: with a real issuer and the real CLI, each role
// of a Tenant's spec.access may do what docs/fleet.md says and is
// refused the next step up (exit 4, the role and the object named); a
// token with no role is told what an admin could bind; refusals change
// nothing.
func TestControlPlaneRoles(t *testing.T) {
	idp := startIssuer(t,
		devidp.User{Username: "root", Groups: []string{"platform"}},
		devidp.User{Username: "vera", Groups: []string{"acme-support"}},
		devidp.User{Username: "ed", Groups: []string{"acme-dev"}},
		devidp.User{Username: "ada", Groups: []string{"acme-admins"}},
		devidp.User{Username: "mallory", Groups: []string{"strangers"}},
	)
	cp := idp.controlPlane(t, pgDatabase(t), "--admin-group", "platform")
	cp.Start()
	u := newCLIUser(t)
	u.addContext("prod", cp)
	tok := func(user string) []string { return idp.token(t, user) }

	acme := doc("Tenant", "", "acme", `displayName: Acme
access:
  - {role: viewer, groups: [acme-support]}
  - {role: editor, groups: [acme-dev]}
  - {role: admin, groups: [acme-admins]}`)
	tools := doc("Tool", "acme", "billing", "protocol: rest\nupstream: http://127.0.0.1:9/billing") +
		doc("Consumer", "acme", "shop", "")
	globex := doc("Tenant", "", "globex", "") + doc("Tool", "globex", "grab", "protocol: rest\nupstream: http://127.0.0.1:9/grab")
	expect(t, u.stoa(tok("root"), "apply", "-f", writeSpecs(t, acme+tools+globex)), 0, "cluster admin applies")

	refused := func(user, what string, r Result, wants ...string) {
		t.Helper()
		if r.Code != 4 {
			t.Fatalf("%s %s: want exit 4 (not authorized), got %s", user, what, r)
		}
		for _, w := range wants {
			if !strings.Contains(r.Stderr, w) {
				t.Fatalf("%s %s: stderr lacks %q: %s", user, what, w, r)
			}
		}
	}
	newTool := writeSpecs(t, doc("Tool", "acme", "orders", "protocol: rest\nupstream: http://127.0.0.1:9/orders"))
	tenantUpdate := writeSpecs(t, strings.Replace(acme, "displayName: Acme", "displayName: Acme Corp", 1))

	// viewer: reads its tenant only; no apply.
	if r := u.stoa(tok("vera"), "get", "tools", "-A"); r.Code != 0 || !strings.Contains(r.Stdout, "billing") || strings.Contains(r.Stdout, "grab") {
		t.Fatalf("viewer lists its tenant's tools, not globex's: %s", r)
	}
	if r := u.stoa(tok("vera"), "diff", "-f", newTool); r.Code != 2 {
		t.Fatalf("viewer may diff: %s", r)
	}
	refused("viewer", "apply", u.stoa(tok("vera"), "apply", "-f", newTool), "role editor on tenant acme required")
	refused("viewer", "keys create", u.stoa(tok("vera"), "keys", "create", "--consumer", "shop", "-n", "acme"), "role editor on tenant acme")
	refused("viewer", "get -n globex", u.stoa(tok("vera"), "get", "tools", "-n", "globex"), "globex")

	// editor: the tenant's objects and keys, not the Tenant, not rollback.
	expect(t, u.stoa(tok("ed"), "apply", "-f", newTool), 0, "editor applies a tool")
	expect(t, u.stoa(tok("ed"), "keys", "create", "--consumer", "shop", "-n", "acme"), 0, "editor creates a key")
	refused("editor", "Tenant update", u.stoa(tok("ed"), "apply", "-f", tenantUpdate), "role admin on tenant acme required to update Tenant acme")
	refused("editor", "rollback", u.stoa(tok("ed"), "rollback", "1", "--yes"), "role admin on tenant acme")
	// An apply touching another tenant is refused whole: the acme tool
	// in the same file is not created either.
	mixed := writeSpecs(t, doc("Tool", "acme", "mixed", "protocol: rest\nupstream: http://127.0.0.1:9/m")+
		doc("Tool", "globex", "grab2", "protocol: rest\nupstream: http://127.0.0.1:9/g"))
	refused("editor", "mixed apply", u.stoa(tok("ed"), "apply", "-f", mixed), "role editor on tenant globex required to apply Tool globex/grab2")
	if r := u.stoa(tok("root"), "get", "tool", "mixed", "-n", "acme"); r.Code == 0 {
		t.Fatalf("a refused apply created part of itself: %s", r)
	}

	// tenant admin: the Tenant object and rollback of its objects; not
	// a new tenant, not the Gateway.
	expect(t, u.stoa(tok("ada"), "apply", "-f", tenantUpdate), 0, "tenant admin updates the Tenant")
	refused("admin", "new tenant", u.stoa(tok("ada"), "apply", "-f", writeSpecs(t, doc("Tenant", "", "initech", ""))), "cluster admin")
	refused("admin", "gateway", u.stoa(tok("ada"), "apply", "-f", writeSpecs(t, doc("Gateway", "", "default", "trustedProxies: [10.0.0.0/8]"))), "cluster admin required")
	refused("admin", "audit verify", u.stoa(tok("ada"), "audit", "verify"), "cluster admin")

	// No role at all: 403, exit 4, with the groups it could be bound by.
	refused("no role", "get", u.stoa(tok("mallory"), "get", "tools", "-A"), "has no role", "strangers")

	// The refusals changed nothing: the revisions are the admin's, the
	// editor's and the tenant admin's.
	h := u.stoa(tok("root"), "history")
	if h.Code != 0 || strings.Count(h.Stdout, "oidc:") != 3 || !strings.Contains(h.Stdout, idp.URL+"#ed") || !strings.Contains(h.Stdout, idp.URL+"#ada") {
		t.Fatalf("history after the refusals: %s", h)
	}
}

// TestControlPlaneDatabaseOutage: with its PostgreSQL stopped, a control
// plane stays up, fails /readyz, still serves reads of the live state,
// answers writes with 503 (exit 5) and commits nothing; when the server
// is back it is ready again and takes writes without a restart.
func TestControlPlaneDatabaseOutage(t *testing.T) {
	pg := pgtest.Private(t)
	idp := startIssuer(t, devidp.User{Username: "root", Groups: []string{"platform"}})
	cp := idp.controlPlane(t, pg.URL, "--admin-group", "platform")
	cp.Start()
	u := newCLIUser(t)
	u.addContext("prod", cp)
	tok := idp.token(t, "root")
	expect(t, u.stoa(tok, "apply", "-f", writeSpecs(t, tenantSpecs("acme", 2))), 0, "apply")
	if code, body := cp.Ready(); code != 200 || !strings.Contains(body, "ready: revision 1") {
		t.Fatalf("/readyz before the outage: %d %s", code, body)
	}

	pg.Stop()
	waitUntil(t, time.Minute, "/readyz to fail", func() bool {
		code, body := cp.Ready()
		return code == 503 && strings.Contains(body, "state store unavailable")
	})
	if r := u.stoa(tok, "get", "tools", "-A"); r.Code != 0 || !strings.Contains(r.Stdout, "tool-0001") {
		t.Fatalf("reads of the live state during the outage: %s", r)
	}
	r := u.stoa(tok, "apply", "-f", writeSpecs(t, tenantSpecs("beta", 1)))
	if r.Code != 5 || !strings.Contains(r.Stderr, "state store unavailable") {
		t.Fatalf("apply during the outage: want exit 5 and the store named, got %s", r)
	}

	pg.Start()
	waitUntil(t, 2*time.Minute, "/readyz to pass again", func() bool {
		code, _ := cp.Ready()
		return code == 200
	})
	// Nothing of the refused apply was committed.
	if r := u.stoa(tok, "get", "tools", "-n", "beta"); r.Code == 0 && strings.Contains(r.Stdout, "tool-0000") {
		t.Fatalf("the apply refused during the outage left objects: %s", r)
	}
	waitUntil(t, time.Minute, "an apply to succeed after the outage", func() bool {
		r := u.stoa(tok, "apply", "-f", writeSpecs(t, tenantSpecs("beta", 1)))
		if r.Code != 0 && r.Code != 5 {
			t.Fatalf("apply after the outage: %s", r)
		}
		return r.Code == 0
	})
	h := u.stoa(tok, "history", "-o", "json")
	var hist struct{ Items []struct{ ID int64 } }
	if h.Code != 0 || json.Unmarshal([]byte(h.Stdout), &hist) != nil || len(hist.Items) != 2 {
		t.Fatalf("history after the outage: want revisions 1 and 2: %s", h)
	}
}
