package redislimit

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// pend is AllowAll's working state for one key.
type pend struct {
	shape limits.Shape
	ls    *lease
	h     uint64 // the key's hash: shard and table slot
	si    uint32
	state uint8
	own   bool          // this call asks Redis for the key's tokens …
	want  int64         // … this many (the lease size, read under the lock)
	wait  chan struct{} // or waits for the call another request has in flight
}

const (
	pSkip    uint8 = iota // zero Limit
	pTook                 // took a local token
	pRefused              // the bucket is known to be empty
	pFetch                // no local token: ask Redis
)

// AllowAll checks one request against several limits and charges all of
// them or none, as limits.Limiter.AllowAll does. keys[i] is limited by
// lims[i]; zero Limits are skipped; the same key may appear twice.
//
// Most calls spend tokens this data plane holds and touch no network. A
// key with no token left and no known refusal is asked for in one script
// call for all such keys of the request; concurrent requests for the same
// key wait for that call instead of making their own.
func (l *Limiter) AllowAll(keys []limits.Key, lims []limits.Limit) limits.Decision {
	if len(keys) != len(lims) {
		panic("redislimit: AllowAll: len(keys) != len(lims)")
	}
	if l.window < 0 {
		return l.allowExact(keys, lims)
	}
	var buf [maxStackKeys]pend
	p := buf[:0]
	if len(keys) <= maxStackKeys {
		p = buf[:len(keys)]
	} else {
		p = make([]pend, len(keys))
	}
	for round := 0; ; round++ {
		d, fetch := l.local(keys, lims, p, round == 0)
		if !fetch {
			return d
		}
		if l.down.Load() {
			l.release(p)
			return l.failed(keys, lims)
		}
		if round == maxRounds {
			l.release(p)
			return l.allowExact(keys, lims)
		}
		if !l.fetch(p) {
			return l.failed(keys, lims)
		}
	}
}

// local decides from lease state alone, under the shards' locks. It
// returns fetch = true when some key has no token and no known refusal;
// p then says which (state pFetch) and which of those this call must ask
// Redis for (own); the others have a call in flight to wait for.
func (l *Limiter) local(keys []limits.Key, lims []limits.Limit, p []pend, first bool) (d limits.Decision, fetch bool) {
	var lockBuf [maxStackKeys]uint32
	locks := lockBuf[:0]
	for i := range keys {
		p[i] = pend{}
		if s, ok := lims[i].Shape(); ok {
			h := hash(keys[i], l.seed)
			p[i].shape, p[i].h, p[i].si, p[i].state = s, h, uint32(h%nShards), pFetch
			locks = insertSorted(locks, p[i].si)
		}
	}
	if len(locks) == 0 {
		return limits.Decision{Allowed: true}, false
	}
	now := l.clock()
	for _, si := range locks {
		l.shards[si].mu.Lock()
	}
	refused, need := false, false
	for i := range p {
		pe := &p[i]
		if pe.state == pSkip {
			continue
		}
		ls := l.leaseFor(&l.shards[pe.si], keys[i], pe.h, pe.shape, now)
		pe.ls = ls
		if first {
			ls.seen++
		}
		ls.used = now
		switch {
		case ls.tokens > 0:
			ls.tokens--
			pe.state = pTook
		case now < ls.emptyUntil || ls.empty && (ls.fetch != nil || ls.scheduled):
			// Known empty, and a background call will bring the next
			// token if there is demand: no request waits for Redis.
			pe.state = pRefused
			refused = true
		default:
			need = true
		}
	}
	switch {
	case refused:
		d = l.refusal(p, now)
	case need:
		for i := range p {
			pe := &p[i]
			if pe.state != pFetch {
				continue
			}
			if pe.ls.fetch == nil {
				pe.ls.fetch = make(chan struct{})
				pe.own = true
				pe.ls.size(now, l)
				pe.want = pe.ls.want
			} else if !pe.own {
				pe.wait = pe.ls.fetch
			}
		}
	default:
		d = l.admission(p, now)
		for i := range p {
			if ls := p[i].ls; ls != nil && ls.fetch == nil && ls.wantsRefill(now, l) {
				ls.fetch = make(chan struct{})
				l.refill.push(ls)
			}
		}
	}
	if refused || need {
		for i := range p { // nothing is charged: give back what was taken
			if p[i].state == pTook {
				p[i].ls.tokens++
			}
		}
	}
	for _, si := range locks {
		l.shards[si].mu.Unlock()
	}
	return d, need && !refused
}

