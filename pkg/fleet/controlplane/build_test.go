package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

func objects(t testing.TB, yaml string) []*spec.Object {
	t.Helper()
	objs, diags := spec.Parse("test.yaml", []byte(yaml))
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	for _, o := range objs {
		spec.Default(o)
	}
	return objs
}

func tenant(name string) string {
	return fmt.Sprintf("---\napiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: %s\nspec:\n  displayName: %s\n", name, name)
}

func tool(ns, name, desc string) string {
	return fmt.Sprintf(`---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: %s
  namespace: %s
spec:
  protocol: rest
  description: %q
  upstream: http://127.0.0.1:18081/%s
  operations:
    - name: get_item
      method: GET
      path: /items/{id}
`, name, ns, desc, name)
}

// randomConfig is a few tenants and tools, drawn from r: successive calls
// share most objects, as successive revisions do.
func randomConfig(t testing.TB, r *rand.Rand) []*spec.Object {
	var sb strings.Builder
	for _, tn := range []string{"acme", "globex", "initech"} {
		if r.IntN(5) == 0 {
			continue
		}
		sb.WriteString(tenant(tn))
		for i := range 6 {
			if r.IntN(4) == 0 {
				continue
			}
			// Some descriptions need escaping (<, &, unicode, quotes).
			desc := []string{"plain", "a <b> & c", "ünïcode ☃", `quote " and \ slash`}[r.IntN(4)]
			sb.WriteString(tool(tn, fmt.Sprintf("api-%d", i), desc))
		}
	}
	if sb.Len() == 0 {
		return nil
	}
	return objects(t, sb.String())
}

// NextBundle gives, byte for byte, what bundle.Build gives, over random
// sequences of creates, updates and deletes (empty configurations
// included).
func TestNextBundleMatchesBuild(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	prevObjs := randomConfig(t, r)
	prev, err := bundle.Build(1, prevObjs)
	if err != nil {
		t.Fatal(err)
	}
	for rev := int64(2); rev < 200; rev++ {
		objs := randomConfig(t, r)
		changes, _ := plan.Compute(prevObjs, objs, plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }})
		var up []*spec.Object
		var del []spec.Ref
		for _, c := range changes {
			if c.Op == plan.Delete {
				del = append(del, c.Ref)
			} else {
				up = append(up, c.After)
			}
		}
		got, err := NextBundle(prev, rev, up, del)
		if err != nil {
			t.Fatalf("revision %d: %v", rev, err)
		}
		want, err := bundle.Build(rev, objs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) || got.Digest() != want.Digest() {
			t.Fatalf("revision %d: incremental bundle differs from Build", rev)
		}
		prev, prevObjs = got, objs
	}
}

