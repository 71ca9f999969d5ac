package quota

import (
	"sort"
	"time"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

// Subscription states.
const (
	StateActive    = "active"
	StateSuspended = "suspended"
	StateRevoked   = "revoked"
	StateExpired   = "expired"
)

// Subscription is one compiled Subscription with its plan's quota. It is
// immutable once its Table is published.
type Subscription struct {
	Tenant, Name   string
	Consumer, Plan string
	Tool, ToolSet  string
	// State is the declared state ("active" when unset).
	State string
	// ExpiresAt is zero when the subscription does not expire.
	ExpiresAt time.Time
	// Daily and Monthly are the plan's quota (0: no cap).
	Daily, Monthly int64

	expires int64 // ExpiresAt in Unix nanoseconds; 0: never
	usage   *Usage
}

// Effective is the state at now: the declared state, or expired once
// expiresAt has passed.
func (s *Subscription) Effective(now time.Time) string {
	if s.State != StateActive {
		return s.State
	}
	if s.expires != 0 && now.UnixNano() >= s.expires {
		return StateExpired
	}
	return StateActive
}

// Key is "tenant/name", the subscription's identity in the store.
func (s *Subscription) Key() string { return s.Tenant + "/" + s.Name }

type grantKey struct{ tenant, tool, consumer string }

type nameKey struct{ tenant, name string }

// Table is one revision compiled for admission: who is subscribed to what,
// under which quota. Lookups take no lock and allocate nothing.
type Table struct {
	Revision int64
	// grants lists, per (tenant, tool, consumer), the subscriptions that
	// cover the tool: direct ones first, then through ToolSets, by name.
	grants    map[grantKey][]*Subscription
	subjects  map[nameKey]string // (tenant, token subject or client id) → consumer
	suspended map[nameKey]bool   // suspended consumers
	subs      []*Subscription    // every subscription, by tenant and name
}

// Subscriptions lists every subscription of the revision, by tenant and
// name. Callers must not modify them.
func (t *Table) Subscriptions() []*Subscription { return t.subs }

// NextExpiry is the earliest expiresAt after now of an active
// subscription, or zero.
func (t *Table) NextExpiry(now time.Time) time.Time {
	var next int64
	ns := now.UnixNano()
	for _, s := range t.subs {
		if s.State == StateActive && s.expires > ns && (next == 0 || s.expires < next) {
			next = s.expires
		}
	}
	if next == 0 {
		return time.Time{}
	}
	return time.Unix(0, next).UTC()
}

// compile builds the table of st; usage supplies (and creates) the
// long-lived counters.
func compile(st *state.Revision, usage func(key string) *Usage) *Table {
	t := &Table{
		Revision:  st.Revision,
		grants:    map[grantKey][]*Subscription{},
		subjects:  map[nameKey]string{},
		suspended: map[nameKey]bool{},
	}
	for _, o := range st.OfKind(spec.KindConsumer) {
		c := o.Spec.(*spec.ConsumerSpec)
		ns := o.Metadata.Namespace
		if c.Suspended {
			t.suspended[nameKey{ns, o.Metadata.Name}] = true
		}
		for _, sub := range c.Subjects {
			// Two consumers claiming one subject: the first by name wins,
			// deterministically (validation should catch it).
			if _, dup := t.subjects[nameKey{ns, sub}]; !dup {
				t.subjects[nameKey{ns, sub}] = o.Metadata.Name
			}
		}
	}
	for _, o := range st.OfKind(spec.KindSubscription) {
		ss := o.Spec.(*spec.SubscriptionSpec)
		ns := o.Metadata.Namespace
		s := &Subscription{
			Tenant: ns, Name: o.Metadata.Name, Consumer: ss.Consumer, Plan: ss.Plan,
			Tool: ss.Tool, ToolSet: ss.ToolSet, State: ss.State,
		}
		if s.State == "" {
			s.State = StateActive
		}
		if ss.ExpiresAt != "" {
			if at, err := time.Parse(time.RFC3339, ss.ExpiresAt); err == nil {
				s.ExpiresAt = at.UTC()
				s.expires = at.UnixNano()
				if s.expires == 0 {
					s.expires = 1
				}
			}
		}
		if po := st.Get(spec.Ref{Kind: spec.KindPlan, Namespace: ns, Name: ss.Plan}); po != nil {
			if q := po.Spec.(*spec.PlanSpec).Quota; q != nil {
				s.Daily, s.Monthly = q.Daily, q.Monthly
			}
		}
		s.usage = usage(s.Key())
		t.subs = append(t.subs, s)
		if ss.Tool != "" {
			k := grantKey{ns, ss.Tool, ss.Consumer}
			t.grants[k] = append(t.grants[k], s)
		}
		if ss.ToolSet != "" {
			if tso := st.Get(spec.Ref{Kind: spec.KindToolSet, Namespace: ns, Name: ss.ToolSet}); tso != nil {
				for _, tool := range tso.Spec.(*spec.ToolSetSpec).Tools {
					k := grantKey{ns, tool, ss.Consumer}
					t.grants[k] = append(t.grants[k], s)
				}
			}
		}
	}
	sort.Slice(t.subs, func(i, j int) bool {
		if t.subs[i].Tenant != t.subs[j].Tenant {
			return t.subs[i].Tenant < t.subs[j].Tenant
		}
		return t.subs[i].Name < t.subs[j].Name
	})
	for _, g := range t.grants {
		sort.SliceStable(g, func(i, j int) bool {
			if (g[i].Tool != "") != (g[j].Tool != "") {
				return g[i].Tool != ""
			}
			return g[i].Name < g[j].Name
		})
	}
	return t
}
