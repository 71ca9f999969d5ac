package daemon

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/pubsub"
)

// statsInterval is how often the live stats stream samples.
const statsInterval = time.Second

// XDPStatsSource is implemented by the runtime that drives the XDP limiter.
// The stats stream finds it among the daemon's runtimes and asks it for its
// figures once a second; without one, samples carry no XDP section.
type XDPStatsSource interface {
	XDPStats() XDPReading
}

// XDPReading is the XDP limiter's state at one instant: cumulative counters
// (the stream turns them into rates) and the current top sources.
type XDPReading struct {
	Mode     string // native, generic, mixed or off
	Attached bool
	Fallback bool   // the userspace limiter is in force instead
	Reason   string // why XDP is off

	Passed, DroppedRate, DroppedDeny, DroppedBlock uint64

	Blocks, TrackedSources int
	TopSources             []api.XDPSource
}

// registerStats adds GET /v1/stats (one sample) and GET /v1/stats?follow=1
// (NDJSON, one sample a second) to the LocalAPI. Call it before Run.
func (d *Daemon) registerStats() {
	h := &statsHub{d: d, interval: statsInterval}
	d.HandleAPI("GET "+api.PathStats, h.serve)
}

// statsHub samples the telemetry registry once per interval while anyone
// listens, and fans the encoded sample out to every listener: the cost is
// one snapshot per second however many dashboards are open, and nothing
// when none is.
type statsHub struct {
	d        *Daemon
	interval time.Duration
	hub      pubsub.Hub[[]byte] // encoded samples (NDJSON lines)

	mu      sync.Mutex // running, last and lastAt; held across each decision to stop
	running bool
	last    []byte    // latest encoded sample
	lastAt  time.Time // when it was taken
}

// subscribe registers a listener, starting the sampler if it is idle. The
// channel receives encoded samples, the latest first when it is recent;
// it is closed when the sampler stops.
func (h *statsHub) subscribe() (<-chan []byte, func()) {
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
func (h *statsHub) loop() {
	var sampler statsSampler // touched only by this goroutine
	t := time.NewTicker(h.interval)
	defer t.Stop()
	seenReady := h.d.Ready()
	for now := time.Now(); ; now = <-t.C {
		ready := h.d.Ready()
		if ready {
			seenReady = true
		}
		line := h.encode(sampler.sample(h.d, now))
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

func (h *statsHub) encode(s api.StatsSample) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		h.d.log.Warn("encode stats sample", "err", err)
	}
	return buf.Bytes()
}

// serve answers GET /v1/stats: one sample with rates (waiting up to one
// interval for it), or with ?follow=1 a sample every interval until the
// client goes away.
func (h *statsHub) serve(w http.ResponseWriter, r *http.Request, p Peer) error {
	follow := r.URL.Query().Get("follow")
	ch, cancel := h.subscribe()
	defer cancel()
	if follow != "1" && follow != "true" {
		for {
			select {
			case <-r.Context().Done():
				return nil
			case line, ok := <-ch:
				if !ok {
					return apiError(api.CodeUnavailable, "stoad is shutting down", "")
				}
				var s struct {
					IntervalSeconds float64 `json:"intervalSeconds"`
				}
				if json.Unmarshal(line, &s) != nil || s.IntervalSeconds == 0 {
					continue // a stream's first sample has no rates yet
				}
				w.Header().Set("Content-Type", "application/json")
				_, err := w.Write(line)
				return err
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case line, ok := <-ch:
			if !ok {
				return nil
			}
			if _, err := w.Write(line); err != nil {
				return nil
			}
			if fl != nil {
				fl.Flush()
			}
		}
	}
}
