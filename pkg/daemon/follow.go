package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/keys"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/webhook"
)

// A stoad on a shared store (PostgreSQL) is one of several writers: the
// revisions, keys, deliveries and quota counts other replicas commit
// must reach this one's runtimes as if it had committed them itself.
// docs/store.md ("What a second replica needs") lists what follows.

// followers reload what other replicas change besides the revision.
type followers struct {
	keys     *keys.Service
	webhooks *webhook.Runtime
	quotas   *quota.Admission
}

// keyService is the key service of either composition (nil when
// runtimes are injected).
func (d *Daemon) keyService() *keys.Service {
	if d.keys != nil {
		return d.keys
	}
	if d.dp != nil {
		return d.dp.keys
	}
	return nil
}

// followStore applies the store's changes until ctx ends: a newer
// revision is loaded, prepared and swapped in like a local commit, keys
// are reindexed, the webhook outbox reloaded and quota counts merged.
// Then the new events are published (events.Log.FollowStore).
func (d *Daemon) followStore(ctx context.Context, changes <-chan store.Change) {
	// Whatever was committed between New's load and the watch.
	d.catchUp(ctx, store.Change{Resync: true})
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			d.catchUp(ctx, c)
		}
	}
}

// catchUp applies one change (several, merged, when this replica fell
// behind).
func (d *Daemon) catchUp(ctx context.Context, c store.Change) {
	if c.Resync || c.Revision > d.Live().Revision {
		// A failure is retried on the next change, and in any case on
		// the next Resync; meanwhile the previous revision is served.
		if err := d.loadNewer(ctx); err != nil {
			d.log.Error("follow the store: the live revision did not follow another replica's commit", "err", err)
		}
	}
	if c.Resync || c.Domains.Has(store.DomainKeys) {
		if ks := d.keyService(); ks != nil {
			if err := ks.Refresh(); err != nil {
				d.log.Warn("follow the store: reload keys", "err", err)
			}
		}
	}
	if w := d.follow.webhooks; w != nil && (c.Resync || c.Domains.Has(store.DomainOutbox)) {
		if err := w.ReloadPending(); err != nil {
			d.log.Warn("follow the store: reload webhook deliveries", "err", err)
		}
	}
	if q := d.follow.quotas; q != nil && (c.Resync || c.Domains.Has(store.DomainQuota)) {
		if err := q.SyncUsage(); err != nil {
			d.log.Warn("follow the store: read quota usage", "err", err)
		}
	}
	// Events last: a follower reacting to one (get --watch reads the
	// objects on a config.applied) finds the state that has it.
	if c.Resync || c.Event > 0 {
		d.events.PublishNew(ctx)
	}
}

// loadNewer loads the store's live revision and, if it is newer than the
// one served, prepares and swaps it in, under the lock that serialises
// local changes (so a local commit never races it).
func (d *Daemon) loadNewer(ctx context.Context) error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	cur := d.Live()
	var rev int64
	err := d.store.View(ctx, func(tx store.Tx) error {
		var err error
		rev, err = tx.Revisions().Current(ctx)
		return err
	})
	if err != nil || rev <= cur.Revision {
		return err
	}
	start := time.Now()
	objs, rev, err := store.Load(ctx, d.store)
	if err != nil {
		return err
	}
	next := state.New(rev, objs)
	next.Digests = plan.DigestAll(objs)
	swap, err := d.prepareRuntimes(next, nil)
	if err != nil {
		d.events.Emit("error", "", fmt.Sprintf("revision %d, committed by another replica, cannot be served here: %v; still serving %d", rev, err, cur.Revision), nil)
		return fmt.Errorf("prepare revision %d: %w", rev, err)
	}
	swap()
	d.live.Store(next)
	if len(objs) >= bigApply {
		d.releaseMemorySoon()
	}
	d.log.Info("revision loaded from the store", "revision", rev, "previous", cur.Revision, "objects", len(objs), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
