package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// These tests run two in-process stoads on one real Redis, the way a
// fleet of data planes shares limits (docs/limits.md, "Fleet mode"). They
// need redis-server: they skip without it, and fail under CI=true, where
// .ci/run starts it.

// testRedis is the shared Redis (STOA_TEST_REDIS, else 127.0.0.1:6379).
// Tests using it never stop it; each writes under a prefix of its own.
func testRedis(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("STOA_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return addr
	}
	noRedis(t, "no redis at "+addr+" ("+err.Error()+"): start one with `redis-server --daemonize yes --port 6379 --save '' --appendonly no` or set STOA_TEST_REDIS")
	return ""
}

func noRedis(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// redisPrefix is a key prefix of this test alone; its keys are deleted
// when the test ends.
func redisPrefix(t *testing.T, addr string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "stoatest:" + strings.ReplaceAll(t.Name(), "/", ".") + ":" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		cl, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: true})
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, _ := cl.Do(ctx, cl.B().Keys().Pattern(p+"*").Build()).AsStrSlice()
		if len(keys) > 0 {
			cl.Do(ctx, cl.B().Del().Key(keys...).Build())
		}
	})
	return p
}

// privateRedis is a redis-server of one test's own, on a free port, that
// the test may stop and start again (the shared one is never stopped).
type privateRedis struct {
	t    *testing.T
	bin  string
	addr string
	port string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		noRedis(t, "redis-server is not installed (apt-get install redis-server): this test runs one of its own")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	r := &privateRedis{t: t, bin: bin, addr: addr, port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start: %v", r.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server (SIGKILL: an outage, not a shutdown).
func (r *privateRedis) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// fleetGateway is a Gateway sharing limits through Redis at addr. The
// timeout is generous: on a busy machine a call slower than the default
// 100ms counts as Redis lost, and the failure mode would decide calls
// these tests expect Redis to decide.
func fleetGateway(addr, prefix, failMode, extra string) string {
	return doc("Gateway", "", "default", fmt.Sprintf("limits: {backend: redis}\nredis: {address: %q, prefix: %q, failMode: %s, timeout: 2s}\n%s",
		addr, prefix, failMode, extra))
}

func (ld *liveDaemon) component(name string) api.Component {
	ld.t.Helper()
	var st api.Status
	if err := ld.c.Do(context.Background(), "GET", api.PathStatus, nil, &st); err != nil {
		ld.t.Fatal(err)
	}
	for _, c := range st.Components {
		if c.Name == name {
			return c
		}
	}
	ld.t.Fatalf("stoa status has no %s component: %+v", name, st.Components)
	return api.Component{}
}

func (ld *liveDaemon) hasEvent(typ string, match func(api.Event) bool) bool {
	ld.t.Helper()
	evs, err := ld.d.Events(context.Background(), 0, 1000)
	if err != nil {
		ld.t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == typ && (match == nil || match(e)) {
			return true
		}
	}
	return false
}

// errorCode is the gateway's JSON error code in body ("" if none).
func errorCode(body string) string {
	var m struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &m)
	return m.Error
}

// TestFleetRateLimitShared: a limit of 30/min with a burst of 10 on a tool
// served by two stoads on one Redis admits what one bucket admits, not one
// bucket per data plane, whichever data plane the calls reach.
func TestFleetRateLimitShared(t *testing.T) {
	addr := testRedis(t)
	prefix := redisPrefix(t, addr)
	up := okServer(t)
	specs := fleetGateway(addr, prefix, "open", "") + doc("Tenant", "", "acme", "") +
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: none}\nrateLimit: {rate: 30/min, burst: 10}")
	a, b := startDaemon(t, nil), startDaemon(t, nil)
	a.apply(specs)
	b.apply(specs)
	for _, ld := range []*liveDaemon{a, b} {
		if c := ld.component("limits"); c.State != "ok" || !strings.Contains(c.Detail, "redis "+addr) {
			t.Fatalf("limits component %+v, want redis %s up", c, addr)
		}
	}

	start := time.Now()
	admitted := map[*liveDaemon]int{}
	for i := 0; i < 40; i++ {
		ld := a
		if i%2 == 1 {
			ld = b
		}
		code, body := ld.get("/acme/api/x")
		switch code {
		case 200:
			admitted[ld]++
		case 429:
			if errorCode(body) != "rate_limited" {
				t.Fatalf("429 body %q", body)
			}
		default:
			t.Fatalf("call %d: %d %q", i, code, body)
		}
	}
	elapsed := time.Since(start)
	total := admitted[a] + admitted[b]
	// One bucket: the burst, plus one token per 2 s of the run. Leased
	// tokens were charged in Redis when granted, so they never add to
	// this; each data plane may end holding one unspent (the lower bound).
	most := 10 + int(elapsed/(2*time.Second)) + 1
	if total > most || total < 10-2 {
		t.Fatalf("admitted %d (A %d, B %d) in %s; one shared bucket admits %d at most, and two separate ones about 20",
			total, admitted[a], admitted[b], elapsed.Round(time.Millisecond), most)
	}
	if admitted[a] == 0 || admitted[b] == 0 {
		t.Fatalf("admitted A %d, B %d: both data planes should have served", admitted[a], admitted[b])
	}
	t.Logf("admitted %d of 40 (A %d, B %d) in %s", total, admitted[a], admitted[b], elapsed.Round(time.Millisecond))
}

