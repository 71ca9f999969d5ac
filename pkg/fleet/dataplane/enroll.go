package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
)

// expired: the certificate ran out (the data plane was cut off longer
// than its lifetime). Only a new join token helps.
func (s *Syncer) expired(ctx context.Context, id *identity) error {
	if s.cfg.JoinToken != "" && tokenHash(s.cfg.JoinToken) != id.tokenHash {
		return s.join(ctx, nil)
	}
	msg := fmt.Sprintf("the data plane's certificate expired at %s", id.cert.Leaf.NotAfter.Format(time.RFC3339))
	s.setError(msg)
	s.setState(fleet.StateUnauthorized, fmt.Sprintf("join again: on the control plane, stoa fleet join-token create --name %s; restart this stoad with --join-token", id.name))
	return errors.New(msg)
}

// useIdentity makes id current, with a client presenting its
// certificate. Connections of the previous certificate are closed: once
// renewed twice, it would be refused.
func (s *Syncer) useIdentity(id *identity) {
	tr := s.newTransport(id.cert)
	s.mu.Lock()
	old := s.transport
	s.id, s.transport, s.client = id, tr, newClient(tr)
	s.status.Name = id.name
	if id.interval > 0 {
		s.hbInterval = id.interval
	}
	s.mu.Unlock()
	if old != nil {
		old.CloseIdleConnections()
	}
	s.metrics.certExpiry.Set(float64(id.cert.Leaf.NotAfter.Unix()))
}

// join asks for an identity with the join token. pending is a join whose
// answer was lost: its key is sent again.
func (s *Syncer) join(ctx context.Context, pending *identity) error {
	if s.cfg.JoinToken == "" {
		s.setState(fleet.StateUnauthorized, "start the data plane with a join token: stoa fleet join-token create on the control plane")
		return errors.New("no identity and no join token")
	}
	s.setState(fleet.StateJoining, "")
	th := tokenHash(s.cfg.JoinToken)
	id := pending
	if id == nil || id.tokenHash != th {
		key, err := ca.NewKey()
		if err != nil {
			return err
		}
		id = &identity{controlPlane: s.cfg.ControlPlane, name: s.cfg.Name, key: key, tokenHash: th}
		// Kept before asking, so that a retry (after a lost answer or a
		// crash) presents the same key and the spent token admits it.
		if err := saveIdentity(s.cfg.StateDir, id); err != nil {
			return err
		}
		s.mu.Lock()
		s.id = id
		s.mu.Unlock()
	}
	csr, err := ca.NewCSR(id.key, s.cfg.Name)
	if err != nil {
		return err
	}
	var resp fleet.JoinResponse
	err = s.postWith(ctx, s.joinClient(), fleet.PathJoin, fleet.JoinRequest{Token: s.cfg.JoinToken, Name: s.cfg.Name, CSR: string(csr), KeyID: s.keyID, Address: s.cfg.Address}, &resp)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			msg := "join the control plane: " + ae.body.Message
			s.setError(msg)
			s.setState(fleet.StateUnauthorized, ae.body.Hint)
			return err
		}
		return s.unreachable(err)
	}
	cert, err := certFor(id.key, []byte(resp.Certificate))
	if err != nil {
		return fmt.Errorf("join the control plane: its certificate: %w", err)
	}
	if resp.KeyID != s.keyID {
		return fmt.Errorf("join the control plane: it signs bundles with key %s, not the pinned %s", resp.KeyID, s.keyID)
	}
	next := &identity{controlPlane: s.cfg.ControlPlane, name: resp.Name, key: id.key, cert: cert, caPEM: []byte(resp.CA), tokenHash: th}
	if next.interval, err = parseInterval(resp.HeartbeatInterval); err != nil {
		return fmt.Errorf("join the control plane: %w", err)
	}
	if err := saveIdentity(s.cfg.StateDir, next); err != nil {
		return err
	}
	s.useIdentity(next)
	s.cfg.Log.Info("fleet: joined the control plane", "controlPlane", s.cfg.ControlPlane, "name", next.name, "expires", cert.Leaf.NotAfter)
	s.emit("fleet.identity.joined", fmt.Sprintf("joined %s as data plane %s", s.cfg.ControlPlane, next.name),
		map[string]any{"controlPlane": s.cfg.ControlPlane, "name": next.name, "expires": cert.Leaf.NotAfter})
	s.setError("")
	s.setState(fleet.StateConnected, "")
	return nil
}

// renew gets a new certificate for a new key, presenting the current
// certificate. The new pair is on disk before it is used.
func (s *Syncer) renew(ctx context.Context, id *identity) error {
	key, err := ca.NewKey()
	if err != nil {
		return err
	}
	csr, err := ca.NewCSR(key, id.name)
	if err != nil {
		return err
	}
	var resp fleet.RenewResponse
	if err := s.post(ctx, fleet.PathRenew, fleet.RenewRequest{CSR: string(csr)}, &resp); err != nil {
		return s.refusedIdentity(ctx, id, s.unreachable(fmt.Errorf("renew certificate: %w", err)))
	}
	cert, err := certFor(key, []byte(resp.Certificate))
	if err != nil {
		return fmt.Errorf("renew certificate: %w", err)
	}
	next := *id
	next.key, next.cert, next.caPEM = key, cert, []byte(resp.CA)
	if err := saveIdentity(s.cfg.StateDir, &next); err != nil {
		return err
	}
	s.useIdentity(&next)
	s.metrics.renewals.Inc()
	s.cfg.Log.Info("fleet: certificate renewed", "expires", cert.Leaf.NotAfter)
	s.emit("fleet.identity.renewed", fmt.Sprintf("renewed the certificate of data plane %s (expires %s)", id.name, cert.Leaf.NotAfter.Format(time.RFC3339)),
		map[string]any{"name": id.name, "expires": cert.Leaf.NotAfter})
	return nil
}

// refusedIdentity: when the control plane refuses the identity (revoked,
// replaced) and a join token not yet used is configured, join with it.
func (s *Syncer) refusedIdentity(ctx context.Context, id *identity, err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.refused() && s.cfg.JoinToken != "" && tokenHash(s.cfg.JoinToken) != id.tokenHash {
		s.cfg.Log.Warn("fleet: the control plane refused the identity; joining again with the new join token", "err", ae.body.Message)
		return s.join(ctx, nil)
	}
	return err
}
