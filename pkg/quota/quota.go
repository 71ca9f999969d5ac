// Package quota decides whether a consumer may call a tool: it compiles
// each revision's Subscriptions, Plans and Consumers into a lock-free table
// keyed by (tenant, tool, consumer), and counts calls against the plans'
// daily and monthly quotas.
//
// Counters are in-memory atomics, flushed to the store periodically (see
// Flush) and restored at start (Load), so a crash loses at most the calls
// of the last flush interval (see docs/quotas.md).
package quota

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/stoa-gateway/stoa/pkg/state"
)

// Verdict is the outcome of Decide.
type Verdict uint8

// The verdicts.
const (
	// Admit: an active subscription covers the call and its quota (if
	// any) had room; the call was counted.
	Admit Verdict = iota
	// NoSubscription: the consumer has no subscription covering the tool
	// (or the caller maps to no consumer).
	NoSubscription
	// Inactive: every subscription covering the tool is suspended,
	// revoked or expired; Decision.Sub is the first of them.
	Inactive
	// ConsumerSuspended: the Consumer itself is suspended.
	ConsumerSuspended
	// QuotaExceeded: the quota of every active subscription covering the
	// tool is used up; Decision.Sub, Period and RetryAfter say which and
	// until when.
	QuotaExceeded
	// Unavailable: in fleet mode, failing closed, the shared counters
	// cannot be reached, so a quota cannot be checked (503, not 429);
	// RetryAfter says when to try again.
	Unavailable

	// NumVerdicts counts the verdicts, for arrays indexed by Verdict.
	NumVerdicts
)

// Identity is the caller as admission sees it: an API key's consumer, or a
// token's subject and client id, mapped to a consumer by
// ConsumerSpec.Subjects.
type Identity struct {
	Consumer string
	Subject  string
	ClientID string
}

// Decision is Decide's answer.
type Decision struct {
	Verdict Verdict
	// Consumer the caller was mapped to ("" when none).
	Consumer string
	// Sub is the subscription admitted, inactive or exhausted.
	Sub *Subscription
	// State is Sub's effective state (Inactive).
	State string
	// Period is PeriodDay or PeriodMonth (QuotaExceeded).
	Period string
	// Limit is the exhausted quota (QuotaExceeded).
	Limit int64
	// RetryAfter is the time until the period resets (QuotaExceeded).
	RetryAfter time.Duration
}

// Exhaustion reports that a subscription used up a quota period; it is
// reported once per subscription and period.
type Exhaustion struct {
	Tenant, Subscription, Consumer, Plan string
	Period                               string
	Limit                                int64
	ResetAt                              time.Time
}

// Options configure Quotas.
type Options struct {
	// OnExhausted is called (on the request path: it must not block) the
	// first time a subscription's quota period is found exhausted.
	OnExhausted func(Exhaustion)
}

// Quotas is the admission state: the live table and the usage counters.
type Quotas struct {
	opts    Options
	table   atomic.Pointer[Table]
	periods periodCache

	mu    sync.Mutex // guards usage
	usage map[string]*Usage

	flushMu sync.Mutex // serialises Flush and Load

	fleet atomic.Pointer[fleet] // fleet mode (fleet.go); nil on one machine
}

// New returns an empty Quotas; Compile and Swap load a revision.
func New(opts Options) *Quotas {
	return &Quotas{opts: opts, usage: map[string]*Usage{}}
}

// usageFor returns (creating) the counters of subscription key.
func (q *Quotas) usageFor(key string) *Usage {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.usage[key]
	if u == nil {
		u = &Usage{}
		q.usage[key] = u
	}
	return u
}

// Compile builds the admission table of st without making it live.
func (q *Quotas) Compile(st *state.Revision) *Table { return compile(st, q.usageFor) }

// Swap makes t live.
func (q *Quotas) Swap(t *Table) { q.table.Store(t) }

