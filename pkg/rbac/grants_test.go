package rbac

import (
	"errors"
	"strings"
	"testing"
)

// The role each action needs, written out independently of action.go's
// table so that a change there has to be made here too.
var (
	viewerActions = []Action{ActionGet, ActionDiff, ActionHistory, ActionEvents, ActionStats, ActionQuotas,
		ActionSnapshots, ActionAudit, ActionKeysList, ActionWebhooksList}
	editorActions = []Action{ActionApply, ActionDelete, ActionKeysWrite, ActionWebhookRedeliver,
		ActionWebhookTest, ActionSnapshotReplay}
	adminActions   = []Action{ActionTenantWrite, ActionRollback}
	clusterActions = []Action{ActionGateway, ActionTenantCreate, ActionXDP, ActionDaemonStatus,
		ActionAuditVerify, ActionForce}
	anyRoleActions = []Action{ActionStatus}
)

func in(as []Action, a Action) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func TestActionSetsCoverEveryAction(t *testing.T) {
	n := 0
	for _, a := range Actions() {
		k := 0
		for _, set := range [][]Action{viewerActions, editorActions, adminActions, clusterActions, anyRoleActions} {
			if in(set, a) {
				k++
			}
		}
		if k != 1 {
			t.Errorf("action %s is in %d of the test's sets, want 1", a, k)
		}
		n++
	}
	if want := len(viewerActions) + len(editorActions) + len(adminActions) + len(clusterActions) + len(anyRoleActions); n != want {
		t.Fatalf("%d actions, the test knows %d", n, want)
	}
}

// TestAllowsEveryRoleActionTenant checks every caller (no role, each role
// on acme, cluster admin) × every action × tenant (its own, another, the
// empty one meaning every tenant).
func TestAllowsEveryRoleActionTenant(t *testing.T) {
	b := fixture(t)
	callers := []struct {
		name string
		id   Identity
		role Role // on acme
	}{
		{"none", tok(t, "nobody", `{"groups": ["x"]}`), RoleNone},
		{"viewer", tok(t, "v", `{"groups": ["acme-view"]}`), RoleViewer},
		{"editor", tok(t, "e", `{"groups": "acme-dev"}`), RoleEditor},
		{"admin", tok(t, "alice", `{}`), RoleAdmin},
		{"cluster", tok(t, "p", `{"groups": ["platform"]}`), RoleNone},
	}
	for _, c := range callers {
		g := b.Roles(c.id)
		cluster := c.name == "cluster"
		for _, a := range Actions() {
			for _, tenant := range []string{"acme", "globex", ""} {
				var want bool
				switch {
				case cluster:
					want = true
				case c.role == RoleNone:
					want = false
				case in(anyRoleActions, a):
					want = true
				case tenant != "acme", in(clusterActions, a):
					want = false
				case in(viewerActions, a):
					want = c.role >= RoleViewer
				case in(editorActions, a):
					want = c.role >= RoleEditor
				case in(adminActions, a):
					want = c.role >= RoleAdmin
				}
				if got := g.Allows(a, tenant); got != want {
					t.Errorf("%s: Allows(%s, %q) = %v, want %v", c.name, a, tenant, got, want)
				}
				err := g.Check(a, tenant, "")
				if (err == nil) != want {
					t.Errorf("%s: Check(%s, %q) = %v, want allowed=%v", c.name, a, tenant, err, want)
				}
				if err != nil && !errors.Is(err, ErrForbidden) {
					t.Errorf("%s: Check(%s, %q) error %v is not ErrForbidden", c.name, a, tenant, err)
				}
			}
		}
	}
}

func TestUnknownActionNeedsClusterAdmin(t *testing.T) {
	b := fixture(t)
	for _, a := range []Action{actionInvalid, actionCount, 200} {
		if b.Roles(tok(t, "alice", `{}`)).Allows(a, "acme") {
			t.Errorf("tenant admin allowed unknown action %d", a)
		}
		if !b.Roles(tok(t, "root", `{}`)).Allows(a, "acme") {
			t.Errorf("cluster admin refused unknown action %d", a)
		}
	}
}

