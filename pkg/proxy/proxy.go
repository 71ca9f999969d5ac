// Package proxy is stoad's HTTP data plane: a fasthttp reverse proxy that
// serves every applied Tool at its route with authentication, tenant
// isolation, GCRA rate limits, strict HTTP hygiene and metrics. The route
// table is compiled per revision and swapped atomically; upstream pools
// survive reloads, so a reload drops no request (see docs/proxy.md).
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/stoa-gateway/stoa/pkg/policy/policyrt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// Options configure a Proxy.
type Options struct {
	// Listen is the TCP address served.
	Listen string
	// UpstreamTLS configures connections to https upstreams; nil uses
	// the system's roots.
	UpstreamTLS *tls.Config
	Log         *slog.Logger
	// Auth authenticates callers; its keys and resolver are swapped by
	// the daemon.
	Auth *auth.Authenticator
	// Limiter decides rate limits (shared with MCP): the local
	// *limits.Limiter, or a fleet backend (pkg/limits/redislimit) that
	// may answer Decision.Unavailable, which becomes a 503.
	Limiter limits.Checker
	// Stats receives per-route statistics.
	Stats *telemetry.Registry
	// OnReject is called with the client address of every 429 caused by
	// the client's own per-source or plan limit (the escalation path to
	// XDP). Optional.
	OnReject func(src netip.Addr)
	// OnEvent reports runtime events (upstream ejections, health). Optional.
	OnEvent func(typ, tenant, msg string, data map[string]any)
	// Admit decides, after authentication and before rate limits, whether
	// an authenticated caller may use a tool (subscriptions, quotas). Nil
	// admits everyone. It must be fast and allocation-free on admit.
	Admit func(tenant, tool string, p *auth.Principal, now time.Time) *Rejection
	// Refund undoes what Admit counted (quota) when a rate limit then
	// refuses the call. Optional.
	Refund func(tenant, tool string, p *auth.Principal, now time.Time)
	// OnFailure is called after the response for every failed upstream
	// exchange (5xx, timeout, connection failure), e.g. to capture an error
	// snapshot. f is valid only during the call.
	OnFailure func(f *Failure)
	// WrapListener wraps the TCP listener (the XDP userspace fallback).
	WrapListener func(net.Listener) net.Listener
	// MaxHeaderBytes is fixed at start (fasthttp's read buffer). Zero
	// takes the Gateway spec's limits.maxHeaderBytes of the revision
	// loaded at start (spec.DefaultGatewayLimits before one is loaded).
	MaxHeaderBytes int
	// AccessLog receives JSON access-log lines when the Gateway enables it.
	AccessLog io.Writer
	// Tracer records OpenTelemetry spans of proxied requests when the
	// Gateway enables tracing (docs/tracing.md). Optional.
	Tracer *tracing.Tracer
}

// Rejection is Admit's refusal: the status, a stable error code and a
// message for the JSON body, and for 429 the Retry-After.
type Rejection struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

// Failure describes a failed upstream exchange for OnFailure: the route's
// facts, and through Exchange the messages themselves, copied only when a
// hook asks (one that merely counts a repeat pays for no copy).
type Failure struct {
	Tenant, Tool, Upstream string
	Consumer               string
	Status                 int    // status sent to the client
	Reason                 string // "5xx", "timeout", "connect", "reset", "other"
	Err                    error  // transport error, if any
	Start                  time.Time
	Duration               time.Duration
	Revision               int64
	RequestID              string
	// Prefix is the route's path prefix and Rest the escaped request path
	// below it: the client asked for Prefix+Rest, an upstream is sent its
	// base path + Rest (see UpstreamURL).
	Prefix, Rest string
	// Method is the request's method.
	Method string

	ctx *fasthttp.RequestCtx // the exchange, during OnFailure only
}

// Proxy is the data-plane runtime.
type Proxy struct {
	opts  Options
	log   *slog.Logger
	table atomic.Pointer[table]
	pools *poolRegistry
	// strayHTTPSeries: a prepared table created statistics series that
	// no swap has retained or dropped yet.
	strayHTTPSeries atomic.Bool
	ids             *requestIDs
	srv             *fasthttp.Server
	ln              net.Listener
	conns           *connLimiter
	mounts          map[string]fasthttp.RequestHandler
	prefixMounts    []prefixMount

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started atomic.Bool
	access  *accessLogger

	// connWG counts client connections being served (fast.go); stopping
	// is set by Stop.
	connWG   sync.WaitGroup
	stopping atomic.Bool
	// slowOnly serves every new connection through fasthttp's server
	// (tests compare both paths).
	slowOnly atomic.Bool

	// CEL policies (policy.go).
	policies policyrt.Compiler // CEL policies, compiled per revision
	callers  policyCallers
	denials  denialLog
}

