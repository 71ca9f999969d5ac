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
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
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
	s := &Syncer{cfg: cfg, keyID: keyID, metrics: newMetrics(), hbNow: make(chan struct{}, 1), hbInterval: 10 * time.Second}
	s.status = fleet.SyncStatus{ControlPlane: cfg.ControlPlane, Name: cfg.Name, State: fleet.StateStarting, Since: s.now()}
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

// apiError is an error answer of the control plane.
type apiError struct {
	status int
	body   api.Error
}

func (e *apiError) Error() string {
	if e.body.Hint != "" {
		return fmt.Sprintf("%s (%s)", e.body.Message, e.body.Hint)
	}
	return e.body.Message
}

func readAPIError(resp *http.Response) *apiError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body api.ErrorBody
	if json.Unmarshal(b, &body) == nil && body.Error != nil {
		return &apiError{status: resp.StatusCode, body: *body.Error}
	}
	return &apiError{status: resp.StatusCode, body: api.Error{Code: api.CodeInternal,
		Message: fmt.Sprintf("the control plane answered %s", resp.Status)}}
}

// refused reports whether the control plane refused the data plane's
// credential (and a retry with it will not help).
func (e *apiError) refused() bool {
	return e.status == http.StatusUnauthorized || e.status == http.StatusForbidden
}

// httpClient returns a client for the current identity (nil: none yet,
// for joining).
func (s *Syncer) httpClient() *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.transport = s.newTransport(nil)
		s.client = newClient(s.transport)
	}
	return s.client
}

func newClient(tr *http.Transport) *http.Client {
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		// Credentials and bundles come from the configured URL only.
		return http.ErrUseLastResponse
	}}
}

func (s *Syncer) newTransport(cert *tls.Certificate) *http.Transport {
	var tc *tls.Config
	if s.cfg.Fingerprint != (tlspin.Fingerprint{}) {
		tc = tlspin.TLSConfig(s.cfg.Fingerprint)
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.cfg.RootCAs}
	}
	tc.Time = s.cfg.Now
	if cert != nil {
		c := cert
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c, nil }
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.ForceAttemptHTTP2 = true
	// Bundles are gunzipped here, within MaxBundleBytes.
	tr.DisableCompression = true
	tr.TLSHandshakeTimeout = 10 * time.Second
	return tr
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

func (s *Syncer) url(path string, q url.Values) string {
	u := s.cfg.ControlPlane + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// joinClient presents no certificate: an expired or refused one would
// fail the handshake before the join token is even read.
func (s *Syncer) joinClient() *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.anonymous == nil {
		s.anonymous = newClient(s.newTransport(nil))
	}
	return s.anonymous
}

// post sends a JSON request and decodes a JSON answer.
func (s *Syncer) post(ctx context.Context, path string, in, out any) error {
	return s.postWith(ctx, s.httpClient(), path, in, out)
}

func (s *Syncer) postWith(ctx context.Context, hc *http.Client, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url(path, nil), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readAPIError(resp)
	}
	s.contact()
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

func (s *Syncer) contact() {
	s.mu.Lock()
	s.status.LastContact = s.now()
	s.mu.Unlock()
}

// unreachable records a failure to reach the control plane.
func (s *Syncer) unreachable(err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		s.setError(ae.Error())
		if ae.refused() {
			s.setState(fleet.StateUnauthorized, ae.body.Hint)
		}
		return err
	}
	if tlsRefused(err) {
		s.setError(fmt.Sprintf("the control plane %s refused the data plane's certificate: %v", s.cfg.ControlPlane, err))
		s.setState(fleet.StateUnauthorized, "the certificate expired or comes from another fleet CA (was the control plane's CA replaced?): join again: stoa fleet join-token create --name NAME on the control plane, then restart with --join-token")
		return err
	}
	if errors.Is(err, tlspin.ErrMismatch) {
		s.setError(fmt.Sprintf("refused the control plane's certificate at %s: %v", s.cfg.ControlPlane, err))
		s.setState(fleet.StatePartitioned, "the control plane's certificate does not match the pinned fingerprint: nothing was sent; if it was replaced on purpose, update the data plane's pin")
		return err
	}
	s.setError(fmt.Sprintf("reach the control plane %s: %v", s.cfg.ControlPlane, err))
	s.mu.Lock()
	rev, origin := s.status.Revision, s.status.Origin
	s.mu.Unlock()
	hint := "no configuration is served yet; the data plane connects when the control plane is reachable"
	if rev > 0 {
		hint = fmt.Sprintf("serving revision %d (from %s) until the control plane is reachable; it catches up by itself", rev, origin)
	}
	s.setState(fleet.StatePartitioned, hint)
	return err
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
	next.interval, _ = time.ParseDuration(resp.HeartbeatInterval)
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

