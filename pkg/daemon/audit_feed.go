package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// eventFeed calls fn with the events stored after a cursor, whenever new
// ones arrive. The stored event log is the source (so nothing is lost to
// a slow follower or a restart); the hub's live stream only rings the
// bell, and a poll catches what it drops.
type eventFeed struct {
	d    *Daemon
	name string
	// next returns the cursor, fn consumes events after it and must
	// persist the new cursor itself (atomically with its own writes).
	cursor func() (int64, error)
	fn     func(events []api.Event) error

	mu sync.Mutex // one catch-up at a time (the loop and API handlers)
}

func (f *eventFeed) run(ctx context.Context, kick <-chan struct{}) {
	runFeed(ctx, f.d, kick, f.catchUp)
}

// runFeed calls step whenever an event is emitted, kick fires or two
// seconds pass, and once more when ctx ends.
func runFeed(ctx context.Context, d *Daemon, kick <-chan struct{}, step func()) {
	live, cancel := d.events.subscribe()
	defer cancel()
	poll := time.NewTicker(2 * time.Second)
	defer poll.Stop()
	for {
		step()
		select {
		case <-ctx.Done():
			step()
			return
		case _, ok := <-live:
			if !ok {
				live = nil
			}
		case <-kick:
		case <-poll.C:
		}
	}
}

// catchUp feeds everything after the cursor, in batches.
func (f *eventFeed) catchUp() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		after, err := f.cursor()
		if err != nil {
			f.d.log.Warn("event feed: read cursor", "feed", f.name, "err", err)
			return
		}
		var evs []api.Event
		ctx := context.Background()
		err = f.d.store.View(ctx, func(tx store.Tx) error {
			var err error
			evs, err = tx.Events().Since(ctx, after, 500)
			return err
		})
		if err != nil {
			f.d.log.Warn("event feed: read events", "feed", f.name, "err", err)
			return
		}
		if len(evs) == 0 {
			return
		}
		if err := f.fn(evs); err != nil {
			f.d.log.Warn("event feed: consume", "feed", f.name, "err", err)
			return
		}
		if len(evs) < 500 {
			return
		}
	}
}

// lastEventSeq is the sequence number of the newest stored event (0 when
// none).
func (d *Daemon) lastEventSeq() (int64, error) {
	evs, err := store.ReadEvents(context.Background(), d.store, 0, 1)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	return evs[0].Seq, nil
}
