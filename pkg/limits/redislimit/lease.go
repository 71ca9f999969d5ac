package redislimit

import (
	"math"
	"time"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// lease is this data plane's state for one key: tokens it took from the
// key's bucket in Redis and has not spent, what Redis last said about the
// bucket, and how much demand the key sees here. The key's shard mutex
// guards it.
type lease struct {
	key   limits.Key
	shape limits.Shape

	// tokens were charged in Redis and are this data plane's to spend.
	tokens int64
	// want is the lease size: how many tokens a refill tops up to.
	want int64

	// debt is the bucket's debt Redis reported at local time at.
	debt time.Duration
	at   int64
	// empty: Redis' last answer had no token for us; emptyUntil is when
	// it said one would be there. Until then requests are refused here.
	empty      bool
	emptyUntil int64

	granted int64 // local time tokens were last granted
	used    int64 // local time of the last request

	// seen counts requests offered since the rate was last folded into
	// rate (requests per second here, decaying with time constant tau).
	seen   int64
	rate   float64
	rateAt int64

	// fetch is non-nil while a script call for this key is in flight; it
	// is closed when the answer has been applied.
	fetch chan struct{}
	// scheduled: a refill is due at emptyUntil.
	scheduled bool
	// dead: dropped from its shard (a scheduled refill must skip it).
	dead bool
}

// tau is the time constant of the demand estimate: long enough to smooth
// one burst, short enough to follow a change of load within a few lease
// windows.
const tau = 100 * time.Millisecond

// fold brings the demand estimate up to now.
func (ls *lease) fold(now int64) {
	dt := now - ls.rateAt
	if dt <= 0 {
		return
	}
	ls.rate = ls.rate*math.Exp(-float64(dt)/float64(tau)) + float64(ls.seen)/tau.Seconds()
	ls.seen, ls.rateAt = 0, now
}

// size sets want from the demand estimate: the tokens this data plane
// spends in one lease window, at least 1 and at most maxLease.
func (ls *lease) size(now int64, l *Limiter) {
	ls.fold(now)
	want := int64(math.Ceil(ls.rate * l.window.Seconds()))
	ls.want = max(1, min(want, l.maxLease(ls.shape)))
}

// maxLease is the most tokens one data plane may hold for a key: its share
// of Accuracy × the limit's rate per second, so that tokens held by the
// whole fleet — admitted in another second than the one they were granted
// in, or returned late — shift at most that fraction of a second's budget.
// Never more than the burst, which is all Redis could grant at once.
func (l *Limiter) maxLease(s limits.Shape) int64 {
	perSec := float64(time.Second) / float64(s.Interval)
	m := int64(l.opts.Accuracy * perSec / float64(l.peers()))
	return max(1, min(m, s.Burst))
}

// busy reports whether this data plane's demand would spend a lease within
// half the lease lifetime: only then is it worth taking tokens before a
// request needs them. A key seen once a minute is asked for on demand
// instead, and holds nothing other data planes could use.
func (ls *lease) busy(l *Limiter) bool {
	return ls.rate*l.ttl.Seconds()/2 >= float64(ls.want)
}

// wantsRefill reports, after a request took a token, whether to top the
// lease up in the background: when it is down to half and the demand
// justifies holding tokens. A bucket known to be empty is refilled by the
// scheduled call instead.
func (ls *lease) wantsRefill(now int64, l *Limiter) bool {
	if ls.tokens*2 > ls.want || ls.empty && now < ls.emptyUntil || ls.scheduled {
		return false
	}
	ls.size(now, l)
	return ls.busy(l)
}

// apply records Redis' answer r for the tokens asked for under shape at
// local time start. When the bucket has no token left for this data plane
// — it refused, or granted its last one — it notes when the next one is
// due and reports whether to schedule a background call for then (only
// when this data plane has the demand to spend it): requests in between
// are refused here, and none waits for Redis.
func (ls *lease) apply(shape limits.Shape, r result, start int64, l *Limiter) (wait time.Duration, schedule bool) {
	if ls.shape != shape { // the limit changed meanwhile: the answer is moot
		return 0, false
	}
	ls.debt, ls.at = r.debt, start
	wait = r.retry
	if r.granted > 0 {
		ls.tokens += r.granted
		ls.granted = start
		wait = 0
		if shape.Capacity-r.debt < shape.Interval { // drained by this grant
			wait = r.debt + shape.Interval - shape.Capacity
		}
	}
	if wait <= 0 {
		ls.empty, ls.emptyUntil = false, 0
		return 0, false
	}
	ls.empty, ls.emptyUntil = true, start+int64(wait)
	if ls.scheduled || ls.dead || !ls.busy(l) {
		return wait, false
	}
	ls.scheduled = true
	return wait, true
}

// view is the bucket as this data plane sees it now: the requests it could
// admit (its tokens and what Redis had left at its last answer, refilled
// since) and the time until the bucket is full.
func (ls *lease) view(now int64) (remaining int64, reset time.Duration) {
	s := ls.shape
	debt := max(0, min(ls.debt-time.Duration(now-ls.at), s.Capacity))
	return min(s.Burst, int64((s.Capacity-debt)/s.Interval)+ls.tokens), debt
}

// reshape starts over after the key's limit changed (a reload). Tokens
// held were charged at the old interval; spending them under the new
// limit could over-admit, handing them back would credit the wrong amount,
// so they are dropped: at most one lease of under-admission.
func (ls *lease) reshape(s limits.Shape) {
	ls.shape, ls.tokens, ls.want = s, 0, 1
	ls.debt, ls.empty, ls.emptyUntil = 0, false, 0
}
