package e2e

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// shopYAML is a tenant whose consumer shop may call tool api with a key.
func shopYAML(up string) string {
	return doc("Tenant", "", "acme", "") +
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: apiKey}") +
		doc("Plan", "acme", "basic", "") +
		doc("Consumer", "acme", "shop", "") +
		doc("Subscription", "acme", "shop-api", "consumer: shop\nplan: basic\ntool: api")
}

// TestAPIMgmtKeysDieWithConsumer: `stoa delete -f` of a consumer revokes
// its keys (keys list says so and why, the audit trail has who), applying
// the same spec again does not bring them back, and a revoked key cannot
// be rotated.
func TestAPIMgmtKeysDieWithConsumer(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	up := okUpstream(t)
	apply(t, d, shopYAML(up))
	key := createKey(t, d, "acme", "shop")
	status := func() int { return call(t, d, "GET", "/acme/api/x", "", "X-Api-Key", key).Status }
	if status() != 200 {
		t.Fatal("key refused")
	}
	f := filepath.Join(t.TempDir(), "shop.yaml")
	os.WriteFile(f, []byte(doc("Subscription", "acme", "shop-api", "consumer: shop\nplan: basic\ntool: api")+doc("Consumer", "acme", "shop", "")), 0o644)
	expect(t, d.Stoa("delete", "-f", f), 0, "delete -f")
	if st := status(); st != 401 {
		t.Fatalf("key of the deleted consumer: %d", st)
	}
	r := d.Stoa("keys", "list", "-n", "acme")
	expect(t, r, 0, "keys list")
	if !strings.Contains(r.Stdout, "revoked") || !strings.Contains(r.Stdout, "consumer acme/shop deleted in revision") ||
		!strings.Contains(r.Stdout, "NOTE") {
		t.Fatalf("keys list does not say why the key is revoked:\n%s", r.Stdout)
	}
	apply(t, d, shopYAML(up))
	if st := status(); st != 401 {
		t.Fatalf("re-applying the consumer revived its old key: %d", st)
	}
	var list struct {
		Items []struct{ ID, State, ConsumerUID, RevokedBy, RevokedReason string }
	}
	jsonOut(t, d, &list, "keys", "list", "-n", "acme")
	if len(list.Items) != 1 || list.Items[0].State != "revoked" || list.Items[0].ConsumerUID == "" || !strings.Contains(list.Items[0].RevokedBy, "uid") {
		t.Fatalf("keys list -o json: %+v", list.Items)
	}
	r = d.Stoa("keys", "rotate", list.Items[0].ID)
	if r.Code == 0 || !strings.Contains(r.Stderr, "revoked") {
		t.Fatalf("rotating a revoked key:\n%s", r)
	}
	r = d.Stoa("audit", "--action", "key.revoke", "-o", "ndjson")
	expect(t, r, 0, "audit")
	if !strings.Contains(r.Stdout, `"reason":"consumer acme/shop deleted in revision`) || !strings.Contains(r.Stdout, `"actor":"`) {
		t.Fatalf("audit trail lacks the revocation:\n%s", r.Stdout)
	}
	// The new consumer starts with no keys; a new one works.
	if k2 := createKey(t, d, "acme", "shop"); call(t, d, "GET", "/acme/api/x", "", "X-Api-Key", k2).Status != 200 {
		t.Fatal("new key of the new consumer refused")
	}
}