// Table returns the live table (nil before the first Swap).
func (q *Quotas) Table() *Table { return q.table.Load() }

// Decide looks up the subscriptions covering (tenant, tool) for the
// caller and, when one is active, counts the call against its quota. It
// takes no lock and does not allocate.
func (q *Quotas) Decide(tenant, tool string, id Identity, now time.Time) Decision {
	t := q.table.Load()
	if t == nil {
		return Decision{Verdict: NoSubscription}
	}
	consumer := id.Consumer
	if consumer == "" {
		if c, ok := t.subjects[nameKey{tenant, id.Subject}]; ok && id.Subject != "" {
			consumer = c
		} else if c, ok := t.subjects[nameKey{tenant, id.ClientID}]; ok && id.ClientID != "" {
			consumer = c
		} else {
			return Decision{Verdict: NoSubscription}
		}
	}
	if len(t.suspended) > 0 && t.suspended[nameKey{tenant, consumer}] {
		return Decision{Verdict: ConsumerSuspended, Consumer: consumer}
	}
	subs := t.grants[grantKey{tenant, tool, consumer}]
	if len(subs) == 0 {
		return Decision{Verdict: NoSubscription, Consumer: consumer}
	}
	var (
		inactive *Subscription
		state    string
		exceeded Decision
		ns       = now.UnixNano()
	)
	for _, s := range subs {
		if s.State != StateActive {
			if inactive == nil {
				inactive, state = s, s.State
			}
			continue
		}
		if s.expires != 0 && ns >= s.expires {
			if inactive == nil {
				inactive, state = s, StateExpired
			}
			continue
		}
		d, ok := q.charge(s, now)
		if ok {
			return Decision{Verdict: Admit, Consumer: consumer, Sub: s}
		}
		if exceeded.Sub == nil {
			exceeded = d
			exceeded.Consumer = consumer
		}
	}
	if exceeded.Sub != nil {
		return exceeded
	}
	return Decision{Verdict: Inactive, Consumer: consumer, Sub: inactive, State: state}
}

// Covers reports whether Decide could admit a call of (tenant, tool) by
// the caller at now, quotas aside: the consumer is not suspended and one of
// its subscriptions covering the tool is active and unexpired. It counts
// nothing: MCP uses it to list only the tools a caller may call (a used-up
// quota resets, so its tools stay listed).
func (q *Quotas) Covers(tenant, tool string, id Identity, now time.Time) bool {
	t := q.table.Load()
	if t == nil {
		return false
	}
	consumer := id.Consumer
	if consumer == "" {
		if c, ok := t.subjects[nameKey{tenant, id.Subject}]; ok && id.Subject != "" {
			consumer = c
		} else if c, ok := t.subjects[nameKey{tenant, id.ClientID}]; ok && id.ClientID != "" {
			consumer = c
		} else {
			return false
		}
	}
	if len(t.suspended) > 0 && t.suspended[nameKey{tenant, consumer}] {
		return false
	}
	ns := now.UnixNano()
	for _, s := range t.grants[grantKey{tenant, tool, consumer}] {
		if s.State == StateActive && (s.expires == 0 || ns < s.expires) {
			return true
		}
	}
	return false
}

// Refund takes back a call Decide admitted and counted, when the gateway
// then refused it anyway (a rate limit checked after admission), so a
// client retrying on 429 does not burn its quota. It refunds the first
// active, unexpired subscription, the one Decide charges in the usual
// case.
func (q *Quotas) Refund(tenant, tool string, id Identity, now time.Time) {
	t := q.table.Load()
	if t == nil {
		return
	}
	consumer := id.Consumer
	if consumer == "" {
		if c, ok := t.subjects[nameKey{tenant, id.Subject}]; ok && id.Subject != "" {
			consumer = c
		} else if c, ok := t.subjects[nameKey{tenant, id.ClientID}]; ok && id.ClientID != "" {
			consumer = c
		} else {
			return
		}
	}
	ns := now.UnixNano()
	for _, s := range t.grants[grantKey{tenant, tool, consumer}] {
		if s.State != StateActive || (s.expires != 0 && ns >= s.expires) {
			continue
		}
		p := q.periods.at(now)
		s.usage.day.refund(p.day)
		s.usage.month.refund(p.month)
		return
	}
}

