package federation

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// maxErrorBody bounds what is read of a non-JSON-RPC error answer.
const maxErrorBody = 64 << 10

// errSessionExpired: the upstream no longer knows the session (HTTP 404 on
// a request carrying Mcp-Session-Id, 2025-11-25 transports.mdx "Session
// Management" item 4; or -32022 for a 2026-07-28 version it stopped
// serving). The call is re-sent once on a new session.
var errSessionExpired = errors.New("upstream session expired")

// httpTransport is a Streamable HTTP client for both protocol eras.
//
// Legacy (2025-03-26 .. 2025-11-25): initialize once, then every POST carries
// MCP-Protocol-Version and the Mcp-Session-Id the server issued (if any);
// server notifications arrive on a GET event stream.
//
// Modern (2026-07-28): no session; every request carries
// params._meta {protocolVersion, clientCapabilities, clientInfo} and the
// MCP-Protocol-Version, Mcp-Method and Mcp-Name headers (plus Mcp-Param-*
// for x-mcp-header arguments); notifications arrive on a
// subscriptions/listen event stream.
type httpTransport struct {
	cfg        *Config
	hk         hooks
	client     *http.Client
	tr         *http.Transport
	clientInfo []byte
	resolve    func(ref *Auth) (string, string, error)
	maxMessage int

	nextID atomic.Int64

	mu     sync.Mutex
	sess   *httpSession
	closed bool

	reinitMu sync.Mutex
}

// httpSession is one negotiated session; immutable once installed.
type httpSession struct {
	hs      handshake
	id      string // Mcp-Session-Id, legacy only
	authHdr string
	authVal string
	meta    []byte // `{"_meta":{...}` for modern requests
	cancel  context.CancelFunc
}

func newHTTPTransport(cfg *Config, opts *Options, hk hooks) *httpTransport {
	ct := cfg.connectTimeout()
	tr := &http.Transport{
		// Upstreams are reached directly: an HTTP_PROXY meant for stoad's
		// other traffic must not silently sit in front of them.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: ct, KeepAlive: 30 * time.Second, Control: opts.DialControl}).DialContext,
		TLSHandshakeTimeout:   ct,
		TLSClientConfig:       opts.TLSClientConfig,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &httpTransport{
		cfg: cfg,
		hk:  hk,
		tr:  tr,
		client: &http.Client{
			Transport: tr,
			// Redirects are not followed: a redirect would carry stoad's
			// credential header to wherever the upstream points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		clientInfo: opts.clientInfo(),
		resolve:    opts.resolveAuth,
		maxMessage: opts.maxMessage(),
	}
}

func (t *httpTransport) pid() int { return 0 }

func (t *httpTransport) current() *httpSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sess
}

func (t *httpTransport) connect(ctx context.Context) (handshake, error) {
	s, err := t.handshake(ctx)
	if err != nil {
		return handshake{}, err
	}
	if !t.install(s, true) {
		return handshake{}, errors.New("upstream closed")
	}
	return s.hs, nil
}

// install makes s the current session, ends the previous one (deleting it
// upstream when del is set) and starts s's notification stream.
func (t *httpTransport) install(s *httpSession, del bool) bool {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		cancel()
		return false
	}
	old := t.sess
	t.sess = s
	t.mu.Unlock()
	if old != nil {
		old.cancel()
		if del {
			go t.deleteSession(old)
		}
	}
	if s.hs.toolsListChanged || s.hs.resourcesListChanged && t.cfg.Resources.Expose {
		go t.listen(ctx, s)
	}
	return true
}

func (t *httpTransport) close(ctx context.Context) {
	t.mu.Lock()
	s := t.sess
	t.sess = nil
	t.closed = true
	t.mu.Unlock()
	if s != nil {
		s.cancel()
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		t.deleteSessionCtx(dctx, s)
		cancel()
	}
	t.tr.CloseIdleConnections()
}

// deleteSession ends a legacy session upstream (2025-11-25 transports.mdx:
// clients that no longer need a session SHOULD send DELETE). Best effort.
func (t *httpTransport) deleteSession(s *httpSession) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t.deleteSessionCtx(ctx, s)
}

func (t *httpTransport) deleteSessionCtx(ctx context.Context, s *httpSession) {
	if s.id == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, t.cfg.URL, nil)
	if err != nil {
		return
	}
	t.setHeaders(req.Header, s, "", "", nil)
	if resp, err := t.client.Do(req); err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
	}
}

