package quota

import (
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	jan := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	feb := jan.AddDate(0, 1, 0)
	active := SubState{Consumer: "c", Plan: "p", Tool: "t", State: StateActive, ExpiresAt: jan}
	with := func(f func(*SubState)) SubState { s := active; f(&s); return s }
	tests := []struct {
		name string
		prev SubState
		cur  SubState
		want string
	}{
		{"unchanged", active, active, ""},
		{"suspended", active, with(func(s *SubState) { s.State = StateSuspended }), "subscription.suspended"},
		{"revoked", active, with(func(s *SubState) { s.State = StateRevoked }), "subscription.revoked"},
		{"expired", active, with(func(s *SubState) { s.State = StateExpired }), "subscription.expired"},
		{"reactivated", with(func(s *SubState) { s.State = StateExpired }), active, "subscription.renewed"},
		{"extended", active, with(func(s *SubState) { s.ExpiresAt = feb }), "subscription.renewed"},
		{"expiry removed", active, with(func(s *SubState) { s.ExpiresAt = time.Time{} }), "subscription.renewed"},
		{"shortened", with(func(s *SubState) { s.ExpiresAt = feb }), active, "subscription.updated"},
		{"plan changed", active, with(func(s *SubState) { s.Plan = "gold" }), "subscription.updated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(map[string]SubState{"acme/s": tc.prev}, map[string]SubState{"acme/s": tc.cur})
			switch {
			case tc.want == "" && len(got) != 0:
				t.Fatalf("want no event, got %+v", got)
			case tc.want != "" && (len(got) != 1 || got[0].Type != tc.want):
				t.Fatalf("want %s, got %+v", tc.want, got)
			}
		})
	}
	got := Diff(map[string]SubState{"acme/old": active}, map[string]SubState{"acme/new": active})
	if len(got) != 2 || got[0].Type != "subscription.created" || got[0].Key != "acme/new" ||
		got[1].Type != "subscription.deleted" || got[1].Prev == nil {
		t.Fatalf("create/delete: %+v", got)
	}
}
