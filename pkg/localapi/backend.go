package localapi

import (
	"context"
	"net/netip"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/audit"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/keys"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/snapshot"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
	"github.com/stoa-gateway/stoa/pkg/webhook"
	"github.com/stoa-gateway/stoa/pkg/xdp"
)

// The handlers reach stoad through the interfaces below: what each group
// of routes needs, in the domain's own types. pkg/daemon and the runtimes
// implement them; tests and a control plane can bring their own.

// Daemon is what the configuration routes need: the live revision, its
// changes and history, the event log and the status.
type Daemon interface {
	Status() api.Status
	Live() *state.Revision
	// Apply, Delete and Rollback make one change for c, through the
	// same plan → validate → prepare → commit → swap pipeline.
	Apply(req *api.ApplyRequest, c Caller) (*api.ApplyResponse, error)
	Delete(req *api.DeleteRequest, c Caller) (*api.ApplyResponse, error)
	Rollback(req *api.RollbackRequest, c Caller) (*api.ApplyResponse, error)
	// Revisions lists the newest revisions (at most limit; 0: all),
	// RevisionInfo returns one with the references of its changes, and
	// Revision one with its changes and their objects.
	Revisions(ctx context.Context, limit int) ([]store.Revision, error)
	RevisionInfo(ctx context.Context, id int64) (*store.Revision, error)
	Revision(ctx context.Context, id int64) (*store.Revision, error)
	// Events reads the stored events after since, or the last ones;
	// FollowEvents streams new ones until its cancel function is called.
	Events(ctx context.Context, since int64, last int) ([]api.Event, error)
	FollowEvents() (<-chan api.Event, func())
}

// Caller is who asks for a change: Actor is recorded with the revision,
// its event and audit entry. Allow, when set (a peer with roles), is
// given the change's plan — every create, update and delete, prune and
// cascade included — before anything is prepared, under the lock that
// keeps the plan current; an error refuses the change whole.
type Caller struct {
	Actor string
	Allow func(changes []plan.Change) error
	// ActorKind is how the caller connected, for traces: "socket" (the
	// unix socket), "token" (a bearer token), "gitops", … — never who.
	ActorKind string
	// Trace is the request's trace context (its traceparent and
	// tracestate headers, and whether the peer is local), continued by
	// the change's span under the Gateway's accept policy; nil: none.
	Trace *tracing.Incoming
}

// Services are the runtimes the other routes serve. A nil service's
// routes are not served (an unknown route answers 404).
type Services struct {
	Keys      Keys
	Quotas    Quotas
	Snapshots Snapshots
	Webhooks  Webhooks
	Audit     Audit
	XDP       XDP
	Stats     Stats
	// Fleet is a control plane's data planes and join tokens (nil: the
	// lists are empty and tokens are refused).
	Fleet Fleet
}

// Keys is API key management (pkg/keys).
type Keys interface {
	List(ctx context.Context, tenant, consumer string) ([]auth.KeyRecord, error)
	// Get returns one key's record (keys.ErrKeyNotFound if unknown).
	Get(ctx context.Context, id string) (auth.KeyRecord, error)
	Create(ctx context.Context, tenant, consumer, name string, ttl time.Duration, actor string) (string, auth.KeyRecord, error)
	Revoke(ctx context.Context, id, actor string, now time.Time) (auth.KeyRecord, error)
	Rotate(ctx context.Context, id string, o keys.RotateOptions, actor string, now time.Time) (keys.Rotation, error)
}

// Quotas is subscriptions and quota usage (pkg/quota).
type Quotas interface {
	// Now is the admission clock.
	Now() time.Time
	Statuses(now time.Time) []quota.Status
}

// Snapshots is error snapshots (pkg/snapshot).
type Snapshots interface {
	List(f snapshot.Filter) ([]snapshot.Summary, error)
	Dropped() int64
	Get(id string) (*snapshot.Snapshot, error)
	Replay(ctx context.Context, id, actor string) (snapshot.ReplayResult, error)
}

// Webhooks is the webhook outbox (pkg/webhook).
type Webhooks interface {
	List(f webhook.Filter) ([]webhook.Delivery, error)
	Get(id string) (webhook.Delivery, error)
	Redeliver(ctx context.Context, id, actor string, wait bool) (webhook.Delivery, bool, error)
	Test(ctx context.Context, tenant, name, actor string, wait bool) (webhook.Delivery, bool, error)
}

// Audit is the audit trail (pkg/audit).
type Audit interface {
	List(f audit.Filter, fn func(audit.Entry) error) error
	Verify() (audit.Result, error)
}

// XDP is the kernel limiter (pkg/xdp/xdprt).
type XDP interface {
	Report() api.XDPStatus
	Blocks() []xdp.Block
	Block(pfx netip.Prefix, d time.Duration, reason, actor string) error
	Unblock(pfx netip.Prefix, actor string) (bool, error)
}

// Stats is the live statistics stream (pkg/telemetry/stats): encoded
// samples, one per interval, while subscribed.
type Stats interface {
	Subscribe() (<-chan []byte, func())
}

// registerServices registers the routes of every service present.
func (s *Server) registerServices() {
	sv := s.o.Services
	if sv.Keys != nil {
		k := keysAPI{k: sv.Keys, live: s.o.Daemon.Live}
		s.handle("GET "+api.PathKeys, PermRead, k.list)
		s.handle("POST "+api.PathKeys, PermWrite, k.create)
		s.handle("POST "+api.PathKeys+"/{id}/revoke", PermWrite, k.revoke)
		s.handle("POST "+api.PathKeys+"/{id}/rotate", PermWrite, k.rotate)
	}
	if sv.Quotas != nil {
		s.handle("GET "+api.PathQuotas, PermRead, quotasAPI{sv.Quotas}.list)
	}
	if sv.Snapshots != nil {
		sn := snapshotsAPI{sv.Snapshots}
		s.handle("GET "+api.PathSnapshots, PermRead, sn.list)
		s.handle("GET "+api.PathSnapshots+"/{id}", PermRead, sn.get)
		s.handle("POST "+api.PathSnapshots+"/{id}/replay", PermWrite, sn.replay)
	}
	if sv.Webhooks != nil {
		wh := webhooksAPI{sv.Webhooks}
		s.handle("GET "+api.PathWebhookDeliveries, PermRead, wh.list)
		s.handle("GET "+api.PathWebhookDeliveries+"/{id}", PermRead, wh.get)
		s.handle("POST "+api.PathWebhookDeliveries+"/{id}/redeliver", PermWrite, wh.redeliver)
		s.handle("POST "+api.PathWebhookTest, PermWrite, wh.test)
	}
	if sv.Audit != nil {
		a := auditAPI{sv.Audit, s.o.Daemon}
		s.handle("GET "+api.PathAudit, PermRead, a.list)
		s.handle("GET "+api.PathAuditVerify, PermRead, a.verify)
	}
	if sv.XDP != nil {
		x := xdpAPI{sv.XDP}
		s.handle("GET "+api.PathXDPStatus, PermRead, x.status)
		s.handle("GET "+api.PathXDPBlocks, PermRead, x.blocks)
		s.handle("POST "+api.PathXDPBlocks, PermWrite, x.block)
		s.handle("DELETE "+api.PathXDPBlocks, PermWrite, x.unblock)
		s.handle("POST "+api.PathXDPUnblock, PermWrite, x.unblock)
	}
	if sv.Stats != nil {
		s.handle("GET "+api.PathStats, PermRead, statsAPI{sv.Stats}.serve)
	}
	s.registerFleet()
}
