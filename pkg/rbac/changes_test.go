package rbac

import (
	"errors"
	"strings"
	"testing"
)

func toolIn(op Op, ns, name string) Change {
	return Change{Op: op, Ref: Ref{Kind: "Tool", Namespace: ns, Name: name}, Named: true}
}

func tenantObj(op Op, name string) Change {
	return Change{Op: op, Ref: Ref{Kind: KindTenant, Name: name, ClusterScoped: true}, Named: true}
}

func gatewayObj(op Op) Change {
	return Change{Op: op, Ref: Ref{Kind: "Gateway", Name: "default", ClusterScoped: true}, Named: true}
}

func derived(c Change) Change { c.Named = false; return c }

// callers of the fixture, by role.
func callers(t *testing.T) map[string]Grants {
	b := fixture(t)
	return map[string]Grants{
		"acme-viewer": b.Roles(tok(t, "v", `{"groups": ["acme-view"]}`)),
		"acme-editor": b.Roles(tok(t, "e", `{"groups": ["acme-dev"]}`)),
		"acme-admin":  b.Roles(tok(t, "alice", `{}`)),
		"cluster":     b.Roles(tok(t, "p", `{"groups": ["platform"]}`)),
	}
}

func forbidden(t *testing.T, err error) *ForbiddenError {
	t.Helper()
	var fe *ForbiddenError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *ForbiddenError", err, err)
	}
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("error %v is not ErrForbidden", err)
	}
	return fe
}

// TestChangeRequirements checks each kind of change under each check for
// each caller.
func TestChangeRequirements(t *testing.T) {
	cs := callers(t)
	type check func(Grants, []Change) error
	checks := map[string]check{"apply": CheckChanges, "preview": CheckPreview, "rollback": CheckRollback}
	cases := []struct {
		c Change
		// Least caller allowed, per check: a role on acme, or "cluster".
		apply, preview, rollback string
	}{
		{toolIn(OpCreate, "acme", "t"), "acme-editor", "acme-viewer", "acme-admin"},
		{toolIn(OpUpdate, "acme", "t"), "acme-editor", "acme-viewer", "acme-admin"},
		{toolIn(OpDelete, "acme", "t"), "acme-editor", "acme-viewer", "acme-admin"},
		{toolIn(OpApply, "acme", "t"), "acme-editor", "acme-viewer", "acme-admin"},
		{toolIn(OpUpdate, "globex", "t"), "cluster", "cluster", "cluster"},
		{tenantObj(OpUpdate, "acme"), "acme-admin", "acme-viewer", "acme-admin"},
		{tenantObj(OpApply, "acme"), "acme-admin", "acme-viewer", "acme-admin"},
		{tenantObj(OpDelete, "acme"), "acme-admin", "acme-viewer", "cluster"},
		{tenantObj(OpCreate, "newco"), "cluster", "cluster", "cluster"},
		{tenantObj(OpUpdate, "globex"), "cluster", "cluster", "cluster"},
		{gatewayObj(OpUpdate), "cluster", "cluster", "cluster"},
		{gatewayObj(OpCreate), "cluster", "cluster", "cluster"},
		{Change{Op: OpCreate, Ref: Ref{Kind: "Tool", Name: "no-namespace"}}, "cluster", "cluster", "cluster"},
	}
	order := []string{"acme-viewer", "acme-editor", "acme-admin", "cluster"}
	for _, c := range cases {
		for name, least := range map[string]string{"apply": c.apply, "preview": c.preview, "rollback": c.rollback} {
			allowed := false
			for _, who := range order {
				allowed = allowed || who == least
				err := checks[name](cs[who], []Change{c.c})
				if (err == nil) != allowed {
					t.Errorf("%s %s %s by %s: err = %v, want allowed=%v", name, c.c.Op, c.c.Ref, who, err, allowed)
				}
				if err != nil {
					forbidden(t, err)
				}
			}
		}
	}
}