func TestNextBundleRefusals(t *testing.T) {
	objs := objects(t, tenant("acme")+tool("acme", "a", "x"))
	prev, _ := bundle.Build(3, objs)
	for name, f := range map[string]func() error{
		"not newer":      func() error { _, err := NextBundle(prev, 3, nil, nil); return err },
		"no previous":    func() error { _, err := NextBundle(nil, 4, nil, nil); return err },
		"upserted twice": func() error { _, err := NextBundle(prev, 4, []*spec.Object{objs[1], objs[1]}, nil); return err },
		"upsert and delete": func() error {
			_, err := NextBundle(prev, 4, []*spec.Object{objs[1]}, []spec.Ref{objs[1].Ref()})
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Deleting what is not there is no change.
	b, err := NextBundle(prev, 4, nil, []spec.Ref{{Kind: spec.KindTool, Namespace: "acme", Name: "gone"}})
	if err != nil || b.Len() != 2 {
		t.Fatalf("delete of a missing object: %v", err)
	}
}

var (
	keyOnce sync.Once
	keySV   signature.SignerVerifier
	keyErr  error
)

func signer(t testing.TB) signature.SignerVerifier {
	keyOnce.Do(func() {
		priv, _, err := bundle.GenerateKeyPair([]byte("pw"))
		if err != nil {
			keyErr = err
			return
		}
		keySV, keyErr = bundle.LoadSigner(priv, []byte("pw"))
	})
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return keySV
}

// commit applies desired as one revision, the way the daemon does.
func commit(t testing.TB, st store.Store, desired []*spec.Object) int64 {
	t.Helper()
	ctx := context.Background()
	live, cur, err := store.Load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	changes, _ := plan.Compute(live, desired, plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }})
	var id int64
	err = st.Update(ctx, func(tx store.Tx) error {
		var err error
		id, err = tx.Revisions().Commit(ctx, cur, store.Revision{Time: time.Now(), Actor: "test", Action: "apply"}, changes)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The Follower publishes every revision of a store as a signed bundle,
// incrementally after the first, equal to a build from the stored
// objects; revisions that arrive together publish the newest.
func TestFollowerPublishesStoreRevisions(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sv := signer(t)
	src := NewMemorySource(4)
	type pub struct {
		rev         int64
		incremental bool
	}
	pubs := make(chan pub, 100)
	f := &Follower{Store: st, Signer: sv, Source: src, OnPublish: func(s *Signed, _ time.Duration, inc bool) {
		pubs <- pub{s.Bundle.Revision(), inc}
	}}
	r := rand.New(rand.NewPCG(3, 4))
	first := randomConfig(t, r)
	commit(t, st, first)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	wait := func(rev int64) pub {
		t.Helper()
		for {
			select {
			case p := <-pubs:
				if p.rev == rev {
					return p
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("revision %d not published", rev)
			}
		}
	}
	if p := wait(1); p.incremental {
		t.Fatal("the first revision cannot be incremental")
	}
	var last int64
	for range 20 {
		last = commit(t, st, randomConfig(t, r))
	}
	wait(last)
	cur, _ := src.Current(ctx)
	objs, rev, err := store.Load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := bundle.Build(rev, objs)
	if cur.Bundle.Revision() != rev || cur.Bundle.Digest() != want.Digest() {
		t.Fatalf("published revision %d %s, want %d %s", cur.Bundle.Revision(), cur.Bundle.Digest(), rev, want.Digest())
	}
	if err := bundle.Verify(cur.Bundle.Bytes(), cur.Signature, sv); err != nil {
		t.Fatalf("signature: %v", err)
	}
	// A Follower starting on a store with history publishes the current
	// revision whole.
	src2 := NewMemorySource(1)
	f2 := &Follower{Store: st, Signer: sv, Source: src2}
	if err := f2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if c2, _ := src2.Current(ctx); c2 == nil || c2.Bundle.Digest() != want.Digest() {
		t.Fatal("a second follower disagrees")
	}
	cancel()
	<-done
}

func TestMemorySource(t *testing.T) {
	ctx := context.Background()
	m := NewMemorySource(2)
	if c, err := m.Current(ctx); c != nil || err != nil {
		t.Fatalf("empty source: %v %v", c, err)
	}
	mk := func(rev int64) *Signed {
		b, err := bundle.Build(rev, objects(t, tenant(fmt.Sprintf("t%d", rev))))
		if err != nil {
			t.Fatal(err)
		}
		return &Signed{Bundle: b, Signature: []byte("sig")}
	}
	waited := make(chan error, 1)
	go func() {
		c, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		waited <- m.Wait(c, 0)
	}()
	s1 := mk(1)
	if err := m.Publish(s1); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("wait: %v", err)
	}
	if err := m.Publish(s1); err != nil {
		t.Fatalf("republishing the current revision: %v", err)
	}
	if err := m.Publish(mk(1)); err != nil {
		t.Fatal(err) // same content, same digest: a no-op
	}
	for _, r := range []int64{2, 3} {
		if err := m.Publish(mk(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Publish(mk(2)); err == nil {
		t.Fatal("an older revision was published")
	}
	if _, err := m.At(ctx, 1); err == nil {
		t.Fatal("revision 1 is still held with keep=2")
	}
	if b, err := m.At(ctx, 2); err != nil || b.Revision() != 2 {
		t.Fatalf("At(2): %v", err)
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := m.Wait(c, 3); err == nil {
		t.Fatal("Wait returned without a newer revision")
	}
}
