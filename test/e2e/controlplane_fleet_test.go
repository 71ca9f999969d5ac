package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/dataplane"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// The data plane here is pkg/fleet/dataplane's Syncer run by the test
// against the real stoad control plane; what it applies is recorded.
type syncedDataPlane struct {
	mu   sync.Mutex
	revs []int64
	objs map[int64][]*spec.Object
}

func (d *syncedDataPlane) apply(rev int64, objs []*spec.Object) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.revs = append(d.revs, rev)
	d.objs[rev] = objs
	return nil
}

func (d *syncedDataPlane) has(rev int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.objs[rev]
	return ok
}

// dataPlanes is `stoa get dataplanes -o json`.
func dataPlanes(t *testing.T, u *cliUser, env []string) (fleet.DataPlaneList, Result) {
	t.Helper()
	r := u.stoa(env, "get", "dataplanes", "-o", "json")
	var l struct {
		Kind     string
		Metadata struct{ Revision int64 }
		Items    []fleet.DataPlane
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &l) != nil || l.Kind != "DataplaneList" {
		t.Fatalf("get dataplanes -o json: %s", r)
	}
	return fleet.DataPlaneList{Revision: l.Metadata.Revision, Items: l.Items}, r
}

// TestControlPlaneFleet: a control plane on PostgreSQL with
// --bundle-signing-key; a cluster admin makes a join token with the real
// CLI; a data plane joins with it over the same HTTPS listener the CLI
// uses (client certificates there, bearer tokens here), receives the
// signed revisions and reports them; `stoa get dataplanes` shows it with
// its revision and lag; the token is spent; a viewer may list data
// planes but not make tokens; a standalone stoad lists none.
func TestControlPlaneFleet(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := bundle.GenerateKeyPair([]byte("fleet-pw"))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "cosign.key")
	if err := os.WriteFile(keyFile, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	verifier, err := bundle.LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}

	idp := startIssuer(t,
		devidp.User{Username: "root", Groups: []string{"platform"}},
		devidp.User{Username: "vera", Groups: []string{"acme-support"}})
	cp := idp.controlPlane(t, pgDatabase(t), "--admin-group", "platform", "--bundle-signing-key", keyFile)
	cp.Env = append(cp.Env, "COSIGN_PASSWORD=fleet-pw")
	cp.Start()
	u := newCLIUser(t)
	u.addContext("prod", cp)
	root, vera := idp.token(t, "root"), idp.token(t, "vera")

	acme := strings.Replace(tenantSpecs("acme", 2), "kind: Tenant\nmetadata: {name: acme}\n",
		"kind: Tenant\nmetadata: {name: acme}\nspec:\n  access:\n    - {role: viewer, groups: [acme-support]}\n", 1)
	expect(t, u.stoa(root, "apply", "-f", writeSpecs(t, acme)), 0, "apply revision 1")
	if l, r := dataPlanes(t, u, root); len(l.Items) != 0 {
		t.Fatalf("data planes before any joined: %s", r)
	}

	// The token: on stdout alone, for $(…); what it is for on stderr.
	tr := u.stoa(root, "fleet", "join-token", "create", "--name", "edge-1", "--ttl", "10m")
	token := strings.TrimSpace(tr.Stdout)
	if tr.Code != 0 || !strings.HasPrefix(token, "stoajoin_") || strings.Contains(token, "\n") ||
		!strings.Contains(tr.Stderr, "for data plane edge-1") {
		t.Fatalf("join-token create: %s", tr)
	}

	dp := &syncedDataPlane{objs: map[int64][]*spec.Object{}}
	syncer, err := dataplane.New(dataplane.Config{
		ControlPlane: cp.API, JoinToken: token, Name: "edge-1", Address: "10.0.0.7:8080",
		StateDir: filepath.Join(dir, "edge-1"), Verifier: verifier, Fingerprint: cp.Fingerprint,
		Apply: dp.apply, Wait: 5 * time.Second, Version: "e2e",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); syncer.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitUntil(t, time.Minute, "the data plane to apply revision 1", func() bool { return dp.has(1) })
	if n := len(dp.objs[1]); n != 3 {
		t.Fatalf("revision 1 reached the data plane with %d objects, want 3 (the tenant, two tools)", n)
	}
	var row fleet.DataPlane
	waitUntil(t, time.Minute, "get dataplanes to show edge-1 serving revision 1", func() bool {
		l, _ := dataPlanes(t, u, root)
		for _, it := range l.Items {
			if it.Name == "edge-1" && it.Revision == 1 {
				row = it
				return l.Revision == 1
			}
		}
		return false
	})
	if row.Lag != 0 || row.Health != fleet.HealthOK || row.Address != "10.0.0.7:8080" || row.Version != "e2e" ||
		!strings.HasPrefix(row.Digest, "sha256:") || row.JoinedAt.IsZero() || row.CertificateExpires.IsZero() {
		t.Fatalf("edge-1's row: %+v", row)
	}
	if st := syncer.Status(); st.State != fleet.StateConnected || st.Revision != 1 {
		t.Fatalf("the data plane's own status: %+v", st)
	}

	// A new revision reaches it; until it reports it, its lag shows.
	expect(t, u.stoa(root, "apply", "-f", writeSpecs(t, tenantSpecs("beta", 1))), 0, "apply revision 2")
	waitUntil(t, time.Minute, "the data plane to apply revision 2", func() bool { return dp.has(2) })
	waitUntil(t, time.Minute, "get dataplanes to show edge-1 at revision 2, lag 0", func() bool {
		l, _ := dataPlanes(t, u, root)
		return len(l.Items) == 1 && l.Revision == 2 && l.Items[0].Revision == 2 && l.Items[0].Lag == 0
	})
	table := u.stoa(root, "get", "dataplanes")
	if table.Code != 0 || !strings.Contains(table.Stdout, "NAME     ADDRESS         REVISION   LAG   LAST SEEN   HEALTH") ||
		!strings.Contains(table.Stdout, "edge-1   10.0.0.7:8080   2          0") || !strings.Contains(table.Stdout, "ok") {
		t.Fatalf("get dataplanes:\n%s", table)
	}

	if st := u.stoa(root, "status"); st.Code != 0 || !strings.Contains(st.Stdout, "revision 2 published to data planes, signed with sha256:") {
		t.Fatalf("status of a control plane serving data planes:\n%s", st)
	}

	// The token is spent, and says by whom.
	lr := u.stoa(root, "fleet", "join-token", "list", "-o", "json")
	var toks struct{ Items []fleet.JoinToken }
	if lr.Code != 0 || json.Unmarshal([]byte(lr.Stdout), &toks) != nil || len(toks.Items) != 1 ||
		toks.Items[0].State != fleet.TokenUsed || toks.Items[0].UsedBy != "edge-1" || strings.Contains(lr.Stdout, token) {
		t.Fatalf("join-token list after the join: %s", lr)
	}

	// Who made it is in the audit trail.
	waitUntil(t, 30*time.Second, "the token's creation in the audit trail", func() bool {
		r := u.stoa(root, "audit", "-o", "json")
		return r.Code == 0 && strings.Contains(r.Stdout, `"fleet.token.create"`) && strings.Contains(r.Stdout, idp.URL+"#root") &&
			strings.Contains(r.Stdout, "join token "+toks.Items[0].ID)
	})

	// A viewer of one tenant sees the data planes, makes no tokens.
	if l, r := dataPlanes(t, u, vera); len(l.Items) != 1 {
		t.Fatalf("a viewer's get dataplanes: %s", r)
	}
	if r := u.stoa(vera, "fleet", "join-token", "create"); r.Code != 4 || !strings.Contains(r.Stderr, "cluster admin required to manage join tokens") {
		t.Fatalf("a viewer making a join token: %s", r)
	}
	if r := u.stoa(vera, "fleet", "join-token", "list"); r.Code != 4 {
		t.Fatalf("a viewer listing join tokens: %s", r)
	}

	// Revoked: refused from its next request on; the listing says so.
	if r := u.stoa(vera, "fleet", "dataplane", "revoke", "edge-1"); r.Code != 4 {
		t.Fatalf("a viewer revoking a data plane: %s", r)
	}
	expect(t, u.stoa(root, "fleet", "dataplane", "revoke", "edge-1"), 0, "revoke edge-1")
	expect(t, u.stoa(root, "apply", "-f", writeSpecs(t, tenantSpecs("gamma", 1))), 0, "apply revision 3")
	waitUntil(t, time.Minute, "the revoked data plane to be refused", func() bool {
		return syncer.Status().State == fleet.StateUnauthorized
	})
	// (A watch already waiting when the revocation landed may still
	// bring revision 3: "from its next request on". Its heartbeat is
	// refused, so the control plane still lists revision 2.)
	if l, r := dataPlanes(t, u, root); len(l.Items) != 1 || l.Items[0].Health != fleet.HealthRevoked || l.Items[0].Lag != 1 {
		t.Fatalf("get dataplanes after the revocation: %s", r)
	}

	// A standalone stoad has no data planes and makes no tokens.
	sa := NewDaemon(t)
	sa.Start()
	if r := sa.Stoa("get", "dataplanes", "-o", "json"); r.Code != 0 || !strings.Contains(r.Stdout, `"items": []`) {
		t.Fatalf("get dataplanes on a standalone stoad: %s", r)
	}
	if r := sa.Stoa("fleet", "join-token", "create"); r.Code != 1 || !strings.Contains(r.Stderr, "--bundle-signing-key") {
		t.Fatalf("join-token create on a standalone stoad: %s", r)
	}
}