// TestCheckChangesAllOrNothing: one refused change refuses the apply, and
// the error lists every refused change, not only the first.
func TestCheckChangesAllOrNothing(t *testing.T) {
	editor := callers(t)["acme-editor"]
	changes := []Change{
		toolIn(OpCreate, "acme", "ok-1"),
		toolIn(OpUpdate, "acme", "billing-api"),
		tenantObj(OpUpdate, "acme"),
		toolIn(OpUpdate, "globex", "grab"),
		toolIn(OpDelete, "acme", "old"),
		gatewayObj(OpUpdate),
		tenantObj(OpCreate, "newco"),
		toolIn(OpApply, "initech", "same"),
	}
	if err := CheckChanges(editor, changes[:2]); err != nil {
		t.Fatalf("the allowed part alone: %v", err)
	}
	fe := forbidden(t, CheckChanges(editor, changes))
	want := "refused whole, nothing was changed: 5 changes need roles this token lacks\n" +
		"  role admin on tenant acme required to update Tenant acme\n" +
		"  role editor on tenant globex required to apply Tool globex/grab\n" +
		"  cluster admin required to apply Gateway default\n" +
		"  cluster admin (or role admin on tenant newco) required to apply Tenant newco\n" +
		"  role editor on tenant initech required to apply Tool initech/same"
	if fe.Message() != want {
		t.Errorf("message:\n%s\nwant:\n%s", fe.Message(), want)
	}
	wantHint := "ask the admins of tenants acme, globex, newco, initech to bind your subject https://idp.example/#e or one of your groups"
	if h := fe.Hint(); !strings.HasPrefix(h, "ask the admins of tenants acme, globex, newco, initech to bind one of your groups [acme-dev] or your subject https://idp.example/#e in each Tenant's spec.access; cluster admins are bound in the Gateway's spec.access.admins") {
		t.Errorf("hint %q\nwant like %q", h, wantHint)
	}
	if len(fe.Refusals) != 5 || fe.Refusals[0].Role != RoleAdmin || fe.Refusals[0].Tenant != "acme" || !fe.Refusals[2].Cluster {
		t.Errorf("refusals %+v", fe.Refusals)
	}
}

// TestRefusalsDoNotRevealExistence: what a caller is told about a tenant
// it cannot see must not depend on what that tenant holds.
func TestRefusalsDoNotRevealExistence(t *testing.T) {
	editor := callers(t)["acme-editor"]
	msg := func(c Change) string {
		return forbidden(t, CheckChanges(editor, []Change{c})).Message()
	}
	// A Tool of an unseen tenant: create (it does not exist), update (it
	// does) and unchanged (identical) read the same.
	a, b, c := msg(toolIn(OpCreate, "globex", "x")), msg(toolIn(OpUpdate, "globex", "x")), msg(toolIn(OpApply, "globex", "x"))
	if a != b || b != c {
		t.Errorf("tool messages differ:\n%s\n%s\n%s", a, b, c)
	}
	// A Tenant the caller cannot see: creating it (cluster admin) and
	// updating it (its admin) read the same.
	if x, y := msg(tenantObj(OpCreate, "globex")), msg(tenantObj(OpUpdate, "globex")); x != y {
		t.Errorf("tenant messages differ:\n%s\n%s", x, y)
	}
	// The same in previews.
	viewer := callers(t)["acme-viewer"]
	p := func(c Change) string { return forbidden(t, CheckPreview(viewer, []Change{c})).Message() }
	if x, y := p(tenantObj(OpCreate, "globex")), p(tenantObj(OpUpdate, "globex")); x != y {
		t.Errorf("preview tenant messages differ:\n%s\n%s", x, y)
	}
	if x, y := p(toolIn(OpCreate, "globex", "x")), p(toolIn(OpApply, "globex", "x")); x != y {
		t.Errorf("preview tool messages differ:\n%s\n%s", x, y)
	}
	// On a tenant the caller sees, the operation is named.
	if got := msg(tenantObj(OpUpdate, "acme")); got != "role admin on tenant acme required to update Tenant acme" {
		t.Errorf("visible tenant: %s", got)
	}
}

// TestDerivedChangesAreNotNamed: objects the server found (prune, cascade,
// rollback) in tenants the caller cannot see are summed up per tenant.
func TestDerivedChangesAreNotNamed(t *testing.T) {
	editor := callers(t)["acme-editor"]
	fe := forbidden(t, CheckChanges(editor, []Change{
		toolIn(OpDelete, "acme", "mine"),
		derived(toolIn(OpDelete, "globex", "secret-1")),
		derived(toolIn(OpDelete, "globex", "secret-2")),
		derived(gatewayObj(OpUpdate)),
		derived(toolIn(OpDelete, "acme", "visible-but-derived")),
	}))
	msg := fe.Message()
	for _, leak := range []string{"secret-1", "secret-2", "Gateway default"} {
		if strings.Contains(msg, leak) {
			t.Errorf("message names %q:\n%s", leak, msg)
		}
	}
	want := "cluster admin (or role editor on tenant globex) required to change objects of tenant globex"
	if fe.Refusals[0].String() != want || len(fe.Refusals) != 2 || fe.Refusals[1].String() != "cluster admin required to change cluster-scoped objects" {
		t.Errorf("message:\n%s", msg)
	}
	// Derived changes on a tenant the caller sees are named.
	viewer := callers(t)["acme-viewer"]
	fe = forbidden(t, CheckChanges(viewer, []Change{derived(toolIn(OpDelete, "acme", "pruned"))}))
	if fe.Message() != "role editor on tenant acme required to delete Tool acme/pruned" {
		t.Errorf("visible derived: %s", fe.Message())
	}
}

