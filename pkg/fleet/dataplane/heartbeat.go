package dataplane

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/stoa-gateway/stoa/pkg/fleet"
)

func (s *Syncer) kickHeartbeat() {
	select {
	case s.hbNow <- struct{}{}:
	default:
	}
}

// heartbeats reports to the control plane every interval (jittered by
// ±10%), and at once after each change of what is served.
func (s *Syncer) heartbeats(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.hbNow:
		}
		s.heartbeat(ctx)
		s.mu.Lock()
		iv := s.hbInterval
		s.mu.Unlock()
		t.Reset(iv - iv/10 + rand.N(iv/5+1))
	}
}

func (s *Syncer) heartbeat(ctx context.Context) {
	s.mu.Lock()
	if s.id == nil || s.id.cert == nil {
		s.mu.Unlock()
		return
	}
	hb := fleet.Heartbeat{Address: s.cfg.Address, Revision: s.status.Revision, Digest: s.status.Digest, Health: fleet.HealthOK, Version: s.cfg.Version}
	if s.degraded != "" {
		hb.Health = fleet.HealthDegraded
		hb.LastError = s.degraded
		if s.status.LastError != "" {
			hb.LastError += ": " + s.status.LastError
		}
	}
	s.mu.Unlock()
	var resp fleet.HeartbeatResponse
	if err := s.post(ctx, fleet.PathHeartbeat, hb, &resp); err != nil {
		s.cfg.Log.Debug("fleet: heartbeat", "err", err)
		return
	}
	if iv, err := time.ParseDuration(resp.Interval); err == nil && iv >= time.Second {
		s.mu.Lock()
		s.hbInterval = iv
		s.mu.Unlock()
	}
}