// TestFleetQuotaShared: a consumer's daily quota is one across two stoads:
// calls counted on one are refused on the other once the quota is spent.
func TestFleetQuotaShared(t *testing.T) {
	addr := testRedis(t)
	prefix := redisPrefix(t, addr)
	up := okServer(t)
	specs := fleetGateway(addr, prefix, "open", "") + doc("Tenant", "", "acme", "") +
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: apiKey}") +
		doc("Plan", "acme", "basic", "quota: {daily: 6}") +
		doc("Consumer", "acme", "shop", "") +
		doc("Subscription", "acme", "shop-api", "consumer: shop\nplan: basic\ntool: api")
	a, b := startDaemon(t, nil), startDaemon(t, nil)
	a.apply(specs)
	b.apply(specs)
	keyA, _ := a.createKey("acme", "shop")
	keyB, _ := b.createKey("acme", "shop")

	for i := 0; i < 4; i++ {
		if code, body := a.get("/acme/api/x", "X-Api-Key", keyA); code != 200 {
			t.Fatalf("A call %d: %d %q", i, code, body)
		}
	}
	used := func(ld *liveDaemon) int64 {
		for _, s := range ld.d.services.Quotas.Statuses(time.Now()) {
			if s.Name == "shop-api" {
				return s.DailyUsed
			}
		}
		return -1
	}
	waitFor(t, "A to share its 4 calls", func() bool { return used(a) >= 4 })
	// B learns a subscription's count when it first serves it (an idle
	// subscription costs no exchange): its first call is admitted, and
	// within one exchange B knows the fleet has spent 5.
	if code, body := b.get("/acme/api/x", "X-Api-Key", keyB); code != 200 {
		t.Fatalf("B's first call: %d %q", code, body)
	}
	waitFor(t, "B to learn A's 4 calls", func() bool { return used(b) >= 5 })
	okB := 1
	for i := 0; i < 5; i++ {
		code, body := b.get("/acme/api/x", "X-Api-Key", keyB)
		switch {
		case code == 200:
			okB++
		case code == 429 && errorCode(body) == "quota_exceeded":
		default:
			t.Fatalf("B call %d: %d %q", i, code, body)
		}
	}
	if okB != 2 {
		t.Fatalf("B admitted %d calls after A's 4 of a quota of 6, want 2", okB)
	}
	waitFor(t, "A to learn B's calls", func() bool { return used(a) >= 6 })
	if code, body := a.get("/acme/api/x", "X-Api-Key", keyA); code != 429 || errorCode(body) != "quota_exceeded" {
		t.Fatalf("A after the fleet spent the quota: %d %q", code, body)
	}
	if c := a.component("admission"); !strings.Contains(c.Detail, "shared through redis") {
		t.Fatalf("admission status %+v does not say quotas are shared", c)
	}
}

