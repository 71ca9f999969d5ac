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
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
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

// unavailable turns a failure that is not a refusal into the envelope:
// 503 when the store cannot be reached or the write raced another (the
// data plane retries), 500 otherwise.
func unavailable(err error) error {
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrConflict):
		return &api.Error{Code: api.CodeUnavailable, Message: "fleet: " + err.Error(), Hint: "the control plane's store is unavailable or busy; the data plane retries"}
	}
	return &api.Error{Code: api.CodeInternal, Message: "fleet: " + err.Error()}
}

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}
