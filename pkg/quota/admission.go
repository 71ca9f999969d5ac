package quota

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// The store's MetaSubscriptionState holds each subscription's last
// announced state, so subscription.* events go out once per change,
// across restarts.

// admissionFlushInterval is how often quota counters and keys' last-used
// times are written to the store: what a crash can lose at most.
const admissionFlushInterval = 5 * time.Second

// AdmissionOptions configure an Admission.
type AdmissionOptions struct {
	Store   store.Store
	Events  *events.Log
	Metrics prometheus.Registerer
	Log     *slog.Logger
	// AlsoFlush runs after the quota counters on every periodic flush and
	// at Stop: the keys' last-used times (keys.Service.FlushUsage).
	AlsoFlush func() error
}

// Admission is the runtime that decides whether an authenticated caller
// may use a tool: an active subscription (directly or through a ToolSet)
// and room in its plan's  The proxy calls Check through its Admit
// hook; MCP asks Covers to list only what a caller may call. It also
// announces subscription changes and used-up quotas as events, and
// flushes usage to the store.
//
// Rule: only tools that require a credential (auth apiKey/jwt/oauth2, or a
// ToolSet with auth: required) are subject to subscriptions; a tool with
// auth none has no caller identity to check. Platform admins are admitted
// without a subscription and are not counted against quotas.
type Admission struct {
	o      AdmissionOptions
	q      *Quotas
	log    *slog.Logger
	offset time.Duration // test clock (stoatest builds only)

	exhausted chan Exhaustion
	poke      chan struct{}
	rejected  [NumVerdicts]atomic.Int64 // by Verdict

	cancel context.CancelFunc
	done   chan struct{}
}

// Refusal is a call Check refuses: the status, a stable error code and a
// message for the JSON body, and for 429 the Retry-After. It has the
// shape of proxy.Rejection, so the daemon hands it over without a copy.
type Refusal struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

// NewAdmission loads the stored quota usage and registers the admission
// metrics.
func NewAdmission(o AdmissionOptions) (*Admission, error) {
	off, err := testClockOffset(os.Getenv)
	if err != nil {
		return nil, err
	}
	ad := &Admission{o: o, log: o.Log.With("component", "admission"), offset: off,
		exhausted: make(chan Exhaustion, 256), poke: make(chan struct{}, 1)}
	if off != 0 {
		ad.log.Warn("test clock in use: subscriptions and quotas run on a shifted clock", "offset", off)
	}
	ad.q = New(Options{OnExhausted: func(e Exhaustion) {
		select {
		case ad.exhausted <- e:
		default: // the event is best effort; admission never waits
		}
	}})
	if err := ad.q.Load(o.Store); err != nil {
		return nil, err
	}
	o.Metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "stoa_admission_rejected_total", Help: "Calls refused by subscriptions and quotas.",
	}, func() float64 {
		var n int64
		for i := range ad.rejected {
			n += ad.rejected[i].Load()
		}
		return float64(n)
	}))
	return ad, nil
}

// Now is the admission clock: the wall clock (shifted in test builds).
func (a *Admission) Now() time.Time { return time.Now().Add(a.offset) }

// Check is the proxy's Admit hook. It takes no lock and does not allocate
// when it admits.
func (a *Admission) Check(tenant, tool string, p *auth.Principal, now time.Time) *Refusal {
	if p == nil || p.Admin {
		return nil
	}
	return a.decide(tenant, tool, Identity{Consumer: p.Consumer, Subject: p.Subject, ClientID: p.ClientID}, now)
}

// Covers reports whether p has an active subscription covering the tool
// (quotas aside) without counting anything: what MCP lists. Admins are
// covered, as Check admits them.
func (a *Admission) Covers(tenant, tool string, p *auth.Principal) bool {
	if p == nil || p.Admin {
		return true
	}
	return a.q.Covers(tenant, tool, Identity{Consumer: p.Consumer, Subject: p.Subject, ClientID: p.ClientID}, a.Now())
}

// Refund takes back the quota Check counted for a call the proxy then
// refused with a rate limit.
func (a *Admission) Refund(tenant, tool string, p *auth.Principal, now time.Time) {
	if p == nil || p.Admin {
		return
	}
	a.q.Refund(tenant, tool, Identity{Consumer: p.Consumer, Subject: p.Subject, ClientID: p.ClientID}, now.Add(a.offset))
}