// TestAPIMgmtSocketPaths: stoad never removes what is not a stale socket
// at --socket or --mcp-socket.
func TestAPIMgmtSocketPaths(t *testing.T) {
	dir, err := os.MkdirTemp("", "stoa-sk")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	precious := filepath.Join(dir, "precious.txt")
	os.WriteFile(precious, []byte("keep me"), 0o600)
	stoad := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "stoad"), append([]string{"--state-dir", t.TempDir(),
			"--listen", freePort(t), "--ops-listen", ""}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, string(out)
	}
	for _, tc := range []struct {
		name, flag, what string
		make             func(p string) error
	}{
		{"regular file at --socket", "--socket", "a regular file", func(p string) error { return os.WriteFile(p, []byte("data"), 0o600) }},
		{"symlink at --socket", "--socket", "a symbolic link", func(p string) error { return os.Symlink(precious, p) }},
		{"symlink at --mcp-socket", "--mcp-socket", "a symbolic link", func(p string) error { return os.Symlink(precious, p) }},
		{"directory at --mcp-socket", "--mcp-socket", "a directory", func(p string) error { return os.Mkdir(p, 0o700) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "x.sock")
			os.RemoveAll(p)
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			args := []string{"--socket", filepath.Join(dir, "s.sock"), "--mcp-socket", filepath.Join(dir, "m.sock")}
			if tc.flag == "--socket" {
				args[1] = p
			} else {
				args[3] = p
			}
			code, out := stoad(args...)
			if code == 0 || !strings.Contains(out, tc.flag+" "+p) || !strings.Contains(out, tc.what) {
				t.Fatalf("stoad with %s at %s: exit %d\n%s", tc.what, tc.flag, code, out)
			}
			if _, err := os.Lstat(p); err != nil {
				t.Fatalf("%s was removed", p)
			}
			if b, _ := os.ReadFile(precious); string(b) != "keep me" {
				t.Fatal("the symlink's target was touched")
			}
		})
	}

	// A live stoad's socket is not taken over; a stale one is.
	d := NewDaemon(t)
	d.Start()
	code, out := stoad("--socket", d.Socket, "--mcp-socket", filepath.Join(dir, "m2.sock"))
	if code == 0 || !strings.Contains(out, "another stoad is serving on "+d.Socket) {
		t.Fatalf("second stoad on a live socket: exit %d\n%s", code, out)
	}
	expect(t, d.Stoa("status"), 0, "the first stoad still serves")
	d.Kill() // leaves both sockets behind, stale
	if fi, err := os.Lstat(d.Socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("kill -9 should leave the socket file: %v", err)
	}
	d.Start()
	expect(t, d.Stoa("status"), 0, "restart over stale sockets")
}

// TestAPIMgmtGitOpsGuard: with --specs, stoa apply/delete/rollback are
// refused with the reason and a hint (exit 1) unless --force; stoa diff
// works; stoa status tells when and why the directory last failed.
func TestAPIMgmtGitOpsGuard(t *testing.T) {
	up := okUpstream(t)
	specs := t.TempDir()
	file := filepath.Join(specs, "acme.yaml")
	os.WriteFile(file, []byte(shopYAML(up)), 0o644)
	d := NewDaemon(t, "--specs", specs, "--specs-poll", "200ms")
	d.Start()
	other := filepath.Join(t.TempDir(), "more.yaml")
	os.WriteFile(other, []byte(shopYAML(up)+doc("Consumer", "acme", "bot", "")), 0o644)
	want := "stoad is running in GitOps mode from " + specs + "; change the files there, or pass --force"
	for _, args := range [][]string{{"apply", "-f", other}, {"delete", "consumer", "bot", "-n", "acme"}, {"rollback", "0", "--yes"}} {
		r := d.Stoa(args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, want) || r.Stdout != "" {
			t.Fatalf("stoa %v in GitOps mode:\n%s", args, r)
		}
	}
	if r := d.Stoa("diff", "-f", other); r.Code != 2 {
		t.Fatalf("diff in GitOps mode:\n%s", r)
	}
	expect(t, d.Stoa("apply", "-f", other, "--force"), 0, "apply --force")
	r := d.Stoa("history")
	if !strings.Contains(r.Stdout, "forced while in GitOps mode") {
		t.Fatalf("history does not mark the forced apply:\n%s", r.Stdout)
	}

	os.WriteFile(file, []byte(shopYAML(up)+"---\napiVersion: stoa.io/v1alpha1\nkind: Plan\nmetadata: {name: x, namespace: acme}\nspec: {bogus: 1}\n"), 0o644)
	waitUntil(t, 20*time.Second, "status to show the failed sync", func() bool {
		return strings.Contains(d.Stoa("status").Stdout, "LAST APPLY FAILED")
	})
	r = d.Stoa("status")
	if !strings.Contains(r.Stdout, "acme.yaml:") || !strings.Contains(r.Stdout, "last applied") {
		t.Fatalf("status:\n%s", r.Stdout)
	}
	os.WriteFile(file, []byte(shopYAML(up)), 0o644)
	waitUntil(t, 20*time.Second, "the failure to clear from status", func() bool {
		return !strings.Contains(d.Stoa("status").Stdout, "LAST APPLY FAILED")
	})
}

