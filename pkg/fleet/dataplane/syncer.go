// Package dataplane is a data plane's side of fleet mode: the Syncer
// joins a control plane once (a join token and a CSR for a key that never
// leaves the data plane give a client certificate), then long-polls it
// for signed bundles, verifies each (signature with the pinned cosign
// key, digest, revision never backwards) before anything is prepared,
// hands it to the daemon, and keeps the last good one on disk so that a
// data plane cut off from its control plane serves what it had, restarts
// included, and catches up on its own.
package dataplane

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// Defaults of a Config.
const (
	DefaultWait           = 30 * time.Second
	DefaultMaxBundleBytes = 256 << 20
	DefaultBackoffMin     = 200 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	// applyRetry is how long a revision that failed to apply is skipped
	// before it is tried again (refused revisions are skipped until a
	// newer one comes).
	applyRetry = time.Minute
)

// Config is what a Syncer needs.
type Config struct {
	// ControlPlane is the control plane's https URL (a path prefix is
	// kept).
	ControlPlane string
	// JoinToken is needed only to join: when the state directory holds
	// no identity, or the control plane refuses it and this token is a
	// new one.
	JoinToken string
	// Name is the data plane's name; empty takes the join token's.
	Name string
	// Address is what the data plane advertises in listings.
	Address string
	// StateDir holds the identity (identity.json) and the last good
	// bundle (bundles/), created 0700.
	StateDir string
	// Verifier is the pinned cosign public key bundles must be signed
	// with (bundle.LoadVerifierFile).
	Verifier signature.Verifier
	// Fingerprint pins the control plane's TLS certificate (tlspin);
	// zero uses RootCAs, or the system roots when RootCAs is nil.
	Fingerprint tlspin.Fingerprint
	RootCAs     *x509.CertPool
	// Apply prepares and swaps in a revision's objects (the daemon's
	// transactional reload). When it fails, the data plane keeps serving
	// what it served and reports the error.
	Apply func(rev int64, objs []*spec.Object) error
	// OnEvent, if set, receives fleet.* events for the event log.
	OnEvent func(api.Event)
	// Version is reported in heartbeats.
	Version string
	// Wait is the long poll's duration (default 30s).
	Wait time.Duration
	// MaxBundleBytes bounds a bundle after decompression (default 256 MiB).
	MaxBundleBytes int64
	// BackoffMin and BackoffMax bound the pause after a failure (with
	// full jitter; defaults 200ms and 30s).
	BackoffMin, BackoffMax time.Duration
	// Now is the clock for certificates and status (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Syncer keeps a data plane in step with its control plane.
type Syncer struct {
	cfg     Config
	keyID   string
	metrics *metrics

	mu         sync.Mutex
	id         *identity
	client     *http.Client // presents the identity's certificate
	transport  *http.Transport
	anonymous  *http.Client // presents none: for joining
	serving    *bundle.Bundle
	status     fleet.SyncStatus
	skip       bundle.Digest // refused: not to be sent again
	skipUntil  time.Time     // failed to apply: not before then
	forceFull  bool
	degraded   string // why health is degraded ("" if ok)
	hbNow      chan struct{}
	hbInterval time.Duration
	// renewFailures and renewAfter pace renewal retries, so that a
	// control plane that cannot renew still serves watches meanwhile.
	renewFailures int
	renewAfter    time.Time
	// pending is the last good bundle waiting to be written to store.
	pending     *lastGood
	persistKick chan struct{}
	store       *bundle.Store
}

// New checks cfg and returns a Syncer; Run starts it.
func New(cfg Config) (*Syncer, error) {
	u, err := url.Parse(cfg.ControlPlane)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("fleet data plane: control plane %q is not an https:// URL", cfg.ControlPlane)
	case cfg.StateDir == "":
		return nil, errors.New("fleet data plane: a state directory is required")
	case cfg.Verifier == nil:
		return nil, errors.New("fleet data plane: the bundle public key is required (--bundle-key cosign.pub)")
	case cfg.Apply == nil:
		return nil, errors.New("fleet data plane: an Apply function is required")
	}
	if cfg.Name != "" {
		if err := fleet.CheckName(cfg.Name); err != nil {
			return nil, err
		}
	}
	pub, err := cfg.Verifier.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("fleet data plane: %w", err)
	}
	keyID, err := fleet.KeyID(pub)
	if err != nil {
		return nil, err
	}
	cfg.ControlPlane = strings.TrimRight(cfg.ControlPlane, "/")
	if cfg.Wait == 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.MaxBundleBytes == 0 {
		cfg.MaxBundleBytes = DefaultMaxBundleBytes
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Syncer{cfg: cfg, keyID: keyID, metrics: newMetrics(), hbNow: make(chan struct{}, 1), persistKick: make(chan struct{}, 1), hbInterval: 10 * time.Second}
	s.status = fleet.SyncStatus{ControlPlane: cfg.ControlPlane, Name: cfg.Name, State: fleet.StateStarting, Since: s.now()}
	s.store = bundle.NewStore(s.bundleDir())
	return s, nil
}

func (s *Syncer) now() time.Time { return s.cfg.Now().UTC() }

// ControlPlane is the control plane's URL, for the write refusal
// (fleet.ReadOnlyError).
func (s *Syncer) ControlPlane() string { return s.cfg.ControlPlane }

// Status is the data plane's sync status for `stoa status`.
func (s *Syncer) Status() fleet.SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if st.LastRefusal != nil {
		r := *st.LastRefusal
		st.LastRefusal = &r
	}
	if l := s.id.leaf(); l != nil {
		st.CertificateExpires = l.NotAfter
	}
	st.Lag = max(st.ControlPlaneRevision-st.Revision, 0)
	return st
}

