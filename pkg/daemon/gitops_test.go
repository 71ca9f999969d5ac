package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// waitFor polls cond (every 20 ms, up to 20 s: generous for a busy
// machine; the GitOps poll here is 50 ms).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGitOpsRefusesLocalChanges: with --specs, apply, delete and rollback
// over the LocalAPI are refused with 409 and a hint, unless forced; dry
// runs pass; a forced change says so in its revision.
func TestGitOpsRefusesLocalChanges(t *testing.T) {
	up := okServer(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acme.yaml"), []byte(shopSpecs(up)), 0o600); err != nil {
		t.Fatal(err)
	}
	ld := startDaemon(t, func(c *Config) { c.SpecsDir = dir })
	ctx := context.Background()
	rev := ld.d.Live().Revision
	if rev == 0 || ld.d.Live().Get(refConsumer) == nil {
		t.Fatalf("the directory was not applied at start (revision %d)", rev)
	}

	changed := shopSpecs(up) + doc("Consumer", "acme", "bot", "")
	checkRefused := func(what string, err error) {
		t.Helper()
		var ae *api.Error
		if apiCode(err) != api.CodeConflict {
			t.Fatalf("%s in GitOps mode: %v (want a 409 conflict)", what, err)
		}
		ae = err.(*api.Error)
		want := "stoad is running in GitOps mode from " + dir + "; change the files there, or pass --force"
		if ae.Message != want || ae.Hint == "" {
			t.Fatalf("%s: message %q hint %q", what, ae.Message, ae.Hint)
		}
		if got := ld.d.Live().Revision; got != rev {
			t.Fatalf("%s was refused but the revision moved %d → %d", what, rev, got)
		}
	}
	_, err := ld.applyErr(changed, false)
	checkRefused("apply", err)
	_, err = ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{refSub, refConsumer}})
	checkRefused("delete", err)
	_, err = ld.c.Rollback(ctx, &api.RollbackRequest{Revision: 0})
	checkRefused("rollback", err)

	// Dry runs (stoa diff) compare against the live state freely.
	objs := loadYAML(t, changed)
	if resp, err := ld.c.Apply(ctx, &api.ApplyRequest{Objects: objs, DryRun: true}); err != nil || resp.Summary.Create != 1 {
		t.Fatalf("dry run in GitOps mode: %+v, %v", resp, err)
	}
	if _, err := ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{refSub, refConsumer}, DryRun: true}); err != nil {
		t.Fatalf("dry-run delete: %v", err)
	}

	// --force goes through and says so in the revision.
	resp, err := ld.applyErr(changed, true)
	if err != nil || !resp.Created {
		t.Fatalf("forced apply: %+v, %v", resp, err)
	}
	rv, err := ld.c.Revision(ctx, resp.Revision)
	if err != nil || !strings.Contains(rv.Message, "forced while in GitOps mode from "+dir) {
		t.Fatalf("forced revision message %q (%v)", rv.Message, err)
	}
	if _, err := ld.c.Rollback(ctx, &api.RollbackRequest{Force: true}); err != nil {
		t.Fatalf("forced rollback: %v", err)
	}

	// Without --specs nothing is refused.
	plain := startDaemon(t, nil)
	if _, err := plain.applyErr(shopSpecs(up), false); err != nil {
		t.Fatalf("apply without GitOps: %v", err)
	}
}

// TestGitOpsStatusAndKeys: status shows the last sync and, when the
// directory breaks, when and why the apply failed; a consumer removed from
// the directory takes its keys with it, revoked by "gitops".
func TestGitOpsStatusAndKeys(t *testing.T) {
	up := okServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "acme.yaml")
	if err := os.WriteFile(file, []byte(shopSpecs(up)), 0o600); err != nil {
		t.Fatal(err)
	}
	ld := startDaemon(t, func(c *Config) { c.SpecsDir = dir })
	ctx := context.Background()
	status := func() *api.GitOpsStatus {
		s, err := ld.c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.GitOps == nil {
			t.Fatal("status has no gitops section in GitOps mode")
		}
		return s.GitOps
	}
	g := status()
	if g.Dir != dir || g.LastAppliedAt.IsZero() || g.LastRevision != ld.d.Live().Revision || g.LastError != "" {
		t.Fatalf("status after the first sync: %+v", g)
	}
	key, info := ld.createKey("acme", "shop")
	if ld.keyStatus(key) != 200 {
		t.Fatal("key refused")
	}

	// A broken directory: the live revision stays, status says why.
	rev := ld.d.Live().Revision
	broken := strings.Replace(shopSpecs(up), "plan: basic", "plan: basic\n  bogus: 1", 1)
	if err := os.WriteFile(file, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed sync in status", func() bool { return status().LastError != "" })
	g = status()
	if !g.LastErrorAt.After(g.LastAppliedAt) || !strings.Contains(g.LastError, "acme.yaml:") || !strings.Contains(g.LastError, "bogus") {
		t.Fatalf("status after a broken change: %+v", g)
	}
	if ld.d.Live().Revision != rev || ld.keyStatus(key) != 200 {
		t.Fatal("a broken directory changed what is live")
	}

	// The consumer leaves the directory: its keys are revoked by gitops.
	without := doc("Tenant", "", "acme", "") + doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: apiKey}") + doc("Plan", "acme", "basic", "")
	if err := os.WriteFile(file, []byte(without), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the consumer to be pruned", func() bool { return ld.d.Live().Get(refConsumer) == nil })
	g = status()
	if g.LastAppliedAt.Before(g.LastErrorAt) || g.LastRevision != ld.d.Live().Revision {
		t.Fatalf("status after the fix: %+v", g)
	}
	k := ld.keys()[info.ID]
	if k.State != "revoked" || k.RevokedBy != "gitops" || !strings.Contains(k.RevokedReason, "consumer acme/shop deleted") {
		t.Fatalf("key after gitops removed its consumer: %+v", k)
	}
	if err := os.WriteFile(file, []byte(shopSpecs(up)), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the consumer to come back", func() bool { return ld.d.Live().Get(refConsumer) != nil })
	if ld.keyStatus(key) != 401 {
		t.Fatal("the old key works again once the consumer is back in the directory")
	}
}