// handshake negotiates a new session: server/discover first unless a
// legacy version is pinned, initialize when the upstream does not serve
// 2026-07-28 (the fallback rule of 2026-07-28 versioning.mdx, as the SDK
// clients do it).
func (t *httpTransport) handshake(ctx context.Context) (*httpSession, error) {
	s := &httpSession{}
	if t.cfg.Auth != nil {
		h, v, err := t.resolve(t.cfg.Auth)
		if err != nil {
			return nil, err
		}
		s.authHdr, s.authVal = h, v
	}
	want := t.cfg.ProtocolVersion
	if want == "" || want == VersionModern {
		ok, err := t.discover(ctx, s)
		if ok {
			return s, nil
		}
		if err != nil && (want == VersionModern || isTransportError(err)) {
			return nil, fmt.Errorf("server/discover: %w", err)
		}
		if want == VersionModern {
			return nil, errors.New("server/discover: the upstream does not serve protocol version " + VersionModern)
		}
		*s = httpSession{authHdr: s.authHdr, authVal: s.authVal}
	}
	version := want
	if version == "" || version == VersionModern {
		version = VersionLegacy
	}
	id := t.nextID.Add(1)
	body := appendRequest(nil, id, "initialize", initializeParams(version, t.clientInfo))
	m, hdr, err := t.post(ctx, s, body, "initialize", "", nil, id)
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	raw, err := resultOf(m)
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	var res initializeResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("initialize: decode result: %w", err)
	}
	if !contains(legacyVersions, res.ProtocolVersion) {
		return nil, fmt.Errorf("initialize: the upstream answered protocol version %q; stoa speaks %s", res.ProtocolVersion, strings.Join(legacyVersions, ", "))
	}
	s.hs = res.handshake(res.ProtocolVersion, false)
	s.id = hdr.Get("Mcp-Session-Id")
	s.hs.sessionID = s.id != ""
	note := appendNotification(nil, "notifications/initialized", nil)
	if _, _, err := t.post(ctx, s, note, "notifications/initialized", "", nil, 0); err != nil {
		return nil, fmt.Errorf("notifications/initialized: %w", err)
	}
	return s, nil
}

// discover tries the 2026-07-28 handshake. ok is false when the upstream
// does not serve that version; err is set when it could not be asked.
func (t *httpTransport) discover(ctx context.Context, s *httpSession) (ok bool, err error) {
	s.hs = handshake{version: VersionModern, modern: true}
	s.meta = t.modernMeta()
	id := t.nextID.Add(1)
	body := t.encode(s, id, &request{method: "server/discover"})
	m, _, err := t.post(ctx, s, body, "server/discover", "", nil, id)
	if err != nil {
		return false, err
	}
	raw, err := resultOf(m)
	if err != nil {
		return false, err
	}
	var res initializeResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return false, fmt.Errorf("decode result: %w", err)
	}
	if !slices.Contains(res.SupportedVersions, VersionModern) {
		return false, nil
	}
	s.hs = res.handshake(VersionModern, true)
	return true, nil
}

// modernMeta is the start of every 2026-07-28 params object: the _meta
// member (basic/index.mdx "_meta": protocolVersion and clientCapabilities
// are required, clientInfo recommended), left open for more members.
func (t *httpTransport) modernMeta() []byte {
	b := []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"` + VersionModern +
		`","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":`)
	b = append(b, t.clientInfo...)
	return append(b, '}')
}

// encode builds the request body for session s.
func (t *httpTransport) encode(s *httpSession, id int64, r *request) []byte {
	b := make([]byte, 0, 80+len(r.method)+len(r.inner)+len(s.meta))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":"`...)
	b = append(b, r.method...)
	b = append(b, `","params":`...)
	switch {
	case s.hs.modern && len(r.trace) > 0:
		// s.meta ends with _meta's closing brace: the trace members go
		// inside it.
		b = append(b, s.meta[:len(s.meta)-1]...)
		b = append(append(append(b, ','), r.trace...), '}')
		if len(r.inner) > 0 {
			b = append(b, ',')
			b = append(b, r.inner...)
		}
		b = append(b, '}')
	case s.hs.modern:
		b = append(b, s.meta...)
		if len(r.inner) > 0 {
			b = append(b, ',')
			b = append(b, r.inner...)
		}
		b = append(b, '}')
	default:
		b = appendParams(b, r)
	}
	return append(b, '}')
}

