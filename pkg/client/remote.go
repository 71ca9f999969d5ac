package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-resty/resty/v2"
	"golang.org/x/oauth2"

	"github.com/stoa-gateway/stoa/pkg/tlspin"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// Remote is a LocalAPI client for a control plane (stoad --role
// control-plane) over HTTPS: the same routes as the unix socket under the
// server's URL, each request carrying the context's bearer token. Its
// errors are the typed ones the CLI maps to exit codes, like the socket
// client's: an answer's error envelope is an *api.Error (403 is
// api.CodeForbidden), a refused token an *AuthError, no answer a
// *RemoteUnreachableError, a refused certificate a *CertificateError.
type Remote struct {
	routes
	o    RemoteOptions
	base string // the server URL without a trailing slash
	rc   *resty.Client
}

var (
	_ API       = (*Remote)(nil)
	_ transport = (*Remote)(nil)
)

// RemoteOptions configure a Remote.
type RemoteOptions struct {
	// Server is the control plane's URL: https://host[:port][/path]
	// (plain http only on loopback). Routes go under it.
	Server string
	// Context names the CLI context the server belongs to, for messages.
	Context string
	// Pin, when set, is the only certificate accepted (package tlspin):
	// chain and name are not checked. Otherwise the system roots (or
	// RootCAs) verify the server as usual.
	Pin *tlspin.Fingerprint
	// RootCAs replaces the system roots (a private CA; tests).
	RootCAs *x509.CertPool
	// Tokens hands out the bearer token of every request; it renews a
	// token before it expires (login.TokenSource). Nil sends none.
	Tokens oauth2.TokenSource
	// TokenFromEnv says the token is $STOA_TOKEN's, for messages.
	TokenFromEnv bool
	// LoginCommand is what gets a new token ("stoa login --context
	// prod"), for hints.
	LoginCommand string
	// PinCommand renders the command that pins a fingerprint to this
	// context, for hints about an untrusted certificate.
	PinCommand func(fingerprint string) string
	// ReadTimeout bounds a GET (its answer included) and the wait for a
	// stream's first byte; default 1 minute. WriteTimeout bounds any
	// other call (applies take a while); default 5 minutes.
	ReadTimeout, WriteTimeout time.Duration
	// DialTimeout bounds connecting and the TLS handshake; default 10s.
	DialTimeout time.Duration
	// Retries is how often a GET is sent again after a connection
	// failure or a 502/503/504 answer; default 2, negative for none.
	// Nothing else is ever retried: a change must not be made twice.
	Retries int
	// RetryWait is the first pause between attempts (doubling, with
	// jitter, up to 2s); default 200ms.
	RetryWait time.Duration
}

// Defaults of RemoteOptions.
const (
	DefaultReadTimeout  = time.Minute
	DefaultWriteTimeout = 5 * time.Minute
	DefaultDialTimeout  = 10 * time.Second
	DefaultRetries      = 2
)

// maxAnswer bounds a (non-streamed) answer held in memory.
const maxAnswer = 1 << 30

// streamKey marks the context of a streamed request: its answer is read
// as it arrives, so it is never retried once it came.
type streamKey struct{}