// charge counts one call of s in the day and the month of now. Both
// periods always count, whichever quota the plan sets (or none): the month
// includes today, and `stoa quotas` shows usage without a quota too.
func (q *Quotas) charge(s *Subscription, now time.Time) (Decision, bool) {
	p := q.periods.at(now)
	u := s.usage
	f := q.fleet.Load()
	if f != nil && f.closed && f.down.Load() && (s.Daily > 0 || s.Monthly > 0) {
		return Decision{Verdict: Unavailable, Sub: s, RetryAfter: time.Second}, false
	}
	if !u.day.charge(p.day, s.Daily, f) {
		q.exhausted(s, &u.day, p.day, PeriodDay, s.Daily, p.dayEnd)
		return Decision{Verdict: QuotaExceeded, Sub: s, Period: PeriodDay, Limit: s.Daily,
			RetryAfter: time.Duration(p.dayEnd - now.UnixNano())}, false
	}
	if !u.month.charge(p.month, s.Monthly, f) {
		u.day.refund(p.day)
		q.exhausted(s, &u.month, p.month, PeriodMonth, s.Monthly, p.monthEnd)
		return Decision{Verdict: QuotaExceeded, Sub: s, Period: PeriodMonth, Limit: s.Monthly,
			RetryAfter: time.Duration(p.monthEnd - now.UnixNano())}, false
	}
	return Decision{}, true
}

func (q *Quotas) exhausted(s *Subscription, w *window, idx int64, period string, limit, reset int64) {
	if q.opts.OnExhausted == nil || !w.markExhausted(idx) {
		return
	}
	q.opts.OnExhausted(Exhaustion{
		Tenant: s.Tenant, Subscription: s.Name, Consumer: s.Consumer, Plan: s.Plan,
		Period: period, Limit: limit, ResetAt: time.Unix(0, reset).UTC(),
	})
}

// Status is one subscription's state and usage, for `stoa quotas`.
type Status struct {
	Tenant       string    `json:"tenant"`
	Name         string    `json:"name"`
	Consumer     string    `json:"consumer"`
	Plan         string    `json:"plan"`
	Tool         string    `json:"tool,omitempty"`
	ToolSet      string    `json:"toolSet,omitempty"`
	State        string    `json:"state"`
	ExpiresAt    time.Time `json:"expiresAt,omitzero"`
	Daily        int64     `json:"daily,omitempty"`
	DailyUsed    int64     `json:"dailyUsed"`
	DailyReset   time.Time `json:"dailyReset"`
	Monthly      int64     `json:"monthly,omitempty"`
	MonthlyUsed  int64     `json:"monthlyUsed"`
	MonthlyReset time.Time `json:"monthlyReset"`
}

// Statuses reports every live subscription at now.
func (q *Quotas) Statuses(now time.Time) []Status {
	t := q.table.Load()
	if t == nil {
		return nil
	}
	p := periodsAt(now)
	out := make([]Status, 0, len(t.subs))
	for _, s := range t.subs {
		out = append(out, Status{
			Tenant: s.Tenant, Name: s.Name, Consumer: s.Consumer, Plan: s.Plan, Tool: s.Tool, ToolSet: s.ToolSet,
			State: s.Effective(now), ExpiresAt: s.ExpiresAt,
			Daily: s.Daily, DailyUsed: s.usage.day.used(p.day), DailyReset: time.Unix(0, p.dayEnd).UTC(),
			Monthly: s.Monthly, MonthlyUsed: s.usage.month.used(p.month), MonthlyReset: time.Unix(0, p.monthEnd).UTC(),
		})
	}
	return out
}
