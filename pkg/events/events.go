// Package events is stoad's event log: every event (applies, key changes,
// ejections, blocks, …) is stored first and then pushed to live followers
// — the LocalAPI's event stream, `stoa events -f`, and runtimes that react
// to changes. A Feed consumes the stored log from a persisted cursor, so
// nothing is lost to a slow follower or a restart.
package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/pubsub"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// followerBuffer is how many events a live follower may fall behind
// before it loses some (it sees the gap in the sequence numbers).
const followerBuffer = 256

// Log stores events and fans them out to followers.
type Log struct {
	store store.Store
	log   *slog.Logger
	hub   pubsub.Hub[api.Event]
}

// NewLog returns the event log kept in st.
func NewLog(st store.Store, log *slog.Logger) *Log {
	return &Log{store: st, log: log}
}

// Emit records an event stamped now and pushes it to followers. A store
// failure is logged and the event is still pushed (unnumbered).
func (l *Log) Emit(typ, tenant, msg string, data map[string]any) {
	e := api.Event{Time: time.Now().UTC(), Type: typ, Tenant: tenant, Message: msg, Data: data}
	stored, err := store.AppendEvent(context.Background(), l.store, e)
	if err != nil {
		l.log.Warn("store event", "type", e.Type, "err", err)
		stored = e
	}
	l.Publish(stored)
}

// Publish pushes an event that is already stored (in a transaction of the
// caller's, with what it records) to followers.
func (l *Log) Publish(stored api.Event) { l.hub.Publish(stored) }

// Subscribe returns a channel of new events and the function that ends
// the subscription. The channel is closed when the log closes.
func (l *Log) Subscribe() (<-chan api.Event, func()) { return l.hub.Subscribe(followerBuffer) }

// Close ends every subscription: followers (stoa events -f, the
// dashboard) would otherwise hold the LocalAPI's graceful shutdown open.
func (l *Log) Close() { l.hub.Close() }

// Read returns stored events after since, or the last ones (see
// store.ReadEvents).
func (l *Log) Read(ctx context.Context, since int64, last int) ([]api.Event, error) {
	return store.ReadEvents(ctx, l.store, since, last)
}

// LastSeq is the sequence number of the newest stored event (0 when
// none).
func (l *Log) LastSeq() (int64, error) {
	evs, err := store.ReadEvents(context.Background(), l.store, 0, 1)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	return evs[0].Seq, nil
}

// Follow calls step whenever an event is emitted, kick fires or two
// seconds pass, and once more when ctx ends.
func (l *Log) Follow(ctx context.Context, kick <-chan struct{}, step func()) {
	live, cancel := l.Subscribe()
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

// Int reads an integer from event data: int64 when the event is fresh,
// float64 once it went through JSON (where fmt.Sprint would give 1e+06).
func Int(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}
