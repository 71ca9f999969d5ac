// Package api holds the LocalAPI wire types shared by stoad and the stoa CLI:
// routes, request and response bodies, and the one error envelope. It has no
// behaviour beyond encoding helpers, so both binaries can import it.
package api

import (
	"time"

	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Version is the LocalAPI version prefix of every route.
const Version = "v1"

// Routes of the LocalAPI (all under /v1).
const (
	PathStatus    = "/v1/status"
	PathApply     = "/v1/apply"
	PathObjects   = "/v1/objects"   // GET ?kind=&namespace=&name=
	PathDelete    = "/v1/delete"    // POST DeleteRequest
	PathRevisions = "/v1/revisions" // GET list, GET /v1/revisions/{id}
	PathRollback  = "/v1/rollback"  // POST RollbackRequest
	PathEvents    = "/v1/events"    // GET ?follow=1 NDJSON
	PathDigests   = "/v1/digests"   // GET: digest of every live object
)

// Error codes carried in the error envelope. The CLI maps them to exit codes.
const (
	CodeInvalid      = "invalid"      // specs or request invalid (exit 3)
	CodeNotFound     = "not_found"    // object or revision missing (exit 1)
	CodeConflict     = "conflict"     // concurrent change or dependency (exit 1)
	CodeUnauthorized = "unauthorized" // peer not allowed (exit 4)
	CodeForbidden    = "forbidden"    // peer not allowed (exit 4)
	CodeInternal     = "internal"     // daemon bug or I/O failure (exit 1)
	CodeUnavailable  = "unavailable"  // daemon shutting down (exit 5)
	CodeBadRequest   = "bad_request"  // malformed request (exit 1)
	CodeMethod       = "method_not_allowed"
)

// ErrorBody is the one error envelope every failing LocalAPI call returns:
// {"error": {"code": ..., "message": ..., "hint": ..., "diagnostics": [...]}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error is a LocalAPI error.
type Error struct {
	Code        string           `json:"code"`
	Message     string           `json:"message"`
	Hint        string           `json:"hint,omitempty"`
	Diagnostics spec.Diagnostics `json:"diagnostics,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Status describes the running daemon.
type Status struct {
	// Role is what this stoad is: "" for the single-machine gateway,
	// "control-plane" for one that serves the API and no traffic,
	// "data-plane" for one that serves signed bundles (--join, --bundle).
	Role      string         `json:"role,omitempty"`
	Version   string         `json:"version"`
	Commit    string         `json:"commit,omitempty"`
	PID       int            `json:"pid"`
	StartedAt time.Time      `json:"startedAt"`
	Uptime    string         `json:"uptime"`
	Revision  int64          `json:"revision"`
	Objects   map[string]int `json:"objects"`
	StateDir  string         `json:"stateDir"`
	Listeners []Listener     `json:"listeners"`
	SpecsDir  string         `json:"specsDir,omitempty"`
	// GitOps reports the GitOps sync of SpecsDir (nil without --specs).
	GitOps     *GitOpsStatus `json:"gitops,omitempty"`
	Components []Component   `json:"components,omitempty"`
	// Fleet and Bundle say where a read-only stoad's configuration comes
	// from (dataplane.go); nil on a stoad that takes applies.
	Fleet  *fleet.SyncStatus `json:"fleet,omitempty"`
	Bundle *BundleStatus     `json:"bundle,omitempty"`
	// Warnings are conditions an operator must know about on every look,
	// such as a development issuer minting tokens.
	Warnings []string `json:"warnings,omitempty"`
}

// GitOpsStatus is the state of the --specs directory sync: the last
// attempt, the last success, and the last failure with its error, so that
// `stoa status` says why the live revision is not what the directory
// holds.
type GitOpsStatus struct {
	Dir           string    `json:"dir"`
	LastAttemptAt time.Time `json:"lastAttemptAt,omitzero"`
	LastAppliedAt time.Time `json:"lastAppliedAt,omitzero"`
	// LastRevision is the revision the last successful sync left live.
	LastRevision int64 `json:"lastRevision,omitempty"`
	// LastErrorAt and LastError describe the last failed sync; it is
	// still the state of things when newer than LastAppliedAt.
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
}

// Listener is one address stoad serves.
type Listener struct {
	Name    string `json:"name"`    // localapi, proxy, ops, mcp-socket
	Address string `json:"address"` // host:port or socket path
}

// Component is the status line of one runtime part (proxy, xdp, mcp…).
type Component struct {
	Name   string         `json:"name"`
	State  string         `json:"state"` // ok, degraded, off
	Detail string         `json:"detail,omitempty"`
	Data   map[string]any `json:"data,omitempty"`
}

// ApplyRequest asks the daemon to make the desired objects live.
type ApplyRequest struct {
	Objects []*spec.Object `json:"objects"`
	// DryRun computes the plan without changing anything (stoa diff).
	DryRun bool `json:"dryRun,omitempty"`
	// Prune deletes live objects absent from Objects within Scope.
	Prune bool       `json:"prune,omitempty"`
	Scope PruneScope `json:"scope,omitempty"`
	// Message is an optional note stored with the revision.
	Message string `json:"message,omitempty"`
	// WithObjects returns each change's before and after objects (for
	// diffs); otherwise changes carry only the operation and reference.
	WithObjects bool `json:"withObjects,omitempty"`
	// Force changes a stoad running in GitOps mode (--specs), whose
	// directory would otherwise be the only source of changes.
	Force bool `json:"force,omitempty"`
}

// PruneScope limits what --prune may delete.
type PruneScope struct {
	// All prunes across every namespace (stoa apply --prune-all).
	All bool `json:"all,omitempty"`
	// Namespaces covered by the files (tenant-scoped objects in them are
	// candidates). Cluster-scoped objects are candidates only when
	// ClusterScoped is set.
	Namespaces    []string `json:"namespaces,omitempty"`
	ClusterScoped bool     `json:"clusterScoped,omitempty"`
	// Selector restricts candidates to objects carrying all these labels.
	Selector map[string]string `json:"selector,omitempty"`
}

// ApplyResponse reports the plan and, unless dry-run or no-op, the new
// revision.
type ApplyResponse struct {
	Changes  []plan.Change `json:"changes"`
	Summary  plan.Summary  `json:"summary"`
	Revision int64         `json:"revision"`         // the live revision after the call
	Created  bool          `json:"created"`          // a new revision was written
	DryRun   bool          `json:"dryRun,omitempty"` //
	Warnings []string      `json:"warnings,omitempty"`
}

// DeleteRequest deletes objects by reference (one revision).
type DeleteRequest struct {
	Refs   []spec.Ref `json:"refs"`
	DryRun bool       `json:"dryRun,omitempty"`
	// WithObjects returns the deleted objects.
	WithObjects bool `json:"withObjects,omitempty"`
	// IgnoreNotFound makes missing objects a no-op rather than an error.
	IgnoreNotFound bool `json:"ignoreNotFound,omitempty"`
	// Cascade also deletes every object that refers to one of Refs,
	// transitively (a Tool's ToolSets and their Subscriptions; everything
	// in a Tenant). Without it, a deletion that would leave references
	// dangling fails with CodeConflict, naming each referrer and field.
	Cascade bool `json:"cascade,omitempty"`
	// IfRevision, when set, makes the call fail with CodeConflict unless
	// the live revision is still this one (the one a preview was made of).
	IfRevision int64 `json:"ifRevision,omitempty"`
	// Force: see ApplyRequest.Force.
	Force bool `json:"force,omitempty"`
}

// ObjectList is the answer of GET /v1/objects.
type ObjectList struct {
	Revision int64          `json:"revision"`
	Items    []*spec.Object `json:"items"`
}

// DigestList carries the digest (SHA-256 of the canonical JSON, defaults
// applied) of every live object, so a client can tell that an apply would
// change nothing without sending the objects.
type DigestList struct {
	Revision int64          `json:"revision"`
	Items    []ObjectDigest `json:"items"`
}

// ObjectDigest is one live object's digest.
type ObjectDigest struct {
	Ref    spec.Ref    `json:"ref"`
	Digest plan.Digest `json:"digest"`
}

// Revision is one entry of the history.
type Revision struct {
	ID      int64        `json:"id"`
	Time    time.Time    `json:"time"`
	Actor   string       `json:"actor"`
	Action  string       `json:"action"` // apply, delete, rollback
	Summary plan.Summary `json:"summary"`
	Message string       `json:"message,omitempty"`
	// Changes is filled only by GET /v1/revisions/{id}.
	Changes []plan.Change `json:"changes,omitempty"`
}

// RevisionList is the answer of GET /v1/revisions.
type RevisionList struct {
	Current int64      `json:"current"`
	Items   []Revision `json:"items"`
}

// RollbackRequest returns the live state to an earlier revision (itself a
// new revision). Revision 0 means the one before the current; that is
// never the empty state before the first apply unless ToEmpty says so.
type RollbackRequest struct {
	Revision    int64 `json:"revision"`
	DryRun      bool  `json:"dryRun,omitempty"`
	WithObjects bool  `json:"withObjects,omitempty"`
	// ToEmpty asks for revision 0, the empty state: every object deleted.
	ToEmpty bool `json:"toEmpty,omitempty"`
	// IfRevision, when set, makes the call fail with CodeConflict unless
	// the live revision is still this one (the one a preview was made of).
	IfRevision int64 `json:"ifRevision,omitempty"`
	// Force: see ApplyRequest.Force.
	Force bool `json:"force,omitempty"`
}

// Event is one entry of the event stream (NDJSON on GET /v1/events).
type Event struct {
	Seq     int64          `json:"seq"`
	Time    time.Time      `json:"time"`
	Type    string         `json:"type"` // config.applied, config.rolledback, reload, upstream.ejected, xdp.block, error, …
	Tenant  string         `json:"tenant,omitempty"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data,omitempty"`
}

// Key routes.
const (
	PathKeys = "/v1/keys" // GET list, POST create; POST /v1/keys/{id}/revoke|rotate
)

// KeyInfo describes an API key; the secret and its hash are never part of
// it.
type KeyInfo struct {
	ID       string `json:"id"`
	Prefix   string `json:"prefix"`
	Tenant   string `json:"tenant"`
	Consumer string `json:"consumer"`
	// ConsumerUID identifies the Consumer object the key belongs to: a
	// consumer deleted and created again under the same name has another.
	ConsumerUID string    `json:"consumerUid,omitempty"`
	Name        string    `json:"name,omitempty"`
	State       string    `json:"state"`
	CreatedAt   time.Time `json:"createdAt"`
	ExpiresAt   time.Time `json:"expiresAt,omitzero"`
	RevokedAt   time.Time `json:"revokedAt,omitzero"`
	// RevokedBy and RevokedReason say who revoked the key and why.
	RevokedBy     string    `json:"revokedBy,omitempty"`
	RevokedReason string    `json:"revokedReason,omitempty"`
	NotAfter      time.Time `json:"notAfter,omitzero"`
	RotatedTo     string    `json:"rotatedTo,omitempty"`
	LastUsedAt    time.Time `json:"lastUsedAt,omitzero"`
}

// KeyCreateRequest creates an API key for a consumer.
type KeyCreateRequest struct {
	Tenant   string `json:"tenant"`
	Consumer string `json:"consumer"`
	Name     string `json:"name,omitempty"`
	// ExpiresIn is a duration ("90d", "720h"); empty means no expiry.
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// KeyCreateResponse carries the new key: the only time the secret is ever
// returned.
type KeyCreateResponse struct {
	Key  string  `json:"key"`
	Info KeyInfo `json:"info"`
}

// KeyRotateRequest replaces a key; the old one keeps working for Grace.
type KeyRotateRequest struct {
	Grace string `json:"grace,omitempty"`
	// ExpiresIn is the new key's lifetime ("90d", or "never" for none);
	// empty means the old key's lifetime (ExpiresAt - CreatedAt), counted
	// from the rotation.
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// KeyRotateResponse carries the successor key and the old key's record.
type KeyRotateResponse struct {
	Key string  `json:"key"`
	New KeyInfo `json:"new"`
	Old KeyInfo `json:"old"`
}

// KeyList is the answer of GET /v1/keys.
type KeyList struct {
	Items []KeyInfo `json:"items"`
}