// TestFleetBlocksShared: an operator's XDP block made on one stoad
// reaches the other, ending at the same instant and naming the data plane
// that decided it; the deciding data plane is not handed its own block
// back. (Escalation blocks take the same path: pkg/xdp/xdprt's
// TestShareBlocks checks that they are handed over; escalating here would
// need XDP attached to lo, shared by every test on the machine.)
func TestFleetBlocksShared(t *testing.T) {
	addr := testRedis(t)
	prefix := redisPrefix(t, addr)
	up := okServer(t)
	specs := fleetGateway(addr, prefix, "open", "") +
		doc("Tenant", "", "acme", "defaults: {perSource: {rate: 1/h, burst: 1}}") +
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: none}")
	a, b := startDaemon(t, nil), startDaemon(t, nil)
	a.apply(specs)
	b.apply(specs)
	blocks := func(ld *liveDaemon) map[string]api.XDPBlock {
		var l api.XDPBlockList
		if err := ld.c.Do(context.Background(), "GET", api.PathXDPBlocks, nil, &l); err != nil {
			t.Fatal(err)
		}
		m := map[string]api.XDPBlock{}
		for _, x := range l.Items {
			m[x.Source] = x
		}
		return m
	}
	originA := a.d.dp.limits.Origin()

	// An operator's block on A.
	var made api.XDPBlock
	if err := a.c.Do(context.Background(), "POST", api.PathXDPBlocks,
		api.XDPBlockRequest{CIDR: "198.51.100.0/24", For: "10m", Reason: "credential stuffing"}, &made); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to apply A's block", func() bool { _, ok := blocks(b)["198.51.100.0/24"]; return ok })
	got := blocks(b)["198.51.100.0/24"]
	if !got.Until.Truncate(time.Millisecond).Equal(made.Until.Truncate(time.Millisecond)) {
		t.Errorf("B's block ends %s, A's %s", got.Until, made.Until)
	}
	if !strings.Contains(got.Reason, "credential stuffing") || !strings.Contains(got.Reason, originA) {
		t.Errorf("B's block reason %q, want A's reason and origin %s", got.Reason, originA)
	}
	waitFor(t, "B's xdp.block event by fleet, actor "+originA, func() bool {
		return b.hasEvent("xdp.block", func(e api.Event) bool { return e.Data["by"] == "fleet" && e.Data["actor"] == originA })
	})
	if r := blocks(a)["198.51.100.0/24"].Reason; r != "credential stuffing" {
		t.Errorf("A's own block changed to %q (handed back to itself?)", r)
	}
}