// watch makes one long-poll request and handles its answer.
func (s *Syncer) watch(ctx context.Context) error {
	s.mu.Lock()
	q := url.Values{fleet.QueryWait: {s.cfg.Wait.String()}}
	if s.serving != nil {
		q.Set(fleet.QueryHave, strconv.FormatInt(s.serving.Revision(), 10))
		q.Set(fleet.QueryDigest, s.serving.Digest().String())
	}
	if !s.skip.IsZero() && (s.skipUntil.IsZero() || s.now().Before(s.skipUntil)) {
		q.Set(fleet.QuerySkip, s.skip.String())
	}
	if s.forceFull {
		q.Set(fleet.QueryFull, "1")
	}
	id := s.id
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Wait+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(fleet.PathWatch, q), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := s.httpClient().Do(req)
	if err != nil {
		return s.unreachable(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		s.contact()
		s.connected()
		return nil
	case http.StatusOK:
	default:
		return s.refusedIdentity(ctx, id, s.unreachable(readAPIError(resp)))
	}
	wire, raw, err := s.readBody(resp)
	if err != nil {
		return s.unreachable(err)
	}
	s.contact()
	s.connected()
	s.receive(resp.Header, resp.Header.Get("Content-Type"), wire, raw)
	return nil
}

// connected marks the control plane reachable.
func (s *Syncer) connected() {
	s.mu.Lock()
	if strings.HasPrefix(s.status.LastError, "reach the control plane") {
		s.status.LastError = ""
	}
	s.mu.Unlock()
	s.setState(fleet.StateConnected, "")
}

// readBody reads an answer within MaxBundleBytes, decompressing gzip;
// wire is the size received.
func (s *Syncer) readBody(resp *http.Response) (int, []byte, error) {
	limit := s.cfg.MaxBundleBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, fmt.Errorf("read bundle: %w", err)
	}
	wire := len(body)
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return wire, nil, fmt.Errorf("read bundle: %w", err)
		}
		if body, err = io.ReadAll(io.LimitReader(zr, limit+1)); err != nil {
			return wire, nil, fmt.Errorf("read bundle: %w", err)
		}
	}
	if int64(len(body)) > limit {
		return wire, nil, fmt.Errorf("read bundle: larger than %d bytes (raise the data plane's bundle size limit)", limit)
	}
	return wire, body, nil
}

// receive verifies an answer and, if it passes, applies it.
func (s *Syncer) receive(h http.Header, ctype string, wire int, raw []byte) {
	s.mu.Lock()
	serving := s.serving
	s.mu.Unlock()
	announced, _ := bundle.ParseDigest(h.Get(fleet.HeaderDigest))
	rev, _ := strconv.ParseInt(h.Get(fleet.HeaderRevision), 10, 64)
	var (
		next *bundle.Bundle
		sig  []byte
		kind string
		err  error
	)
	switch ctype {
	case fleet.ContentTypeDelta:
		kind = "delta"
		var d *bundle.Delta
		if d, err = bundle.ParseDelta(raw); err == nil {
			if !announced.IsZero() && d.To.Digest != announced {
				err = &bundle.DigestError{Want: announced, Got: d.To.Digest}
			} else {
				sig = d.Signature
				next, err = bundle.OpenDelta(d, serving, s.cfg.Verifier)
			}
		}
	case fleet.ContentTypeBundle:
		kind = "full"
		sig = []byte(h.Get(fleet.HeaderSignature))
		next, err = bundle.Open(raw, sig, s.cfg.Verifier, bundle.OpenOptions{Digest: announced, Serving: serving})
	default:
		err = &bundle.FormatError{Msg: fmt.Sprintf("the control plane sent %q, not a bundle or a delta", ctype)}
	}
	s.metrics.receivedBytes.WithLabelValues(kind).Add(float64(wire))
	if err != nil {
		s.refuse(err, rev, announced)
		return
	}
	if serving != nil && next.Digest() == serving.Digest() {
		return
	}
	s.accept(next, sig, kind)
}

// refuse records a bundle that failed verification; what is served does
// not change.
func (s *Syncer) refuse(err error, rev int64, announced bundle.Digest) {
	reason := bundle.Reason(err)
	if reason == "" {
		reason = "malformed"
	}
	hint := ""
	if h, ok := err.(interface{ Hint() string }); ok {
		hint = h.Hint()
	}
	var re *bundle.RevisionError
	if errors.As(err, &re) {
		rev = re.Got
	}
	s.metrics.refusals.WithLabelValues(reason).Inc()
	s.mu.Lock()
	switch reason {
	case "digest", "base":
		// Damaged in transit, or built on a base not held: the full
		// bundle may well pass.
		s.forceFull = true
	default:
		// The bundle itself is bad: not again until a newer one.
		s.skip, s.skipUntil = announced, time.Time{}
	}
	s.degraded = "refused revision " + strconv.FormatInt(rev, 10) + ": " + reason
	s.status.LastRefusal = &fleet.Refusal{Reason: reason, Revision: rev, Digest: digestString(announced), Message: err.Error(), Hint: hint, At: s.now()}
	serving := s.status.Revision
	s.mu.Unlock()
	s.cfg.Log.Error("fleet: bundle refused; serving the previous one", "reason", reason, "revision", rev, "serving", serving, "err", err)
	s.emit("fleet.bundle.refused", fmt.Sprintf("refused revision %d (%s): %v; still serving revision %d", rev, reason, err, serving),
		map[string]any{"reason": reason, "revision": rev, "digest": digestString(announced), "serving": serving, "hint": hint})
	s.kickHeartbeat()
}

