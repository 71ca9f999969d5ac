package rbac

// KindTenant is the kind whose objects are tenants: their name is the
// tenant they belong to.
const KindTenant = "Tenant"

// Op is what a change does to an object; the values are pkg/plan's, plus
// OpApply.
type Op string

// The operations.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
	// OpApply is an object the caller sent that the plan leaves as it
	// is. It needs the role an update would: otherwise whether a refused
	// apply "changes nothing" would tell the caller what another tenant's
	// object holds.
	OpApply Op = "apply"
)

// Ref names an object. ClusterScoped is set for kinds outside tenants
// (Tenant, Gateway).
type Ref struct {
	Kind          string
	Namespace     string
	Name          string
	ClusterScoped bool
}

// Tenant is the tenant the object belongs to: its namespace, a Tenant's
// own name, or "" for other cluster-scoped objects (the Gateway), which
// belong to the cluster.
func (r Ref) Tenant() string {
	switch {
	case r.ClusterScoped && r.Kind == KindTenant:
		return r.Name
	case r.ClusterScoped:
		return ""
	}
	return r.Namespace
}

// String names the object in messages: "Tool acme/billing-api",
// "Tenant acme", "Gateway default".
func (r Ref) String() string {
	if r.ClusterScoped || r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Change is one object an apply, delete or rollback would change. Named
// is set for objects the caller itself sent or referred to (the apply's
// objects, the delete's refs); changes the server derived (prune,
// cascade, rollback) are named in refusals only when the caller may see
// their tenant, and otherwise summed up per tenant.
type Change struct {
	Op Op
	Ref
	Named bool
}

// requirement is what one change needs: cluster admin, or role on tenant.
type requirement struct {
	cluster bool
	role    Role
	tenant  string
	// alt is the tenant role that would do instead of cluster admin if
	// the tenant exists (Tenant objects), for neutral messages.
	alt Role
}

func (g Grants) meets(r requirement) bool {
	if r.cluster {
		return g.cluster
	}
	return g.Role(r.tenant) >= r.role
}

// need is the requirement of c under mode (see docs/fleet.md, "Roles").
func need(mode checkMode, c Change) requirement {
	t := c.Tenant()
	isTenant := c.ClusterScoped && c.Kind == KindTenant
	switch {
	case t == "":
		return requirement{cluster: true}
	case isTenant && c.Op == OpCreate:
		// A new tenant: nobody but a cluster admin holds a role on it.
		alt := RoleAdmin
		if mode == modePreview {
			alt = RoleViewer
		}
		return requirement{cluster: true, tenant: t, alt: alt}
	case isTenant && mode == modeRollback && c.Op == OpDelete:
		return requirement{cluster: true, tenant: t, alt: RoleAdmin}
	}
	r := requirement{tenant: t}
	switch {
	case mode == modePreview:
		r.role = RoleViewer
	case mode == modeRollback, isTenant:
		r.role = RoleAdmin
	default:
		r.role = RoleEditor
	}
	return r
}

// CheckChanges checks a real apply or delete: every change the plan
// makes (and every object the caller sent that it leaves unchanged, as
// OpApply). Tenant-scoped objects need editor on their tenant; a Tenant
// object needs admin of that tenant to update or delete it and cluster
// admin to create it; other cluster-scoped objects (the Gateway) need
// cluster admin. Anything refused refuses the whole call: the error names
// every refused change and the role it needs.
func CheckChanges(g Grants, changes []Change) error { return check(g, modeApply, changes) }

// CheckPreview checks a dry run (diff; apply, delete or rollback with
// --dry-run): viewer on the tenant of every change, cluster admin for
// cluster-scoped objects other than existing Tenants and for new Tenants.
func CheckPreview(g Grants, changes []Change) error { return check(g, modePreview, changes) }

// CheckRollback checks a rollback from its plan (a revision holds every
// tenant): admin on each tenant whose objects change, and cluster admin
// if it changes a cluster-scoped object other than a Tenant or creates or
// deletes a Tenant.
func CheckRollback(g Grants, changes []Change) error { return check(g, modeRollback, changes) }

func check(g Grants, mode checkMode, changes []Change) error {
	if g.cluster {
		return nil
	}
	if !g.Any() {
		return g.noRole()
	}
	var (
		refused []Refusal
		hidden  map[string]int // tenant → index in refused
	)
	for _, c := range changes {
		req := need(mode, c)
		if g.meets(req) {
			continue
		}
		visible := g.SeesObject(c.Ref)
		if !visible && c.ClusterScoped && c.Kind == KindTenant && !req.cluster {
			// Creating a tenant needs cluster admin, changing one its
			// admin: word both alike, or the refusal would tell whether
			// a tenant the caller cannot see exists.
			req = requirement{cluster: true, tenant: req.tenant, alt: req.role}
		}
		if !c.Named && !visible {
			// Say which tenant needs a role, once, not which objects it
			// has. Cluster admin could always do it; the tenant role is
			// the highest any of its changes needs.
			if hidden == nil {
				hidden = map[string]int{}
			}
			alt := max(req.role, req.alt)
			if i, ok := hidden[req.tenant]; ok {
				refused[i].AltTenantAdmin = max(refused[i].AltTenantAdmin, alt)
				continue
			}
			hidden[req.tenant] = len(refused)
			refused = append(refused, refusal(requirement{cluster: true, tenant: req.tenant, alt: alt}, hiddenWhat(mode, req)))
			continue
		}
		refused = append(refused, refusal(req, changeWhat(mode, c, visible)))
	}
	if len(refused) == 0 {
		return nil
	}
	return g.forbidden(mode, refused)
}

func refusal(req requirement, what string) Refusal {
	if req.cluster {
		return Refusal{Cluster: true, Tenant: req.tenant, AltTenantAdmin: req.alt, What: what}
	}
	return Refusal{Role: req.role, Tenant: req.tenant, What: what}
}

// changeWhat words a named change. On a tenant the caller cannot see,
// create and update both read "apply": which one it is would tell
// whether the object exists.
func changeWhat(mode checkMode, c Change, visible bool) string {
	verb := string(c.Op)
	if !visible && c.Op != OpDelete {
		verb = string(OpApply)
	}
	switch mode {
	case modePreview:
		return "preview " + c.Ref.String()
	case modeRollback:
		return verb + " " + c.Ref.String() + " in a rollback"
	}
	return verb + " " + c.Ref.String()
}

func hiddenWhat(mode checkMode, req requirement) string {
	what := "objects of tenant " + req.tenant
	if req.tenant == "" {
		what = "cluster-scoped objects"
	}
	switch mode {
	case modePreview:
		return "preview " + what
	case modeRollback:
		return "roll back " + what
	}
	return "change " + what
}
