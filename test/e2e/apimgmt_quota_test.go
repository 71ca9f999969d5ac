package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAPIMgmtSubscriptionStates drives every subscription state through
// the real proxy: active admits; suspended, revoked, expired, a passed
// expiresAt and no subscription at all answer 403 no_subscription; a
// suspended consumer 403 consumer_suspended; an expiresAt passing while
// stoad runs flips the answer and emits subscription.expired; re-activation
// emits subscription.renewed.
func TestAPIMgmtSubscriptionStates(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	up := okUpstream(t)
	soon := time.Now().Add(12 * time.Second).UTC().Format(time.RFC3339)
	specs := doc("Tenant", "", "acme", "") +
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: apiKey}") +
		doc("Tool", "acme", "open", "upstream: "+up+"\nauth: {type: none}") +
		doc("Plan", "acme", "basic", "displayName: Basic")
	consumers := []string{"c-active", "c-suspended", "c-revoked", "c-expired", "c-timed", "c-soon", "c-none"}
	for _, c := range consumers {
		specs += doc("Consumer", "acme", c, "")
	}
	specs += doc("Consumer", "acme", "c-banned", "suspended: true")
	sub := func(name, consumer, extra string) string {
		return doc("Subscription", "acme", name, "consumer: "+consumer+"\nplan: basic\ntool: api\n"+extra)
	}
	subs := sub("s-active", "c-active", "") + sub("s-suspended", "c-suspended", "state: suspended") +
		sub("s-revoked", "c-revoked", "state: revoked") + sub("s-expired", "c-expired", "state: expired") +
		sub("s-timed", "c-timed", "expiresAt: 2020-01-01T00:00:00Z") + sub("s-soon", "c-soon", "expiresAt: "+soon) +
		sub("s-banned", "c-banned", "")
	apply(t, d, specs+subs)

	keys := map[string]string{}
	for _, c := range append(consumers, "c-banned") {
		keys[c] = createKey(t, d, "acme", c)
	}
	get := func(consumer string) gwResponse {
		return call(t, d, "GET", "/acme/api/items/1", "", "X-Api-Key", keys[consumer])
	}
	for _, tc := range []struct {
		consumer, code, msg string
		status              int
	}{
		{"c-soon", "", "", 200},
		{"c-active", "", "", 200},
		{"c-suspended", "no_subscription", "is suspended", 403},
		{"c-revoked", "no_subscription", "is revoked", 403},
		{"c-expired", "no_subscription", "is expired", 403},
		{"c-timed", "no_subscription", "is expired", 403},
		{"c-none", "no_subscription", "for consumer c-none", 403},
		{"c-banned", "consumer_suspended", "suspended", 403},
	} {
		r := get(tc.consumer)
		if r.Status != tc.status || r.errorCode() != tc.code || !strings.Contains(r.Body, tc.msg) {
			t.Errorf("%s: got %d %s, want %d %s (%q)", tc.consumer, r.Status, r.Body, tc.status, tc.code, tc.msg)
		}
	}
	// A tool without caller auth has no identity to check: open to all.
	if r := call(t, d, "GET", "/acme/open/x", ""); r.Status != 200 {
		t.Errorf("auth none tool: %d %s", r.Status, r.Body)
	}

	// expiresAt passes while stoad runs.
	waitUntil(t, 30*time.Second, "s-soon to expire", func() bool { return get("c-soon").Status == 403 })
	waitUntil(t, 5*time.Second, "subscription.expired event", func() bool {
		for _, e := range events(t, d, "subscription.expired") {
			if e.Data["subscription"] == "s-soon" && e.Data["actor"] == "stoad (expiresAt passed)" {
				return true
			}
		}
		return false
	})

	// Reactivate one, revoke another, delete a third.
	subs = strings.Replace(subs, "state: suspended", "state: active", 1)
	subs = strings.Replace(subs, sub("s-active", "c-active", ""), sub("s-active", "c-active", "state: revoked"), 1)
	apply(t, d, specs+subs)
	expect(t, d.Stoa("delete", "subscription", "s-banned", "-n", "acme"), 0, "delete subscription")
	if r := get("c-suspended"); r.Status != 200 {
		t.Errorf("reactivated subscription: %d %s", r.Status, r.Body)
	}
	if r := get("c-active"); r.Status != 403 || !strings.Contains(r.Body, "revoked") {
		t.Errorf("revoked subscription: %d %s", r.Status, r.Body)
	}
	want := map[string]string{"s-suspended": "subscription.renewed", "s-active": "subscription.revoked", "s-banned": "subscription.deleted"}
	waitUntil(t, 10*time.Second, "renewed/revoked/deleted events", func() bool {
		got := 0
		for _, e := range events(t, d, "subscription.") {
			if want[fmt.Sprint(e.Data["subscription"])] == e.Type && strings.Contains(fmt.Sprint(e.Data["actor"]), "uid") {
				got++
			}
		}
		return got == len(want)
	})
	// Created once each, never repeated by reloads.
	created := 0
	for _, e := range events(t, d, "subscription.created") {
		if e.Tenant == "acme" {
			created++
		}
	}
	if created != 7 {
		t.Errorf("%d subscription.created events, want 7", created)
	}
	var q struct {
		Items []struct{ Name, State string }
	}
	jsonOut(t, d, &q, "quotas", "-n", "acme")
	states := map[string]string{}
	for _, it := range q.Items {
		states[it.Name] = it.State
	}
	if states["s-soon"] != "expired" || states["s-timed"] != "expired" || states["s-suspended"] != "active" || states["s-active"] != "revoked" {
		t.Errorf("stoa quotas states: %v", states)
	}
}