func (s *Syncer) bundleDir() string { return filepath.Join(s.cfg.StateDir, "bundles") }

func (s *Syncer) emit(typ, msg string, data map[string]any) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(api.Event{Time: s.now(), Type: typ, Message: msg, Data: data})
	}
}

// setState moves to a state (Since changes only when the state does).
func (s *Syncer) setState(state, hint string) {
	s.mu.Lock()
	prev := s.status.State
	if prev != state {
		s.status.State, s.status.Since = state, s.now()
	}
	s.status.Hint = hint
	rev := s.status.Revision
	s.mu.Unlock()
	if prev == state {
		return
	}
	s.metrics.connected.Set(map[bool]float64{true: 1}[state == fleet.StateConnected])
	switch state {
	case fleet.StatePartitioned:
		s.cfg.Log.Warn("fleet: control plane unreachable; serving the last good bundle", "controlPlane", s.cfg.ControlPlane, "revision", rev)
		s.emit("fleet.controlplane.partitioned", fmt.Sprintf("the control plane %s cannot be reached; serving revision %d", s.cfg.ControlPlane, rev),
			map[string]any{"controlPlane": s.cfg.ControlPlane, "revision": rev})
	case fleet.StateConnected:
		if prev == fleet.StatePartitioned || prev == fleet.StateUnauthorized {
			s.cfg.Log.Info("fleet: control plane reachable again", "controlPlane", s.cfg.ControlPlane)
			s.emit("fleet.controlplane.connected", fmt.Sprintf("the control plane %s is reachable again", s.cfg.ControlPlane),
				map[string]any{"controlPlane": s.cfg.ControlPlane})
		}
	}
}

// heard notes a revision the control plane has (its newest, as far as
// the data plane knows), for the lag in Status.
func (s *Syncer) heard(rev int64) {
	s.mu.Lock()
	s.status.ControlPlaneRevision = max(s.status.ControlPlaneRevision, rev)
	s.mu.Unlock()
}

func (s *Syncer) setError(msg string) {
	s.mu.Lock()
	s.status.LastError = msg
	s.mu.Unlock()
}

// Run loads the last good bundle (and serves it), joins if the data
// plane has no identity, then follows the control plane until ctx is
// done. It returns early only for a configuration error (no identity and
// no join token, or an identity for another control plane).
func (s *Syncer) Run(ctx context.Context) error {
	id, err := loadIdentity(s.cfg.StateDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		id = nil
	case err != nil:
		return err
	case id.controlPlane != s.cfg.ControlPlane:
		return fmt.Errorf("fleet data plane: %s holds the identity of a data plane of %s, not %s; to join another control plane, use another state directory or remove %s",
			s.cfg.StateDir, id.controlPlane, s.cfg.ControlPlane, filepath.Join(s.cfg.StateDir, identityFile))
	}
	if id != nil && id.cert != nil && s.cfg.Name != "" && id.name != s.cfg.Name {
		return fmt.Errorf("fleet data plane: %s holds the identity of data plane %q, not %q; to rename it, revoke %q and join with a new token and another state directory",
			s.cfg.StateDir, id.name, s.cfg.Name, id.name)
	}
	if id == nil && s.cfg.JoinToken == "" {
		return fmt.Errorf("fleet data plane: %s holds no identity and no join token was given; on the control plane: stoa fleet join-token create --name NAME, then start with --join-token", s.cfg.StateDir)
	}
	s.loadLastGood()
	if id != nil && id.cert != nil {
		s.useIdentity(id)
	} else {
		s.mu.Lock()
		s.id = id // a join in progress keeps its key
		s.mu.Unlock()
	}

	stop, persisted := make(chan struct{}), make(chan struct{})
	go s.persister(stop, persisted)
	defer func() {
		close(stop)
		<-persisted
	}()
	go s.heartbeats(ctx)
	failures := 0
	for ctx.Err() == nil {
		err := s.step(ctx)
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			break
		}
		failures++
		d := s.backoff(failures)
		s.cfg.Log.Debug("fleet: retrying", "in", d, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	s.mu.Lock()
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	s.mu.Unlock()
	return nil
}

// backoff is a full-jitter exponential pause: uniform in
// [min, min·2^failures], capped at max.
func (s *Syncer) backoff(failures int) time.Duration {
	ceil := s.cfg.BackoffMin << min(failures, 20)
	if ceil <= 0 || ceil > s.cfg.BackoffMax {
		ceil = s.cfg.BackoffMax
	}
	return s.cfg.BackoffMin + rand.N(ceil-s.cfg.BackoffMin+1)
}

// step does one thing the data plane needs: join, renew, or one watch.
func (s *Syncer) step(ctx context.Context) error {
	s.mu.Lock()
	id := s.id
	s.mu.Unlock()
	if id == nil || id.cert == nil {
		return s.join(ctx, id)
	}
	now := s.now()
	leaf := id.cert.Leaf
	if !now.Before(leaf.NotAfter) {
		return s.expired(ctx, id)
	}
	// Renew at two thirds of the lifetime, leaving a third for retries;
	// a failed renewal does not stop the watch.
	if life := leaf.NotAfter.Sub(leaf.NotBefore); now.After(leaf.NotBefore.Add(life*2/3)) && !now.Before(s.renewAfter) {
		if err := s.renew(ctx, id); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.refused() {
				return err
			}
			s.renewFailures++
			s.renewAfter = now.Add(s.backoff(s.renewFailures))
			s.cfg.Log.Warn("fleet: renew certificate; will retry", "expires", leaf.NotAfter, "err", err)
		} else {
			s.renewFailures, s.renewAfter = 0, time.Time{}
		}
		s.mu.Lock()
		id = s.id
		s.mu.Unlock()
		if id == nil || id.cert == nil {
			return nil
		}
	}
	return s.watch(ctx)
}