// appendParams appends the params object of an initialize-era (or stdio)
// request: its members, behind a _meta carrying the trace context if any.
func appendParams(b []byte, r *request) []byte {
	b = append(b, '{')
	if len(r.trace) > 0 {
		b = append(append(append(b, `"_meta":{`...), r.trace...), '}')
		if len(r.inner) > 0 {
			b = append(b, ',')
		}
	}
	b = append(b, r.inner...)
	return append(b, '}')
}

func (t *httpTransport) call(ctx context.Context, r *request) (json.RawMessage, error) {
	s := t.current()
	if s == nil {
		return nil, errNotConnected
	}
	id := t.nextID.Add(1)
	m, _, err := t.post(ctx, s, t.encode(s, id, r), r.method, r.name, r.paramHeaders, id)
	if errors.Is(err, errSessionExpired) {
		if s, err = t.reinit(ctx, s); err != nil {
			return nil, err
		}
		id = t.nextID.Add(1)
		m, _, err = t.post(ctx, s, t.encode(s, id, r), r.method, r.name, r.paramHeaders, id)
	}
	if err != nil {
		if ctx.Err() != nil {
			// basic/utilities/cancellation: tell the upstream to stop working
			// on a request nobody waits for any more (the SDK clients send it
			// in both eras; a 2026-07-28 server may also stop when the POST is
			// closed).
			go t.notify(s, "notifications/cancelled", cancelledParams(id, "stoa: call timed out or was cancelled"))
		}
		return nil, err
	}
	return resultOf(m)
}

// reinit replaces the session old, unless another goroutine already did.
func (t *httpTransport) reinit(ctx context.Context, old *httpSession) (*httpSession, error) {
	t.reinitMu.Lock()
	defer t.reinitMu.Unlock()
	if cur := t.current(); cur != old {
		if cur == nil {
			return nil, errNotConnected
		}
		return cur, nil
	}
	hctx, cancel := context.WithTimeout(ctx, t.cfg.connectTimeout())
	defer cancel()
	s, err := t.handshake(hctx)
	if err != nil {
		return nil, fmt.Errorf("re-initialize expired session: %w", err)
	}
	if !t.install(s, false) {
		return nil, errNotConnected
	}
	t.hk.log.Info("mcp upstream session re-initialized", "protocol", s.hs.version)
	t.hk.reinit()
	t.hk.resync()
	return s, nil
}

func (t *httpTransport) notify(s *httpSession, method string, params []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t.post(ctx, s, appendNotification(nil, method, params), method, "", nil, 0)
}

func (t *httpTransport) setHeaders(h http.Header, s *httpSession, method, name string, params []header) {
	h["Accept"] = []string{"application/json, text/event-stream"}
	if s.hs.version != "" {
		h["Mcp-Protocol-Version"] = []string{s.hs.version}
	}
	if s.id != "" {
		h["Mcp-Session-Id"] = []string{s.id}
	}
	if s.hs.modern && method != "" {
		h["Mcp-Method"] = []string{method}
		if name != "" {
			h["Mcp-Name"] = []string{headerValue(name)}
		}
		for _, p := range params {
			h.Set(p.name, p.value)
		}
	}
	if s.authHdr != "" {
		h.Set(s.authHdr, s.authVal)
	}
}

