package snapshot

import (
	"strings"
	"testing"
	"time"
)

func groupRecorder(t *testing.T) (*Recorder, *Store) {
	t.Helper()
	s, _ := openStore(t)
	r := NewRecorder(s, RecorderOptions{Queue: 64, PerSecond: 1000, Now: func() time.Time { return start }})
	r.SetConfig(&Config{Policy: DefaultPolicy, Redactor: func(string, string) *Redactor { return testRedactor() }})
	return r, s
}

// waitStored starts r, waits until n snapshots are stored, and stops it
// (which counts the pending repeats in).
func waitStored(t *testing.T, r *Recorder, n int64) {
	t.Helper()
	r.Start()
	deadline := time.Now().Add(10 * time.Second)
	for r.Stored.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	r.Stop()
	if got := r.Stored.Load(); got != n {
		t.Fatalf("stored %d snapshots, want %d", got, n)
	}
}

// A 30-second outage at 5 failures a second is one snapshot that says
// 150, with the first and the last time, not 150 snapshots.
func TestRepeatsGroupIntoOneSnapshot(t *testing.T) {
	r, s := groupRecorder(t)
	c := capture("acme")
	c.Route = "/acme/billing-api"
	if r.Repeat(c.Key(), c.Start) {
		t.Fatal("a first failure counted as a repeat")
	}
	if !r.Capture(c) {
		t.Fatal("capture refused")
	}
	last := start
	for i := 1; i < 150; i++ {
		last = start.Add(time.Duration(i) * 200 * time.Millisecond)
		if !r.Repeat(c.Key(), last) {
			t.Fatalf("failure %d not counted as a repeat", i)
		}
	}
	waitStored(t, r, 1)
	list, err := s.List(Filter{Tenant: "acme"})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if sm := list[0]; sm.Count != 150 || !sm.Time.Equal(start) || !sm.LastSeen.Equal(last) {
		t.Fatalf("summary: count %d, first %s, last %s", sm.Count, sm.Time, sm.LastSeen)
	}
	sn, err := s.Get(list[0].ID)
	if err != nil || sn.Count != 150 || !sn.LastSeen.Equal(last) || sn.Route != "/acme/billing-api" {
		t.Fatalf("get: %+v %v", sn, err)
	}
	if r.Repeats.Load() != 149 {
		t.Fatalf("repeats counter %d", r.Repeats.Load())
	}
}

// Only the same failure groups: another tenant, tool, operation, route,
// method, status or reason is a snapshot of its own.
func TestGroupKeyNeighbours(t *testing.T) {
	r, _ := groupRecorder(t)
	base := capture("acme")
	base.Route = "/acme/billing-api"
	r.Capture(base)
	for name, mut := range map[string]func(*Capture){
		"tenant":    func(c *Capture) { c.Tenant = "globex" },
		"tool":      func(c *Capture) { c.Tool = "other" },
		"operation": func(c *Capture) { c.Operation = "get_invoice" },
		"source":    func(c *Capture) { c.Source = "mcp" },
		"route":     func(c *Capture) { c.Route = "/v2/billing" },
		"method":    func(c *Capture) { c.Method = "GET" },
		"status":    func(c *Capture) { c.Status = 503 },
		"reason":    func(c *Capture) { c.Reason = "timeout" },
		"origin":    func(c *Capture) { c.Origin = OriginGateway },
	} {
		c := capture("acme")
		c.Route = base.Route
		mut(c)
		if r.Repeat(c.Key(), start.Add(time.Second)) {
			t.Errorf("a failure with another %s was counted as a repeat", name)
		}
	}
	// The same failure on another path of the route is a repeat.
	c := capture("acme")
	c.Route, c.URL = base.Route, "http://127.0.0.1:9001/billing/invoices/INV-2"
	if !r.Repeat(c.Key(), start.Add(time.Second)) {
		t.Error("the same failure on another path of the route was not grouped")
	}
}

// A group ends after GroupWindow without a repeat, and after GroupSpan in
// any case; the next failure then starts a new snapshot.
func TestGroupWindowAndSpan(t *testing.T) {
	r, _ := groupRecorder(t)
	c := capture("acme")
	r.Capture(c)
	if r.Repeat(c.Key(), start.Add(GroupWindow+time.Second)) {
		t.Fatal("a repeat after a quiet GroupWindow joined the old group")
	}
	c2 := capture("acme")
	c2.Start = start.Add(GroupWindow + time.Second)
	r.Capture(c2)
	at := c2.Start
	for at.Sub(c2.Start) < GroupSpan-time.Minute {
		at = at.Add(time.Minute)
		if !r.Repeat(c.Key(), at) {
			t.Fatalf("repeat at %s (every minute) not grouped", at.Sub(c2.Start))
		}
	}
	if r.Repeat(c.Key(), c2.Start.Add(GroupSpan+time.Second)) {
		t.Fatal("a group outlived GroupSpan")
	}
}

