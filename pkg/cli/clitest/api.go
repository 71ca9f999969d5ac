package clitest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// The methods of client.API: each records the call, fails when the test
// asked it to, then answers from the fake's state.

// Endpoint implements client.API.
func (fa *FakeAPI) Endpoint() string { return fa.EndpointName }

// Status implements client.API: StatusAnswer with the live revision and
// object counts.
func (fa *FakeAPI) Status(ctx context.Context) (*api.Status, error) {
	if err := fa.record("Status"); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	s := clone(fa.StatusAnswer)
	s.Revision = fa.LiveRevision
	s.Objects = map[string]int{}
	for _, o := range fa.LiveObjects {
		s.Objects[string(o.Kind)]++
	}
	return s, nil
}

// ApplyEncoded implements client.API.
func (fa *FakeAPI) ApplyEncoded(ctx context.Context, req *api.ApplyRequest, objects json.RawMessage) (*api.ApplyResponse, error) {
	if err := fa.record("ApplyEncoded", clone(*req), objects); err != nil {
		return nil, err
	}
	if fa.ApplyFunc != nil {
		return fa.ApplyFunc(req, objects)
	}
	return fa.change(req.DryRun), nil
}

func (fa *FakeAPI) change(dryRun bool) *api.ApplyResponse {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	r := clone(fa.ChangeAnswer)
	if dryRun {
		r.DryRun, r.Created, r.Revision = true, false, fa.LiveRevision
	}
	return r
}

// Digests implements client.API: the digests of LiveObjects.
func (fa *FakeAPI) Digests(ctx context.Context) (*api.DigestList, error) {
	if err := fa.record("Digests"); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	l := &api.DigestList{Revision: fa.LiveRevision, Items: []api.ObjectDigest{}}
	for _, o := range fa.LiveObjects {
		l.Items = append(l.Items, api.ObjectDigest{Ref: o.Ref(), Digest: plan.DigestOf(o)})
	}
	return l, nil
}

// Delete implements client.API.
func (fa *FakeAPI) Delete(ctx context.Context, req *api.DeleteRequest) (*api.ApplyResponse, error) {
	if err := fa.record("Delete", clone(*req)); err != nil {
		return nil, err
	}
	if fa.DeleteFunc != nil {
		return fa.DeleteFunc(req)
	}
	return fa.change(req.DryRun), nil
}

// Rollback implements client.API.
func (fa *FakeAPI) Rollback(ctx context.Context, req *api.RollbackRequest) (*api.ApplyResponse, error) {
	if err := fa.record("Rollback", clone(*req)); err != nil {
		return nil, err
	}
	if fa.RollbackFunc != nil {
		return fa.RollbackFunc(req)
	}
	return fa.change(req.DryRun), nil
}