// leaseFor finds or makes key's lease. Called with s.mu held.
func (l *Limiter) leaseFor(s *shard, key limits.Key, h uint64, shape limits.Shape, now int64) *lease {
	ls := s.t.get(key, h)
	if ls == nil {
		if s.t.n >= l.perShard {
			l.evict(s, now)
		}
		ls = &lease{key: key, shape: shape, rateAt: now, used: now}
		s.t.put(key, h, ls, l.seed)
		return ls
	}
	if ls.shape != shape {
		ls.reshape(shape)
	}
	return ls
}

// evict drops one lease that holds nothing and waits for nothing, if one
// of the first few from a random slot does; otherwise the shard goes over
// its bound until the sweep. Dropping such a lease loses nothing: its
// state is in Redis. Called with s.mu held.
func (l *Limiter) evict(s *shard, now int64) {
	mask := len(s.t.slots) - 1
	for i, n := rand.IntN(len(s.t.slots)), 0; n < 16; i, n = (i+1)&mask, n+1 {
		ls := s.t.slots[i].ls
		// used == now: another key of the request being decided.
		if ls != nil && ls.tokens == 0 && ls.fetch == nil && !ls.scheduled && ls.used != now {
			ls.dead = true
			s.t.del(ls.key, hash(ls.key, l.seed), l.seed)
			return
		}
	}
}

// release closes the in-flight markers this call set and will not use.
func (l *Limiter) release(p []pend) {
	for i := range p {
		if pe := &p[i]; pe.own {
			s := &l.shards[pe.si]
			s.mu.Lock()
			if ch := pe.ls.fetch; ch != nil {
				pe.ls.fetch = nil
				close(ch)
			}
			s.mu.Unlock()
			pe.own = false
		}
	}
}

// fetch asks Redis, in one all-or-none call, for the tokens of every key
// this call owns, and waits for the calls other requests have in flight
// for the rest. It reports false when Redis could not be reached.
func (l *Limiter) fetch(p []pend) bool {
	var (
		opBuf  [maxStackKeys]op
		resBuf [maxStackKeys]result
		idxBuf [maxStackKeys]int
	)
	ops, idx := opBuf[:0], idxBuf[:0]
	var waits []chan struct{}
	for i := range p {
		pe := &p[i]
		switch {
		case pe.state != pFetch:
		case pe.own:
			need := int64(0)
			for j := range p { // the same key may be named twice
				if p[j].ls == pe.ls && p[j].state == pFetch {
					need++
				}
			}
			ops = append(ops, op{name: keyName(l.prefix, pe.ls.key), shape: pe.shape, want: max(need, pe.want), need: need})
			idx = append(idx, i)
		case pe.wait != nil:
			waits = append(waits, pe.wait)
		}
	}
	ok := true
	if len(ops) > 0 {
		res := resBuf[:]
		if len(ops) > maxStackKeys {
			res = make([]result, len(ops))
		}
		res = res[:len(ops)]
		start := l.clock()
		_, err := l.call(ops, true, res, true)
		for j, i := range idx {
			pe := &p[i]
			s := &l.shards[pe.si]
			s.mu.Lock()
			var wait time.Duration
			var sched bool
			if err == nil {
				wait, sched = pe.ls.apply(ops[j].shape, res[j], start, l)
			}
			if ch := pe.ls.fetch; ch != nil {
				pe.ls.fetch = nil
				close(ch)
			}
			s.mu.Unlock()
			if sched {
				l.refill.schedule(pe.ls, l.dueAt(ops[j].shape, start, wait))
			}
			pe.own = false
		}
		ok = err == nil
	}
	if len(waits) > 0 {
		t := time.NewTimer(l.timeout + 10*time.Millisecond)
		for _, ch := range waits {
			select {
			case <-ch:
			case <-t.C:
			case <-l.ctx.Done():
			}
		}
		t.Stop()
	}
	return ok
}

// call runs the script with the request timeout (sync) or a longer one
// (background), counting it and marking Redis lost on failure.
func (l *Limiter) call(ops []op, all bool, res []result, sync bool) (bool, error) {
	timeout := l.timeout
	if !sync {
		timeout = max(timeout, time.Second)
	}
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	defer cancel()
	if sync {
		l.stats.syncCalls.Add(1)
	}
	return l.callCtx(ctx, ops, all, res)
}

// callBackground is call for Close, after the Limiter's context is done.
func (l *Limiter) callBackground(ops []op, res []result) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), max(l.timeout, time.Second))
	defer cancel()
	return l.callCtx(ctx, ops, false, res)
}

