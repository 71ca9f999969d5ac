package quota

import (
	"sort"
	"time"
)

// SubState is what subscription events compare between two moments: the
// effective state and the fields a subscriber cares about.
type SubState struct {
	Consumer  string    `json:"consumer"`
	Plan      string    `json:"plan"`
	Tool      string    `json:"tool,omitempty"`
	ToolSet   string    `json:"toolSet,omitempty"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// States returns every subscription's SubState at now, keyed
// "tenant/name".
func (t *Table) States(now time.Time) map[string]SubState {
	out := make(map[string]SubState, len(t.subs))
	for _, s := range t.subs {
		out[s.Key()] = SubState{Consumer: s.Consumer, Plan: s.Plan, Tool: s.Tool, ToolSet: s.ToolSet,
			State: s.Effective(now), ExpiresAt: s.ExpiresAt}
	}
	return out
}

// Change is one subscription event: Type is subscription.created,
// .renewed, .suspended, .revoked, .expired, .updated or .deleted.
type Change struct {
	Key  string // "tenant/name"
	Type string
	Prev *SubState // nil for created
	Cur  *SubState // nil for deleted
}

// Diff lists the subscription events that lead from prev to cur, ordered
// by key:
//
//   - a new key is created (whatever its state);
//   - a state change to active, or a later (or removed) expiresAt while
//     active, is renewed;
//   - a state change to suspended, revoked or expired is named after it;
//   - any other change (plan, consumer, target) is updated;
//   - a key that disappeared is deleted.
func Diff(prev, cur map[string]SubState) []Change {
	var out []Change
	for k, c := range cur {
		p, ok := prev[k]
		if !ok {
			out = append(out, Change{Key: k, Type: "subscription.created", Cur: &c})
			continue
		}
		typ := ""
		switch {
		case p.State != c.State && c.State == StateActive:
			typ = "subscription.renewed"
		case p.State != c.State:
			typ = "subscription." + c.State
		case c.State == StateActive && !p.ExpiresAt.IsZero() && (c.ExpiresAt.IsZero() || c.ExpiresAt.After(p.ExpiresAt)):
			typ = "subscription.renewed"
		case p != c:
			typ = "subscription.updated"
		}
		if typ != "" {
			out = append(out, Change{Key: k, Type: typ, Prev: &p, Cur: &c})
		}
	}
	for k, p := range prev {
		if _, ok := cur[k]; !ok {
			out = append(out, Change{Key: k, Type: "subscription.deleted", Prev: &p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
