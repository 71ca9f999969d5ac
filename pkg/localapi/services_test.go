package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/keys"
	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/snapshot"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
	"github.com/stoa-gateway/stoa/pkg/telemetry/stats"
	"github.com/stoa-gateway/stoa/pkg/xdp/xdprt"
)

// TestXDPBlockAPI drives the real XDP runtime (no program attached: the
// plan names no interface) through the block routes: answers, refusals
// with hints, and events naming the operator.
func TestXDPBlockAPI(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	evl := events.NewLog(st, log)
	x := xdprt.New(xdprt.Options{Listen: "127.0.0.1:8080", Events: evl, Metrics: prometheus.NewRegistry(), Log: log})
	defer x.Stop(context.Background())
	swap, err := x.Prepare(state.New(1, nil))
	if err != nil {
		t.Fatal(err)
	}
	swap()
	srv := serve(t, newFakeDaemon(), Services{XDP: x})

	var blk api.XDPBlock
	if code := call(t, srv, "POST", api.PathXDPBlocks, api.XDPBlockRequest{CIDR: "198.51.100.7", For: "10m", Reason: "stuffing"}, &blk); code != 200 {
		t.Fatalf("block: %d", code)
	}
	if blk.Source != "198.51.100.7/32" || blk.Reason != "stuffing" || blk.ExpiresInSeconds < 599 {
		t.Fatalf("block answer: %+v", blk)
	}
	if code := call(t, srv, "POST", api.PathXDPBlocks, api.XDPBlockRequest{CIDR: "2001:db8::/32", For: "1d"}, nil); code != 200 {
		t.Fatalf("block v6: %d", code)
	}
	for _, bad := range []api.XDPBlockRequest{{CIDR: "nope", For: "1m"}, {CIDR: "10.0.0.1"}, {CIDR: "10.0.0.1", For: "-1m"},
		{CIDR: "10.0.0.1", For: "400d"}, {CIDR: "10.0.0.1", For: "soon"}} {
		var e api.ErrorBody
		if code := call(t, srv, "POST", api.PathXDPBlocks, bad, &e); code != 400 || e.Error == nil || e.Error.Hint == "" {
			t.Errorf("block %+v: %d %+v", bad, code, e.Error)
		}
	}
	var list api.XDPBlockList
	call(t, srv, "GET", api.PathXDPBlocks, nil, &list)
	if len(list.Items) != 2 || list.Items[0].Source != "198.51.100.7/32" || list.Items[1].Source != "2001:db8::/32" ||
		!strings.Contains(list.Items[1].Reason, "blocked by root") {
		t.Fatalf("list: %+v", list)
	}

	var un api.XDPUnblockResponse
	call(t, srv, "POST", api.PathXDPUnblock, api.XDPUnblockRequest{CIDR: "198.51.100.7/32"}, &un)
	if !un.Removed || un.Source != "198.51.100.7/32" {
		t.Fatalf("unblock: %+v", un)
	}
	call(t, srv, "DELETE", api.PathXDPBlocks+"?cidr=2001:db8::/32", nil, &un)
	if !un.Removed {
		t.Fatalf("delete: %+v", un)
	}
	call(t, srv, "POST", api.PathXDPUnblock, api.XDPUnblockRequest{CIDR: "198.51.100.7"}, &un)
	if un.Removed {
		t.Fatalf("second unblock removed something: %+v", un)
	}

	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 4 && time.Now().Before(deadline) {
		got = got[:0]
		evs, err := evl.Read(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			got = append(got, e.Type+" "+e.Data["source"].(string)+" "+e.Data["by"].(string)+" "+e.Data["actor"].(string))
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := []string{
		"xdp.block 198.51.100.7/32 operator root (uid 0)",
		"xdp.block 2001:db8::/32 operator root (uid 0)",
		"xdp.unblock 198.51.100.7/32 operator root (uid 0)",
		"xdp.unblock 2001:db8::/32 operator root (uid 0)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var xs api.XDPStatus
	call(t, srv, "GET", api.PathXDPStatus, nil, &xs)
	if xs.Enabled || xs.Mode != "off" || !strings.Contains(xs.Reason, "disabled in the Gateway spec") {
		t.Fatalf("status: %+v", xs)
	}
}

// statsSource is a ready daemon at revision 7.
type statsSource struct{ ready atomic.Bool }

func (*statsSource) Live() *state.Revision { return state.New(7, nil) }
func (*statsSource) Status() api.Status    { return api.Status{StartedAt: time.Now(), Revision: 7} }
func (s *statsSource) Ready() bool         { return s.ready.Load() }

// TestStatsRoute: one sample carries rates (a stream's first never does);
// ?follow=1 streams a sample per interval, each flushed, and ends when
// the daemon stops.
func TestStatsRoute(t *testing.T) {
	src := &statsSource{}
	src.ready.Store(true)
	hub := stats.NewHub(stats.Options{Source: src, Registry: telemetry.NewRegistry(), Interval: 20 * time.Millisecond,
		XDP: func() stats.XDPReading { return stats.XDPReading{Mode: "native", Attached: true} }})
	srv := serve(t, newFakeDaemon(), Services{Stats: hub})

	var one api.StatsSample
	if code := call(t, srv, "GET", api.PathStats, nil, &one); code != 200 || one.IntervalSeconds == 0 || one.Revision != 7 ||
		one.XDP == nil || one.XDP.Mode != "native" {
		t.Fatalf("one sample: %d %+v", code, one)
	}

	resp, err := http.Get(srv.URL + api.PathStats + "?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var times []time.Time
	for len(times) < 3 && sc.Scan() {
		var s api.StatsSample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		times = append(times, s.Time)
	}
	if len(times) < 3 || !times[2].After(times[1]) {
		t.Fatalf("stream samples: %v (%v)", times, sc.Err())
	}
	src.ready.Store(false)
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, resp.Body)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end when the daemon stopped being ready")
	}
}

// TestSnapshotOnTheWire: the converter carries every field the snapshot
// has, exactly as its JSON encoding names them, plus the curl.
func TestSnapshotOnTheWire(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sn := &snapshot.Snapshot{ID: "snp_7", Time: now, Source: "proxy", Tenant: "acme", Tool: "billing", Operation: "get",
		Consumer: "shop", Revision: 4, RequestID: "req-1", Upstream: "http://up/base", Reason: "5xx", Error: "boom",
		Duration: time.Second, Origin: snapshot.OriginUpstream, Route: "/acme/billing", Count: 3, LastSeen: now.Add(time.Minute),
		UpstreamStatus: 502, Redactions: []string{"header Authorization"},
		Request: snapshot.Message{Method: "POST", URL: "http://up/base/x?a=1", Target: "/x?a=1", Injected: []string{"X-Stoa-Tenant"},
			Headers: []snapshot.Header{{Name: "Authorization", Value: "[REDACTED]", Redacted: true}}, Body: `{"a":1}`, BodyBytes: 7},
		Response: snapshot.Message{Status: 502, Headers: []snapshot.Header{{Name: "Content-Type", Value: "text/plain"}},
			Body: "bad", BodyBytes: 9000, Truncated: true, Omitted: ""},
	}
	b, err := json.Marshal(sn)
	if err != nil {
		t.Fatal(err)
	}
	var want api.Snapshot
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	want.Curl = snapshot.Curl(sn)
	if got := toAPISnapshot(sn); !reflect.DeepEqual(got, want) {
		t.Fatalf("toAPISnapshot:\n%+v\nwant\n%+v", got, want)
	}
	sum := sn.Summary()
	b, _ = json.Marshal(sum)
	var wantSum api.SnapshotSummary
	json.Unmarshal(b, &wantSum)
	if got := toAPISnapshotSummary(sum); !reflect.DeepEqual(got, wantSum) {
		t.Fatalf("toAPISnapshotSummary:\n%+v\nwant\n%+v", got, wantSum)
	}
}

func TestQuotaOnTheWire(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := quota.Status{Tenant: "acme", Name: "sub", Consumer: "shop", Plan: "gold", Tool: "api", ToolSet: "set", State: "active",
		ExpiresAt: now, Daily: 10, DailyUsed: 3, DailyReset: now, Monthly: 100, MonthlyUsed: 30, MonthlyReset: now}
	b, _ := json.Marshal(s)
	var want api.QuotaStatus
	json.Unmarshal(b, &want)
	if got := toAPIQuota(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("toAPIQuota:\n%+v\nwant\n%+v", got, want)
	}
}

// TestKeysErrors: every refused key operation gets its code and a hint
// saying what to do.
func TestKeysErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
		hint string
	}{
		{&keys.Error{Kind: keys.ErrKeyNotFound, Msg: "key k not found"}, api.CodeNotFound, "stoa keys list -A"},
		{keys.ConsumerNotFound("acme", "shop"), api.CodeNotFound, "stoa get consumers -n acme"},
		{&keys.Error{Kind: keys.ErrNotActive, Msg: "key k is revoked"}, api.CodeConflict, "stoa keys create"},
		{&keys.Error{Kind: keys.ErrConsumerGone, Msg: "gone"}, api.CodeConflict, "starts with no keys"},
	} {
		ae, ok := keysError(tc.err).(*api.Error)
		if !ok || ae.Code != tc.code || ae.Message != tc.err.Error() || !strings.Contains(ae.Hint, tc.hint) {
			t.Errorf("%v: %+v", tc.err, ae)
		}
	}
	if err := keysError(io.EOF); err != io.EOF {
		t.Errorf("another error was changed: %v", err)
	}
}
