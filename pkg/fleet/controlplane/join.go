package controlplane

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// serveJoin admits a data plane: a valid join token (spent in the same
// transaction that records the identity, so that one token admits one
// data plane even when two join at once) and a CSR for the data plane's
// own key give a certificate.
func (s *Server) serveJoin(w http.ResponseWriter, r *http.Request) error {
	var req fleet.JoinRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.KeyID != s.cfg.KeyID {
		s.metrics.joins.WithLabelValues("refused").Inc()
		return &api.Error{Code: api.CodeConflict,
			Message: fmt.Sprintf("join: the data plane pins bundle key %s, but this control plane signs with %s; the join token was not spent", orNone(req.KeyID), s.cfg.KeyID),
			Hint:    "give the data plane the control plane's public key (cosign.pub) with --bundle-key"}
	}
	csr, err := ca.ParseCSR([]byte(req.CSR))
	if err != nil {
		s.metrics.joins.WithLabelValues("refused").Inc()
		return &api.Error{Code: api.CodeBadRequest, Message: "join: " + err.Error()}
	}
	keyHash, err := ca.KeyHash(csr.PublicKey)
	if err != nil {
		return err
	}
	if req.Name != "" {
		if err := fleet.CheckName(req.Name); err != nil {
			s.metrics.joins.WithLabelValues("refused").Inc()
			return &api.Error{Code: api.CodeInvalid, Message: "join: " + err.Error(), Hint: "start the data plane with --name, a DNS label such as edge-1"}
		}
	}
	if err := checkAddress(req.Address); err != nil {
		return err
	}
	now := s.now()
	tok, err := checkToken(r.Context(), s.cfg.Store, req.Token, keyHash, req.Name, now)
	if err != nil {
		s.metrics.joins.WithLabelValues("refused").Inc()
		var ae *api.Error
		if !errors.As(err, &ae) {
			return unavailable(err)
		}
		s.cfg.Log.Warn("fleet: join refused", "name", req.Name, "remote", r.RemoteAddr, "err", ae.Message)
		return err
	}
	name := req.Name
	if name == "" {
		name = tok.Name
	}
	// A live data plane keeps its name: a second one joining under it
	// would cut the first off. (Read before the transaction: the
	// registry may be the store itself.)
	var live *Record
	rec, ok, err := s.reg.Get(r.Context(), name)
	if err != nil {
		return unavailable(err)
	}
	if ok && now.Sub(rec.LastSeen) < StaleAfter*rec.Interval {
		live = &rec
	}
	var issued *ca.Issued
	err = s.cfg.Store.Update(r.Context(), func(tx store.Tx) error {
		m := tx.Meta()
		tok, retry, err := consume(r.Context(), m, req.Token, keyHash, name, now, false)
		if err != nil {
			return err
		}
		id, found, err := getIdentity(r.Context(), m, name)
		if err != nil {
			return err
		}
		if found && id.Revoked && !(tok.Name == name && tok.CreatedAt.After(id.RevokedAt)) {
			return &api.Error{Code: api.CodeForbidden, Message: fmt.Sprintf("join: data plane %q is revoked; the join token was not spent", name),
				Hint: fmt.Sprintf("to admit the name again, make a token for it after the revocation: stoa fleet join-token create --name %s", name)}
		}
		// A name whose certificates all expired is free, however recent
		// its last heartbeat.
		if live != nil && !retry && found && !id.Revoked && now.Before(id.NotAfter) {
			return &api.Error{Code: api.CodeConflict,
				Message: fmt.Sprintf("join: a data plane named %q is connected (last seen %s ago from %s); the join token was not spent", name, now.Sub(live.LastSeen).Round(time.Second), orNone(live.RemoteAddr)),
				Hint:    fmt.Sprintf("choose another name with --name, or revoke the old one first: stoa fleet dataplane revoke %s", name)}
		}
		if issued, err = s.cfg.CA.Sign([]byte(req.CSR), name, now, s.cfg.CertTTL); err != nil {
			return err
		}
		return putIdentity(r.Context(), m, name, identity{Serial: issued.Serial, NotAfter: issued.Cert.NotAfter, JoinedAt: now})
	})
	if err != nil {
		s.metrics.joins.WithLabelValues("refused").Inc()
		var ae *api.Error
		if !errors.As(err, &ae) {
			return unavailable(err)
		}
		s.cfg.Log.Warn("fleet: join refused", "name", name, "remote", r.RemoteAddr, "err", ae.Message)
		return err
	}
	s.metrics.joins.WithLabelValues("ok").Inc()
	_ = s.reg.Put(r.Context(), Record{Name: name, Address: req.Address, RemoteAddr: remoteHost(r), Health: fleet.HealthOK,
		LastSeen: now, Interval: s.cfg.HeartbeatInterval, CertNotAfter: issued.Cert.NotAfter})
	s.cfg.Log.Info("fleet: data plane joined", "name", name, "remote", r.RemoteAddr, "expires", issued.Cert.NotAfter)
	s.emit("fleet.dataplane.joined", fmt.Sprintf("data plane %s joined from %s", name, remoteHost(r)),
		map[string]any{"name": name, "remote": remoteHost(r), "serial": issued.Serial})
	return writeJSON(w, http.StatusOK, fleet.JoinResponse{Name: name, Certificate: string(issued.PEM), CA: string(s.cfg.CA.CertPEM()),
		KeyID: s.cfg.KeyID, HeartbeatInterval: s.cfg.HeartbeatInterval.String()})
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func checkAddress(a string) error {
	if len(a) > 256 || strings.ContainsFunc(a, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return &api.Error{Code: api.CodeInvalid, Message: "fleet: the advertised address must be printable ASCII without spaces, at most 256 bytes", Hint: "advertise a URL or host:port, such as https://edge-1.example:8443"}
	}
	return nil
}

// serveRenew issues a new certificate, for a new key, to a data plane
// presenting its current one.
func (s *Server) serveRenew(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	var req fleet.RenewRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	now := s.now()
	var issued *ca.Issued
	err = s.cfg.Store.Update(r.Context(), func(tx store.Tx) error {
		id, found, err := getIdentity(r.Context(), tx.Meta(), p.name)
		if err != nil {
			return err
		}
		if !found || !id.accepts(p.serial) {
			return &api.Error{Code: api.CodeForbidden, Message: fmt.Sprintf("renew: data plane %q was revoked or replaced meanwhile", p.name)}
		}
		if issued, err = s.cfg.CA.Sign([]byte(req.CSR), p.name, now, s.cfg.CertTTL); err != nil {
			return &api.Error{Code: api.CodeBadRequest, Message: "renew: " + err.Error()}
		}
		// The presenting certificate stays valid (until it expires) in
		// case this answer is lost; anything older is cut off.
		id.Prev, id.Serial, id.NotAfter = p.serial, issued.Serial, issued.Cert.NotAfter
		return putIdentity(r.Context(), tx.Meta(), p.name, id)
	})
	if err != nil {
		var ae *api.Error
		if !errors.As(err, &ae) {
			return unavailable(err)
		}
		return err
	}
	s.metrics.renewals.Inc()
	s.cfg.Log.Info("fleet: data plane certificate renewed", "name", p.name, "expires", issued.Cert.NotAfter)
	s.emit("fleet.dataplane.renewed", fmt.Sprintf("data plane %s renewed its certificate (expires %s)", p.name, issued.Cert.NotAfter.Format(time.RFC3339)),
		map[string]any{"name": p.name, "serial": issued.Serial})
	return writeJSON(w, http.StatusOK, fleet.RenewResponse{Certificate: string(issued.PEM), CA: string(s.cfg.CA.CertPEM())})
}