// TestAPIMgmtQuotaMonthIncludesToday: with a daily-only plan the month's
// usage includes the day's calls, before and after a crash.
func TestAPIMgmtQuotaMonthIncludesToday(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	up := okUpstream(t)
	apply(t, d, doc("Tenant", "", "acme", "")+
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: apiKey}")+
		doc("Plan", "acme", "daily", "quota: {daily: 100000}")+
		doc("Consumer", "acme", "shop", "")+
		doc("Subscription", "acme", "shop-api", "consumer: shop\nplan: daily\ntool: api"))
	key := createKey(t, d, "acme", "shop")
	for i := 0; i < 7; i++ {
		if r := call(t, d, "GET", "/acme/api/x", "", "X-Api-Key", key); r.Status != 200 {
			t.Fatalf("call %d: %d", i, r.Status)
		}
	}
	check := func(when string) {
		t.Helper()
		var q struct {
			Items []struct{ DailyUsed, MonthlyUsed int64 }
		}
		jsonOut(t, d, &q, "quotas", "-n", "acme")
		if len(q.Items) != 1 || q.Items[0].DailyUsed != 7 || q.Items[0].MonthlyUsed != 7 {
			t.Fatalf("%s: %+v, want 7 today and 7 this month", when, q.Items)
		}
		r := d.Stoa("quotas", "-n", "acme")
		if !strings.Contains(r.Stdout, "7/100000") || !strings.Contains(r.Stdout, "7 (no cap)") {
			t.Fatalf("%s: stoa quotas:\n%s", when, r.Stdout)
		}
	}
	check("live")
	time.Sleep(6 * time.Second) // one flush interval
	d.Kill()
	d.Start()
	check("after kill -9")
}

// TestAPIMgmtSnapshotGatewayError: a 503 the gateway made itself is one
// snapshot for the whole outage, its curl calls the gateway, replay asks
// the upstream for the mapped path, and a failing replay exits 1.
func TestAPIMgmtSnapshotGatewayError(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	dead := freePort(t)
	var mu sync.Mutex
	var got []string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.RequestURI())
		mu.Unlock()
		w.Write([]byte(`{"id":"INV-1"}`))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	tool := func(up string) string {
		return doc("Tenant", "", "acme", "") + doc("Tool", "acme", "billing-api",
			"upstream: http://"+up+"/billing\nauth: {type: none}\ncircuitBreaker: {consecutiveFailures: 1, ejection: 1h}")
	}
	apply(t, d, tool(dead))
	call(t, d, "GET", "/acme/billing-api/invoices/INV-1", "") // ejects the dead upstream
	for i := 0; i < 30; i++ {
		if r := call(t, d, "GET", "/acme/billing-api/invoices/INV-1", ""); r.Status != 503 {
			t.Fatalf("while ejected: %d %s", r.Status, r.Body)
		}
	}
	var list struct {
		Items []struct {
			ID, Reason string
			Count      int
		}
	}
	var id string
	waitUntil(t, 15*time.Second, "one snapshot counting the 30 503s", func() bool {
		jsonOut(t, d, &list, "snapshots", "list", "-n", "acme")
		for _, s := range list.Items {
			if s.Reason == "no_healthy_upstream" && s.Count == 30 {
				id = s.ID
			}
		}
		return id != ""
	})
	r := d.Stoa("snapshots", "list", "-n", "acme")
	if !strings.Contains(r.Stdout, "COUNT") || !strings.Contains(r.Stdout, " 30 ") {
		t.Fatalf("list:\n%s", r.Stdout)
	}
	r = d.Stoa("snapshots", "get", id)
	expect(t, r, 0, "snapshots get")
	if !strings.Contains(r.Stdout, "curl -sS -X 'GET' 'http://"+d.Listen+"/acme/billing-api/invoices/INV-1'") ||
		!strings.Contains(r.Stdout, "repeats:") || !strings.Contains(r.Stdout, "30 times") {
		t.Fatalf("snapshots get:\n%s", r.Stdout)
	}
	// Replay against the dead upstream fails: exit 1.
	r = d.Stoa("snapshots", "replay", id)
	if r.Code != 1 || !strings.Contains(r.Stderr, "replay of "+id+" failed") {
		t.Fatalf("failing replay:\n%s", r)
	}
	if r := d.Stoa("snapshots", "replay", id, "-o", "json"); r.Code != 1 {
		t.Fatalf("failing replay -o json:\n%s", r)
	}
	// Against a live upstream: the proxy's mapping, exit 0.
	apply(t, d, tool(ln.Addr().String()))
	r = d.Stoa("snapshots", "replay", id)
	expect(t, r, 0, "replay")
	mu.Lock()
	last := got[len(got)-1]
	mu.Unlock()
	if last != "/billing/invoices/INV-1" || !strings.Contains(r.Stdout, "now:    200") {
		t.Fatalf("replay asked the upstream for %q:\n%s", last, r)
	}
}
