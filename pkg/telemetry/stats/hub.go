// Package stats turns the telemetry registry into the live statistics
// stream (GET /v1/stats, `stoa top`, the dashboard): one sample a second
// with rates per tool, tenant and MCP tool, upstream health and the XDP
// limiter's figures, taken only while someone listens.
package stats

import (
	"log/slog"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/pubsub"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// Interval is how often the live stream samples.
const Interval = time.Second

// XDPReading is the XDP limiter's state at one instant: cumulative
// counters (the stream turns them into rates) and the current top
// sources.
type XDPReading struct {
	Mode     string // native, generic, mixed or off
	Attached bool
	Fallback bool   // the userspace limiter is in force instead
	Reason   string // why XDP is off

	Passed, DroppedRate, DroppedDeny, DroppedBlock uint64

	Blocks, TrackedSources int
	TopSources             []api.XDPSource
}

// Source is what a sample reads besides the registry: the live revision
// and the daemon's status.
type Source interface {
	Live() *state.Revision
	Status() api.Status
	// Ready is false while the daemon starts or stops; a stream ends when
	// it stops.
	Ready() bool
}

// Options configure a Hub.
type Options struct {
	Source   Source
	Registry *telemetry.Registry
	// Health is the upstreams' availability by URL (the proxy's pools);
	// optional.
	Health func() map[string]bool
	// XDP reads the XDP limiter; nil: samples carry no XDP section.
	XDP func() XDPReading
	// Interval between samples; Interval when zero.
	Interval time.Duration
	Log      *slog.Logger
}

// Hub samples the telemetry registry once per interval while anyone
// listens, and fans the encoded sample out to every listener: the cost is
// one snapshot per second however many dashboards are open, and nothing
// when none is.
type Hub struct {
	o        Options
	interval time.Duration
	hub      pubsub.Hub[[]byte] // encoded samples (NDJSON lines)

	mu      sync.Mutex // running, last and lastAt; held across each decision to stop
	running bool
	last    []byte    // latest encoded sample
	lastAt  time.Time // when it was taken
}

// NewHub returns an idle hub.
func NewHub(o Options) *Hub {
	if o.Interval <= 0 {
		o.Interval = Interval
	}
	return &Hub{o: o, interval: o.Interval}
}

// Subscribe registers a listener, starting the sampler if it is idle. The
// channel receives encoded samples (JSON lines of api.StatsSample), the
// latest first when it is recent; it is closed when the sampler stops.
func (h *Hub) Subscribe() (<-chan []byte, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var first [][]byte
	if h.last != nil && time.Since(h.lastAt) < 2*h.interval {
		first = append(first, h.last)
	}
	ch, cancel := h.hub.Subscribe(2, first...)
	if !h.running {
		h.running = true
		go h.loop()
	}
	return ch, cancel
}

// loop samples until nobody listens or the daemon shuts down.
func (h *Hub) loop() {
	sm := newStreamer(h.o) // touched only by this goroutine
	t := time.NewTicker(h.interval)
	defer t.Stop()
	seenReady := h.o.Source.Ready()
	for now := time.Now(); ; now = <-t.C {
		ready := h.o.Source.Ready()
		if ready {
			seenReady = true
		}
		line, err := sm.sample(now)
		if err != nil {
			h.o.Log.Warn("encode stats sample", "err", err)
		}
		h.mu.Lock()
		if h.hub.Len() == 0 || (seenReady && !ready) {
			// Idle, or shutting down: end every stream so the LocalAPI's
			// graceful shutdown is not held up by followers.
			h.hub.EndAll()
			h.running, h.last = false, nil
			h.mu.Unlock()
			return
		}
		h.last, h.lastAt = line, now
		h.hub.Publish(line)
		h.mu.Unlock()
	}
}