// TestFleetRedisLost: Redis killed under two stoads. Failing open, each
// serves its share of the limit (half the burst here) and nothing gets a
// 5xx; status and events say so; when Redis is back the limits are shared
// again without a restart. Then a reload switches the same fleet to
// failing closed (the backend is replaced): with Redis gone, limited
// calls get 503 with the JSON error body, and succeed once it is back.
func TestFleetRedisLost(t *testing.T) {
	rd := startPrivateRedis(t)
	up := okServer(t)
	tool := doc("Tenant", "", "acme", "") +
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: none}\nrateLimit: {rate: 1/h, burst: 10}")
	a, b := startDaemon(t, nil), startDaemon(t, nil)
	open := fleetGateway(rd.addr, "stoa:", "open", "") + tool
	a.apply(open)
	b.apply(open)
	for _, ld := range []*liveDaemon{a, b} {
		ld := ld
		waitFor(t, "both data planes to count each other", func() bool {
			return strings.Contains(ld.component("limits").Detail, "2 data planes")
		})
	}

	rd.stop()
	waitFor(t, "A to notice redis is gone", func() bool {
		a.get("/elsewhere") // no route: no limit; an idle limiter notices within a second anyway
		return a.component("limits").State == "degraded"
	})
	if c := a.component("limits"); !strings.Contains(c.Detail, "UNREACHABLE") || !strings.Contains(c.Detail, "1/2") {
		t.Fatalf("limits status while redis is down: %+v", c)
	}
	waitFor(t, "a limits.redis-down event", func() bool { return a.hasEvent("limits.redis-down", nil) })
	ok := 0
	for i := 0; i < 12; i++ {
		code, body := a.get("/acme/api/x")
		switch code {
		case 200:
			ok++
		case 429:
		default:
			t.Fatalf("fail-open call %d: %d %q (no 5xx while failing open)", i, code, body)
		}
	}
	// Half of the burst of 10, and a token A may have held from before.
	if ok < 5 || ok > 6 {
		t.Fatalf("failing open with 2 data planes, A admitted %d of 12 on a burst of 10, want its share: 5 (6 with a held token)", ok)
	}

	// B too must have seen the outage: a data plane that had not would
	// find its stale connection broken on its first call after Redis
	// is back, and rightly fail open for the moment it takes to
	// reconnect (which made this test count B's local share too).
	waitFor(t, "B to notice redis is gone", func() bool {
		b.get("/elsewhere")
		return b.component("limits").State == "degraded"
	})

	rd.start()
	waitFor(t, "A and B to find redis again", func() bool {
		return a.component("limits").State == "ok" && b.component("limits").State == "ok"
	})
	waitFor(t, "limits.redis-up events on A and B", func() bool {
		return a.hasEvent("limits.redis-up", nil) && b.hasEvent("limits.redis-up", nil)
	})
	// A fresh Redis (no persistence) holds full buckets: shared again,
	// the fleet admits the whole burst of 10 once, not 10 per data plane.
	shared := 0
	for i := 0; i < 30; i++ {
		ld := a
		if i%2 == 1 {
			ld = b
		}
		if code, _ := ld.get("/acme/api/x"); code == 200 {
			shared++
		}
	}
	if shared < 8 || shared > 11 {
		for _, ld := range []*liveDaemon{a, b} {
			evs, _ := ld.d.Events(context.Background(), 0, 1000)
			for _, e := range evs {
				if strings.HasPrefix(e.Type, "limits.") {
					t.Logf("%s %s %s", e.Time.Format("15:04:05.000"), e.Type, e.Message)
				}
			}
		}
		t.Fatalf("after redis came back the fleet admitted %d of 30 on a burst of 10", shared)
	}

	// Fail closed: a reload replaces the backend.
	closed := fleetGateway(rd.addr, "stoa:", "closed", "") + tool
	a.apply(closed)
	waitFor(t, "A's new backend", func() bool { return strings.Contains(a.component("limits").Detail, "fail closed") })
	rd.stop()
	waitFor(t, "A to notice redis is gone again", func() bool {
		a.get("/elsewhere")
		return a.component("limits").State == "degraded"
	})
	var code int
	var body string
	for i := 0; i < 3; i++ { // a token held from before may still be spent
		if code, body = a.get("/acme/api/x"); code != 200 && code != 429 {
			break
		}
	}
	if code != http.StatusServiceUnavailable || errorCode(body) != "limits_unavailable" {
		t.Fatalf("failing closed: %d %q, want 503 limits_unavailable", code, body)
	}
	rd.start()
	waitFor(t, "A to find redis again", func() bool { return a.component("limits").State == "ok" })
	if code, body := a.get("/acme/api/x"); code != 200 {
		t.Fatalf("after redis came back, failing closed: %d %q", code, body)
	}
}

// TestFleetRedisDownAtStart: a Gateway naming a Redis that is not there is
// applied, and stoad restarts on it: it serves at once in its failure mode
// (closed here: 503 limits_unavailable for limited calls, others served),
// says so in status, and shares limits as soon as Redis appears.
func TestFleetRedisDownAtStart(t *testing.T) {
	rd := startPrivateRedis(t)
	rd.stop()
	up := okServer(t)
	ld := startDaemon(t, nil)
	ld.apply(fleetGateway(rd.addr, "stoa:", "closed", "") + doc("Tenant", "", "acme", "") +
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: none}\nrateLimit: 100/s") +
		doc("Tool", "acme", "free", "upstream: "+up+"\nauth: {type: none}"))
	ld.restart()
	waitFor(t, "the limits line to say redis is unreachable", func() bool {
		c := ld.component("limits")
		return c.State == "degraded" && strings.Contains(c.Detail, "UNREACHABLE") && strings.Contains(c.Detail, "failing closed")
	})
	if code, body := ld.get("/acme/api/x"); code != http.StatusServiceUnavailable || errorCode(body) != "limits_unavailable" {
		t.Fatalf("limited call with redis down, failing closed: %d %q", code, body)
	}
	if code, body := ld.get("/acme/free/x"); code != 200 {
		t.Fatalf("unlimited call with redis down: %d %q", code, body)
	}
	rd.start()
	waitFor(t, "redis to be found", func() bool { return ld.component("limits").State == "ok" })
	if code, body := ld.get("/acme/api/x"); code != 200 {
		t.Fatalf("limited call with redis back: %d %q", code, body)
	}
}
