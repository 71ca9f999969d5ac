package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// serveHeartbeat records what a data plane serves.
func (s *Server) serveHeartbeat(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	var hb fleet.Heartbeat
	if err := decodeBody(w, r, &hb); err != nil {
		return err
	}
	if hb.Health != fleet.HealthOK && hb.Health != fleet.HealthDegraded {
		return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("heartbeat: health %q is not %s or %s", hb.Health, fleet.HealthOK, fleet.HealthDegraded)}
	}
	if hb.Revision < 0 || hb.Revision > bundle.MaxRevision {
		return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("heartbeat: revision %d is out of range", hb.Revision)}
	}
	if hb.Digest != "" {
		if _, err := bundle.ParseDigest(hb.Digest); err != nil {
			return &api.Error{Code: api.CodeInvalid, Message: "heartbeat: " + err.Error()}
		}
	}
	if err := checkAddress(hb.Address); err != nil {
		return err
	}
	rec := Record{Name: p.name, Address: hb.Address, RemoteAddr: remoteHost(r), Revision: hb.Revision, Digest: hb.Digest,
		Health: hb.Health, LastError: truncate(hb.LastError, 1024), Version: truncate(hb.Version, 64),
		LastSeen: s.now(), Interval: s.cfg.HeartbeatInterval, CertNotAfter: p.leaf.NotAfter}
	if err := s.reg.Put(r.Context(), rec); err != nil {
		return unavailable(err)
	}
	var rev int64
	if cur, err := s.cfg.Source.Current(r.Context()); err == nil && cur != nil {
		rev = cur.Bundle.Revision()
	}
	return writeJSON(w, http.StatusOK, fleet.HeartbeatResponse{Interval: s.cfg.HeartbeatInterval.String(), Revision: rev})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// DataPlanes lists the data planes for `stoa get dataplanes`: the last
// heartbeat of each, its lag behind the current revision, and its health
// (stale after three missed heartbeats; revoked).
func (s *Server) DataPlanes(ctx context.Context) (fleet.DataPlaneList, error) {
	out := fleet.DataPlaneList{Items: []fleet.DataPlane{}}
	if cur, err := s.cfg.Source.Current(ctx); err != nil {
		return out, err
	} else if cur != nil {
		out.Revision = cur.Bundle.Revision()
	}
	recs, err := s.reg.List(ctx)
	if err != nil {
		return out, fmt.Errorf("list data planes: %w", err)
	}
	ids, err := listIdentities(ctx, s.cfg.Store)
	if err != nil {
		return out, fmt.Errorf("list data planes: %w", err)
	}
	now := s.now()
	for _, r := range recs {
		id := ids[r.Name]
		dp := fleet.DataPlane{Name: r.Name, Address: r.Address, Revision: r.Revision, Digest: r.Digest, LastSeen: r.LastSeen,
			Health: r.Health, LastError: r.LastError, Version: r.Version, JoinedAt: id.JoinedAt, CertificateExpires: id.NotAfter}
		if dp.Address == "" {
			dp.Address = r.RemoteAddr
		}
		if out.Revision > 0 {
			dp.Lag = out.Revision - r.Revision
		}
		switch {
		case id.Revoked:
			dp.Health = fleet.HealthRevoked
		case now.Sub(r.LastSeen) > StaleAfter*max(r.Interval, time.Second):
			dp.Health = fleet.HealthStale
		}
		out.Items = append(out.Items, dp)
	}
	return out, nil
}

// Revoke cuts a data plane off: every certificate issued to the name is
// refused from the next request on, renewal included, and joining again
// under the name needs a token made for it after now.
func (s *Server) Revoke(ctx context.Context, name string) error {
	now := s.now()
	err := s.cfg.Store.Update(ctx, func(tx store.Tx) error {
		id, found, err := getIdentity(ctx, tx.Meta(), name)
		if err != nil {
			return err
		}
		if !found {
			return &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("revoke data plane: no data plane %q", name), Hint: "list them: stoa get dataplanes"}
		}
		if id.Revoked {
			return nil
		}
		id.Revoked, id.RevokedAt, id.Serial, id.Prev = true, now, "", ""
		return putIdentity(ctx, tx.Meta(), name, id)
	})
	if err != nil {
		return err
	}
	s.cfg.Log.Info("fleet: data plane revoked", "name", name)
	s.emit("fleet.dataplane.revoked", fmt.Sprintf("data plane %s was revoked", name), map[string]any{"name": name})
	return nil
}

// Delete revokes a data plane and removes it from the listing.
func (s *Server) Delete(ctx context.Context, name string) error {
	if err := s.Revoke(ctx, name); err != nil {
		return err
	}
	return s.reg.Delete(ctx, name)
}
