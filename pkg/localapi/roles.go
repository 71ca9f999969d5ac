package localapi

import (
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/rbac"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// What handlers ask of a peer's roles. A peer without Roles (the unix
// socket's) may do and see everything.

// sees reports whether the peer may read tenant's records ("" : records
// of no tenant, cluster admins only).
func (p Peer) sees(tenant string) bool { return p.Roles == nil || p.Roles.Sees(tenant) }

// seesAll reports whether nothing is hidden from the peer.
func (p Peer) seesAll() bool { return p.Roles == nil || p.Roles.Cluster() }

// check is rbac's Check for a route whose tenant the request names.
func (p Peer) check(a rbac.Action, tenant, what string) error {
	if p.Roles == nil {
		return nil
	}
	return p.Roles.Check(a, tenant, what)
}

// checkRecord is rbac's CheckRecord for a record found by id: a record
// of a tenant the peer may not read is answered by hidden (the domain's
// own "not found"), so ids cannot be probed across tenants.
func (p Peer) checkRecord(a rbac.Action, tenant, what string, hidden error) error {
	if p.Roles == nil {
		return nil
	}
	if err := p.Roles.CheckRecord(a, tenant, what); err == rbac.ErrNotVisible {
		return hidden
	} else if err != nil {
		return err
	}
	return nil
}

// rbacRef is a spec reference as pkg/rbac names objects.
func rbacRef(r spec.Ref) rbac.Ref {
	return rbac.Ref{Kind: string(r.Kind), Namespace: r.Namespace, Name: r.Name, ClusterScoped: !r.Kind.Namespaced()}
}

// tenantOf is the tenant a referenced object belongs to ("" for the
// Gateway).
func tenantOf(r spec.Ref) string { return rbacRef(r).Tenant() }

// changeCheck is how a change's plan is checked.
type changeCheck uint8

const (
	checkApply changeCheck = iota
	checkPreview
	checkRollback
)

// allowPlan returns the Caller.Allow of a peer with roles: the plan's
// changes, and every object the caller named that the plan leaves as it
// is (OpApply), checked all or nothing. named are the objects the request
// itself sent or referred to; the others (prune, cascade, rollback) are
// named in a refusal only when the peer may read their tenant.
func (p Peer) allowPlan(mode changeCheck, named []spec.Ref) func([]plan.Change) error {
	if p.Roles == nil || p.Roles.Cluster() {
		return nil
	}
	g := *p.Roles
	return func(changes []plan.Change) error {
		isNamed := make(map[spec.Ref]bool, len(named))
		for _, r := range named {
			isNamed[r] = true
		}
		out := make([]rbac.Change, 0, len(changes)+len(named))
		for _, c := range changes {
			out = append(out, rbac.Change{Op: rbac.Op(c.Op), Ref: rbacRef(c.Ref), Named: isNamed[c.Ref]})
			delete(isNamed, c.Ref)
		}
		for _, r := range named {
			if isNamed[r] {
				out = append(out, rbac.Change{Op: rbac.OpApply, Ref: rbacRef(r), Named: true})
			}
		}
		switch mode {
		case checkPreview:
			return rbac.CheckPreview(g, out)
		case checkRollback:
			return rbac.CheckRollback(g, out)
		}
		return rbac.CheckChanges(g, out)
	}
}