func digestString(d bundle.Digest) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

// accept hands a verified bundle to the daemon and, once it serves it,
// keeps it as the last good bundle.
func (s *Syncer) accept(next *bundle.Bundle, sig []byte, kind string) {
	start := time.Now()
	if err := s.cfg.Apply(next.Revision(), next.Objects()); err != nil {
		s.metrics.applyFailures.Inc()
		s.mu.Lock()
		s.skip, s.skipUntil = next.Digest(), s.now().Add(applyRetry)
		s.degraded = fmt.Sprintf("revision %d failed to apply", next.Revision())
		s.status.LastError = fmt.Sprintf("apply revision %d: %v", next.Revision(), err)
		serving := s.status.Revision
		s.mu.Unlock()
		s.cfg.Log.Error("fleet: revision failed to apply; serving the previous one", "revision", next.Revision(), "serving", serving, "err", err)
		s.emit("fleet.bundle.apply_failed", fmt.Sprintf("revision %d failed to apply: %v; still serving revision %d", next.Revision(), err, serving),
			map[string]any{"revision": next.Revision(), "digest": next.Digest().String(), "serving": serving})
		s.kickHeartbeat()
		return
	}
	s.mu.Lock()
	s.serving = next
	s.skip, s.skipUntil, s.forceFull, s.degraded = bundle.Digest{}, time.Time{}, false, ""
	s.status.Revision, s.status.Digest, s.status.Origin, s.status.LastSync = next.Revision(), next.Digest().String(), "control-plane", s.now()
	s.status.LastError = ""
	s.mu.Unlock()
	s.metrics.applied.WithLabelValues(kind).Inc()
	s.metrics.revision.Set(float64(next.Revision()))
	if err := bundle.WriteFileAtomic(s.bundleDir(), next, sig); err != nil {
		s.mu.Lock()
		s.degraded = "last good bundle not written"
		s.status.LastError = err.Error()
		s.mu.Unlock()
		s.cfg.Log.Error("fleet: keep the last good bundle", "err", err)
	}
	s.cfg.Log.Info("fleet: serving a new revision", "revision", next.Revision(), "digest", next.Digest(), "via", kind, "took", time.Since(start))
	s.emit("fleet.bundle.applied", fmt.Sprintf("serving revision %d (%s)", next.Revision(), kind),
		map[string]any{"revision": next.Revision(), "digest": next.Digest().String(), "via": kind})
	s.kickHeartbeat()
}

// loadLastGood serves the bundle kept on disk, verified again, while the
// control plane is asked for newer ones.
func (s *Syncer) loadLastGood() {
	b, _, err := bundle.ReadLastGood(s.bundleDir(), s.cfg.Verifier)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		reason := bundle.Reason(err)
		s.metrics.refusals.WithLabelValues(orDefault(reason, "malformed")).Inc()
		s.cfg.Log.Error("fleet: the last good bundle on disk does not verify; starting without it", "err", err)
		s.emit("fleet.bundle.refused", fmt.Sprintf("the last good bundle on disk does not verify: %v", err),
			map[string]any{"reason": orDefault(reason, "malformed"), "source": "disk"})
		s.mu.Lock()
		s.status.LastRefusal = &fleet.Refusal{Reason: orDefault(reason, "malformed"), Message: err.Error(), At: s.now(), Hint: "the data plane fetches the current bundle from the control plane"}
		s.mu.Unlock()
		return
	}
	if err := s.cfg.Apply(b.Revision(), b.Objects()); err != nil {
		s.metrics.applyFailures.Inc()
		s.setError(fmt.Sprintf("apply the last good bundle (revision %d): %v", b.Revision(), err))
		s.cfg.Log.Error("fleet: the last good bundle failed to apply", "revision", b.Revision(), "err", err)
		return
	}
	s.mu.Lock()
	s.serving = b
	s.status.Revision, s.status.Digest, s.status.Origin, s.status.LastSync = b.Revision(), b.Digest().String(), "disk", s.now()
	s.mu.Unlock()
	s.metrics.applied.WithLabelValues("disk").Inc()
	s.metrics.revision.Set(float64(b.Revision()))
	s.cfg.Log.Info("fleet: serving the last good bundle from disk", "revision", b.Revision(), "digest", b.Digest())
	s.emit("fleet.bundle.applied", fmt.Sprintf("serving revision %d from the last good bundle on disk", b.Revision()),
		map[string]any{"revision": b.Revision(), "digest": b.Digest().String(), "via": "disk"})
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

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

// tlsRefused: the control plane's TLS layer refused the client
// certificate (crypto/tls reports the peer's alert only as text).
func tlsRefused(err error) bool {
	msg := err.Error()
	for _, a := range []string{"remote error: tls: bad certificate", "remote error: tls: expired certificate",
		"remote error: tls: unknown certificate authority", "remote error: tls: certificate required",
		"remote error: tls: revoked certificate", "remote error: tls: unsupported certificate"} {
		if strings.Contains(msg, a) {
			return true
		}
	}
	return false
}
