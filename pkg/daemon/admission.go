package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// The store's MetaSubscriptionState holds each subscription's last
// announced state, so subscription.* events go out once per change,
// across restarts.

// admissionFlushInterval is how often quota counters and keys' last-used
// times are written to the store: what a crash can lose at most.
const admissionFlushInterval = 5 * time.Second

// Admission decides whether an authenticated caller may use a tool: an
// active subscription (directly or through a ToolSet) and room in its
// plan's quota. The proxy calls Check through Options.Admit; the MCP
// backend calls Check or CheckCaller before each tools/call.
//
// Rule: only tools that require a credential (auth apiKey/jwt/oauth2, or a
// ToolSet with auth: required) are subject to subscriptions; a tool with
// auth none has no caller identity to check. Platform admins are admitted
// without a subscription and are not counted against quotas.
type Admission struct {
	d      *Daemon
	q      *quota.Quotas
	auth   *auth.Authenticator
	log    *slog.Logger
	offset time.Duration // test clock (stoatest builds only)

	exhausted chan quota.Exhaustion
	poke      chan struct{}
	flushed   map[string]time.Time            // key id → last-used time last written
	rejected  [quota.NumVerdicts]atomic.Int64 // by quota.Verdict

	cancel context.CancelFunc
	done   chan struct{}
}

func newAdmission(d *Daemon, a *auth.Authenticator) (*Admission, error) {
	off, err := testClockOffset(os.Getenv)
	if err != nil {
		return nil, err
	}
	ad := &Admission{d: d, auth: a, log: d.log.With("component", "admission"), offset: off,
		exhausted: make(chan quota.Exhaustion, 256), poke: make(chan struct{}, 1), flushed: map[string]time.Time{}}
	if off != 0 {
		ad.log.Warn("test clock in use: subscriptions and quotas run on a shifted clock", "offset", off)
	}
	ad.q = quota.New(quota.Options{OnExhausted: func(e quota.Exhaustion) {
		select {
		case ad.exhausted <- e:
		default: // the event is best effort; admission never waits
		}
	}})
	if err := ad.q.Load(d.store); err != nil {
		return nil, err
	}
	d.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "stoa_admission_rejected_total", Help: "Calls refused by subscriptions and quotas.",
	}, func() float64 {
		var n int64
		for i := range ad.rejected {
			n += ad.rejected[i].Load()
		}
		return float64(n)
	}))
	d.HandleAPI("GET "+api.PathQuotas, ad.serveQuotas)
	return ad, nil
}

// Now is the admission clock: the wall clock (shifted in test builds).
func (a *Admission) Now() time.Time { return time.Now().Add(a.offset) }

// Check implements proxy.Options.Admit. It takes no lock and does not
// allocate when it admits.
func (a *Admission) Check(tenant, tool string, p *auth.Principal, now time.Time) *proxy.Rejection {
	if p == nil || p.Admin {
		return nil
	}
	return a.decide(tenant, tool, quota.Identity{Consumer: p.Consumer, Subject: p.Subject, ClientID: p.ClientID}, now)
}

// Covers reports whether p has an active subscription covering the tool
// (quotas aside) without counting anything: what MCP lists. Admins are
// covered, as Check admits them.
func (a *Admission) Covers(tenant, tool string, p *auth.Principal) bool {
	if p == nil || p.Admin {
		return true
	}
	return a.q.Covers(tenant, tool, quota.Identity{Consumer: p.Consumer, Subject: p.Subject, ClientID: p.ClientID}, a.Now())
}

// CheckCaller is Check for callers known by consumer and token subject
// (the MCP backend's Caller).
// Refund takes back the quota Check counted for a call the proxy then
// refused with a rate limit.
func (a *Admission) Refund(tenant, tool string, p *auth.Principal, now time.Time) {
	if p == nil || p.Admin {
		return
	}
	a.q.Refund(tenant, tool, quota.Identity{Consumer: p.Consumer, Subject: p.Subject, ClientID: p.ClientID}, now.Add(a.offset))
}

func (a *Admission) CheckCaller(tenant, tool, consumer, subject string, admin bool, now time.Time) *proxy.Rejection {
	if admin {
		return nil
	}
	return a.decide(tenant, tool, quota.Identity{Consumer: consumer, Subject: subject}, now)
}

