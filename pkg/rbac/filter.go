package rbac

// Reads are filtered rather than refused: a list shows what the caller may
// see and leaves the rest out, as if it did not exist. A tenant's records
// (objects, events, audit entries, keys, deliveries, snapshots, quota and
// statistics rows) are visible to every role on that tenant; records of
// no tenant (the Gateway, XDP, daemon-wide events and audit entries) to
// cluster admins only.

// Sees reports whether the caller may read tenant's records: viewer or
// above on it. The empty tenant (cluster-scoped or daemon-wide records)
// is visible to cluster admins only.
func (g Grants) Sees(tenant string) bool {
	return g.Role(tenant) >= RoleViewer
}

// SeesObject reports whether the caller may read an object: a Tenant is
// visible to every role on it; the Gateway, like any other cluster-scoped
// object, only to cluster admins; a tenant's objects to every role on
// that tenant.
func (g Grants) SeesObject(r Ref) bool { return g.Sees(r.Tenant()) }

// SeesAny reports whether the caller may see a record that concerns
// several tenants (a revision, a config.applied event): yes if it sees
// any of them. The handler then shows only the parts it may see (the
// revision's changes of those tenants).
func (g Grants) SeesAny(tenants []string) bool {
	if g.cluster {
		return true
	}
	for _, t := range tenants {
		if g.Sees(t) {
			return true
		}
	}
	return false
}

// Readable says which tenants' records the caller may read, for pushing
// the filter into a store query: all of them (cluster admins), or the
// sorted list.
func (g Grants) Readable() (all bool, tenants []string) {
	if g.cluster {
		return true, nil
	}
	return false, g.Tenants()
}

// CheckNamespace checks a list route's ?namespace= query for a (a
// viewer-level action). An empty namespace lists every tenant, filtered
// with Sees: nil. A named one the caller may not read is refused (403),
// like kubectl's "get -n other": the answer is the same whether the
// tenant exists or not.
func (g Grants) CheckNamespace(a Action, namespace string) error {
	if namespace == "" {
		if _, cluster := a.Requires(); cluster {
			return g.Check(a, "", "")
		}
		if !g.Any() {
			return g.noRole()
		}
		return nil
	}
	return g.Check(a, namespace, "")
}
