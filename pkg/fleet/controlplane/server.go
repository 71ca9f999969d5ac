// Package controlplane is the control plane's side of fleet mode: join
// tokens, data plane identities (client certificates from the fleet CA),
// the heartbeat registry behind `stoa get dataplanes`, and the /v1/fleet/
// HTTP handlers through which data planes join, renew their certificate,
// report, and watch for new signed bundles (deltas when they can).
package controlplane

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// Defaults of a Config.
const (
	DefaultCertTTL           = 24 * time.Hour
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultWait              = 30 * time.Second
	MaxWait                  = 5 * time.Minute
	// StaleAfter heartbeat intervals without one, a data plane is stale.
	StaleAfter = 3
)

const maxBody = 64 << 10

// Config is what a control plane's fleet endpoints need.
type Config struct {
	// Store holds join tokens and identities (and the CA, when it came
	// from the store).
	Store store.Store
	// CA issues the data planes' client certificates.
	CA *ca.CA
	// Source serves the signed bundles.
	Source Source
	// Registry records heartbeats; nil keeps them in Store.
	Registry Registry
	// KeyID is fleet.KeyID of the key bundles are signed with; a data
	// plane pinning another key is refused at join.
	KeyID string
	// CertTTL is the lifetime of a data plane certificate (default 24h);
	// data planes renew at two thirds of it.
	CertTTL time.Duration
	// HeartbeatInterval is what data planes are told (default 10s).
	HeartbeatInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
	// OnEvent, if set, receives fleet.dataplane.* events (joined,
	// renewed, revoked) for the event log.
	OnEvent func(api.Event)
}

// Server serves the /v1/fleet/ routes.
type Server struct {
	cfg     Config
	tokens  *Tokens
	reg     Registry
	mux     map[string]route
	metrics *serverMetrics
	cache   *payloadCache
}

type route struct {
	method string
	fn     func(http.ResponseWriter, *http.Request) error
}

// NewServer checks cfg and returns the server.
func NewServer(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("fleet control plane: a store is required")
	case cfg.CA == nil:
		return nil, errors.New("fleet control plane: a CA is required")
	case cfg.Source == nil:
		return nil, errors.New("fleet control plane: a bundle source is required")
	case cfg.KeyID == "":
		return nil, errors.New("fleet control plane: the bundle key id is required")
	}
	if cfg.CertTTL == 0 {
		cfg.CertTTL = DefaultCertTTL
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	reg := cfg.Registry
	if reg == nil {
		reg = NewStoreRegistry(cfg.Store)
	}
	s := &Server{cfg: cfg, tokens: NewTokens(cfg.Store, cfg.Now), reg: reg, metrics: newServerMetrics(), cache: newPayloadCache(16)}
	s.mux = map[string]route{
		fleet.PathJoin:      {http.MethodPost, s.serveJoin},
		fleet.PathRenew:     {http.MethodPost, s.serveRenew},
		fleet.PathHeartbeat: {http.MethodPost, s.serveHeartbeat},
		fleet.PathWatch:     {http.MethodGet, s.serveWatch},
	}
	return s, nil
}

// Tokens are the join tokens, for the CLI's join-token commands.
func (s *Server) Tokens() *Tokens { return s.tokens }

// Handler serves the /v1/fleet/ routes; mount it at fleet.PathPrefix on
// the control plane's HTTPS server, whose TLS configuration comes from
// ca.ServerTLSConfig. Every route but join requires a client certificate
// of the fleet CA and ignores any Authorization header; the LocalAPI
// routes beside it require a bearer token and ignore certificates, so one
// credential never stands in for the other.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := s.mux[r.URL.Path]
		if !ok {
			writeError(w, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("no fleet route %s", r.URL.Path)})
			return
		}
		if r.Method != rt.method {
			w.Header().Set("Allow", rt.method)
			writeError(w, &api.Error{Code: api.CodeMethod, Message: fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, rt.method)})
			return
		}
		if err := rt.fn(w, r); err != nil {
			writeError(w, err)
		}
	})
}

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

