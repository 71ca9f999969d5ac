package xdp

import (
	"fmt"
	"net/netip"
	"time"
)

// Block drops traffic to protected ports from p for d. Blocking a blocked
// prefix again replaces its expiry and reason.
func (l *Limiter) Block(p netip.Prefix, d time.Duration, reason string) error {
	b, err := newBlock(p, d, reason, time.Now())
	if err != nil {
		return err
	}
	return l.putBlock(b)
}

// BlockUntil is Block with an absolute expiry, which must be in the future:
// for blocks kept across a restart, which must end when they would have.
func (l *Limiter) BlockUntil(p netip.Prefix, until time.Time, reason string) error {
	now := time.Now()
	if !until.After(now) {
		return fmt.Errorf("block %s: expiry %s has passed", p, until.Format(time.RFC3339))
	}
	b, err := newBlock(p, until.Sub(now), reason, now)
	if err != nil {
		return err
	}
	return l.putBlock(b)
}

func (l *Limiter) putBlock(b Block) error {
	l.mu.Lock()
	l.blocks.put(b)
	if l.k != nil {
		if err := l.syncBlocksLocked(b.Prefix); err != nil {
			l.blocks.remove(b.Prefix)
			_ = l.syncBlocksLocked(b.Prefix)
			l.mu.Unlock()
			return fmt.Errorf("block %s: %w", b.Prefix, err)
		}
	}
	if !l.closed {
		l.ensureSweeperLocked()
	}
	l.mu.Unlock()
	l.notify(b, true)
	return nil
}

// Unblock lifts the block on p (as given to Block). Unblocking a prefix that
// is not blocked is not an error.
func (l *Limiter) Unblock(p netip.Prefix) error {
	cp, err := canonicalPrefix(p)
	if err != nil {
		return fmt.Errorf("unblock: %w", err)
	}
	l.mu.Lock()
	b, ok := l.removeBlockLocked(cp)
	l.mu.Unlock()
	if ok {
		l.notify(b, false)
	}
	return nil
}

func (l *Limiter) removeBlockLocked(p netip.Prefix) (Block, bool) {
	b, ok := l.blocks.remove(p)
	if !ok || l.k == nil {
		return b, ok
	}
	if err := l.k.deleteBlock(p); err != nil {
		l.log.Error("xdp: unblock", "prefix", p, "err", err)
	}
	if err := l.syncBlocksLocked(p); err != nil {
		l.log.Error("xdp: unblock", "prefix", p, "err", err)
	}
	return b, ok
}

// syncBlocksLocked rewrites the kernel entries of every block inside p.
func (l *Limiter) syncBlocksLocked(p netip.Prefix) error {
	for q, until := range l.blocks.effective(p) {
		if err := l.k.putBlock(q, until); err != nil {
			return err
		}
	}
	return nil
}

// Blocks returns the blocks in force, sorted by prefix.
func (l *Limiter) Blocks() []Block { return l.blocks.list(time.Now(), true) }

func (l *Limiter) ensureSweeperLocked() {
	if l.sweepStop != nil {
		return
	}
	l.sweepStop, l.sweepDone = make(chan struct{}), make(chan struct{})
	go l.sweep(l.sweepStop, l.sweepDone, l.sweepEvery)
}

// sweep removes expired blocks from the kernel and reports them.
func (l *Limiter) sweep(stop, done chan struct{}, every time.Duration) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var gone []Block
		l.mu.Lock()
		for _, b := range l.blocks.list(time.Now(), false) {
			if b, ok := l.removeBlockLocked(b.Prefix); ok {
				gone = append(gone, b)
			}
		}
		l.mu.Unlock()
		for _, b := range gone {
			l.notify(b, false)
		}
	}
}