type prefixMount struct {
	prefix string
	h      fasthttp.RequestHandler
}

// New builds a proxy; Prepare/swap load a revision, Start serves.
func New(opts Options) *Proxy {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Stats == nil {
		opts.Stats = telemetry.NewRegistry()
	}
	if opts.Limiter == nil {
		opts.Limiter = limits.New(limits.Options{})
	}
	if opts.Auth == nil {
		opts.Auth = &auth.Authenticator{}
	}
	p := &Proxy{opts: opts, log: opts.Log, ids: newRequestIDs(), mounts: map[string]fasthttp.RequestHandler{}}
	p.pools = newPoolRegistry(opts.Log, p.onEject)
	p.pools.onRestore = p.onRestore
	p.pools.tls = opts.UpstreamTLS
	p.conns = newConnLimiter(func() int {
		if t := p.table.Load(); t != nil {
			return t.gw.maxConnsPerSource
		}
		return 256
	}, p.connTimeouts)
	if opts.AccessLog != nil {
		p.access = newAccessLogger(opts.AccessLog)
	}
	return p
}

// Mount serves h for requests whose path is exactly path, or, when path
// ends in '/', starts with it (MCP endpoints). Call before Start.
func (p *Proxy) Mount(path string, h fasthttp.RequestHandler) {
	if strings.HasSuffix(path, "/") {
		p.prefixMounts = append(p.prefixMounts, prefixMount{path, h})
		return
	}
	p.mounts[path] = h
}

// Name implements state.Runtime.
func (p *Proxy) Name() string { return "proxy" }

// Prepare compiles a revision; the returned swap makes it live.
func (p *Proxy) Prepare(st *state.Revision) (func(), error) {
	chains, perr := policyChains(&p.policies, st)
	t, err := compile(st, p.pools, p.opts.Stats, p.table.Load(), chains)
	if err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, perr
	}
	attachPolicies(chains, t)
	if t.newSeries {
		// Until a swap drops them, should this table never be served.
		p.strayHTTPSeries.Store(true)
	}
	return func() {
		old := p.table.Swap(t)
		// A reload may change what a principal stands for (claims
		// mapping, keys): callers are built again from the new ones.
		p.callers.reset()
		if old == nil || old.gw.connTimeouts() != t.gw.connTimeouts() {
			// Open connections follow the new timeouts at once (a slow
			// client that started under the old ones included).
			p.conns.refresh()
		}
		p.pools.retain(t, 2*time.Minute)
		// The HTTP series are the live table's routes, plus those of
		// tables prepared and never served (strayHTTPSeries). With no
		// stray one, the same routes by tool: nothing to drop.
		if !t.sameRoutes || p.strayHTTPSeries.Swap(false) {
			keep := make(map[[2]string]bool, len(t.routes))
			for _, r := range t.routes {
				keep[[2]string{r.Tenant, r.Tool}] = true
			}
			p.opts.Stats.Retain(telemetry.KindHTTP, keep)
		}
	}, nil
}

// Start listens and serves.
func (p *Proxy) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", p.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", p.opts.Listen, err)
	}
	// The connection limiter wraps outermost: connections the XDP
	// fallback refuses are never counted, and the server sees the
	// limiter's trackedConn, which owns read deadlines and checks framing.
	p.ln = ln
	if p.opts.WrapListener != nil {
		p.ln = p.opts.WrapListener(p.ln)
	}
	p.ln = p.conns.wrap(p.ln)
	p.srv = &fasthttp.Server{
		Handler:        p.serve,
		ErrorHandler:   p.errorHandler,
		HeaderReceived: p.headerReceived,
		ExpectHandler:  p.expect,
		ConnState:      connStateHook,
		Logger:         fasthttpLogger{p.log},
		// Until a revision is loaded, the spec's default Gateway limits.
		ReadBufferSize: spec.DefaultGatewayLimits.MaxHeaderBytes,
		// No ReadTimeout or IdleTimeout: trackedConn sets every read
		// deadline from the live revision (fasthttp's are fixed at start).
		WriteTimeout:                 spec.DefaultGatewayLimits.WriteTimeout.D(),
		MaxRequestBodySize:           int(spec.DefaultGatewayLimits.MaxBodyBytes),
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		SecureErrorLogMessage:        true,
		CloseOnShutdown:              true,
		TCPKeepalive:                 true,
	}
	if t := p.table.Load(); t != nil {
		p.srv.WriteTimeout = t.gw.writeTimeout
		// The header buffer is sized once, at start (fasthttp cannot
		// resize it for a running server); Status says when a revision
		// asks for another size.
		p.srv.ReadBufferSize = t.gw.maxHeaderBytes
	}
	if p.opts.MaxHeaderBytes > 0 {
		p.srv.ReadBufferSize = p.opts.MaxHeaderBytes
	}
	hctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		if err := p.acceptLoop(p.ln); err != nil {
			p.log.Error("proxy stopped serving", "err", err)
		}
	}()
	go func() {
		defer p.wg.Done()
		p.pools.healthLoop(hctx, p.onHealth)
	}()
	p.started.Store(true)
	return nil
}

