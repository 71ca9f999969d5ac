package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAPIMgmtKeyLifecycle: rotate with grace (old and new both work until
// the grace ends), --expires, revoke, last-used times flushed to the store,
// and the secret appearing nowhere but in the create/rotate output.
func TestAPIMgmtKeyLifecycle(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	up := okUpstream(t)
	apply(t, d, doc("Tenant", "", "acme", "")+
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: apiKey}")+
		doc("Plan", "acme", "basic", "")+
		doc("Consumer", "acme", "shop", "")+
		doc("Subscription", "acme", "shop-api", "consumer: shop\nplan: basic\ntool: api"))
	status := func(key string) int { return call(t, d, "GET", "/acme/api/x", "", "X-Api-Key", key).Status }

	// Plain create prints the key on stdout only; stderr names the prefix.
	r := d.Stoa("keys", "create", "--consumer", "shop", "-n", "acme", "--name", "laptop")
	expect(t, r, 0, "keys create")
	k0 := strings.TrimSpace(r.Stdout)
	if !strings.HasPrefix(k0, "stoa_sk_") || strings.Contains(r.Stderr, k0) || !strings.Contains(r.Stderr, k0[:24]) {
		t.Fatalf("keys create output:\n%s", r)
	}

	k1 := createKey(t, d, "acme", "shop", "--name", "ci")
	if status(k1) != 200 {
		t.Fatal("new key refused")
	}
	var rot struct {
		Key      string
		New, Old struct{ ID, Prefix, State string }
	}
	jsonOut(t, d, &rot, "keys", "rotate", k1[8:24], "--grace", "6s")
	k2 := rot.Key
	if rot.Old.State != "grace" || rot.New.State != "active" || !strings.HasPrefix(k2, "stoa_sk_") {
		t.Fatalf("rotate: %+v", rot)
	}
	if status(k1) != 200 || status(k2) != 200 {
		t.Fatal("during the grace period both keys must work")
	}
	waitUntil(t, 15*time.Second, "the old key to stop working after the grace period", func() bool { return status(k1) == 401 })
	if status(k2) != 200 {
		t.Fatal("the new key stopped working")
	}

	k3 := createKey(t, d, "acme", "shop", "--expires", "3s")
	if status(k3) != 200 {
		t.Fatal("expiring key refused before its expiry")
	}
	waitUntil(t, 10*time.Second, "the key to expire", func() bool { return status(k3) == 401 })

	var list struct {
		Items []struct {
			ID, Prefix, State, Name string
			CreatedAt, LastUsedAt   time.Time
			ExpiresAt, NotAfter     time.Time
		}
	}
	jsonOut(t, d, &list, "keys", "list", "-n", "acme")
	states := map[string]string{}
	for _, k := range list.Items {
		states[k.Prefix] = k.State
		if k.Prefix == k1[:24] && (k.LastUsedAt.IsZero() || k.NotAfter.IsZero()) {
			t.Errorf("rotated key: last used %v, grace end %v", k.LastUsedAt, k.NotAfter)
		}
		if k.Prefix == k3[:24] && k.ExpiresAt.IsZero() {
			t.Errorf("expiring key lists no expiry")
		}
	}
	if states[k1[:24]] != "rotated" || states[k2[:24]] != "active" || states[k3[:24]] != "expired" {
		t.Fatalf("key states: %v", states)
	}
	expect(t, d.Stoa("keys", "revoke", k2[8:24]), 0, "revoke")
	if status(k2) != 401 {
		t.Fatal("revoked key still works")
	}
	r = d.Stoa("keys", "list", "-n", "acme")
	expect(t, r, 0, "keys list")
	for _, col := range []string{"PREFIX", "CREATED", "LAST USED", "EXPIRES", "revoked", "rotated", "expired"} {
		if !strings.Contains(r.Stdout, col) {
			t.Errorf("keys list lacks %q:\n%s", col, r.Stdout)
		}
	}

	// Last-used times reach the store (flushed every 5s) and survive a
	// restart.
	time.Sleep(6 * time.Second)
	d.Stop()
	d.Start()
	jsonOut(t, d, &list, "keys", "list", "-n", "acme")
	for _, k := range list.Items {
		if (k.Prefix == k1[:24] || k.Prefix == k2[:24]) && k.LastUsedAt.IsZero() {
			t.Errorf("key %s lost its last-used time across the restart", k.Prefix)
		}
	}

	// The secrets appear nowhere else: listings, events, audit, the log,
	// the database file.
	var audit strings.Builder
	for _, args := range [][]string{
		{"keys", "list", "-A", "-o", "json"}, {"events", "--last", "1000", "-o", "json"}, {"audit", "-o", "ndjson"},
		{"webhooks", "deliveries", "-A", "-o", "json"},
	} {
		r := d.Stoa(args...)
		expect(t, r, 0, strings.Join(args, " "))
		audit.WriteString(r.Stdout)
	}
	for _, want := range []string{`"action":"key.create"`, `"action":"key.rotate"`, `"action":"key.revoke"`} {
		if !strings.Contains(audit.String(), want) {
			t.Errorf("audit lacks %s", want)
		}
	}
	d.Stop()
	db, err := os.ReadFile(filepath.Join(d.StateDir, "stoa.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{k0, k1, k2, k3} {
		secret := k[25:] // after "stoa_sk_<id>_"
		for where, text := range map[string]string{"CLI output": audit.String(), "stoad log": d.Log(), "database": string(db)} {
			if strings.Contains(text, secret) {
				t.Errorf("the secret of %s appears in the %s", k[:24], where)
			}
		}
	}
}