func (a *Admission) decide(tenant, tool string, id Identity, now time.Time) *Refusal {
	d := a.q.Decide(tenant, tool, id, now.Add(a.offset))
	if d.Verdict == Admit {
		return nil
	}
	a.rejected[d.Verdict].Add(1)
	switch d.Verdict {
	case ConsumerSuspended:
		return &Refusal{Status: http.StatusForbidden, Code: "consumer_suspended",
			Message: fmt.Sprintf("consumer %s is suspended", d.Consumer)}
	case Inactive:
		return &Refusal{Status: http.StatusForbidden, Code: "no_subscription",
			Message: fmt.Sprintf("no active subscription to %s: subscription %s is %s", tool, d.Sub.Name, d.State)}
	case QuotaExceeded:
		return &Refusal{Status: http.StatusTooManyRequests, Code: "quota_exceeded", RetryAfter: d.RetryAfter,
			Message: fmt.Sprintf("%s quota of %d calls used up (subscription %s, plan %s); it resets at %s",
				periodWord(d.Period), d.Limit, d.Sub.Name, d.Sub.Plan, ResetAt(d.Period, now.Add(a.offset)).Format(time.RFC3339))}
	case Unavailable:
		return &Refusal{Status: http.StatusServiceUnavailable, Code: "quota_unavailable", RetryAfter: d.RetryAfter,
			Message: "quotas cannot be checked: the fleet's shared counters are unreachable (fail-closed)"}
	}
	if d.Consumer == "" {
		return &Refusal{Status: http.StatusForbidden, Code: "no_subscription",
			Message: fmt.Sprintf("no active subscription to %s: the credential belongs to no consumer of tenant %s", tool, tenant)}
	}
	return &Refusal{Status: http.StatusForbidden, Code: "no_subscription",
		Message: fmt.Sprintf("no active subscription to %s for consumer %s", tool, d.Consumer)}
}

func periodWord(p string) string {
	if p == PeriodMonth {
		return "monthly"
	}
	return "daily"
}

// Name implements state.Runtime.
func (a *Admission) Name() string { return "admission" }

// Prepare compiles the revision's subscriptions.
func (a *Admission) Prepare(st *state.Revision) (func(), error) {
	t := a.q.Compile(st)
	return func() {
		// The revision id is final only at swap time (commit assigns it).
		t.Revision = st.Revision
		a.q.Swap(t)
		select {
		case a.poke <- struct{}{}:
		default:
		}
	}, nil
}

// Start runs the background work: subscription events (on reloads and
// when an expiresAt passes), exhausted events, and the periodic
// flush of quota counters and keys' last-used times.
func (a *Admission) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		flush := time.NewTicker(admissionFlushInterval)
		defer flush.Stop()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		// A reload is announced after its config.applied event (so the
		// trail reads "apply, then what it changed"), or at the next tick
		// when there is none (the first load) or it was missed.
		live, unsubscribe := a.o.Events.Subscribe()
		defer unsubscribe()
		var (
			next    time.Time // the next expiresAt to act on
			pending bool      // a revision was swapped in and not yet announced
		)
		for {
			select {
			case <-ctx.Done():
				a.flush()
				return
			case <-a.poke:
				pending = true
			case e, ok := <-live:
				if !ok {
					live = nil
				} else if pending && (e.Type == "config.applied" || e.Type == "config.rolledback") {
					pending, next = false, a.reconcile(true)
				}
			case <-tick.C:
				switch {
				case pending:
					pending, next = false, a.reconcile(true)
				case !next.IsZero() && !a.Now().Before(next):
					next = a.reconcile(false)
				}
			case e := <-a.exhausted:
				a.o.Events.Emit("quota.exhausted", e.Tenant, fmt.Sprintf("%s quota of %d calls used up by consumer %s (subscription %s); resets at %s",
					periodWord(e.Period), e.Limit, e.Consumer, e.Subscription, e.ResetAt.Format(time.RFC3339)),
					map[string]any{"subscription": e.Subscription, "consumer": e.Consumer, "plan": e.Plan,
						"period": e.Period, "limit": e.Limit, "resetAt": e.ResetAt})
			case <-flush.C:
				a.flush()
			}
		}
	}()
	return nil
}

// Stop flushes and ends the background work.
func (a *Admission) Stop(context.Context) error {
	if a.cancel != nil {
		a.cancel()
		<-a.done
	}
	return nil
}

// Status is the runtime's line in `stoa status`.
func (a *Admission) Status() api.Component {
	c := api.Component{Name: "admission", State: "ok"}
	t := a.q.Table()
	if t == nil {
		c.State, c.Detail = "starting", "no revision loaded"
		return c
	}
	active := 0
	now := a.Now()
	for _, s := range t.Subscriptions() {
		if s.Effective(now) == StateActive {
			active++
		}
	}
	c.Detail = fmt.Sprintf("%d subscriptions (%d active)", len(t.Subscriptions()), active)
	if a.offset != 0 {
		c.Detail += fmt.Sprintf("; TEST CLOCK offset %s", a.offset.Round(time.Second))
	}
	return c
}

func (a *Admission) flush() {
	if _, err := a.q.Flush(a.o.Store, a.Now()); err != nil {
		a.log.Warn("flush quota counters", "err", err)
	}
	if a.o.AlsoFlush != nil {
		if err := a.o.AlsoFlush(); err != nil {
			a.log.Warn("flush key usage", "err", err)
		}
	}
}

// Statuses lists every subscription's effective state and quota usage at
// now (see Now).
func (a *Admission) Statuses(now time.Time) []Status { return a.q.Statuses(now) }