// Addr is the bound listen address.
func (p *Proxy) Addr() string {
	if p.ln == nil {
		return p.opts.Listen
	}
	return p.ln.Addr().String()
}

// Stop drains in-flight requests within ctx.
func (p *Proxy) Stop(ctx context.Context) error {
	if !p.started.Load() {
		return nil
	}
	if p.cancel != nil {
		p.cancel()
	}
	p.stopping.Store(true)
	_ = p.ln.Close()
	err := p.drain(ctx)
	p.wg.Wait()
	return err
}

// Status reports the proxy's line in `stoa status`.
func (p *Proxy) Status() api.Component {
	c := api.Component{Name: "proxy", State: "ok", Data: map[string]any{"address": p.Addr()}}
	t := p.table.Load()
	if t == nil {
		c.State, c.Detail = "starting", "no revision loaded"
		return c
	}
	down := 0
	ups := p.pools.all()
	now := time.Now().UnixNano()
	for _, u := range ups {
		if !u.available(now) {
			down++
		}
	}
	c.Detail = fmt.Sprintf("%d routes, %d upstreams (%d unavailable)", len(t.routes), len(ups), down)
	c.Data["routes"] = len(t.routes)
	c.Data["connections"] = p.conns.total.Load()
	if p.srv != nil && p.opts.MaxHeaderBytes == 0 && t.gw.maxHeaderBytes != p.srv.ReadBufferSize {
		c.Detail += fmt.Sprintf("; restart to apply limits.maxHeaderBytes %d (serving with %d)", t.gw.maxHeaderBytes, p.srv.ReadBufferSize)
	}
	if down > 0 {
		c.State = "degraded"
	}
	return c
}

// ActiveConnections is the number of open client connections.
func (p *Proxy) ActiveConnections() int64 { return p.conns.total.Load() }

// UpstreamHealth lists every upstream with its state, for the dashboard.
func (p *Proxy) UpstreamHealth() map[string]bool {
	now := time.Now().UnixNano()
	out := map[string]bool{}
	for _, u := range p.pools.all() {
		out[u.URL] = u.available(now)
	}
	return out
}

func (p *Proxy) onEject(u *upstream, reason string) {
	p.log.Warn("upstream ejected", "upstream", u.URL, "reason", reason)
	if p.opts.OnEvent != nil {
		p.opts.OnEvent("upstream.ejected", "", fmt.Sprintf("upstream %s ejected: %s", u.URL, reason), map[string]any{"upstream": u.URL})
	}
}

// onRestore reports the end of a passive ejection, so `stoa events` shows
// the recovery of every upstream.ejected.
func (p *Proxy) onRestore(u *upstream, reason string) {
	p.log.Info("upstream restored", "upstream", u.URL, "reason", reason)
	if p.opts.OnEvent != nil {
		p.opts.OnEvent("upstream.restored", "", fmt.Sprintf("upstream %s restored: %s", u.URL, reason), map[string]any{"upstream": u.URL, "reason": reason})
	}
}

func (p *Proxy) onHealth(u *upstream, healthy bool) {
	state := "unhealthy"
	if healthy {
		state = "healthy"
	}
	p.log.Info("upstream health changed", "upstream", u.URL, "state", state)
	if p.opts.OnEvent != nil {
		p.opts.OnEvent("upstream."+state, "", fmt.Sprintf("upstream %s is %s", u.URL, state), map[string]any{"upstream": u.URL})
	}
}

