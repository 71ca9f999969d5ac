package xdprt

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/stoa-gateway/stoa/pkg/xdp"
)

// ShareBlocks sets fn to be told of every block this data plane decides
// itself — an escalation or an operator's block — so that the other data
// planes of a fleet apply it too (pkg/limits/limitsrt publishes it through
// Redis); nil stops sharing. Blocks received from the fleet and blocks
// restored at start are not handed back. fn runs on the goroutine that
// made the block, which may be a request's: it must not wait.
func (r *Runtime) ShareBlocks(fn func(xdp.Block)) {
	if fn == nil {
		r.share.Store(nil)
		return
	}
	r.share.Store(&fn)
}

// shareBlock hands b to the fleet when it was decided here.
func (r *Runtime) shareBlock(b xdp.Block, o *blockOrigin) {
	if o == nil || (o.by != "escalation" && o.by != "operator") {
		return
	}
	if fn := r.share.Load(); fn != nil {
		(*fn)(b)
	}
}

// BlockFromFleet applies a block another data plane decided, ending when
// it ends there, attributed to that data plane (origin) in its event. A
// block at least as long already covering prefix is kept as it is; one
// whose end has passed is ignored.
func (r *Runtime) BlockFromFleet(prefix netip.Prefix, until time.Time, reason, origin string) error {
	if !until.After(time.Now()) {
		return nil
	}
	pfx := CanonicalSource(prefix)
	for _, b := range r.l.Blocks() {
		if b.Prefix.Bits() <= pfx.Bits() && b.Prefix.Contains(pfx.Addr()) && !b.Until.Before(until) {
			return nil
		}
	}
	if reason == "" {
		reason = "blocked"
	}
	reason = fmt.Sprintf("%s (shared by %s)", reason, origin)
	_, err := r.attributed(blockOrigin{prefix: pfx, added: true, by: "fleet", actor: origin},
		func() error { return r.l.BlockUntil(pfx, until, reason) })
	return err
}
