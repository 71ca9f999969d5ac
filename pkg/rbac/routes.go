package rbac

// Scope says where a route's tenant comes from, i.e. how the handler
// applies the route's Action.
type Scope uint8

// The scopes.
const (
	// ScopeDaemon: the route concerns the daemon as a whole; check the
	// action with the empty tenant.
	ScopeDaemon Scope = iota + 1
	// ScopeList: a list. ?namespace=, when given, is checked with
	// CheckNamespace; the items are filtered with Sees/SeesObject/SeesAny.
	ScopeList
	// ScopeBody: the request body names the tenant (KeyCreateRequest,
	// WebhookTestRequest); Check it.
	ScopeBody
	// ScopeRecord: a record found by id in the path; CheckRecord with its
	// tenant (ErrNotVisible → answer 404).
	ScopeRecord
	// ScopeChanges: an apply, delete or rollback; CheckChanges,
	// CheckPreview (dry run) or CheckRollback on its plan.
	ScopeChanges
)

func (s Scope) String() string {
	switch s {
	case ScopeDaemon:
		return "daemon"
	case ScopeList:
		return "list"
	case ScopeBody:
		return "body"
	case ScopeRecord:
		return "record"
	case ScopeChanges:
		return "changes"
	}
	return "unknown"
}

// Route is one LocalAPI route's authorization.
type Route struct {
	Pattern string // as registered: "POST /v1/keys/{id}/revoke"
	Action  Action
	Scope   Scope
}

// routes is every LocalAPI route of pkg/api (docs/fleet.md has the same
// table with notes; a test keeps the two in step).
var routes = []Route{
	{"GET /v1/status", ActionStatus, ScopeDaemon},
	{"POST /v1/apply", ActionApply, ScopeChanges},
	{"GET /v1/objects", ActionGet, ScopeList},
	{"POST /v1/delete", ActionDelete, ScopeChanges},
	{"GET /v1/revisions", ActionHistory, ScopeList},
	{"GET /v1/revisions/{id}", ActionHistory, ScopeList},
	{"POST /v1/rollback", ActionRollback, ScopeChanges},
	{"GET /v1/events", ActionEvents, ScopeList},
	{"GET /v1/digests", ActionGet, ScopeList},
	{"GET /v1/stats", ActionStats, ScopeList},
	{"GET /v1/quotas", ActionQuotas, ScopeList},
	{"GET /v1/keys", ActionKeysList, ScopeList},
	{"POST /v1/keys", ActionKeysWrite, ScopeBody},
	{"POST /v1/keys/{id}/revoke", ActionKeysWrite, ScopeRecord},
	{"POST /v1/keys/{id}/rotate", ActionKeysWrite, ScopeRecord},
	{"GET /v1/snapshots", ActionSnapshots, ScopeList},
	{"GET /v1/snapshots/{id}", ActionSnapshots, ScopeRecord},
	{"POST /v1/snapshots/{id}/replay", ActionSnapshotReplay, ScopeRecord},
	{"GET /v1/webhooks/deliveries", ActionWebhooksList, ScopeList},
	{"GET /v1/webhooks/deliveries/{id}", ActionWebhooksList, ScopeRecord},
	{"POST /v1/webhooks/deliveries/{id}/redeliver", ActionWebhookRedeliver, ScopeRecord},
	{"POST /v1/webhooks/test", ActionWebhookTest, ScopeBody},
	{"GET /v1/audit", ActionAudit, ScopeList},
	{"GET /v1/audit/verify", ActionAuditVerify, ScopeDaemon},
	{"GET /v1/xdp/status", ActionXDP, ScopeDaemon},
	{"GET /v1/xdp/blocks", ActionXDP, ScopeDaemon},
	{"POST /v1/xdp/blocks", ActionXDP, ScopeDaemon},
	{"DELETE /v1/xdp/blocks", ActionXDP, ScopeDaemon},
	{"POST /v1/xdp/blocks/unblock", ActionXDP, ScopeDaemon},
}

// Routes lists every LocalAPI route with its action and scope.
func Routes() []Route { return append([]Route(nil), routes...) }

// RouteFor returns the authorization of a route pattern. A route missing
// from the table is refused to all but cluster admins: give it an entry
// before serving it to anyone else.
func RouteFor(pattern string) Route {
	for _, r := range routes {
		if r.Pattern == pattern {
			return r
		}
	}
	return Route{Pattern: pattern, Action: actionInvalid, Scope: ScopeDaemon}
}