// NewRemote returns a client for the control plane at o.Server.
func NewRemote(o RemoteOptions) (*Remote, error) {
	u, err := url.Parse(o.Server)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("control plane URL %q: want https://host[:port][/path]", o.Server)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		if o.Pin != nil {
			return nil, fmt.Errorf("control plane URL %q: a fingerprint pins a TLS certificate, but the URL is plain http", o.Server)
		}
	default:
		return nil, fmt.Errorf("control plane URL %q: want https:// (plain http only on loopback: tokens would travel unencrypted)", o.Server)
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.RetryWait <= 0 {
		o.RetryWait = 200 * time.Millisecond
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	if o.Pin != nil {
		tlsConf = pinnedTLS(*o.Pin)
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   o.DialTimeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	hc := &http.Client{
		Transport: tr,
		// A redirect is reported, never followed: the token must not
		// travel to a URL the context does not name.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r := &Remote{o: o, base: strings.TrimSuffix(o.Server, "/")}
	r.rc = resty.NewWithClient(hc).
		SetLogger(discardLogger{}).
		SetDisableWarn(true).
		SetHeader("User-Agent", "stoa/"+version.Version+" ("+runtime.GOOS+"/"+runtime.GOARCH+")").
		SetResponseBodyLimit(maxAnswer).
		SetRetryCount(o.Retries).
		SetRetryWaitTime(o.RetryWait).
		SetRetryMaxWaitTime(2 * time.Second).
		AddRetryCondition(retryable)
	r.routes = routes{tr: r}
	return r, nil
}

// Endpoint is the control plane's URL.
func (r *Remote) Endpoint() string { return r.base }

// Context is the name of the context the client was made for.
func (r *Remote) Context() string { return r.o.Context }

// retryable decides whether resty sends a request again: GETs only
// (reads change nothing), after a failure to connect or an answer saying
// the server is briefly unavailable (a restart behind a load balancer).
// Certificate problems are never retried: they do not heal.
func retryable(resp *resty.Response, err error) bool {
	if resp == nil || resp.Request == nil || resp.Request.Method != http.MethodGet {
		return false
	}
	if err != nil {
		return !tlsProblem(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	if resp.Request.Context().Value(streamKey{}) != nil {
		return false
	}
	switch resp.StatusCode() {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// tlsProblem reports a failure of TLS itself (a certificate, a pin, a
// protocol version, a port without TLS), which sending again cannot fix.
func tlsProblem(err error) bool {
	var cve *tls.CertificateVerificationError
	var pe *pinError
	var rhe tls.RecordHeaderError
	var alert tls.AlertError
	return errors.As(err, &cve) || errors.As(err, &pe) || errors.As(err, &rhe) || errors.As(err, &alert) || notTLS(err)
}

// notTLS reports an HTTPS request answered in plain HTTP (net/http says
// so only in its message).
func notTLS(err error) bool {
	var rhe tls.RecordHeaderError
	return errors.As(err, &rhe) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// request starts a request with the bearer token.
func (r *Remote) request(ctx context.Context) (*resty.Request, error) {
	req := r.rc.R().SetContext(ctx).SetHeader("Accept", "application/json")
	if tp, ts := traceContext(); tp != "" {
		req.SetHeader("traceparent", tp)
		if ts != "" {
			req.SetHeader("tracestate", ts)
		}
	}
	if r.o.Tokens != nil {
		t, err := r.o.Tokens.Token()
		if err != nil {
			return nil, r.tokenError(err)
		}
		if t.AccessToken != "" {
			req.SetHeader("Authorization", "Bearer "+t.AccessToken)
		}
	}
	return req, nil
}

func (r *Remote) do(ctx context.Context, method, path string, in, out any) error {
	timeout := r.o.WriteTimeout
	if method == http.MethodGet {
		timeout = r.o.ReadTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := r.request(rctx)
	if err != nil {
		return err
	}
	if in != nil {
		b, err := encodeBody(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		req.SetBody(b).SetHeader("Content-Type", "application/json")
	}
	resp, err := req.Execute(method, r.base+path)
	if err != nil {
		return r.transportError(ctx, rctx, method, timeout, err)
	}
	if err := r.answerError(resp.StatusCode(), resp.Status(), resp.Header(), resp.Body()); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	var err2 error
	if l, ok := out.(*digestList); ok {
		err2 = l.UnmarshalJSON(bytes.TrimSpace(resp.Body())) // scanned once, not twice
	} else {
		err2 = json.Unmarshal(resp.Body(), out)
	}
	if err2 != nil {
		return fmt.Errorf("decode the control plane's answer to %s %s: %w", method, path, err2)
	}
	return nil
}

func (r *Remote) stream(ctx context.Context, path string) (io.ReadCloser, error) {
	// No timeout on the stream itself (it follows events for as long as
	// the user watches), only on its start: the answer's headers.
	sctx, cancel := context.WithCancel(context.WithValue(ctx, streamKey{}, true))
	var timedOut atomic.Bool
	timer := time.AfterFunc(r.o.ReadTimeout, func() { timedOut.Store(true); cancel() })
	req, err := r.request(sctx)
	if err != nil {
		timer.Stop()
		cancel()
		return nil, err
	}
	resp, err := req.SetDoNotParseResponse(true).SetHeader("Accept", "application/x-ndjson, application/json").
		Execute(http.MethodGet, r.base+path)
	timer.Stop()
	if err != nil {
		cancel()
		if timedOut.Load() {
			return nil, &RemoteUnreachableError{Server: r.base, Context: r.o.Context, Err: errors.New("no answer"), Timeout: r.o.ReadTimeout}
		}
		return nil, r.transportError(ctx, ctx, http.MethodGet, r.o.ReadTimeout, err)
	}
	raw := resp.RawResponse
	if raw.StatusCode >= 300 {
		defer cancel()
		defer raw.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(raw.Body, maxErrorBody))
		return nil, r.answerError(raw.StatusCode, raw.Status, raw.Header, b)
	}
	return &cancelOnClose{ReadCloser: raw.Body, cancel: cancel}, nil
}

// cancelOnClose releases a stream's context with its body.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// answerError turns an answer that is not a success into an error: the
// error envelope (*api.Error), an *AuthError for 401, or a redirect the
// client refused to follow.
func (r *Remote) answerError(status int, statusText string, h http.Header, body []byte) error {
	switch {
	case status < 300:
		return nil
	case status < 400:
		loc := h.Get("Location")
		if loc == "" {
			loc = "(no Location)"
		}
		return &hintedError{
			err:  fmt.Errorf("the control plane at %s answered %s, redirecting to %s; stoa does not follow redirects with a token", r.base, statusText, loc),
			hint: fmt.Sprintf("set the context's server to the URL the LocalAPI is served at: stoa context add %s --server URL --overwrite", r.o.Context),
		}
	case status == http.StatusUnauthorized:
		return &AuthError{Server: r.base, Context: r.o.Context, Err: errorFromAnswer("the control plane", status, statusText, body),
			FromEnv: r.o.TokenFromEnv, NoToken: r.o.Tokens == nil, LoginCommand: r.o.LoginCommand}
	}
	return errorFromAnswer("the control plane", status, statusText, body)
}

// tokenError classifies a failure to get a token: the issuer out of reach
// while renewing is unreachability (exit 5); anything else (not logged
// in, session expired, an unreadable token file) needs a login.
func (r *Remote) tokenError(err error) error {
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return &RemoteUnreachableError{Server: r.base, Context: r.o.Context, Err: err, Issuer: true, LoginCommand: r.o.LoginCommand}
	}
	return &AuthError{Server: r.base, Context: r.o.Context, Err: err, FromEnv: r.o.TokenFromEnv, LoginCommand: r.o.LoginCommand}
}

// transportError classifies a request that got no answer. ctx is the
// caller's context, rctx the request's (with its timeout).
func (r *Remote) transportError(ctx, rctx context.Context, method string, timeout time.Duration, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The URL is in the message already.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var cve *tls.CertificateVerificationError
	var pe *pinError
	switch {
	case errors.As(err, &pe):
		return &CertificateError{Server: r.base, Context: r.o.Context, Pinned: true, Want: pe.want, Presented: pe.got,
			Subject: pe.subject, Err: pe.err, pinCommand: r.o.PinCommand}
	case errors.As(err, &cve):
		ce := &CertificateError{Server: r.base, Context: r.o.Context, Err: cve.Err, pinCommand: r.o.PinCommand}
		if len(cve.UnverifiedCertificates) > 0 {
			leaf := cve.UnverifiedCertificates[0]
			ce.Presented, ce.Subject = tlspin.Of(leaf.Raw), leaf.Subject.String()
		}
		return ce
	case notTLS(err):
		return &RemoteUnreachableError{Server: r.base, Context: r.o.Context, Err: err, NotTLS: true}
	case rctx.Err() != nil:
		return &RemoteUnreachableError{Server: r.base, Context: r.o.Context, Err: err, Timeout: timeout,
			Unsure: method != http.MethodGet, Method: method}
	}
	var oe *net.OpError
	sent := !(errors.As(err, &oe) && oe.Op == "dial")
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		sent = false
	}
	return &RemoteUnreachableError{Server: r.base, Context: r.o.Context, Err: err, Unsure: sent && method != http.MethodGet, Method: method}
}

// pinError is a certificate that does not match the context's pin.
type pinError struct {
	want, got tlspin.Fingerprint
	subject   string
	err       error
}

func (e *pinError) Error() string { return e.err.Error() }
func (e *pinError) Unwrap() error { return e.err }

// pinnedTLS is tlspin's configuration with the presented certificate
// kept for the error message.
func pinnedTLS(want tlspin.Fingerprint) *tls.Config {
	c := tlspin.TLSConfig(want)
	check := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		err := check(cs)
		if err == nil {
			return nil
		}
		pe := &pinError{want: want, err: err}
		if len(cs.PeerCertificates) > 0 {
			pe.got, pe.subject = tlspin.Of(cs.PeerCertificates[0].Raw), cs.PeerCertificates[0].Subject.String()
		}
		return pe
	}
	return c
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// discardLogger silences resty: every failure reaches the caller as an
// error, and stderr belongs to the command.
type discardLogger struct{}

func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Warnf(string, ...any)  {}
func (discardLogger) Debugf(string, ...any) {}