func TestCheckMessages(t *testing.T) {
	b := fixture(t)
	viewer := b.Roles(tok(t, "v", `{"groups": ["acme-view", "misc"]}`))
	cases := []struct {
		g         Grants
		a         Action
		tenant    string
		what      string
		msg, hint string
	}{
		{viewer, ActionKeysWrite, "acme", "revoke key k_abc",
			"role editor on tenant acme required to revoke key k_abc",
			"ask an admin of tenant acme to bind one of your groups [acme-view, misc] or your subject https://idp.example/#v in Tenant acme's spec.access"},
		{viewer, ActionRollback, "acme", "",
			"role admin on tenant acme required to roll back", ""},
		{viewer, ActionEvents, "globex", "",
			"role viewer on tenant globex required to read events", ""},
		{viewer, ActionEvents, "", "",
			"cluster admin required to read events of every tenant",
			"ask a cluster admin to bind one of your groups [acme-view, misc] or your subject https://idp.example/#v in the Gateway's spec.access.admins"},
		{viewer, ActionXDP, "", "block 203.0.113.7",
			"cluster admin required to block 203.0.113.7", ""},
	}
	for _, c := range cases {
		err := c.g.Check(c.a, c.tenant, c.what)
		var fe *ForbiddenError
		if !errors.As(err, &fe) {
			t.Fatalf("Check(%s, %q) = %v", c.a, c.tenant, err)
		}
		if fe.Message() != c.msg {
			t.Errorf("message %q\nwant    %q", fe.Message(), c.msg)
		}
		if c.hint != "" && fe.Hint() != c.hint {
			t.Errorf("hint %q\nwant %q", fe.Hint(), c.hint)
		}
		if fe.NoRole {
			t.Errorf("NoRole set for a caller with a role")
		}
	}
}

func TestNoRoleMessage(t *testing.T) {
	b := fixture(t)
	cases := []struct {
		id   Identity
		want string
	}{
		{tok(t, "mallory", `{"groups": ["a", "b"]}`),
			"token of subject mallory (issuer https://idp.example/) has no role: ask an admin to bind one of your groups [a, b] or your subject https://idp.example/#mallory in a Tenant's spec.access or the Gateway's spec.access.admins"},
		{tok(t, "mallory", `{"groups": "a,b c"}`),
			"token of subject mallory (issuer https://idp.example/) has no role: ask an admin to bind one of your groups [a, b, c] or your subject https://idp.example/#mallory in a Tenant's spec.access or the Gateway's spec.access.admins"},
		{tok(t, "svc", `{}`),
			`token of subject svc (issuer https://idp.example/) has no role: ask an admin to bind your subject https://idp.example/#svc (your token has no "groups" claim) in a Tenant's spec.access or the Gateway's spec.access.admins`},
		{tok(t, "svc", `{"groups": []}`),
			`token of subject svc (issuer https://idp.example/) has no role: ask an admin to bind your subject https://idp.example/#svc (your token's "groups" claim is empty) in a Tenant's spec.access or the Gateway's spec.access.admins`},
		{tok(t, "many", `{"groups": ["g1","g2","g3","g4","g5","g6","g7","g8","g9","g10","g11","g12"]}`),
			"token of subject many (issuer https://idp.example/) has no role: ask an admin to bind one of your groups [g1, g2, g3, g4, g5, g6, g7, g8, g9, g10, … 2 more] or your subject https://idp.example/#many in a Tenant's spec.access or the Gateway's spec.access.admins"},
	}
	for _, c := range cases {
		g := b.Roles(c.id)
		for _, err := range []error{
			g.Check(ActionStatus, "", ""),
			g.Check(ActionGet, "acme", ""),
			g.CheckNamespace(ActionGet, ""),
			g.CheckRecord(ActionKeysWrite, "acme", "revoke key k"),
			CheckChanges(g, nil),
			CheckPreview(g, []Change{{Op: OpCreate, Ref: Ref{Kind: "Tool", Namespace: "acme", Name: "t"}}}),
		} {
			var fe *ForbiddenError
			if !errors.As(err, &fe) || !fe.NoRole {
				t.Fatalf("%s: %v is not a no-role error", c.id.Subject, err)
			}
			if err.Error() != c.want {
				t.Errorf("error %q\nwant  %q", err.Error(), c.want)
			}
			if !strings.HasPrefix(c.want, fe.Message()+": ") || !strings.HasSuffix(c.want, ": "+fe.Hint()) {
				t.Errorf("message %q and hint %q do not make up the error", fe.Message(), fe.Hint())
			}
		}
	}
}