func (a *Admission) decide(tenant, tool string, id quota.Identity, now time.Time) *proxy.Rejection {
	d := a.q.Decide(tenant, tool, id, now.Add(a.offset))
	if d.Verdict == quota.Admit {
		return nil
	}
	a.rejected[d.Verdict].Add(1)
	switch d.Verdict {
	case quota.ConsumerSuspended:
		return &proxy.Rejection{Status: http.StatusForbidden, Code: "consumer_suspended",
			Message: fmt.Sprintf("consumer %s is suspended", d.Consumer)}
	case quota.Inactive:
		return &proxy.Rejection{Status: http.StatusForbidden, Code: "no_subscription",
			Message: fmt.Sprintf("no active subscription to %s: subscription %s is %s", tool, d.Sub.Name, d.State)}
	case quota.QuotaExceeded:
		return &proxy.Rejection{Status: http.StatusTooManyRequests, Code: "quota_exceeded", RetryAfter: d.RetryAfter,
			Message: fmt.Sprintf("%s quota of %d calls used up (subscription %s, plan %s); it resets at %s",
				periodWord(d.Period), d.Limit, d.Sub.Name, d.Sub.Plan, quota.ResetAt(d.Period, now.Add(a.offset)).Format(time.RFC3339))}
	case quota.Unavailable:
		return &proxy.Rejection{Status: http.StatusServiceUnavailable, Code: "quota_unavailable", RetryAfter: d.RetryAfter,
			Message: "quotas cannot be checked: the fleet's shared counters are unreachable (fail-closed)"}
	}
	if d.Consumer == "" {
		return &proxy.Rejection{Status: http.StatusForbidden, Code: "no_subscription",
			Message: fmt.Sprintf("no active subscription to %s: the credential belongs to no consumer of tenant %s", tool, tenant)}
	}
	return &proxy.Rejection{Status: http.StatusForbidden, Code: "no_subscription",
		Message: fmt.Sprintf("no active subscription to %s for consumer %s", tool, d.Consumer)}
}

func periodWord(p string) string {
	if p == quota.PeriodMonth {
		return "monthly"
	}
	return "daily"
}

// Name implements Runtime.
func (a *Admission) Name() string { return "admission" }

// Prepare compiles the revision's subscriptions.
func (a *Admission) Prepare(st *State) (func(), error) {
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
// when an expiresAt passes), quota.exhausted events, and the periodic
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
		live, unsubscribe := a.d.events.Subscribe()
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
				a.d.Emit("quota.exhausted", e.Tenant, fmt.Sprintf("%s quota of %d calls used up by consumer %s (subscription %s); resets at %s",
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
		if s.Effective(now) == quota.StateActive {
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
	if _, err := a.q.Flush(a.d.store, a.Now()); err != nil {
		a.log.Warn("flush quota counters", "err", err)
	}
	if err := a.flushKeyUsage(); err != nil {
		a.log.Warn("flush key usage", "err", err)
	}
}

// flushKeyUsage writes keys' last-used times that moved since the last
// flush (to the second; at most one write transaction per interval).
func (a *Admission) flushKeyUsage() error {
	ix := a.auth.Keys()
	if ix == nil {
		return nil
	}
	dirty := map[string]time.Time{}
	ix.RangeUsage(func(id string, t time.Time) bool {
		if !t.IsZero() && t.After(a.flushed[id]) {
			dirty[id] = t
		}
		return true
	})
	if len(dirty) == 0 {
		return nil
	}
	ctx := context.Background()
	err := a.d.store.Update(ctx, func(tx store.Tx) error {
		keys := tx.Keys()
		for id, t := range dirty {
			rec, err := keys.Get(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if !t.After(rec.LastUsedAt) {
				continue
			}
			rec.LastUsedAt = t
			if err := keys.Put(ctx, rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id, t := range dirty {
		a.flushed[id] = t
	}
	return nil
}

func (a *Admission) serveQuotas(w http.ResponseWriter, r *http.Request, p Peer) error {
	ns := r.URL.Query().Get("namespace")
	now := a.Now()
	out := api.QuotaList{Now: now.UTC(), Items: []api.QuotaStatus{}}
	for _, s := range a.q.Statuses(now) {
		if ns != "" && s.Tenant != ns {
			continue
		}
		out.Items = append(out.Items, api.QuotaStatus(s))
	}
	return WriteJSON(w, http.StatusOK, out)
}
