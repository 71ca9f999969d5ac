package rbac

// Role is a caller's role on one tenant. Roles are ordered: each includes
// the ones below it. Cluster admin is not a Role but a flag of Grants; it
// includes admin on every tenant.
type Role uint8

// The tenant roles.
const (
	RoleNone Role = iota
	RoleViewer
	RoleEditor
	RoleAdmin
)

// ParseRole parses a spec.access role name.
func ParseRole(s string) (Role, bool) {
	switch s {
	case "viewer":
		return RoleViewer, true
	case "editor":
		return RoleEditor, true
	case "admin":
		return RoleAdmin, true
	}
	return RoleNone, false
}

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleEditor:
		return "editor"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// Action is something a LocalAPI route does, for route-level checks. The
// changes an apply, delete or rollback makes are checked object by object
// with CheckChanges, CheckPreview and CheckRollback instead.
type Action uint8

// The actions. Each needs the role in its comment on the tenant it
// concerns; the empty tenant means "every tenant, or the daemon as a
// whole" and needs cluster admin whatever the action.
const (
	actionInvalid Action = iota

	// Viewer.
	ActionGet          // get objects, digests
	ActionDiff         // preview an apply, delete or rollback (dry run)
	ActionHistory      // list revisions, read one
	ActionEvents       // read the event stream
	ActionStats        // top, dashboard: live statistics
	ActionQuotas       // read quota usage
	ActionSnapshots    // list and read error snapshots
	ActionAudit        // read the audit log
	ActionKeysList     // list API keys (metadata, never secrets)
	ActionWebhooksList // list and read webhook deliveries

	// Editor.
	ActionApply            // create or update objects other than the Tenant
	ActionDelete           // delete objects other than the Tenant
	ActionKeysWrite        // create, revoke, rotate API keys
	ActionWebhookRedeliver // redeliver a webhook delivery
	ActionWebhookTest      // send a test delivery
	ActionSnapshotReplay   // replay an error snapshot against the upstream

	// Tenant admin.
	ActionTenantWrite // update or delete the Tenant object itself
	ActionRollback    // roll back (per tenant whose objects change)

	// Cluster admin, whatever the tenant.
	ActionGateway      // change the Gateway (cluster-scoped objects)
	ActionTenantCreate // create a new tenant
	ActionXDP          // XDP status, blocks, unblocks
	ActionDaemonStatus // the daemon's full status: pid, paths, listeners, components, GitOps
	ActionAuditVerify  // verify the whole audit chain
	ActionForce        // force a change past GitOps mode (--specs)

	// Any role on any tenant.
	ActionStatus // the daemon's status, reduced to what the caller may see

	actionCount
)

// Actions lists every action, in declaration order.
func Actions() []Action {
	out := make([]Action, 0, actionCount-1)
	for a := actionInvalid + 1; a < actionCount; a++ {
		out = append(out, a)
	}
	return out
}

// actionInfo is what an action needs and how messages name it.
type actionInfo struct {
	name    string // stable identifier, as in docs/fleet.md
	phrase  string // "required to <phrase>"
	role    Role   // role on the tenant; RoleNone with cluster or anyRole
	cluster bool   // cluster admin whatever the tenant
	anyRole bool   // any role on any tenant
}

var actions = [actionCount]actionInfo{
	ActionGet:          {"get", "get objects", RoleViewer, false, false},
	ActionDiff:         {"diff", "preview changes", RoleViewer, false, false},
	ActionHistory:      {"history", "read the history", RoleViewer, false, false},
	ActionEvents:       {"events", "read events", RoleViewer, false, false},
	ActionStats:        {"stats", "read statistics", RoleViewer, false, false},
	ActionQuotas:       {"quotas", "read quotas", RoleViewer, false, false},
	ActionSnapshots:    {"snapshots", "read error snapshots", RoleViewer, false, false},
	ActionAudit:        {"audit", "read the audit log", RoleViewer, false, false},
	ActionKeysList:     {"keys.list", "list API keys", RoleViewer, false, false},
	ActionWebhooksList: {"webhooks.list", "read webhook deliveries", RoleViewer, false, false},

	ActionApply:            {"apply", "apply objects", RoleEditor, false, false},
	ActionDelete:           {"delete", "delete objects", RoleEditor, false, false},
	ActionKeysWrite:        {"keys.write", "manage API keys", RoleEditor, false, false},
	ActionWebhookRedeliver: {"webhooks.redeliver", "redeliver webhook deliveries", RoleEditor, false, false},
	ActionWebhookTest:      {"webhooks.test", "test webhooks", RoleEditor, false, false},
	ActionSnapshotReplay:   {"snapshots.replay", "replay error snapshots", RoleEditor, false, false},

	ActionTenantWrite: {"tenant.write", "change the Tenant object", RoleAdmin, false, false},
	ActionRollback:    {"rollback", "roll back", RoleAdmin, false, false},

	ActionGateway:      {"gateway", "change the Gateway", RoleNone, true, false},
	ActionTenantCreate: {"tenant.create", "create tenants", RoleNone, true, false},
	ActionXDP:          {"xdp", "manage the XDP limiter", RoleNone, true, false},
	ActionDaemonStatus: {"status.full", "read the daemon's full status", RoleNone, true, false},
	ActionAuditVerify:  {"audit.verify", "verify the audit chain", RoleNone, true, false},
	ActionForce:        {"force", "force changes past GitOps mode", RoleNone, true, false},

	ActionStatus: {"status", "read the status", RoleNone, false, true},
}

func (a Action) info() actionInfo {
	if a <= actionInvalid || a >= actionCount {
		// An unknown action needs cluster admin: deny by default.
		return actionInfo{name: "unknown", phrase: "do this", cluster: true}
	}
	return actions[a]
}

// String is the action's stable name ("keys.write").
func (a Action) String() string { return a.info().name }

// Requires says what the action needs: a role on the tenant concerned, or
// cluster admin (cluster true), or any role at all (role RoleNone and
// cluster false). The empty tenant always needs cluster admin.
func (a Action) Requires() (role Role, cluster bool) {
	i := a.info()
	return i.role, i.cluster
}