// TestAPIMgmtQuotaResetAndRestart exhausts a daily quota on a test clock
// set just before midnight UTC, checks the 429 and its Retry-After, that
// the counters survive kill -9 (flushed every 5s) and a graceful restart,
// that quota.exhausted goes out once, and that the quota resets at
// midnight.
func TestAPIMgmtQuotaResetAndRestart(t *testing.T) {
	bin := testClockStoad(t)
	d := NewDaemon(t)
	d.Env = []string{"STOAD_TEST_CLOCK_OFFSET=2026-03-31T23:59:00Z"}
	d.startBin(bin)
	up := okUpstream(t)
	apply(t, d, doc("Tenant", "", "acme", "")+
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: apiKey}")+
		doc("Plan", "acme", "trial", "quota: {daily: 3, monthly: 100}")+
		doc("Consumer", "acme", "shop", "")+
		doc("Subscription", "acme", "shop-api", "consumer: shop\nplan: trial\ntool: api"))
	key := createKey(t, d, "acme", "shop")
	get := func() gwResponse { return call(t, d, "GET", "/acme/api/x", "", "X-Api-Key", key) }
	for i := 1; i <= 3; i++ {
		if r := get(); r.Status != 200 {
			t.Fatalf("call %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := get()
	if r.Status != 429 || r.errorCode() != "quota_exceeded" || !strings.Contains(r.Body, "2026-04-01T00:00:00Z") {
		t.Fatalf("4th call: %d %s", r.Status, r.Body)
	}
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q: want the seconds until midnight on the test clock (≤ 60)", r.Header.Get("Retry-After"))
	}
	get() // a second refusal must not repeat the event
	waitUntil(t, 5*time.Second, "quota.exhausted event", func() bool { return len(events(t, d, "quota.exhausted")) == 1 })
	ev := events(t, d, "quota.exhausted")[0]
	if ev.Tenant != "acme" || ev.Data["subscription"] != "shop-api" || ev.Data["period"] != "day" || fmt.Sprint(ev.Data["limit"]) != "3" {
		t.Fatalf("quota.exhausted: %+v", ev)
	}
	used := func() int64 {
		var q struct {
			Items []struct{ DailyUsed int64 }
		}
		jsonOut(t, d, &q, "quotas", "-n", "acme")
		return q.Items[0].DailyUsed
	}
	if u := used(); u != 3 {
		t.Fatalf("daily used %d, want 3 (refused calls do not count)", u)
	}

	// Crash after a flush interval: nothing is lost.
	time.Sleep(6 * time.Second)
	d.Kill()
	d.Env = []string{"STOAD_TEST_CLOCK_OFFSET=2026-03-31T23:59:30Z"}
	d.startBin(bin)
	if r := get(); r.Status != 429 {
		t.Fatalf("after kill -9 and restart the same day: %d %s (counters lost)", r.Status, r.Body)
	}
	// Graceful restart on the next day: the quota has reset.
	d.Stop()
	d.Env = []string{"STOAD_TEST_CLOCK_OFFSET=2026-04-01T00:00:05Z"}
	d.startBin(bin)
	if r := get(); r.Status != 200 {
		t.Fatalf("after midnight: %d %s", r.Status, r.Body)
	}
	if u := used(); u != 1 {
		t.Fatalf("daily used after reset %d, want 1", u)
	}
	if n := len(events(t, d, "quota.exhausted")); n != 1 {
		t.Fatalf("%d quota.exhausted events, want 1 (once per period, across restarts)", n)
	}
	var st struct {
		Components []struct{ Name, Detail string }
	}
	jsonOut(t, d, &st, "status")
	for _, c := range st.Components {
		if c.Name == "admission" && !strings.Contains(c.Detail, "TEST CLOCK") {
			t.Errorf("status should flag the test clock: %q", c.Detail)
		}
	}
}

// TestAPIMgmtClockOffsetIgnoredInRelease checks that the release stoad
// ignores STOAD_TEST_CLOCK_OFFSET.
func TestAPIMgmtClockOffsetIgnoredInRelease(t *testing.T) {
	d := NewDaemon(t)
	d.Env = []string{"STOAD_TEST_CLOCK_OFFSET=2000h"}
	d.Start()
	var st struct {
		Components []struct{ Name, Detail string }
	}
	jsonOut(t, d, &st, "status")
	for _, c := range st.Components {
		if c.Name == "admission" && strings.Contains(c.Detail, "TEST CLOCK") {
			t.Fatalf("release build honoured the test clock: %q", c.Detail)
		}
	}
}
