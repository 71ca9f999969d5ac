package client

import (
	"context"
	"encoding/json"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// API is every call the CLI makes to a stoad, whatever carries it: *Client
// speaks it over the LocalAPI's unix socket, a remote control plane's
// client will speak it over HTTPS, and tests answer it in memory.
//
// It is transport-neutral on purpose: no socket paths, no HTTP verbs or
// routes. Errors are the typed ones a command maps to exit codes:
// *api.Error for an answer the daemon refused (its Code decides: invalid
// specs 3, forbidden 4, unavailable 5), *UnreachableError and
// *ForbiddenError when the daemon cannot be reached or refuses the peer.
// How a transport tells those apart (the unix socket's file checks, for
// instance) stays inside its client.
type API interface {
	// Endpoint names where the client talks to, for people: a socket
	// path, a URL.
	Endpoint() string

	// Status returns the daemon's status.
	Status(ctx context.Context) (*api.Status, error)

	// ApplyEncoded applies (or, with req.DryRun, plans) objects given as
	// their JSON array; req.Objects is ignored.
	ApplyEncoded(ctx context.Context, req *api.ApplyRequest, objects json.RawMessage) (*api.ApplyResponse, error)
	// Digests returns the digest of every live object.
	Digests(ctx context.Context) (*api.DigestList, error)
	// Delete deletes objects by reference.
	Delete(ctx context.Context, req *api.DeleteRequest) (*api.ApplyResponse, error)
	// Rollback returns to an earlier revision.
	Rollback(ctx context.Context, req *api.RollbackRequest) (*api.ApplyResponse, error)
	// Objects lists live objects; empty filters match everything.
	Objects(ctx context.Context, kind, namespace, name string) (*api.ObjectList, error)
	// Revisions lists revisions, newest first; limit 0 lists all.
	Revisions(ctx context.Context, limit int) (*api.RevisionList, error)
	// Revision returns one revision with its changes.
	Revision(ctx context.Context, id int64) (*api.Revision, error)
	// Events streams events to fn until the stream ends, ctx is
	// cancelled or fn returns an error.
	Events(ctx context.Context, o EventsOptions, fn func(api.Event) error) error

	// Keys lists API keys.
	Keys(ctx context.Context, o KeysOptions) (*api.KeyList, error)
	// CreateKey creates an API key; the answer holds the key, once.
	CreateKey(ctx context.Context, req *api.KeyCreateRequest) (*api.KeyCreateResponse, error)
	// RevokeKey revokes a key at once.
	RevokeKey(ctx context.Context, id string) (*api.KeyInfo, error)
	// RotateKey creates a key's successor; the answer holds it, once.
	RotateKey(ctx context.Context, id string, req *api.KeyRotateRequest) (*api.KeyRotateResponse, error)

	// Quotas lists subscriptions with their state and quota usage.
	Quotas(ctx context.Context, namespace string) (*api.QuotaList, error)

	// WebhookDeliveries lists deliveries, newest first.
	WebhookDeliveries(ctx context.Context, o DeliveriesOptions) (*api.WebhookDeliveryList, error)
	// WebhookDelivery returns one delivery with its payload.
	WebhookDelivery(ctx context.Context, id string) (*api.WebhookDelivery, error)
	// Redeliver queues a delivery's event again.
	Redeliver(ctx context.Context, id string, noWait bool) (*api.WebhookAttemptResponse, error)
	// TestWebhook sends a webhook.test event to one webhook.
	TestWebhook(ctx context.Context, req api.WebhookTestRequest) (*api.WebhookAttemptResponse, error)

	// Snapshots lists error snapshots, newest first.
	Snapshots(ctx context.Context, o SnapshotsOptions) (*api.SnapshotList, error)
	// Snapshot returns one snapshot with its curl command.
	Snapshot(ctx context.Context, id string) (*api.Snapshot, error)
	// ReplaySnapshot re-sends a snapshot's request through the tool's
	// current route.
	ReplaySnapshot(ctx context.Context, id string) (*api.ReplayResult, error)

	// Audit streams audit entries, oldest first, to fn.
	Audit(ctx context.Context, o AuditOptions, fn func(api.AuditEntry) error) error
	// AuditVerify checks the audit chain.
	AuditVerify(ctx context.Context) (*api.AuditVerify, error)

	// Stats returns one stats sample.
	Stats(ctx context.Context) (*api.StatsSample, error)
	// FollowStats streams a stats sample about once a second to fn.
	FollowStats(ctx context.Context, fn func(*api.StatsSample) error) error

	// XDPStatus returns the XDP limiter's status.
	XDPStatus(ctx context.Context) (*api.XDPStatus, error)
	// XDPBlocks lists the timed blocks in force.
	XDPBlocks(ctx context.Context) (*api.XDPBlockList, error)
	// XDPBlock blocks a source prefix for req.For.
	XDPBlock(ctx context.Context, req *api.XDPBlockRequest) (*api.XDPBlock, error)
	// XDPUnblock lifts the block on a prefix.
	XDPUnblock(ctx context.Context, cidr string) (*api.XDPUnblockResponse, error)

	// DataPlanes lists a control plane's data planes.
	DataPlanes(ctx context.Context) (*fleet.DataPlaneList, error)
	// CreateJoinToken makes a join token (its secret is in this answer
	// only).
	CreateJoinToken(ctx context.Context, req *api.JoinTokenCreateRequest) (*fleet.NewJoinToken, error)
	// JoinTokens lists the join tokens.
	JoinTokens(ctx context.Context) (*api.JoinTokenList, error)
	// RevokeJoinToken deletes a join token.
	RevokeJoinToken(ctx context.Context, id string) (*api.JoinTokenRevokeResponse, error)
	// RevokeDataPlane revokes a data plane.
	RevokeDataPlane(ctx context.Context, name string) (*api.DataPlaneRevokeResponse, error)
}

var _ API = (*Client)(nil)