func TestCheckRecordHidesOtherTenants(t *testing.T) {
	b := fixture(t)
	viewer := b.Roles(tok(t, "v", `{"groups": ["acme-view"]}`))
	if err := viewer.CheckRecord(ActionKeysWrite, "globex", "revoke key k"); err != ErrNotVisible {
		t.Fatalf("record of an unseen tenant: %v, want ErrNotVisible", err)
	}
	if err := viewer.CheckRecord(ActionKeysList, "acme", "read key k"); err != nil {
		t.Fatalf("viewer reading its tenant's record: %v", err)
	}
	err := viewer.CheckRecord(ActionKeysWrite, "acme", "revoke key k")
	if !errors.Is(err, ErrForbidden) || err.Error() != "role editor on tenant acme required to revoke key k" {
		t.Fatalf("viewer revoking its tenant's key: %v", err)
	}
	if err := b.Roles(tok(t, "root", `{}`)).CheckRecord(ActionKeysWrite, "globex", ""); err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
}

func TestReadFilters(t *testing.T) {
	b := fixture(t)
	viewer := b.Roles(tok(t, "v", `{"groups": ["acme-view"], "department": "audit"}`))
	cluster := b.Roles(tok(t, "root", `{}`))
	tool := func(ns string) Ref { return Ref{Kind: "Tool", Namespace: ns, Name: "x"} }
	tenant := func(n string) Ref { return Ref{Kind: KindTenant, Name: n, ClusterScoped: true} }
	gateway := Ref{Kind: "Gateway", Name: "default", ClusterScoped: true}
	for _, c := range []struct {
		r          Ref
		viewer, ca bool
	}{
		{tool("acme"), true, true},
		{tool("globex"), true, true},
		{tool("initech"), false, true},
		{tenant("acme"), true, true},
		{tenant("initech"), false, true},
		{gateway, false, true},
	} {
		if got := viewer.SeesObject(c.r); got != c.viewer {
			t.Errorf("viewer SeesObject(%s) = %v", c.r, got)
		}
		if got := cluster.SeesObject(c.r); got != c.ca {
			t.Errorf("cluster SeesObject(%s) = %v", c.r, got)
		}
	}
	if viewer.Sees("") || !cluster.Sees("") {
		t.Error("daemon-wide records: only cluster admins see them")
	}
	if !viewer.SeesAny([]string{"initech", "acme"}) || viewer.SeesAny([]string{"initech", ""}) || viewer.SeesAny(nil) {
		t.Error("SeesAny")
	}
	if all, ts := viewer.Readable(); all || strings.Join(ts, ",") != "acme,globex" {
		t.Errorf("viewer Readable = %v %v", all, ts)
	}
	if all, _ := cluster.Readable(); !all {
		t.Error("cluster admin does not read everything")
	}
	if err := viewer.CheckNamespace(ActionEvents, ""); err != nil {
		t.Errorf("unfiltered list: %v", err)
	}
	if err := viewer.CheckNamespace(ActionEvents, "globex"); err != nil {
		t.Errorf("a tenant the caller views: %v", err)
	}
	// The same refusal whether the tenant exists or not.
	e1, e2 := viewer.CheckNamespace(ActionEvents, "initech"), viewer.CheckNamespace(ActionEvents, "no-such-tenant")
	if e1 == nil || e2 == nil || strings.ReplaceAll(e1.Error(), "initech", "X") != strings.ReplaceAll(e2.Error(), "no-such-tenant", "X") {
		t.Errorf("namespace refusals differ: %v / %v", e1, e2)
	}
}

func TestActorIsBindableSubject(t *testing.T) {
	id := tok(t, "alice", `{}`)
	if got := id.Actor(); got != "oidc:https://idp.example/#alice" {
		t.Fatalf("Actor = %q", got)
	}
	b, err := Compile(Config{Tenants: map[string][]AccessEntry{
		"acme": {{Role: "viewer", Subjects: []string{strings.TrimPrefix(id.Actor(), "oidc:")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Roles(id).Role("acme") != RoleViewer {
		t.Fatal("the actor, as a subject, does not match its own token")
	}
}

func TestCheckNamespaceOfClusterAction(t *testing.T) {
	viewer := fixture(t).Roles(tok(t, "v", `{"groups": ["acme-view"]}`))
	if err := viewer.CheckNamespace(ActionXDP, ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("cluster action listed by a viewer: %v", err)
	}
}
