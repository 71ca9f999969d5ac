package dataplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

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
