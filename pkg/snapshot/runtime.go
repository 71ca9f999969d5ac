package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/audit"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/secret"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// RuntimeOptions configure a Runtime.
type RuntimeOptions struct {
	Store   store.Store
	Metrics prometheus.Registerer
	Log     *slog.Logger
	// Live is the live revision: tools' routes and upstream credentials.
	Live func() *state.Revision
	// Audit records replays.
	Audit *audit.Trail
}

// Runtime captures error snapshots from the proxy (OnFailure) and MCP
// (CaptureCall), keeps them bounded, and lists, reads and replays them.
type Runtime struct {
	o     RuntimeOptions
	store *Store
	rec   *Recorder
}

// NewRuntime opens the snapshots kept in o.Store and registers the
// snapshot metrics.
func NewRuntime(o RuntimeOptions) (*Runtime, error) {
	st, err := OpenStore(o.Store)
	if err != nil {
		return nil, err
	}
	s := &Runtime{o: o, store: st, rec: NewRecorder(st, RecorderOptions{Log: o.Log.With("component", "snapshots")})}
	o.Metrics.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stoa_snapshots_stored_total", Help: "Error snapshots stored."},
			func() float64 { return float64(s.rec.Stored.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stoa_snapshots_dropped_total", Help: "Error snapshots skipped (rate or queue bound)."},
			func() float64 { return float64(s.rec.Dropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stoa_snapshots_repeats_total", Help: "Failures counted into an existing snapshot of the same failure."},
			func() float64 { return float64(s.rec.Repeats.Load()) }),
	)
	return s, nil
}

func (s *Runtime) Name() string { return "snapshots" }

// Prepare compiles the Gateway's snapshot policy and, per tool, a
// redactor that also knows the tool's upstream credential (header and
// value), so it is never stored.
func (s *Runtime) Prepare(st *state.Revision) (func(), error) {
	pol := DefaultPolicy
	var extraHeaders, extraFields []string
	if sp := st.Gateway().Snapshots; sp != nil {
		if sp.MaxCount > 0 {
			pol.MaxCount = sp.MaxCount
		}
		if d := sp.MaxAge.D(); d > 0 {
			pol.MaxAge = d
		}
		if sp.MaxBodyBytes > 0 {
			pol.MaxBodyBytes = sp.MaxBodyBytes
		}
		extraHeaders, extraFields = sp.RedactHeaders, sp.RedactFields
	}
	base := NewRedactor(extraHeaders, extraFields, nil)
	perTool := map[[2]string]*Redactor{}
	for _, o := range st.OfKind(spec.KindTool) {
		ua := o.Spec.(*spec.ToolSpec).UpstreamAuth
		if ua == nil {
			continue
		}
		hdr := ua.Header // defaulted: Authorization
		var secrets [][]byte
		if v, err := secret.Read(ua.SecretRef); err == nil {
			secrets = append(secrets, []byte(v))
		}
		perTool[[2]string{o.Metadata.Namespace, o.Metadata.Name}] = NewRedactor(append([]string{hdr}, extraHeaders...), extraFields, secrets)
	}
	cfg := &Config{Policy: pol, Redactor: func(tenant, tool string) *Redactor {
		if r := perTool[[2]string{tenant, tool}]; r != nil {
			return r
		}
		return base
	}}
	return func() { s.rec.SetConfig(cfg) }, nil
}

func (s *Runtime) Start(context.Context) error { s.rec.Start(); return nil }
func (s *Runtime) Stop(context.Context) error  { s.rec.Stop(); return nil }

func (s *Runtime) Status() api.Component {
	return api.Component{Name: "snapshots", State: "ok",
		Detail: fmt.Sprintf("%d stored, %d repeats counted, %d skipped since start", s.rec.Stored.Load(), s.rec.Repeats.Load(), s.rec.Dropped.Load())}
}

// injectedHeaders are the request headers the proxy sets itself (see
// docs/proxy.md), besides a tool's upstream credential: a curl that calls
// the gateway leaves them out.
var injectedHeaders = []string{"X-Stoa-Tenant", "X-Stoa-Consumer", "X-Request-Id", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"}

// OnFailure implements proxy.Options.OnFailure: it copies the exchange
// (bounded) and hands it to the recorder; it never blocks the proxy. A
// repeat of a failure already captured is only counted.
func (s *Runtime) OnFailure(f *proxy.Failure) {
	origin, reason := OriginUpstream, f.Reason
	if errors.Is(f.Err, proxy.ErrNoHealthyUpstream) {
		reason = "no_healthy_upstream"
		if f.Upstream == "" {
			origin = OriginGateway // no upstream was tried
		}
	}
	if s.rec.Repeat(GroupKey{Source: "proxy", Tenant: f.Tenant, Tool: f.Tool, Route: f.Prefix, Method: f.Method,
		Reason: reason, Origin: origin, Status: f.Status}, f.Start) {
		return
	}
	if !s.rec.Want() {
		return
	}
	x := f.Exchange(s.rec.CaptureBodyLimit())
	c := &Capture{
		Source: "proxy", Tenant: f.Tenant, Tool: f.Tool, Consumer: f.Consumer, Revision: f.Revision, RequestID: f.RequestID,
		Upstream: f.Upstream, Reason: reason, Origin: origin, Route: f.Prefix, Start: f.Start, Duration: f.Duration, Status: f.Status,
		Method: f.Method,
	}
	if f.Err != nil {
		c.Err = f.Err.Error()
	}
	if f.Reason == "5xx" {
		c.UpstreamStatus = f.Status
	}
	// The target below the upstream's base path is the proxy's own
	// mapping of the request (Rest): a replay sends exactly that.
	c.Target = f.Rest
	if x.Query != "" {
		c.Target += "?" + x.Query
	}
	if origin == OriginGateway {
		c.URL = gatewayURL(&x, f.Prefix+f.Rest)
		c.Injected = append([]string(nil), injectedHeaders...)
		if o := s.o.Live().Get(spec.Ref{Kind: spec.KindTool, Namespace: f.Tenant, Name: f.Tool}); o != nil {
			if ua := o.Spec.(*spec.ToolSpec).UpstreamAuth; ua != nil {
				c.Injected = append(c.Injected, ua.Header) // defaulted: Authorization
			}
		}
	} else if u, err := proxy.UpstreamURL(f.Upstream, f.Rest, x.Query); err == nil {
		c.URL = u
	} else {
		c.URL = schemeHost(f.Upstream) + x.RequestURI
	}
	for _, h := range x.RequestHeaders {
		c.ReqHeaders = append(c.ReqHeaders, Header{Name: h[0], Value: h[1]})
	}
	c.ReqBodyLen, c.ReqBody, c.ReqContentType = x.RequestBodyLen, x.RequestBody, x.RequestContentType
	for _, h := range x.ResponseHeaders {
		c.RespHeaders = append(c.RespHeaders, Header{Name: h[0], Value: h[1]})
	}
	c.RespBodyLen, c.RespBody, c.RespContentType = x.ResponseBodyLen, x.ResponseBody, x.ResponseContentType
	s.rec.Capture(c)
}

// gatewayURL is the URL the client called: the gateway's scheme, the Host
// it asked for (routes may depend on it; the listen address without one),
// the path and the query.
func gatewayURL(x *proxy.Exchange, path string) string {
	scheme := "http"
	if x.TLS {
		scheme = "https"
	}
	u := scheme + "://" + x.Host + path
	if x.Query != "" {
		u += "?" + x.Query
	}
	return u
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		b = b[:n]
	}
	return append([]byte(nil), b...)
}

// schemeHost returns "scheme://host" of a base URL.
func schemeHost(base string) string {
	i := strings.Index(base, "://")
	if i < 0 {
		return ""
	}
	if j := strings.IndexByte(base[i+3:], '/'); j >= 0 {
		return base[:i+3+j]
	}
	return base
}

// Errors of Replay, for errors.Is; the error's text names the tool.
var (
	// ErrToolGone: the snapshot's tool no longer exists.
	ErrToolGone = errors.New("tool no longer exists")
	// ErrNoRoute: the tool has no upstream a replay could go to.
	ErrNoRoute = errors.New("no route to replay through")
	// ErrUpstreamUnavailable: the upstream's credential or TLS settings
	// cannot be loaded.
	ErrUpstreamUnavailable = errors.New("upstream settings unavailable")
)

// replayError is a replay refused for one of the reasons above.
type replayError struct {
	kind error
	msg  string
}

func (e *replayError) Error() string { return e.msg }
func (e *replayError) Unwrap() error { return e.kind }

// List returns the summaries of the snapshots f matches, newest first.
func (s *Runtime) List(f Filter) ([]Summary, error) { return s.store.List(f) }

// Dropped counts captures skipped since start (rate or queue bound).
func (s *Runtime) Dropped() int64 { return s.rec.Dropped.Load() }

// Get returns snapshot id (ErrNotFound when there is none).
func (s *Runtime) Get(id string) (*Snapshot, error) { return s.store.Get(id) }

// replayClient follows no redirects (the first answer is the result).
var replayClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Replay re-sends snapshot id's request through the tool's current
// route: its current upstream (the first with weight) and upstream
// credential, not the (redacted) client credential. actor is recorded in
// the audit trail.
func (s *Runtime) Replay(ctx context.Context, id, actor string) (ReplayResult, error) {
	sn, err := s.store.Get(id)
	if err != nil {
		return ReplayResult{}, err
	}
	refuse := func(kind error, format string, args ...any) (ReplayResult, error) {
		return ReplayResult{}, &replayError{kind: kind, msg: fmt.Sprintf("tool %s/%s", sn.Tenant, sn.Tool) + fmt.Sprintf(format, args...)}
	}
	st := s.o.Live()
	o := st.Get(spec.Ref{Kind: spec.KindTool, Namespace: sn.Tenant, Name: sn.Tool})
	if o == nil {
		return refuse(ErrToolGone, " no longer exists")
	}
	ts := o.Spec.(*spec.ToolSpec)
	upstream := ts.Upstream
	if upstream == "" {
		for _, u := range ts.Upstreams {
			if u.Weight > 0 || len(ts.Upstreams) == 1 {
				upstream = u.URL
				break
			}
		}
	}
	if upstream == "" {
		return refuse(ErrNoRoute, " has no upstream with traffic")
	}
	rest, query, _ := strings.Cut(replayTarget(sn, o), "?")
	u, err := proxy.UpstreamURL(upstream, rest, query)
	if err != nil {
		return refuse(ErrNoRoute, ": %v", err)
	}
	rt := Route{Tenant: sn.Tenant, URL: u}
	if ua := ts.UpstreamAuth; ua != nil {
		v, err := secret.Read(ua.SecretRef)
		if err != nil {
			return refuse(ErrUpstreamUnavailable, ": upstream credential: %v", err)
		}
		// Header and prefix are defaulted (Authorization, "Bearer ").
		rt.Header, rt.Value = ua.Header, ua.Prefix+v
	}
	rt.Timeout = ts.Timeouts.Total.D()
	red := s.rec.Config().Redactor(sn.Tenant, sn.Tool)
	client := replayClient
	if ts.UpstreamTLS != nil {
		// The upstream's own trust (a private CA, its server name), as
		// the proxy has it.
		cfg, err := proxy.UpstreamTLSConfig(nil, ts.UpstreamTLS)
		if err != nil {
			return refuse(ErrUpstreamUnavailable, ": %v", err)
		}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr, CheckRedirect: replayClient.CheckRedirect}
	}
	res, err := Replay(ctx, sn, rt, red, client)
	if err != nil {
		return res, err
	}
	s.o.Audit.Record(audit.Entry{Actor: actor, Action: "snapshot.replay", Target: "Tool/" + sn.Tenant + "/" + sn.Tool, Tenant: sn.Tenant,
		Details: map[string]string{"snapshot": sn.ID, "status": strconv.Itoa(res.Status), "oldStatus": strconv.Itoa(res.OldStatus)}})
	return res, nil
}

// replayTarget is the snapshot's path and query below the upstream's base
// path. Snapshots of gateway-made errors stored by earlier versions kept
// the client's path with the route prefix: it is stripped here.
func replayTarget(sn *Snapshot, tool *spec.Object) string {
	t := sn.Request.Target
	if sn.Origin != "" || sn.Upstream != "" || sn.Source != "proxy" {
		return t
	}
	prefix := "/" + tool.Metadata.Namespace + "/" + tool.Metadata.Name
	if r := tool.Spec.(*spec.ToolSpec).Route; r != nil && r.PathPrefix != "" {
		prefix = r.PathPrefix
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if rest, ok := strings.CutPrefix(t, prefix); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
		return rest
	}
	return t
}

// CaptureCall records a failed MCP tools/call made through proxy.Call: an
// error (no upstream answer) or a 5xx answer; anything else is ignored.
// The MCP backend calls it right after proxy.Call, before releasing resp.
func (s *Runtime) CaptureCall(cr *proxy.CallRequest, resp *proxy.CallResponse, callErr error, operation string, start time.Time, elapsed time.Duration) {
	if callErr == nil && (resp == nil || resp.Refused != nil || resp.Status < 500) {
		return
	}
	c := &Capture{Source: "mcp", Tenant: cr.Tenant, Tool: cr.Tool, Operation: operation, Revision: s.o.Live().Revision,
		Start: start, Duration: elapsed, Method: cr.Method, ReqContentType: cr.ContentType, Reason: "5xx", Origin: OriginUpstream}
	if callErr != nil {
		c.Err = callErr.Error()
		switch msg := c.Err; {
		case strings.Contains(msg, "no healthy upstream"):
			c.Reason, c.Status, c.Origin = "no_healthy_upstream", http.StatusServiceUnavailable, OriginGateway
		case strings.Contains(msg, "did not answer"):
			c.Reason, c.Status = "timeout", http.StatusGatewayTimeout
		case strings.Contains(msg, "connection failed"):
			c.Reason, c.Status = "connect", http.StatusBadGateway
		default:
			c.Reason, c.Status = "other", http.StatusBadGateway
		}
	} else {
		c.Status, c.UpstreamStatus = resp.Status, resp.Status
	}
	if s.rec.Repeat(c.Key(), start) || !s.rec.Want() {
		return
	}
	limit := s.rec.CaptureBodyLimit()
	if cr.Principal != nil {
		c.Consumer = cr.Principal.Consumer
	}
	if resp != nil {
		c.Upstream = resp.Upstream
	}
	if c.Upstream == "" {
		if o := s.o.Live().Get(spec.Ref{Kind: spec.KindTool, Namespace: cr.Tenant, Name: cr.Tool}); o != nil {
			ts := o.Spec.(*spec.ToolSpec)
			c.Upstream = ts.Upstream
			if c.Upstream == "" && len(ts.Upstreams) > 0 {
				c.Upstream = ts.Upstreams[0].URL
			}
		}
	}
	// The proxy's mapping: the upstream's base path + the operation's path.
	c.Target = string(cr.Path)
	if len(cr.Query) > 0 {
		c.Target += "?" + string(cr.Query)
	}
	if u, err := proxy.UpstreamURL(c.Upstream, string(cr.Path), string(cr.Query)); err == nil {
		c.URL = u
	}
	for _, h := range cr.Header {
		c.ReqHeaders = append(c.ReqHeaders, Header{Name: string(h[0]), Value: string(h[1])})
	}
	c.ReqBodyLen, c.ReqBody = len(cr.Body), clip(cr.Body, limit)
	if callErr == nil {
		c.RespContentType = resp.ContentType
		c.RespBodyLen, c.RespBody = len(resp.Body), clip(resp.Body, limit)
		if resp.ContentType != "" {
			c.RespHeaders = []Header{{Name: "Content-Type", Value: resp.ContentType}}
		}
	}
	s.rec.Capture(c)
}