// TestRollbackAcrossTenants: a revision holds every tenant, so a rollback
// needs admin on each tenant whose objects it changes.
func TestRollbackAcrossTenants(t *testing.T) {
	b, err := Compile(Config{Tenants: map[string][]AccessEntry{
		"acme":   {{Role: "admin", Groups: []string{"acme-admins"}}},
		"globex": {{Role: "admin", Groups: []string{"globex-admins"}}, {Role: "editor", Groups: []string{"globex-dev"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	plan := []Change{
		derived(toolIn(OpUpdate, "acme", "a")),
		derived(toolIn(OpCreate, "globex", "g")),
		derived(tenantObj(OpUpdate, "globex")),
	}
	both := b.Roles(tok(t, "u", `{"groups": ["acme-admins", "globex-admins"]}`))
	if err := CheckRollback(both, plan); err != nil {
		t.Fatalf("admin of both tenants: %v", err)
	}
	acmeOnly := b.Roles(tok(t, "u", `{"groups": ["acme-admins"]}`))
	fe := forbidden(t, CheckRollback(acmeOnly, plan))
	if fe.Message() != "cluster admin (or role admin on tenant globex) required to roll back objects of tenant globex" {
		t.Errorf("acme admin: %s", fe.Message())
	}
	if err := CheckRollback(acmeOnly, plan[:1]); err != nil {
		t.Errorf("a rollback changing only acme: %v", err)
	}
	// An editor of globex sees globex: its objects are named.
	mixed := b.Roles(tok(t, "u", `{"groups": ["acme-admins", "globex-dev"]}`))
	fe = forbidden(t, CheckRollback(mixed, plan))
	want := "rollback refused, nothing was changed: 2 changes need roles this token lacks\n" +
		"  role admin on tenant globex required to create Tool globex/g in a rollback\n" +
		"  role admin on tenant globex required to update Tenant globex in a rollback"
	if fe.Message() != want {
		t.Errorf("mixed:\n%s\nwant:\n%s", fe.Message(), want)
	}
	// Creating or deleting a tenant, or touching the Gateway, needs
	// cluster admin even from admins of every tenant involved.
	for _, c := range []Change{derived(tenantObj(OpDelete, "acme")), derived(tenantObj(OpCreate, "acme")), derived(gatewayObj(OpUpdate))} {
		if err := CheckRollback(both, []Change{c}); err == nil {
			t.Errorf("rollback %s %s allowed to tenant admins", c.Op, c.Ref)
		}
	}
	// A rollback that changes nothing needs only some role.
	if err := CheckRollback(acmeOnly, nil); err != nil {
		t.Errorf("empty rollback: %v", err)
	}
	if err := CheckRollback(b.Roles(tok(t, "root", `{"groups": []}`)), nil); err == nil {
		t.Error("empty rollback without any role allowed")
	}
}

func TestPreviewMessages(t *testing.T) {
	viewer := callers(t)["acme-viewer"]
	fe := forbidden(t, CheckPreview(viewer, []Change{
		toolIn(OpCreate, "acme", "fine"),
		toolIn(OpUpdate, "globex", "x"),
		gatewayObj(OpUpdate),
	}))
	want := "preview refused: 2 changes need roles this token lacks\n" +
		"  role viewer on tenant globex required to preview Tool globex/x\n" +
		"  cluster admin required to preview Gateway default"
	if fe.Message() != want {
		t.Errorf("message:\n%s\nwant:\n%s", fe.Message(), want)
	}
}

func TestClusterAdminMayChangeAnything(t *testing.T) {
	ca := callers(t)["cluster"]
	all := []Change{toolIn(OpCreate, "x", "y"), tenantObj(OpCreate, "new"), tenantObj(OpDelete, "acme"), gatewayObj(OpDelete),
		derived(toolIn(OpDelete, "z", "w"))}
	for _, f := range []func(Grants, []Change) error{CheckChanges, CheckPreview, CheckRollback} {
		if err := f(ca, all); err != nil {
			t.Errorf("cluster admin: %v", err)
		}
	}
}
