package rbac

import "sort"

// inlineGrants is how many tenant roles Grants holds without allocating;
// callers with roles on more tenants spill into a map.
const inlineGrants = 8

type tenantRole struct {
	tenant string
	role   Role
}

// Grants are one caller's roles: cluster admin or not, and the highest
// role on each tenant. The zero Grants hold no role.
type Grants struct {
	id          Identity
	groupsClaim string
	cluster     bool
	n           int
	inline      [inlineGrants]tenantRole
	more        map[string]Role
}

// add records gr unless it is pinned to another issuer; a tenant keeps
// its highest role.
func (g *Grants) add(gr grant) {
	if gr.issuer != "" && gr.issuer != g.id.Issuer {
		return
	}
	if gr.cluster {
		g.cluster = true
		return
	}
	for i := 0; i < g.n; i++ {
		if g.inline[i].tenant == gr.tenant {
			g.inline[i].role = max(g.inline[i].role, gr.role)
			return
		}
	}
	if g.n < inlineGrants {
		g.inline[g.n] = tenantRole{gr.tenant, gr.role}
		g.n++
		return
	}
	if g.more == nil {
		g.more = map[string]Role{}
	}
	g.more[gr.tenant] = max(g.more[gr.tenant], gr.role)
}

// Identity is the caller the grants were computed for.
func (g Grants) Identity() Identity { return g.id }

// Cluster reports whether the caller is a cluster admin.
func (g Grants) Cluster() bool { return g.cluster }

// Any reports whether the caller holds any role at all.
func (g Grants) Any() bool { return g.cluster || g.n > 0 }

// Role is the caller's role on tenant: admin for cluster admins, RoleNone
// for the empty tenant otherwise.
func (g Grants) Role(tenant string) Role {
	if g.cluster {
		return RoleAdmin
	}
	if tenant == "" {
		return RoleNone
	}
	for i := 0; i < g.n; i++ {
		if g.inline[i].tenant == tenant {
			return g.inline[i].role
		}
	}
	return g.more[tenant]
}

// Tenants lists, sorted, the tenants the caller holds a role on (not
// counting cluster admin, which holds every role everywhere).
func (g Grants) Tenants() []string {
	out := make([]string, 0, g.n+len(g.more))
	for i := 0; i < g.n; i++ {
		out = append(out, g.inline[i].tenant)
	}
	for t := range g.more {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Allows reports whether the caller may do a on tenant. The empty tenant
// means every tenant, or the daemon as a whole: only cluster admins may.
func (g Grants) Allows(a Action, tenant string) bool {
	if g.cluster {
		return true
	}
	info := a.info()
	switch {
	case info.cluster:
		return false
	case info.anyRole:
		return g.Any()
	case tenant == "":
		return false
	}
	return g.Role(tenant) >= info.role
}

// Check is Allows with the error to answer (HTTP 403): a *ForbiddenError
// naming the role needed, or for a caller without any role, one that says
// so and which groups and subject could be bound. what describes the
// request for the message ("revoke key k_abc"); empty, the action's own
// phrase is used.
func (g Grants) Check(a Action, tenant, what string) error {
	if g.Allows(a, tenant) {
		return nil
	}
	if !g.Any() {
		return g.noRole()
	}
	info := a.info()
	if what == "" {
		what = info.phrase
		if tenant == "" && !info.cluster && !info.anyRole {
			what += " of every tenant"
		}
	}
	r := Refusal{Role: info.role, Tenant: tenant, What: what}
	if info.cluster || tenant == "" {
		r = Refusal{Cluster: true, What: what}
	}
	return g.forbidden(modeRoute, []Refusal{r})
}

// CheckRecord is Check for a record found by its id (a key, a webhook
// delivery, a snapshot) that belongs to tenant. A caller who may not even
// read that tenant gets ErrNotVisible: the handler answers with its usual
// "not found", so ids cannot be probed across tenants.
func (g Grants) CheckRecord(a Action, tenant, what string) error {
	if g.Allows(a, tenant) {
		return nil
	}
	if !g.Any() {
		return g.noRole()
	}
	if !g.Sees(tenant) {
		return ErrNotVisible
	}
	return g.Check(a, tenant, what)
}