// Two first failures captured before either is stored (concurrent
// requests) still make one snapshot, counting both.
func TestGroupRacingFirstCaptures(t *testing.T) {
	r, s := groupRecorder(t)
	for i := 0; i < 3; i++ {
		c := capture("acme")
		c.Start = start.Add(time.Duration(i) * time.Millisecond)
		r.Capture(c) // as if each request checked Repeat before any capture
	}
	waitStored(t, r, 1)
	list, _ := s.List(Filter{})
	if len(list) != 1 || list[0].Count != 3 || !list[0].LastSeen.Equal(start.Add(2*time.Millisecond)) {
		t.Fatalf("list: %+v", list)
	}
}

// When a group's snapshot was trimmed away, the next failure starts a new
// snapshot rather than counting into nothing.
func TestGroupOfTrimmedSnapshot(t *testing.T) {
	r, s := groupRecorder(t)
	c := capture("acme")
	r.Capture(c)
	waitStored(t, r, 1)
	list, _ := s.List(Filter{})
	if _, err := s.Prune(Policy{MaxCount: 0, MaxAge: time.Nanosecond}, start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !r.Repeat(c.Key(), start.Add(time.Second)) {
		t.Fatal("repeat of a just-stored failure not grouped")
	}
	r.flushRepeats(start.Add(time.Second)) // finds the snapshot gone
	if r.Repeat(c.Key(), start.Add(2*time.Second)) {
		t.Fatalf("repeat counted into trimmed snapshot %s", list[0].ID)
	}
}

// A gateway-made error's curl calls the gateway without the headers the
// gateway set itself; its target (given by the proxy's mapping) is
// redacted like a URL.
func TestGatewayCurlAndTarget(t *testing.T) {
	c := capture("acme")
	c.Origin, c.Reason, c.Status, c.UpstreamStatus = OriginGateway, "no_healthy_upstream", 503, 0
	c.Upstream = ""
	c.URL = "http://gw.example:8080/acme/billing-api/invoices?session_id=abc123planted&x=1"
	c.Target = "/invoices?session_id=abc123planted&x=1"
	c.Injected = []string{"X-Stoa-Tenant", "X-Upstream-Token"}
	c.ReqHeaders = append(c.ReqHeaders, Header{Name: "X-Stoa-Tenant", Value: "acme"})
	s := build(c, testRedactor(), 8192)
	s.ID = "snp_3"
	if s.Request.Target != "/invoices?session_id=%5BREDACTED%5D&x=1" {
		t.Fatalf("target %q", s.Request.Target)
	}
	got := Curl(s)
	for _, want := range []string{
		"# the gateway answered itself (no_healthy_upstream; no upstream was tried): this calls the gateway\n",
		"curl -sS -X 'POST' 'http://gw.example:8080/acme/billing-api/invoices?session_id=%5BREDACTED%5D&x=1'",
		"-H 'Content-Type: application/json'",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("curl lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"X-Stoa-Tenant", "X-Upstream-Token", "abc123planted"} {
		if strings.Contains(got, not) {
			t.Errorf("curl has %q:\n%s", not, got)
		}
	}
	// The same snapshot from MCP has no client request: its curl is the
	// upstream request.
	s.Source, s.Request.URL = "mcp", "http://127.0.0.1:9001/billing/invoices"
	if got := Curl(s); strings.Contains(got, "gateway answered") || !strings.Contains(got, "X-Stoa-Tenant") {
		t.Errorf("mcp curl:\n%s", got)
	}
}

// BenchmarkRepeat is the cost a failing request pays once its failure is
// already captured (an outage): one map lookup under a short lock.
func BenchmarkRepeat(b *testing.B) {
	s, _ := openStore(b)
	r := NewRecorder(s, RecorderOptions{})
	c := capture("acme")
	r.Capture(c)
	k := c.Key()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !r.Repeat(k, start) {
				b.Fatal("not a repeat")
			}
		}
	})
}
