package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeleteNamesReferrers: deleting what others still refer to is
// refused with each referrer and field (not an apply hint), --cascade
// --dry-run shows the diff in dependency order, and --cascade deletes the
// referrers too once confirmed.
func TestDeleteNamesReferrers(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	expect(t, d.Stoa("apply", "-f", quickstart), 0, "apply")

	r := d.Stoa("delete", "tool", "inventory-api", "-n", "acme")
	expect(t, r, 1, "delete a referenced tool")
	want := "stoa: delete Tool/acme/inventory-api: 1 object still refers to it\n  ToolSet/acme/acme-tools  spec.tools[1]\n"
	if !strings.HasPrefix(r.Stderr, want) || !strings.Contains(r.Stderr, "--cascade") || strings.Contains(r.Stderr, "define a") {
		t.Fatalf("refusal should name the referrer and field and offer --cascade:\n%s", r)
	}
	r = d.Stoa("delete", "tenant", "globex")
	expect(t, r, 1, "delete a tenant with objects")
	for _, w := range []string{"delete Tenant/globex: 4 objects still refer to it", "Tool/globex/weather-api", "Subscription/globex/forecast-bot-weather  metadata.namespace"} {
		if !strings.Contains(r.Stderr, w) {
			t.Fatalf("tenant refusal lacks %q:\n%s", w, r)
		}
	}

	r = d.Stoa("delete", "tool", "inventory-api", "-n", "acme", "--cascade", "--dry-run")
	expect(t, r, 0, "cascade dry run")
	order := []string{"- delete Subscription/acme/web-shop-tools", "- delete ToolSet/acme/acme-tools", "- delete Tool/acme/inventory-api"}
	at := -1
	for _, w := range order {
		i := strings.Index(r.Stdout, w)
		if i <= at {
			t.Fatalf("the diff should list %q after the previous ones:\n%s", w, r)
		}
		at = i
	}
	if !strings.Contains(r.Stdout, "  -   upstream: http://127.0.0.1:9001/inventory") {
		t.Fatalf("the dry run should show the objects as a diff:\n%s", r)
	}

	// Without a terminal, a cascade beyond what was named needs --yes.
	r = d.Stoa("delete", "tool", "inventory-api", "-n", "acme", "--cascade")
	expect(t, r, 1, "cascade without --yes")
	if !strings.Contains(r.Stderr, "--cascade --yes") || revisionOf(t, d) != 1 {
		t.Fatalf("cascade without --yes should change nothing and say how:\n%s", r)
	}
	r = d.Stoa("delete", "tool", "inventory-api", "-n", "acme", "--cascade", "--yes")
	expect(t, r, 0, "cascade --yes")
	for _, w := range []string{"Subscription/acme/web-shop-tools deleted", "ToolSet/acme/acme-tools deleted", "Tool/acme/inventory-api deleted"} {
		if !strings.Contains(r.Stdout, w) {
			t.Fatalf("cascade should report %q:\n%s", w, r)
		}
	}
	if got := revisionOf(t, d); got != 2 {
		t.Fatalf("the cascade is one revision: now %d, want 2", got)
	}
	r = d.Stoa("get", "tools", "-n", "acme")
	expect(t, r, 0, "get tools")
	if strings.Contains(r.Stdout, "inventory-api") || !strings.Contains(r.Stdout, "billing-api") {
		t.Fatalf("after the cascade:\n%s", r)
	}
}

// TestRollbackIsExplicit: a rollback shows its diff and needs a yes (a
// terminal's answer or --yes); the empty revision 0 is never reached by
// default.
func TestRollbackIsExplicit(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	expect(t, d.Stoa("apply", "-f", quickstart), 0, "apply")

	r := d.Stoa("rollback")
	expect(t, r, 1, "rollback from the first revision")
	if !strings.Contains(r.Stderr, "would delete all 12 objects") || !strings.Contains(r.Stderr, "stoa rollback 0") {
		t.Fatalf("rolling back the first revision should refuse and say how to ask for revision 0:\n%s", r)
	}
	r = d.Stoa("rollback", "0", "--dry-run")
	expect(t, r, 0, "rollback 0 --dry-run")
	if !strings.Contains(r.Stdout, "- delete Tenant/acme\n  - apiVersion: stoa.io/v1alpha1") ||
		!strings.Contains(r.Stderr, "WARNING: revision 0 is empty: this deletes all 12 live objects") {
		t.Fatalf("rollback 0 --dry-run should print the diff and the warning:\n%s", r)
	}
	r = d.Stoa("rollback", "0")
	expect(t, r, 1, "rollback 0 without a terminal")
	if !strings.Contains(r.Stderr, "stoa rollback 0 --yes") {
		t.Fatalf("should say how to confirm:\n%s", r)
	}
	if got := revisionOf(t, d); got != 1 {
		t.Fatalf("refused rollbacks changed the revision to %d", got)
	}

	// A second revision, then a rollback confirmed on a real terminal.
	expect(t, d.Stoa("delete", "subscription", "forecast-bot-weather", "-n", "globex"), 0, "delete")
	s := startTTY(t, 100, 30, []string{"STOA_SOCKET=" + d.Socket, "NO_COLOR=1"}, filepath.Join(binDir, "stoa"), "rollback")
	s.WaitText(30*time.Second, "+ create Subscription/globex/forecast-bot-weather",
		"Roll back from revision 2 to revision 1 (1 to create, 0 to update, 0 to delete)? [y/N]")
	s.Type("y\r")
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("rollback on a terminal: %v\n%s", err, s.Screen())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("rollback did not finish; screen:\n%s", s.Screen())
	}
	if got := revisionOf(t, d); got != 3 {
		t.Fatalf("after the confirmed rollback revision %d, want 3", got)
	}
	expect(t, d.Stoa("diff", "-f", quickstart), 0, "diff after rollback")

	// An answer other than yes changes nothing.
	s = startTTY(t, 100, 30, []string{"STOA_SOCKET=" + d.Socket, "NO_COLOR=1"}, filepath.Join(binDir, "stoa"), "rollback", "0")
	s.WaitText(30*time.Second, "WARNING: revision 0 is empty", "Delete all 12 objects")
	s.Type("\r")
	select {
	case err := <-s.done:
		if err == nil {
			t.Fatalf("a declined rollback should exit non-zero; screen:\n%s", s.Screen())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("rollback did not finish; screen:\n%s", s.Screen())
	}
	if got := revisionOf(t, d); got != 3 {
		t.Fatalf("a declined rollback changed the revision to %d", got)
	}
}
