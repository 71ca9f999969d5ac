package limitsrt

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/limits/redislimit"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

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
	msg := "no redis at " + addr + " (" + err.Error() + "): start one with `redis-server --daemonize yes --port 6379 --save '' --appendonly no` or set STOA_TEST_REDIS"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// revision is a revision holding only a Gateway with the given spec
// (YAML), defaulted as stoad stores it.
func revision(t *testing.T, gw string) *state.Revision {
	t.Helper()
	objs, diags := spec.Parse("gw.yaml", []byte("apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n"+gw))
	if diags.HasErrors() {
		t.Fatalf("gateway: %v", diags)
	}
	return state.New(1, objs)
}

// TestCompile: the Gateway's redis block becomes the limiter's options;
// an unreadable password refuses the revision with the reason.
func TestCompile(t *testing.T) {
	c, err := compile(revision(t, "  limits: {backend: local}\n").Gateway())
	if err != nil || c.redis {
		t.Fatalf("local: %+v %v", c, err)
	}
	c, err = compile(revision(t, "  limits: {backend: redis}\n  redis: {address: 10.0.0.5:6379, failMode: closed, leaseWindow: 0s, sentinel: null}\n").Gateway())
	if err != nil || !c.redis || c.addr != "10.0.0.5:6379" || c.failMode != redislimit.FailClosed || c.opts.LeaseWindow >= 0 || c.prefix != "stoa:" {
		t.Fatalf("redis: %+v %v", c, err)
	}
	c2, _ := compile(revision(t, "  limits: {backend: redis}\n  redis: {address: 10.0.0.5:6379, failMode: closed, leaseWindow: 0s}\n").Gateway())
	if c2.key != c.key {
		t.Fatal("the same redis block compiled to two keys: a reload would replace a live backend for nothing")
	}
	c3, _ := compile(revision(t, "  limits: {backend: redis}\n  redis: {address: 10.0.0.5:6379}\n").Gateway())
	if c3.key == c.key || c3.failMode != redislimit.FailOpen || c3.opts.LeaseWindow != 20*time.Millisecond {
		t.Fatalf("defaults: %+v", c3)
	}
	_, err = compile(revision(t, "  limits: {backend: redis}\n  redis: {address: 10.0.0.5:6379, password: {secretRef: {env: STOA_TEST_NO_SUCH_VAR}}}\n").Gateway())
	if err == nil || !strings.Contains(err.Error(), "spec.redis.password") || !strings.Contains(err.Error(), "STOA_TEST_NO_SUCH_VAR") {
		t.Fatalf("missing password: %v", err)
	}
}

// TestSwapBackends: local → redis → the same redis (kept) → local; the
// Checker handed out once follows, and a replaced backend is closed (its
// heartbeat leaves the peer set).
func TestSwapBackends(t *testing.T) {
	addr := testRedis(t)
	local := limits.New(limits.Options{})
	r := New(Options{Local: local, Origin: "test-" + t.Name()})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	chk := r.Checker()
	key := limits.NameKey(limits.KindTool, "tool/acme/"+t.Name())
	lim := limits.LimitFrom(1, time.Hour, 1)
	if d := chk.AllowAll([]limits.Key{key}, []limits.Limit{lim}); !d.Allowed {
		t.Fatal("local: first call refused")
	}
	prefix := "stoatest:" + t.Name() + ":" + time.Now().Format("150405.000000") + ":"
	gw := "  limits: {backend: redis}\n  redis: {address: \"" + addr + "\", prefix: \"" + prefix + "\"}\n"
	swap, err := r.Prepare(revision(t, gw))
	if err != nil {
		t.Fatal(err)
	}
	swap()
	b := r.cur
	if b == nil || !strings.Contains(r.Status().Detail, "redis "+addr) {
		t.Fatalf("after the swap to redis: %+v", r.Status())
	}
	// A fresh bucket in Redis: admitted once, then refused, whatever the
	// local limiter said.
	if d := chk.AllowAll([]limits.Key{key}, []limits.Limit{lim}); !d.Allowed {
		t.Fatal("redis: first call refused")
	}
	if d := chk.AllowAll([]limits.Key{key}, []limits.Limit{lim}); d.Allowed {
		t.Fatal("redis: second call of a 1/h limit admitted")
	}
	swap, _ = r.Prepare(revision(t, gw))
	swap()
	if r.cur != b {
		t.Fatal("an unchanged redis block replaced the backend")
	}
	watch := redislimit.NewPeers(redislimit.PeersOptions{Conn: redislimit.Conn{Addr: addr}, Prefix: prefix, ID: "watcher"})
	t.Cleanup(watch.Close)
	waitCount := func(want int) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if err := watch.Beat(context.Background()); err != nil {
				t.Fatal(err)
			}
			if watch.Count() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("peers %d, want %d", watch.Count(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCount(2)
	swap, _ = r.Prepare(revision(t, "  limits: {backend: local}\n"))
	swap()
	if r.cur != nil || !strings.HasPrefix(r.Status().Detail, "local") {
		t.Fatalf("after the swap to local: %+v", r.Status())
	}
	waitCount(1) // the redis backend was closed: its heartbeat left
	if d := chk.AllowAll([]limits.Key{key}, []limits.Limit{lim}); d.Allowed {
		t.Fatal("local again: the local bucket's state was lost")
	}
}
