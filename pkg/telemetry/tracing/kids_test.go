package tracing

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// TestChildrenQueuedWithParent: a span that ends while its parent is open
// is queued with the parent when the parent ends (a request's spans reach
// the queue together); one whose parent has ended, or whose parent's
// recording now belongs to another span, is queued at once; every span is
// exported once, with its parent.
func TestChildrenQueuedWithParent(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))

	root := tr.Start(nil, "root", KindServer)
	child := root.StartChild("child", KindClient)
	grand := child.StartChild("grandchild", KindInternal)
	auth := root.StartChild("auth", KindInternal)
	grand.End()
	child.End()
	auth.End()
	flush(t, tr)
	if n := len(srv.Spans()); n != 0 || tr.Status().Exported != 0 {
		t.Fatalf("%d spans exported (%d counted) before their parent ended", n, tr.Status().Exported)
	}
	late := root.StartChild("late", KindInternal)
	root.End()
	flush(t, tr)
	spans := srv.WaitSpans(t, 4)
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4:\n%s", len(spans), otlptest.Dump(spans))
	}
	r := otlptest.One(t, spans, "root")
	c := otlptest.One(t, spans, "child")
	if g := otlptest.One(t, spans, "grandchild"); g.ParentSpanID != c.SpanID || g.TraceID != r.TraceID {
		t.Errorf("grandchild parent %s, want %s", g.ParentSpanID, c.SpanID)
	}
	if c.ParentSpanID != r.SpanID || otlptest.One(t, spans, "auth").ParentSpanID != r.SpanID {
		t.Errorf("children not under the root:\n%s", otlptest.Dump(spans))
	}

	// The parent has ended: the late child is queued on its own.
	late.End()
	flush(t, tr)
	if spans := srv.WaitSpans(t, 5); otlptest.One(t, spans, "late").ParentSpanID != r.SpanID {
		t.Errorf("late child's parent:\n%s", otlptest.Dump(spans))
	}

	// A stale parent whose recording was reused: the child does not end up
	// in the new span's encoding (which would export it only when that
	// span ends, or never), but in the queue at once.
	old := tr.Start(nil, "old", KindServer)
	orphan := old.StartChild("orphan", KindInternal)
	old.End()
	var other []Span
	for range 8 { // one of them most likely takes old's recording from the pool
		other = append(other, tr.Start(nil, "other", KindServer))
	}
	orphan.End()
	flush(t, tr)
	spans = srv.WaitSpans(t, 7)
	if len(otlptest.Find(spans, "orphan")) != 1 || len(otlptest.Find(spans, "other")) != 0 {
		t.Fatalf("orphan not exported at once, or another span exported early:\n%s", otlptest.Dump(spans))
	}
	for i := range other {
		other[i].End()
	}
	flush(t, tr)
	if spans := srv.WaitSpans(t, 15); len(spans) != 15 || tr.Status().Exported != 15 {
		t.Fatalf("%d spans, %d counted, want 15:\n%s", len(spans), tr.Status().Exported, otlptest.Dump(spans))
	}
}

// TestChildrenPastParentLimit: a parent holds at most maxKidsBytes of its
// ended children; the rest are queued at once, and every span is exported
// once.
func TestChildrenPastParentLimit(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))
	root := tr.Start(nil, "root", KindServer)
	long := strings.Repeat("v", 1000)
	const n = 40 // about 40 KB of children
	for range n {
		c := root.StartChild("child", KindInternal)
		c.SetString("stoa.test", long)
		c.End()
	}
	flush(t, tr)
	early := len(srv.Spans())
	if early == 0 || early == n {
		t.Fatalf("%d of %d children exported before the parent ended, want some but not all", early, n)
	}
	root.End()
	flush(t, tr)
	spans := srv.WaitSpans(t, n+1)
	if len(spans) != n+1 || tr.Status().Exported != n+1 {
		t.Fatalf("%d spans, %d counted, want %d", len(spans), tr.Status().Exported, n+1)
	}
}

// TestChildrenDroppedWithParent: a full queue drops a parent with the
// children it holds, and counts each; every span is exported or counted
// as dropped.
func TestChildrenDroppedWithParent(t *testing.T) {
	srv, unblock := hangingCollector(t)
	tr := newTracer(t, Config{Enabled: true, Endpoint: srv.URL, SampleRatio: 1, QueueSize: 8, BatchTimeout: time.Hour})
	const requests = 50
	for range requests {
		sp := tr.Start(nil, "x", KindServer)
		for range 3 {
			c := sp.StartChild("c", KindInternal)
			c.End()
		}
		sp.End()
	}
	if tr.Status().Dropped == 0 {
		t.Fatal("a full queue dropped nothing")
	}
	unblock()
	flush(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if s := tr.Status(); s.Exported+s.Dropped != 4*requests || s.Dropped%4 != 0 {
		t.Errorf("exported %d + dropped %d != %d, or a request's spans split", s.Exported, s.Dropped, 4*requests)
	}
}

// TestChildrenEndConcurrently: children ending in other goroutines while
// their parent ends (under -race): each span exported exactly once.
func TestChildrenEndConcurrently(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))
	const rounds, kids = 100, 4
	for range rounds {
		root := tr.Start(nil, "root", KindServer)
		var wg sync.WaitGroup
		for range kids {
			c := root.StartChild("child", KindInternal)
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := c.StartChild("grandchild", KindInternal)
				g.End()
				c.End()
			}()
		}
		root.End()
		wg.Wait()
	}
	flush(t, tr)
	const total = rounds * (1 + 2*kids)
	spans := srv.WaitSpans(t, total)
	seen := map[string]bool{}
	for _, s := range spans {
		if seen[s.SpanID] {
			t.Fatalf("span %s exported twice", s.SpanID)
		}
		seen[s.SpanID] = true
	}
	if len(spans) != total || tr.Status().Exported != total {
		t.Fatalf("%d spans, %d counted, want %d", len(spans), tr.Status().Exported, total)
	}
}
