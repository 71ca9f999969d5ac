package events

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

func openLog(t *testing.T) (*Log, store.Store) {
	t.Helper()
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return NewLog(st, slog.New(slog.DiscardHandler)), st
}

func TestEmitStoresThenPublishes(t *testing.T) {
	l, _ := openLog(t)
	live, cancel := l.Subscribe()
	defer cancel()
	l.Emit("key.created", "acme", "key stoa_x created", map[string]any{"key": "stoa_x"})
	select {
	case e := <-live:
		if e.Seq == 0 || e.Type != "key.created" || e.Tenant != "acme" || e.Time.IsZero() {
			t.Fatalf("published %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
	}
	stored, err := l.Read(context.Background(), 0, 10)
	if err != nil || len(stored) != 1 || stored[0].Message != "key stoa_x created" {
		t.Fatalf("stored %+v %v", stored, err)
	}
	if seq, err := l.LastSeq(); err != nil || seq != stored[0].Seq {
		t.Fatalf("LastSeq = %d %v, want %d", seq, err, stored[0].Seq)
	}
	l.Close()
	if _, ok := <-live; ok {
		t.Fatal("Close left a follower open")
	}
	after, cancel2 := l.Subscribe()
	defer cancel2()
	if _, ok := <-after; ok {
		t.Fatal("a subscription after Close is open")
	}
}

// TestFeedConsumesEverythingAfterItsCursor: a feed sees every stored event
// once, in order, in batches, from where its cursor says — also events it
// was not following live when they were emitted.
func TestFeedConsumesEverythingAfterItsCursor(t *testing.T) {
	l, _ := openLog(t)
	for range 3 {
		l.Emit("before", "", "", nil) // before the feed existed
	}
	var (
		mu     sync.Mutex
		cursor int64 = 1
		got    []int64
	)
	f := NewFeed(l, "test",
		func() (int64, error) { mu.Lock(); defer mu.Unlock(); return cursor, nil },
		func(evs []api.Event) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range evs {
				got = append(got, e.Seq)
			}
			cursor = evs[len(evs)-1].Seq
			return nil
		})
	for range feedBatch + 10 {
		l.Emit("during", "", "", nil)
	}
	f.CatchUp()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2+feedBatch+10 || got[0] != 2 {
		t.Fatalf("consumed %d events starting at %v", len(got), got[:min(len(got), 1)])
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("out of order or repeated at %d: %d after %d", i, got[i], got[i-1])
		}
	}
}

func TestFollowStepsOnEventsAndAtTheEnd(t *testing.T) {
	l, _ := openLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	steps := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Follow(ctx, nil, func() { steps <- struct{}{} })
	}()
	<-steps // the first step, at once
	l.Emit("x", "", "", nil)
	select {
	case <-steps:
	case <-time.After(5 * time.Second):
		t.Fatal("no step after an event")
	}
	cancel()
	<-done
	if len(steps) == 0 {
		t.Fatal("no final step when ctx ended")
	}
}