func (l *Limiter) callCtx(ctx context.Context, ops []op, all bool, res []result) (bool, error) {
	cl := l.conn()
	if cl == nil {
		return false, errNotConnected
	}
	ok, err := run(ctx, cl, ops, l.redisNow(), all, res)
	l.stats.calls.Add(1)
	if err != nil {
		if l.ctx.Err() == nil {
			l.stats.errors.Add(1)
			l.lost(err)
		}
		return false, err
	}
	l.health.ok()
	return ok, nil
}

// admission is the decision for a request every key admitted: the most
// exhausted key, as limits.Limiter.AllowAll reports it.
func (l *Limiter) admission(p []pend, now int64) limits.Decision {
	var best limits.Decision
	have := false
	for i := range p {
		pe := &p[i]
		if pe.state == pSkip {
			continue
		}
		rem, reset := pe.ls.view(now)
		if !have || rem < best.Remaining || rem == best.Remaining && reset > best.Reset {
			best = limits.Decision{Allowed: true, Limit: pe.shape.Count, Remaining: rem, Reset: reset, Index: i}
			have = true
		}
	}
	return best
}

// refusal is the decision for a request refused by keys whose bucket is
// known to be empty: the one with the longest wait.
func (l *Limiter) refusal(p []pend, now int64) limits.Decision {
	var best limits.Decision
	have := false
	for i := range p {
		pe := &p[i]
		if pe.state != pRefused {
			continue
		}
		retry := time.Duration(pe.ls.emptyUntil - now)
		if retry <= 0 {
			retry = pe.shape.Interval
		}
		if !have || retry > best.RetryAfter {
			_, reset := pe.ls.view(now)
			best = limits.Decision{Limit: pe.shape.Count, Reset: reset, RetryAfter: retry, Index: i}
			have = true
		}
	}
	return best
}

// allowExact decides a request with one script call for all its keys: no
// leases, the same decision the local limiter would make from the same
// state.
func (l *Limiter) allowExact(keys []limits.Key, lims []limits.Limit) limits.Decision {
	var (
		opBuf  [maxStackKeys]op
		resBuf [maxStackKeys]result
		idxBuf [maxStackKeys]int
	)
	ops, idx := opBuf[:0], idxBuf[:0]
	for i := range keys {
		if s, ok := lims[i].Shape(); ok {
			ops = append(ops, op{name: keyName(l.prefix, keys[i]), shape: s, want: 1, need: 1})
			idx = append(idx, i)
		}
	}
	if len(ops) == 0 {
		return limits.Decision{Allowed: true}
	}
	if l.down.Load() {
		return l.failed(keys, lims)
	}
	res := resBuf[:]
	if len(ops) > maxStackKeys {
		res = make([]result, len(ops))
	}
	res = res[:len(ops)]
	ok, err := l.call(ops, true, res, true)
	if err != nil {
		return l.failed(keys, lims)
	}
	var best limits.Decision
	have := false
	for j, i := range idx {
		s, r := ops[j].shape, res[j]
		d := limits.Decision{
			Allowed:   ok,
			Limit:     s.Count,
			Remaining: int64((s.Capacity - r.debt) / s.Interval),
			Reset:     r.debt,
			Index:     i,
		}
		switch {
		case !ok && r.retry > 0:
			d.RetryAfter = r.retry
			if !have || d.RetryAfter > best.RetryAfter {
				best, have = d, true
			}
		case !ok:
		case !have || d.Remaining < best.Remaining || d.Remaining == best.Remaining && d.Reset > best.Reset:
			best, have = d, true
		}
	}
	return best
}

// failed decides while Redis is unreachable: each key's share of its
// limit, locally (FailOpen), or a refusal that says so (FailClosed).
func (l *Limiter) failed(keys []limits.Key, lims []limits.Limit) limits.Decision {
	if l.opts.FailMode == FailClosed {
		return limits.Decision{Unavailable: true, RetryAfter: l.health.retryHint()}
	}
	n := l.peers()
	var buf [maxStackKeys]limits.Limit
	shared := buf[:0]
	if len(lims) > maxStackKeys {
		shared = make([]limits.Limit, 0, len(lims))
	}
	for _, lim := range lims {
		shared = append(shared, lim.Share(n))
	}
	return l.fallback.AllowAll(keys, shared)
}

// insertSorted adds v to the ascending set s unless present.
func insertSorted(s []uint32, v uint32) []uint32 {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	s = append(s, v)
	for j := len(s) - 1; j > 0 && s[j-1] > s[j]; j-- {
		s[j-1], s[j] = s[j], s[j-1]
	}
	return s
}
