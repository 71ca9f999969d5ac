package federation

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

func TestManagerReconcileKeepsUnchangedSessions(t *testing.T) {
	f := newFixture(t, false)
	t.Setenv("FED_TEST_MGR_TOKEN", "one")
	m := NewManager(testOptions(t))
	defer m.Stop(context.Background())
	var mu sync.Mutex
	var changed []string
	m.OnChange(func(tenant, tool string) {
		mu.Lock()
		changed = append(changed, tenant+"/"+tool)
		mu.Unlock()
	})
	a := httpConfig(f.ts.URL)
	a.Auth = &Auth{SecretRef: spec.SecretRef{Env: "FED_TEST_MGR_TOKEN"}}
	b := stdioConfig(t)
	ctx := context.Background()
	if err := m.Reconcile(ctx, []Config{a, b}); err != nil {
		t.Fatal(err)
	}
	ua, _ := m.Get("acme", "up")
	ub, _ := m.Get("acme", "local")
	if ua == nil || ub == nil || len(m.Upstreams()) != 2 {
		t.Fatal("upstreams missing")
	}
	pid := ub.Status().PID
	sessions := len(sessionIDs(f))

	// Same configuration: same upstreams, same process, no new session.
	if err := m.Reconcile(ctx, []Config{a, b}); err != nil {
		t.Fatal(err)
	}
	if u, _ := m.Get("acme", "up"); u != ua {
		t.Error("unchanged http upstream replaced")
	}
	if u, _ := m.Get("acme", "local"); u != ub || u.Status().PID != pid {
		t.Error("unchanged stdio upstream replaced")
	}

	// A rename only: same session, new names, OnChange for that Tool.
	a2 := a
	a2.Tools.Rename = map[string]string{"echo": "shout"}
	if err := m.Reconcile(ctx, []Config{a2, b}); err != nil {
		t.Fatal(err)
	}
	if u, _ := m.Get("acme", "up"); u != ua {
		t.Fatal("rename replaced the upstream")
	}
	if _, ok := ua.Tool("echo"); !ok || !strings.Contains(strings.Join(toolNames(ua), ","), "acme__up__shout") {
		t.Errorf("tools after rename = %v", toolNames(ua))
	}
	eventually(t, "OnChange for acme/up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range changed {
			if c == "acme/up" {
				return true
			}
		}
		return false
	})
	if n := len(sessionIDs(f)); n != sessions {
		t.Errorf("a rename opened a new session (%d → %d)", sessions, n)
	}

	// A rotated secret renews the session; the old upstream is stopped.
	t.Setenv("FED_TEST_MGR_TOKEN", "two")
	if err := m.Reconcile(ctx, []Config{a2, b}); err != nil {
		t.Fatal(err)
	}
	ua2, _ := m.Get("acme", "up")
	if ua2 == ua {
		t.Fatal("rotated secret kept the old session")
	}
	if ua.Status().State != StateStopped {
		t.Errorf("old upstream state = %s", ua.Status().State)
	}
	rotated := false
	for _, h := range f.seenHeaders() {
		rotated = rotated || h.Get("Authorization") == "Bearer two"
	}
	if !rotated {
		t.Error("the new session did not use the rotated secret")
	}

	// An invalid revision changes nothing.
	bad := a2
	bad.URL = "ftp://x"
	err := m.Reconcile(ctx, []Config{bad, b})
	if err == nil || !strings.Contains(err.Error(), "spec.mcp.url") {
		t.Fatalf("invalid revision: %v", err)
	}
	if u, _ := m.Get("acme", "up"); u != ua2 || u.Status().State != StateReady {
		t.Error("a failed reload touched the live upstream")
	}

	// Removing a Tool stops its process.
	if err := m.Reconcile(ctx, []Config{a2}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Get("acme", "local"); ok {
		t.Error("removed upstream still listed")
	}
	if ub.Status().State != StateStopped {
		t.Errorf("removed stdio upstream state = %s", ub.Status().State)
	}
}

func TestManagerPrepareDiscard(t *testing.T) {
	f := newFixture(t, false)
	m := NewManager(testOptions(t))
	defer m.Stop(context.Background())
	p, err := m.Prepare(context.Background(), []Config{httpConfig(f.ts.URL)})
	if err != nil {
		t.Fatal(err)
	}
	started := p.started[0]
	if started.Status().State != StateReady {
		t.Fatalf("prepared upstream = %+v", started.Status())
	}
	p.Discard()
	if started.Status().State != StateStopped {
		t.Error("discarded upstream still running")
	}
	if len(m.Upstreams()) != 0 {
		t.Error("discard changed the live set")
	}
	dup := httpConfig(f.ts.URL)
	if _, err := m.Prepare(context.Background(), []Config{dup, dup}); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("duplicate: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.Stop(ctx)
}