func (s *Server) emit(typ, msg string, data map[string]any) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(api.Event{Time: s.now(), Type: typ, Message: msg, Data: data})
	}
}

// peer is an authenticated data plane.
type peer struct {
	name   string
	leaf   *x509.Certificate
	serial string
}

// authenticate accepts a request from a data plane: a client certificate
// chaining to the fleet CA at the server's clock (verified here even
// though the TLS layer did, so that a listener configured otherwise
// cannot open the routes), naming a data plane whose identity is not
// revoked and whose current (or just renewed) certificate it is.
func (s *Server) authenticate(r *http.Request) (peer, error) {
	const hint = "data planes present the client certificate they got when they joined (stoad --join URL --join-token TOKEN); a bearer token is not accepted on the fleet routes"
	if r.TLS == nil {
		s.metrics.authFailures.WithLabelValues("no_tls").Inc()
		return peer{}, &api.Error{Code: api.CodeUnauthorized, Message: "fleet routes are served over TLS only", Hint: hint}
	}
	if len(r.TLS.PeerCertificates) == 0 {
		s.metrics.authFailures.WithLabelValues("no_certificate").Inc()
		return peer{}, &api.Error{Code: api.CodeUnauthorized, Message: "this route needs a data plane's client certificate", Hint: hint}
	}
	name, leaf, err := s.cfg.CA.Verify(r.TLS.PeerCertificates, s.now())
	if err != nil {
		s.metrics.authFailures.WithLabelValues("certificate").Inc()
		ae := &api.Error{Code: api.CodeUnauthorized, Message: "fleet: " + err.Error(), Hint: hint}
		var ve *ca.VerifyError
		if errors.As(err, &ve) {
			ae.Hint = ve.Hint()
		}
		return peer{}, ae
	}
	serial := ca.SerialOf(leaf)
	var (
		id    identity
		found bool
	)
	err = s.cfg.Store.View(r.Context(), func(tx store.Tx) error {
		var err error
		id, found, err = getIdentity(r.Context(), tx.Meta(), name)
		return err
	})
	if err != nil {
		return peer{}, unavailable(err)
	}
	rejoin := fmt.Sprintf("to admit it again: stoa fleet join-token create --name %s, then restart the data plane with --join-token", name)
	switch {
	case !found:
		s.metrics.authFailures.WithLabelValues("unknown").Inc()
		return peer{}, &api.Error{Code: api.CodeForbidden, Message: fmt.Sprintf("fleet: data plane %q is not known to this control plane (it was deleted)", name), Hint: rejoin}
	case id.Revoked:
		s.metrics.authFailures.WithLabelValues("revoked").Inc()
		return peer{}, &api.Error{Code: api.CodeForbidden, Message: fmt.Sprintf("fleet: data plane %q is revoked (since %s)", name, id.RevokedAt.Format(time.RFC3339)), Hint: rejoin}
	case !id.accepts(serial):
		s.metrics.authFailures.WithLabelValues("replaced").Inc()
		return peer{}, &api.Error{Code: api.CodeForbidden, Message: fmt.Sprintf("fleet: this certificate of data plane %q has been replaced (the name joined again, or the certificate was renewed twice since)", name), Hint: rejoin}
	}
	return peer{name: name, leaf: leaf, serial: serial}, nil
}

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &api.Error{Code: api.CodeUnavailable, Message: "fleet: read state: " + err.Error(), Hint: "the control plane's store is unavailable; the data plane retries"}
}

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

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
	name := req.Name
	if name == "" {
		if name, err = tokenName(r.Context(), s.cfg.Store, req.Token); err != nil {
			return unavailable(err)
		}
	}
	// A live data plane keeps its name: a second one joining under it
	// would cut the first off. (Read before the transaction: the
	// registry may be the store itself.)
	var live *Record
	if name != "" {
		rec, ok, err := s.reg.Get(r.Context(), name)
		if err != nil {
			return unavailable(err)
		}
		if ok && s.now().Sub(rec.LastSeen) < StaleAfter*rec.Interval {
			live = &rec
		}
	}
	now := s.now()
	var issued *ca.Issued
	err = s.cfg.Store.Update(r.Context(), func(tx store.Tx) error {
		m := tx.Meta()
		tok, retry, err := consume(r.Context(), m, req.Token, keyHash, name, now)
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

// serveWatch is the long poll: it answers as soon as the current revision
// is not the one the data plane holds (nor one it refused), or with 304
// after wait. The answer is a signed delta from the held revision when
// the source still has it, else the full signed bundle.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.authenticate(r); err != nil {
		return err
	}
	q := r.URL.Query()
	bad := func(msg string) error { return &api.Error{Code: api.CodeBadRequest, Message: "watch: " + msg} }
	var (
		have             int64
		haveDigest, skip bundle.Digest
		err              error
	)
	if v := q.Get(fleet.QueryHave); v != "" {
		if have, err = strconv.ParseInt(v, 10, 64); err != nil || have < 0 {
			return bad(fmt.Sprintf("have=%q is not a revision", v))
		}
	}
	if v := q.Get(fleet.QueryDigest); v != "" {
		if haveDigest, err = bundle.ParseDigest(v); err != nil {
			return bad(err.Error())
		}
	}
	if v := q.Get(fleet.QuerySkip); v != "" {
		if skip, err = bundle.ParseDigest(v); err != nil {
			return bad(err.Error())
		}
	}
	wait := DefaultWait
	if v := q.Get(fleet.QueryWait); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			return bad(fmt.Sprintf("wait=%q is not a duration", v))
		}
		wait = min(wait, MaxWait)
	}
	full := q.Get(fleet.QueryFull) == "1"

	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	var cur *Signed
	for {
		if cur, err = s.cfg.Source.Current(ctx); err != nil {
			return unavailable(err)
		}
		if cur != nil {
			d := cur.Bundle.Digest()
			held := have == cur.Bundle.Revision() && haveDigest == d
			if !held && d != skip {
				break
			}
		}
		var after int64
		if cur != nil {
			after = cur.Bundle.Revision()
		}
		if err := s.cfg.Source.Wait(ctx, after); err != nil {
			if r.Context().Err() != nil {
				return nil // the data plane went away
			}
			if cur != nil {
				w.Header().Set(fleet.HeaderRevision, strconv.FormatInt(cur.Bundle.Revision(), 10))
			}
			w.WriteHeader(http.StatusNotModified)
			s.metrics.answers.WithLabelValues("not_modified").Inc()
			return nil
		}
	}
	// It may have been revoked while it waited.
	if _, err := s.authenticate(r); err != nil {
		return err
	}
	var p *payload
	if !full && have > 0 && have < cur.Bundle.Revision() && !haveDigest.IsZero() {
		if base, err := s.cfg.Source.At(r.Context(), have); err == nil && base.Digest() == haveDigest {
			p = s.cache.delta(base, cur)
		}
	}
	if p == nil {
		p = s.cache.full(cur)
	}
	kind := p.kind
	h := w.Header()
	h.Set(fleet.HeaderRevision, strconv.FormatInt(cur.Bundle.Revision(), 10))
	h.Set(fleet.HeaderDigest, cur.Bundle.Digest().String())
	h.Set(fleet.HeaderKeyID, s.cfg.KeyID)
	h.Set("Cache-Control", "no-store")
	if kind == "full" {
		h.Set("Content-Type", fleet.ContentTypeBundle)
		h.Set(fleet.HeaderSignature, strings.TrimSpace(string(cur.Signature)))
	} else {
		h.Set("Content-Type", fleet.ContentTypeDelta)
	}
	body, err := p.body(acceptsGzip(r))
	if err != nil {
		return err
	}
	if p.gzipped(acceptsGzip(r)) {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	n, _ := w.Write(body)
	s.metrics.answers.WithLabelValues(kind).Inc()
	s.metrics.sentBytes.WithLabelValues(kind).Add(float64(n))
	return nil
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) == "gzip" {
			return true
		}
	}
	return false
}
