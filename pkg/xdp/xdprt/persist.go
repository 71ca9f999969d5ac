package xdprt

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/xdp"
)

// Runtime blocks (operators' and escalations') are kept in the store as
// they change, and put back when stoad starts, so that a restart neither
// lifts nor lengthens them.

// storedBlock is a runtime block as kept in the store (MetaXDPBlocks,
// keyed by CIDR), so that blocks outlive a restart and end when they
// would have.
type storedBlock struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
}

// recordBlock writes (added) or removes the stored copy of b. It runs on
// the event queue, in the order the changes happened.
func (r *Runtime) recordBlock(b xdp.Block, added bool) {
	if r.store == nil {
		return
	}
	ctx := context.Background()
	key := b.Prefix.String()
	err := r.store.Update(ctx, func(tx store.Tx) error {
		if !added {
			return tx.Meta().Delete(ctx, store.MetaXDPBlocks, key)
		}
		v, err := json.Marshal(storedBlock{Until: b.Until.UTC(), Reason: b.Reason})
		if err != nil {
			return err
		}
		return tx.Meta().Put(ctx, store.MetaXDPBlocks, key, v)
	})
	if err != nil {
		r.log.Error("xdp: record block; it will not survive a restart", "source", key, "err", err)
	}
}

// restoreBlocks puts back the blocks stored by an earlier run whose expiry
// has not passed, and forgets the rest. An entry that cannot be read is
// logged and dropped; it never stops stoad from starting.
func (r *Runtime) restoreBlocks(ctx context.Context) {
	if r.store == nil {
		return
	}
	type entry struct {
		key string
		b   storedBlock
		err error
	}
	var entries []entry
	err := r.store.View(ctx, func(tx store.Tx) error {
		return tx.Meta().List(ctx, store.MetaXDPBlocks, func(k string, v []byte) error {
			e := entry{key: k}
			e.err = json.Unmarshal(v, &e.b)
			entries = append(entries, e)
			return nil
		})
	})
	if err != nil {
		r.log.Error("xdp: read stored blocks; runtime blocks of the last run are lost", "err", err)
		return
	}
	var stale []string
	for _, e := range entries {
		pfx, perr := netip.ParsePrefix(e.key)
		switch {
		case e.err != nil || perr != nil:
			r.log.Warn("xdp: dropping an unreadable stored block", "key", e.key, "err", errors.Join(e.err, perr))
			stale = append(stale, e.key)
			continue
		case !e.b.Until.After(time.Now()):
			stale = append(stale, e.key)
			continue
		}
		_, err := r.attributed(blockOrigin{prefix: pfx, added: true, by: "restore", actor: "stoad"},
			func() error { return r.l.BlockUntil(pfx, e.b.Until, e.b.Reason) })
		if err != nil {
			r.log.Warn("xdp: could not restore a stored block", "source", e.key, "err", err)
			stale = append(stale, e.key)
		}
	}
	if len(stale) > 0 {
		err := r.store.Update(ctx, func(tx store.Tx) error {
			for _, k := range stale {
				if err := tx.Meta().Delete(ctx, store.MetaXDPBlocks, k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			r.log.Warn("xdp: forget expired stored blocks", "err", err)
		}
	}
}