// Objects implements client.API: LiveObjects filtered as stoad filters them,
// secrets masked; a name that matches nothing is not found.
func (fa *FakeAPI) Objects(ctx context.Context, kind, namespace, name string) (*api.ObjectList, error) {
	if err := fa.record("Objects", kind, namespace, name); err != nil {
		return nil, err
	}
	var k spec.Kind
	if kind != "" {
		var ok bool
		if k, ok = spec.ParseKind(kind); !ok {
			return nil, &api.Error{Code: api.CodeBadRequest, Message: fmt.Sprintf("unknown kind %q", kind)}
		}
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	l := &api.ObjectList{Revision: fa.LiveRevision, Items: []*spec.Object{}}
	for _, o := range fa.LiveObjects {
		if (k == "" || o.Kind == k) && (namespace == "" || o.Metadata.Namespace == namespace) && (name == "" || o.Metadata.Name == name) {
			l.Items = append(l.Items, spec.Clone(spec.Mask(o)))
		}
	}
	if name != "" && len(l.Items) == 0 {
		return nil, NotFound(fmt.Sprintf("%s %q", k, name))
	}
	return l, nil
}

// Revisions implements client.API.
func (fa *FakeAPI) Revisions(ctx context.Context, limit int) (*api.RevisionList, error) {
	if err := fa.record("Revisions", limit); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	items := fa.RevisionList
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	l := clone(api.RevisionList{Current: fa.LiveRevision, Items: items})
	for i := range l.Items {
		l.Items[i].Changes = nil // the list carries summaries only
	}
	if l.Items == nil {
		l.Items = []api.Revision{}
	}
	return l, nil
}

// Revision implements client.API.
func (fa *FakeAPI) Revision(ctx context.Context, id int64) (*api.Revision, error) {
	if err := fa.record("Revision", id); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	for _, r := range fa.RevisionList {
		if r.ID == id {
			return clone(r), nil
		}
	}
	return nil, NotFound(fmt.Sprintf("revision %d", id))
}

// Events implements client.API.
func (fa *FakeAPI) Events(ctx context.Context, o client.EventsOptions, fn func(api.Event) error) error {
	if err := fa.record("Events", eventsArgs{Since: o.Since, Last: o.Last, Follow: o.Follow}); err != nil {
		return err
	}
	if o.Connected != nil {
		if err := o.Connected(); err != nil {
			return err
		}
	}
	fa.mu.Lock()
	var backlog []api.Event
	for _, e := range fa.EventLog {
		if e.Seq > o.Since {
			backlog = append(backlog, e)
		}
	}
	if o.Last > 0 && len(backlog) > o.Last {
		backlog = backlog[len(backlog)-o.Last:]
	}
	live := fa.EventStream
	fa.mu.Unlock()
	for _, e := range backlog {
		if err := fn(e); err != nil {
			return err
		}
	}
	if !o.Follow || live == nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-live:
			if !ok {
				return nil
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

// eventsArgs is how an Events call is recorded: its options without the
// Connected callback.
type eventsArgs struct {
	Since  int64
	Last   int
	Follow bool
}

// Keys implements client.API.
func (fa *FakeAPI) Keys(ctx context.Context, o client.KeysOptions) (*api.KeyList, error) {
	if err := fa.record("Keys", o); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	l := &api.KeyList{Items: []api.KeyInfo{}}
	for _, k := range fa.KeyList.Items {
		if (o.Namespace == "" || k.Tenant == o.Namespace) && (o.Consumer == "" || k.Consumer == o.Consumer) {
			l.Items = append(l.Items, k)
		}
	}
	return l, nil
}

func (fa *FakeAPI) key(id string) (api.KeyInfo, error) {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	for _, k := range fa.KeyList.Items {
		if k.ID == id {
			return k, nil
		}
	}
	return api.KeyInfo{}, NotFound(fmt.Sprintf("key %q", id))
}

// CreateKey implements client.API.
func (fa *FakeAPI) CreateKey(ctx context.Context, req *api.KeyCreateRequest) (*api.KeyCreateResponse, error) {
	if err := fa.record("CreateKey", clone(*req)); err != nil {
		return nil, err
	}
	info := api.KeyInfo{ID: "n3wk3yn3wk3yn3wk", Prefix: "stoa_sk_n3wk3yn3wk3yn3wk", Tenant: req.Tenant, Consumer: req.Consumer,
		Name: req.Name, State: "active", CreatedAt: T0}
	return &api.KeyCreateResponse{Key: info.Prefix + "_secret", Info: info}, nil
}

// RevokeKey implements client.API.
func (fa *FakeAPI) RevokeKey(ctx context.Context, id string) (*api.KeyInfo, error) {
	if err := fa.record("RevokeKey", id); err != nil {
		return nil, err
	}
	k, err := fa.key(id)
	if err != nil {
		return nil, err
	}
	k.State, k.RevokedAt = "revoked", T0
	return &k, nil
}

// RotateKey implements client.API.
func (fa *FakeAPI) RotateKey(ctx context.Context, id string, req *api.KeyRotateRequest) (*api.KeyRotateResponse, error) {
	if err := fa.record("RotateKey", id, clone(*req)); err != nil {
		return nil, err
	}
	old, err := fa.key(id)
	if err != nil {
		return nil, err
	}
	next := old
	next.ID, next.Prefix, next.CreatedAt = "n3wn3wn3wn3wn3wn", "stoa_sk_n3wn3wn3wn3wn3wn", T0
	old.NotAfter, old.RotatedTo = T0.Add(24*time.Hour), next.ID
	return &api.KeyRotateResponse{Key: next.Prefix + "_secret", New: next, Old: old}, nil
}

// Quotas implements client.API.
func (fa *FakeAPI) Quotas(ctx context.Context, namespace string) (*api.QuotaList, error) {
	if err := fa.record("Quotas", namespace); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return clone(fa.QuotaList), nil
}

// WebhookDeliveries implements client.API.
func (fa *FakeAPI) WebhookDeliveries(ctx context.Context, o client.DeliveriesOptions) (*api.WebhookDeliveryList, error) {
	if err := fa.record("WebhookDeliveries", o); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return clone(fa.Deliveries), nil
}

// WebhookDelivery implements client.API.
func (fa *FakeAPI) WebhookDelivery(ctx context.Context, id string) (*api.WebhookDelivery, error) {
	if err := fa.record("WebhookDelivery", id); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	for _, d := range fa.Deliveries.Items {
		if d.ID == id {
			return clone(d), nil
		}
	}
	return nil, NotFound(fmt.Sprintf("delivery %q", id))
}

// Redeliver implements client.API.
func (fa *FakeAPI) Redeliver(ctx context.Context, id string, noWait bool) (*api.WebhookAttemptResponse, error) {
	if err := fa.record("Redeliver", id, noWait); err != nil {
		return nil, err
	}
	return fa.attempt(noWait), nil
}

// TestWebhook implements client.API.
func (fa *FakeAPI) TestWebhook(ctx context.Context, req api.WebhookTestRequest) (*api.WebhookAttemptResponse, error) {
	if err := fa.record("TestWebhook", req); err != nil {
		return nil, err
	}
	return fa.attempt(req.NoWait), nil
}

// attempt is Attempt, or with noWait the delivery as queued.
func (fa *FakeAPI) attempt(noWait bool) *api.WebhookAttemptResponse {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	r := clone(fa.Attempt)
	if noWait {
		r.Waited = false
		r.Delivery.State, r.Delivery.Attempts, r.Delivery.LastStatus = "pending", 0, 0
	}
	return r
}

// Snapshots implements client.API.
func (fa *FakeAPI) Snapshots(ctx context.Context, o client.SnapshotsOptions) (*api.SnapshotList, error) {
	if err := fa.record("Snapshots", o); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return clone(fa.SnapshotList), nil
}

// Snapshot implements client.API.
func (fa *FakeAPI) Snapshot(ctx context.Context, id string) (*api.Snapshot, error) {
	if err := fa.record("Snapshot", id); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	s, ok := fa.SnapshotByID[id]
	if !ok {
		return nil, NotFound(fmt.Sprintf("snapshot %q", id))
	}
	return clone(s), nil
}

// ReplaySnapshot implements client.API.
func (fa *FakeAPI) ReplaySnapshot(ctx context.Context, id string) (*api.ReplayResult, error) {
	if err := fa.record("ReplaySnapshot", id); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return clone(fa.Replay), nil
}

// Audit implements client.API.
func (fa *FakeAPI) Audit(ctx context.Context, o client.AuditOptions, fn func(api.AuditEntry) error) error {
	if err := fa.record("Audit", o); err != nil {
		return err
	}
	fa.mu.Lock()
	log := append([]api.AuditEntry(nil), fa.AuditLog...)
	fa.mu.Unlock()
	for _, e := range log {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// AuditVerify implements client.API.
func (fa *FakeAPI) AuditVerify(ctx context.Context) (*api.AuditVerify, error) {
	if err := fa.record("AuditVerify"); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return clone(fa.Verify), nil
}

// Stats implements client.API: the last sample of StatsStream.
func (fa *FakeAPI) Stats(ctx context.Context) (*api.StatsSample, error) {
	if err := fa.record("Stats"); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if len(fa.StatsStream) == 0 {
		return &api.StatsSample{Time: T0}, nil
	}
	return clone(fa.StatsStream[len(fa.StatsStream)-1]), nil
}

// FollowStats implements client.API: every sample of StatsStream, then
// the stream ends.
func (fa *FakeAPI) FollowStats(ctx context.Context, fn func(*api.StatsSample) error) error {
	if err := fa.record("FollowStats"); err != nil {
		return err
	}
	fa.mu.Lock()
	stream := append([]api.StatsSample(nil), fa.StatsStream...)
	fa.mu.Unlock()
	for _, s := range stream {
		if err := fn(clone(s)); err != nil {
			return err
		}
	}
	return nil
}

// XDPStatus implements client.API.
func (fa *FakeAPI) XDPStatus(ctx context.Context) (*api.XDPStatus, error) {
	if err := fa.record("XDPStatus"); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return clone(fa.XDP), nil
}

// XDPBlocks implements client.API.
func (fa *FakeAPI) XDPBlocks(ctx context.Context) (*api.XDPBlockList, error) {
	if err := fa.record("XDPBlocks"); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return clone(fa.Blocks), nil
}

// XDPBlock implements client.API: the block is added to Blocks.
func (fa *FakeAPI) XDPBlock(ctx context.Context, req *api.XDPBlockRequest) (*api.XDPBlock, error) {
	if err := fa.record("XDPBlock", clone(*req)); err != nil {
		return nil, err
	}
	src := req.CIDR
	if !strings.Contains(src, "/") {
		src += "/32"
	}
	b := api.XDPBlock{Source: src, Reason: req.Reason, Until: T0.Add(10 * time.Minute), ExpiresInSeconds: 600}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	fa.Blocks.Items = append(fa.Blocks.Items, b)
	return &b, nil
}

// XDPUnblock implements client.API: Removed says whether Blocks held it.
func (fa *FakeAPI) XDPUnblock(ctx context.Context, cidr string) (*api.XDPUnblockResponse, error) {
	if err := fa.record("XDPUnblock", cidr); err != nil {
		return nil, err
	}
	src := cidr
	if !strings.Contains(src, "/") {
		src += "/32"
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	for i, b := range fa.Blocks.Items {
		if b.Source == src {
			fa.Blocks.Items = append(fa.Blocks.Items[:i], fa.Blocks.Items[i+1:]...)
			return &api.XDPUnblockResponse{Source: src, Removed: true}, nil
		}
	}
	return &api.XDPUnblockResponse{Source: src}, nil
}
