package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/devidp"
)

// tenantSpecs is a tenant with n tools.
func tenantSpecs(tenant string, n int) string {
	var b strings.Builder
	b.WriteString(doc("Tenant", "", tenant, ""))
	for i := range n {
		b.WriteString(doc("Tool", tenant, fmt.Sprintf("tool-%04d", i), fmt.Sprintf("protocol: rest\nupstream: http://127.0.0.1:9/%s/%d", tenant, i)))
	}
	return b.String()
}

// remoteObjects is `stoa get all -o json` through a context, keyed by
// ref.
func remoteObjects(t *testing.T, u *cliUser, env []string, context string) map[string]bool {
	t.Helper()
	r := u.stoa(env, "--context", context, "get", "all", "-o", "json")
	expect(t, r, 0, "get all -o json on "+context)
	var list struct{ Items []json.RawMessage }
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
		t.Fatalf("get all -o json: %v", err)
	}
	out := map[string]bool{}
	for _, it := range list.Items {
		var o struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
		}
		json.Unmarshal(it, &o)
		out[o.Kind+"/"+o.Metadata.Namespace+"/"+o.Metadata.Name] = true
	}
	return out
}

// twoReplicas is two control planes on one database, trusting one
// issuer whose "platform" group are cluster admins, and a user with a
// context on each.
type twoReplicas struct {
	idp  *extIssuer
	a, b *cpDaemon
	u    *cliUser
	tok  []string
}

func startTwoReplicas(t *testing.T) *twoReplicas {
	t.Helper()
	idp := startIssuer(t, devidp.User{Username: "alice", Groups: []string{"platform"}})
	db := pgDatabase(t)
	r := &twoReplicas{idp: idp, u: newCLIUser(t)}
	r.a = idp.controlPlane(t, db, "--admin-group", "platform")
	r.b = idp.controlPlane(t, db, "--admin-group", "platform")
	r.a.Start()
	r.b.Start()
	r.u.addContext("b", r.b)
	r.u.addContext("a", r.a)
	r.tok = idp.token(t, "alice")
	return r
}

// TestControlPlaneReplicas: two control planes on one PostgreSQL
// database both serve reads and writes; a watcher on B (events
// --follow, get --watch) sees what is applied on A; two CLIs applying
// at once on both get one revision each or a conflict — never a lost or
// half change — and the loser's rerun lands.
func TestControlPlaneReplicas(t *testing.T) {
	r := startTwoReplicas(t)
	u, tok := r.u, r.tok
	events := u.follow(tok, "--context", "b", "events", "--follow")
	watch := u.follow(tok, "--context", "b", "get", "tools", "-A", "--watch")
	expect(t, u.stoa(tok, "--context", "a", "apply", "-f", writeSpecs(t, tenantSpecs("acme", 3))), 0, "apply on A")
	waitUntil(t, time.Minute, "B's event stream to show the revision applied on A", func() bool {
		return events.has("revision 1: 4 to create")
	})
	waitUntil(t, time.Minute, "B's get --watch to show A's tools", func() bool { return watch.has("tool-0002") })
	if objs := remoteObjects(t, u, tok, "b"); !objs["Tool/acme/tool-0002"] {
		t.Fatalf("B does not serve A's revision: %v", objs)
	}
	// And the other way round.
	expect(t, u.stoa(tok, "--context", "b", "apply", "-f", writeSpecs(t, tenantSpecs("beta", 1))), 0, "apply on B")
	waitUntil(t, time.Minute, "A to serve B's revision", func() bool {
		return remoteObjects(t, u, tok, "a")["Tool/beta/tool-0000"]
	})

	// Applies racing on the two replicas. Each plans against its live
	// revision; a commit on a base another replica replaced is refused
	// whole (409, exit 1) and the rerun plans against the new one.
	want := remoteObjects(t, u, tok, "a")
	conflicts, revisions := 0, 2
	for round := 0; round < 8 && conflicts == 0; round++ {
		var wg sync.WaitGroup
		results := make([]Result, 2)
		files := make([]string, 2)
		for i, ctx := range []string{"a", "b"} {
			tenant := fmt.Sprintf("r%d-%s", round, ctx)
			files[i] = writeSpecs(t, tenantSpecs(tenant, 400))
			for n := range 400 {
				want[fmt.Sprintf("Tool/%s/tool-%04d", tenant, n)] = true
			}
			want["Tenant//"+tenant] = true
		}
		for i, ctx := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = u.stoa(tok, "--context", ctx, "apply", "-f", files[i])
			}()
		}
		wg.Wait()
		for i, res := range results {
			switch {
			case res.Code == 0:
				revisions++
			case res.Code == 1 && strings.Contains(res.Stderr, "another change was committed meanwhile; nothing was changed") &&
				strings.Contains(res.Stderr, "run the command again"):
				conflicts++
				// The rerun plans against the new revision, once this
				// replica has caught up with it.
				ctx := []string{"a", "b"}[i]
				waitUntil(t, time.Minute, "the rerun on "+ctx+" to land", func() bool {
					rr := u.stoa(tok, "--context", ctx, "apply", "-f", files[i])
					if rr.Code != 0 && !strings.Contains(rr.Stderr, "another change was committed meanwhile") {
						t.Fatalf("rerun on %s: %s", ctx, rr)
					}
					return rr.Code == 0
				})
				revisions++
			default:
				t.Fatalf("apply on %s: %s", []string{"a", "b"}[i], res)
			}
		}
	}
	t.Logf("%d revisions, %d applies refused with a conflict and rerun", revisions, conflicts)
	if conflicts == 0 {
		t.Fatal("in 8 rounds of simultaneous applies of 400 tools on two replicas, none conflicted")
	}
	// Nothing lost, nothing twice, on either replica.
	for _, ctx := range []string{"a", "b"} {
		waitUntil(t, time.Minute, ctx+" to serve every revision", func() bool {
			got := remoteObjects(t, u, tok, ctx)
			return len(got) == len(want)
		})
		got := remoteObjects(t, u, tok, ctx)
		for ref := range want {
			if !got[ref] {
				t.Fatalf("%s lacks %s", ctx, ref)
			}
		}
	}
	h := u.stoa(tok, "--context", "b", "history", "-o", "json")
	var hist struct{ Items []struct{ ID int64 } }
	if h.Code != 0 || json.Unmarshal([]byte(h.Stdout), &hist) != nil || len(hist.Items) != revisions {
		t.Fatalf("history: %d revisions, want %d: %s", len(hist.Items), revisions, h)
	}
}

