package changefeed

import (
	"context"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
)

func recv(t *testing.T, ch <-chan store.Change) (store.Change, bool) {
	t.Helper()
	select {
	case c, ok := <-ch:
		return c, ok
	case <-time.After(30 * time.Second):
		t.Fatal("nothing received within 30s")
	}
	return store.Change{}, false
}

// TestSlowWatcherGetsTheRestMerged: a watcher that does not read loses
// nothing it needs: the oldest changes come one by one, the newest merged
// into the last (the highest ids, every domain).
func TestSlowWatcherGetsTheRestMerged(t *testing.T) {
	h := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := h.Subscribe(ctx)
	const n = backlog + 50
	for i := int64(1); i <= n; i++ {
		d := store.DomainRevisions
		if i == n-1 {
			d = store.DomainKeys
		}
		h.Publish(store.Change{Revision: i, Domains: d})
	}
	// The watcher's goroutine may have taken the first change before
	// the others queued: one by one come at least backlog-1.
	var got []int64
	for {
		c, _ := recv(t, ch)
		if c.Revision == n {
			if c.Domains != store.DomainRevisions|store.DomainKeys {
				t.Fatalf("merged change %+v, want both domains", c)
			}
			break
		}
		got = append(got, c.Revision)
		if c.Revision != int64(len(got)) {
			t.Fatalf("changes received: %v", got)
		}
	}
	if len(got) < backlog-1 || len(got) > backlog {
		t.Fatalf("%d changes one by one before the merged one, want %d or %d", len(got), backlog-1, backlog)
	}
	cancel()
	if _, ok := recv(t, ch); ok {
		t.Fatal("channel open after its context ended")
	}
}

func TestCloseEndsWatches(t *testing.T) {
	h := New()
	ch := h.Subscribe(context.Background())
	h.Publish(store.Change{Revision: 1, Domains: store.DomainRevisions})
	if c, _ := recv(t, ch); c.Revision != 1 {
		t.Fatalf("%+v", c)
	}
	h.Close()
	if _, ok := recv(t, ch); ok {
		t.Fatal("channel open after Close")
	}
	if _, ok := recv(t, h.Subscribe(context.Background())); ok {
		t.Fatal("a watch of a closed hub is open")
	}
	h.Publish(store.Change{Revision: 2}) // no watcher, no panic
}