// connTimeouts are the live revision's client read timeouts (trackedConn).
func (p *Proxy) connTimeouts() connTimeouts {
	if t := p.table.Load(); t != nil {
		return t.gw.connTimeouts()
	}
	dl := &spec.DefaultGatewayLimits
	return connTimeouts{header: dl.ReadHeaderTimeout.D(), read: dl.ReadTimeout.D(), idle: dl.IdleTimeout.D()}
}

func (g *gatewayPolicy) connTimeouts() connTimeouts {
	return connTimeouts{header: g.readHeaderTimeout, read: g.readTimeout, idle: g.idleTimeout}
}

// headerReceived applies the live revision's per-request limits. The
// write timeout is returned only when a revision changed it since start:
// each one costs fasthttp a deadline update on the connection. Read
// deadlines are trackedConn's.
func (p *Proxy) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	t := p.table.Load()
	if t == nil {
		return fasthttp.RequestConfig{}
	}
	rc := fasthttp.RequestConfig{MaxRequestBodySize: t.gw.maxBody}
	if t.gw.writeTimeout != p.srv.WriteTimeout {
		rc.WriteTimeout = t.gw.writeTimeout
	}
	return rc
}

// expect answers "Expect: 100-continue" (fasthttp's ExpectHandler): a
// request that will be refused whatever its body — version, Host or
// target, or a Content-Length over the body limit — gets
// its final answer without inviting the body, and the connection is
// closed. Everything else gets 100 Continue.
func (p *Proxy) expect(ctx *fasthttp.RequestCtx) int {
	var id [20]byte
	reqID := p.ids.next(&id)
	status, code, msg := checkRequest(&ctx.Request.Header)
	if status == 0 {
		t := p.table.Load()
		if t == nil || ctx.Request.Header.ContentLength() <= t.gw.maxBody {
			return fasthttp.StatusContinue
		}
		status, code, msg = fasthttp.StatusRequestEntityTooLarge, errBodyTooLarge, "request body too large"
	}
	// fasthttp sends this response as it stands, with the status returned.
	ctx.Response.Header.SetBytesV(hdrRequestID, reqID)
	writeError(ctx, status, code, msg, reqID)
	return status
}

// errorHandler answers requests fasthttp could not parse, with JSON and
// without echoing any of the request.
func (p *Proxy) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	var we wireError
	if !errors.As(err, &we) {
		// fasthttp does not wrap every reader error; the connection knows.
		if t, ok := ctx.Conn().(*trackedConn); ok && t.wire.fault != faultNone {
			we = wireError{t.wire.fault}
		}
	}
	var id [20]byte
	reqID := p.ids.next(&id)
	ctx.Response.Header.SetBytesV(hdrRequestID, reqID)
	switch {
	case we.fault != faultNone:
		writeError(ctx, fasthttp.StatusBadRequest, errBadRequest, "malformed request framing: "+we.fault.String(), reqID)
	case errors.As(err, &small) || errors.Is(err, fasthttp.ErrSmallReadBuffer):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, errHeaderTooLarge, "request header too large", reqID)
	case len(ctx.Request.Header.Host()) > 0 && !validHost(ctx.Request.Header.Host()):
		// fasthttp's own URI parse refused it.
		writeError(ctx, fasthttp.StatusBadRequest, errBadRequest, msgBadHost, reqID)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, errBodyTooLarge, "request body too large", reqID)
	case errors.As(err, &ne) && ne.Timeout():
		writeError(ctx, fasthttp.StatusRequestTimeout, errTimeoutClient, "request not received in time", reqID)
	default:
		writeError(ctx, fasthttp.StatusBadRequest, errBadRequest, "malformed HTTP request", reqID)
	}
}

// fasthttpLogger sends fasthttp's own messages to debug level. Error
// arguments are replaced by a fixed description, so no request byte
// reaches the log: SecureErrorLogMessage does not cover every parse error
// ("malformed mime header: missing colon: %q" quotes the request's header
// line).
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	for i, a := range args {
		if err, ok := a.(error); ok {
			args[i] = errorClass(err)
		}
	}
	f.l.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}

// errorClass describes a connection error without any of its text.
func errorClass(err error) string {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small) || errors.Is(err, fasthttp.ErrSmallReadBuffer):
		return "request header too large"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "request body too large"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "connection closed"
	}
	return "malformed request"
}