// TestControlPlaneReplicaKilled: a replica killed with SIGKILL in the
// middle of an apply leaves the database with that revision whole or not
// at all, and the other replica serves exactly what was committed. The
// kill comes later in each round (restarting the replica in between)
// until one lands after a commit.
func TestControlPlaneReplicaKilled(t *testing.T) {
	r := startTwoReplicas(t)
	u, tok := r.u, r.tok
	expect(t, u.stoa(tok, "--context", "a", "apply", "-f", writeSpecs(t, tenantSpecs("acme", 2))), 0, "first apply")
	// A dry run takes what the apply takes but its commit (reading,
	// sending, planning, preparing): kills around that long after the
	// start land in the apply's last steps. Wherever one lands, the
	// outcome below must hold.
	probe := writeSpecs(t, tenantSpecs("probe", 3000))
	start := time.Now()
	expect(t, u.stoa(tok, "--context", "a", "apply", "--dry-run", "-f", probe), 0, "dry run")
	dry := time.Since(start)
	rev := int64(1)
	committed := false
	for round, factor := range []float64{0.9, 1.1, 1.4, 1.8, 2.5, 4} {
		if round > 0 {
			r.a.Start()
		}
		tenant := fmt.Sprintf("big%d", round)
		big := writeSpecs(t, tenantSpecs(tenant, 3000))
		before := remoteObjects(t, u, tok, "b")
		done := make(chan Result, 1)
		go func() { done <- u.stoa(tok, "--context", "a", "apply", "-f", big) }()
		time.Sleep(time.Duration(float64(dry) * factor))
		r.a.Kill()
		res := <-done
		// What the database holds is the truth: B's history reads it
		// there, while B's live state may still be catching up. The dead
		// client's session ends at once (its socket closed with it): a
		// COMMIT the server had received completes, anything else rolls
		// back. Read it once that is surely over.
		time.Sleep(time.Second)
		h := u.stoa(tok, "--context", "b", "history", "-o", "json")
		var hist struct{ Items []struct{ ID int64 } }
		if h.Code != 0 || json.Unmarshal([]byte(h.Stdout), &hist) != nil {
			t.Fatalf("history on B: %s", h)
		}
		var stored int64
		for _, it := range hist.Items {
			stored = max(stored, it.ID)
		}
		if stored != rev && stored != rev+1 {
			t.Fatalf("after A was killed the database holds revision %d; want %d or %d", stored, rev, rev+1)
		}
		// B serves exactly that revision once it has caught up, whole:
		// never part of it.
		var s struct{ Revision int64 }
		waitUntil(t, time.Minute, fmt.Sprintf("B to serve revision %d", stored), func() bool {
			st := u.stoa(tok, "--context", "b", "status", "-o", "json")
			json.Unmarshal([]byte(st.Stdout), &s)
			objs := remoteObjects(t, u, tok, "b")
			n := 0
			for ref := range objs {
				if strings.HasPrefix(ref, "Tool/"+tenant+"/") {
					n++
				}
			}
			switch {
			case s.Revision > stored || (n > 0 && n < 3000) || (s.Revision <= rev && n > 0):
				t.Fatalf("B serves revision %d with %d of %s's 3000 tools (the database holds %d)", s.Revision, n, tenant, stored)
			case s.Revision == rev && stored == rev:
				return n == 0 && len(objs) == len(before)
			case s.Revision == rev+1:
				return n == 3000 && len(objs) == len(before)+3001
			}
			return false
		})
		if s.Revision == rev {
			if res.Code == 0 {
				t.Fatalf("the apply succeeded, yet B serves revision %d: %s", rev, res)
			}
			t.Logf("round %d (kill at %.1f× the dry run): killed before the commit; the apply exited %d", round, factor, res.Code)
			continue
		}
		rev++
		committed = true
		t.Logf("round %d (kill at %.1f× the dry run): killed after the commit; the apply exited %d", round, factor, res.Code)
		break
	}
	if !committed {
		t.Log("no kill landed after a commit (the machine may be slow): only the uncommitted case was seen")
	}
	// B keeps taking writes.
	expect(t, u.stoa(tok, "--context", "b", "apply", "-f", writeSpecs(t, tenantSpecs("after", 1))), 0, "apply on B after A died")
}