// post sends one JSON-RPC message and, for a request (id != 0), returns
// the response, read from a JSON body or from the SSE stream the upstream
// answered with.
func (t *httpTransport) post(ctx context.Context, s *httpSession, body []byte, method, name string, params []header, id int64) (_ *message, _ http.Header, err error) {
	// The request outlives ctx by the end of an answer stream: once the
	// answer is in, the rest of the stream is read in the background so
	// the connection goes back to the pool (see drain). Until then, ctx
	// ending cancels the request, and the error is ctx's (a deadline is a
	// timeout, not a broken connection).
	reqCtx, cancelReq := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancelReq)
	detached := false
	defer func() {
		if !detached {
			stop()
			cancelReq()
		}
		if err != nil && ctx.Err() != nil {
			err = ctx.Err()
		}
	}()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, t.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header["Content-Type"] = []string{"application/json"}
	t.setHeaders(req.Header, s, method, name, params)
	if sp := tracing.SpanFromContext(ctx); sp.IsValid() {
		var tb [tracing.TraceparentLen]byte
		req.Header.Set(tracing.HeaderTraceparent, string(sp.AppendTraceparent(tb[:0])))
		if ts := sp.Tracestate(); len(ts) > 0 {
			req.Header.Set(tracing.HeaderTracestate, string(ts))
		}
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if !detached {
			resp.Body.Close()
		}
	}()
	code := resp.StatusCode
	switch {
	case code == http.StatusNotFound && s.id != "":
		return nil, nil, errSessionExpired
	case code >= 200 && code < 300 && id == 0:
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil, resp.Header, nil
	case code == http.StatusAccepted || code == http.StatusNoContent:
		return nil, nil, fmt.Errorf("upstream accepted %s without answering (HTTP %d)", method, code)
	case code >= 200 && code < 300:
		if mediaType(resp.Header.Get("Content-Type")) == "text/event-stream" {
			m, err := t.readStream(ctx, s, resp.Body, id)
			if err == nil && stop() {
				detached = true
				go drain(resp.Body, cancelReq)
			}
			return m, resp.Header, err
		}
		b, err := readLimited(resp.Body, t.maxMessage)
		if err != nil {
			return nil, nil, err
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, nil, fmt.Errorf("decode upstream answer to %s: %w", method, err)
		}
		if !m.isResponse() || !idEquals(m.ID, id) {
			return nil, nil, fmt.Errorf("upstream answered %s with an unrelated message", method)
		}
		return &m, resp.Header, nil
	}
	b, _ := readLimited(resp.Body, maxErrorBody)
	var m message
	if json.Unmarshal(b, &m) == nil && m.Error != nil {
		if s.id != "" && code == http.StatusBadRequest && strings.Contains(strings.ToLower(m.Error.Message), "session") {
			// Servers built on the TypeScript SDK's examples (server-everything
			// among them) answer an unknown session with 400 "No valid session
			// ID provided" rather than 404; recovering is what a user expects.
			return nil, nil, errSessionExpired
		}
		if s.hs.modern && m.Error.Code == -32022 {
			return nil, nil, errSessionExpired
		}
		return nil, nil, m.Error
	}
	return nil, nil, &statusError{code: code, body: excerpt(b)}
}

// drainTimeout bounds reading what follows the answer on a POST's event
// stream.
const drainTimeout = 5 * time.Second

// drain reads an answer stream to its end, so that its keep-alive
// connection is reused: closing a response body before its end closes the
// connection, and a new one per call costs a TCP handshake (and about
// 0.3 ms of CPU). The server ends the stream right after the answer
// (2025-11-25 transports.mdx: "After the JSON-RPC response has been sent,
// the server SHOULD close the SSE stream"); one that keeps it open is cut
// after drainTimeout. Events after the answer are dropped, as a client
// that closed the stream would never have seen them.
func drain(body io.ReadCloser, cancel context.CancelFunc) {
	timer := time.AfterFunc(drainTimeout, cancel)
	io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	timer.Stop()
	body.Close()
	cancel()
}

// readStream reads an SSE response until the response to id, handling the
// notifications and requests the upstream sends before it.
func (t *httpTransport) readStream(ctx context.Context, s *httpSession, body io.Reader, id int64) (*message, error) {
	r := newSSEReader(body, t.maxMessage)
	for {
		data, err := r.next()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("upstream event stream ended before the answer: %w", err)
		}
		if len(data) == 0 {
			continue
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			t.hk.log.Warn("mcp upstream sent an undecodable event", "error", err)
			continue
		}
		if m.isResponse() && idEquals(m.ID, id) {
			return &m, nil
		}
		t.inbound(s, &m)
	}
}

// headerValue encodes an Mcp-Name value: as is when it is visible ASCII
// without surrounding blanks, else in the =?base64?...?= form (2026-07-28
// streamable-http.mdx "Request Metadata").
func headerValue(s string) string {
	plain := s != "" && s[0] != ' ' && s[0] != '\t' && s[len(s)-1] != ' ' && s[len(s)-1] != '\t'
	for i := 0; plain && i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			plain = false
		}
	}
	if plain || s == "" {
		return s
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

func readLimited(r io.Reader, max int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("upstream answer larger than %d bytes", max)
	}
	return b, nil
}

// excerpt is a short, printable piece of an error body.
func excerpt(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 200 {
		b = b[:200]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
}

// isTransportError reports whether err means the upstream could not be
// reached or did not answer (as opposed to answering with an error).
func isTransportError(err error) bool {
	var rpcErr *RPCError
	var se *statusError
	return err != nil && !errors.As(err, &rpcErr) && !errors.As(err, &se)
}

var errNotConnected = errors.New("no session with the upstream")

// logger returns l or a discarding logger.
func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
