package mcprt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/mcp/federation"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// Federated MCP servers (Tools with protocol: mcp, docs/federation.md) in
// the reload: Prepare starts the revision's new or changed upstreams
// (federation.Manager.Prepare) and builds the catalog from what they
// expose; the swap installs them (the upstreams they replace are stopped
// in the background); a revision that is never swapped — a dry run, a
// failed commit — is discarded. Unchanged upstreams keep their sessions and
// processes across reloads. When an upstream's tools change at run time
// (list_changed, a reconnect), the catalog is rebuilt and the clients of
// that tenant are notified.

const (
	// prepareWait bounds how long a reload waits for new upstreams' first
	// connection: one still starting then joins the catalog when it is up.
	prepareWait = 10 * time.Second
	// abandonAfter is how long a prepared revision waits for its swap.
	// Reloads prepare and swap under the daemon's apply lock, so a swap
	// comes within the store commit or never (a dry run, a refused
	// commit): then what Prepare started is stopped. A swap later than
	// this (it should not happen) still works: the upstreams are started
	// again in the background.
	abandonAfter = 10 * time.Second
	// rebuildDelay coalesces bursts of upstream changes into one catalog
	// rebuild.
	rebuildDelay = 100 * time.Millisecond
	// retireTimeout bounds stopping the upstreams a reload replaced
	// (a stdio server gets its grace periods).
	retireTimeout = 10 * time.Second
)

// federationConfigs maps st's Tools with protocol: mcp onto engine
// configurations. A stdio Tool whose command the Gateway does not grant
// its tenant is refused here too, not only by validation: the command
// would run on the gateway host.
func federationConfigs(st *state.Revision) ([]federation.Config, error) {
	var cfgs []federation.Config
	var errs []error
	fedGrants := (*spec.MCPFederation)(nil)
	if m := st.Gateway().MCP; m != nil {
		fedGrants = m.Federation
	}
	for _, o := range st.OfKind(spec.KindTool) {
		c, ok := federation.FromSpec(o)
		if !ok {
			continue
		}
		if c.Transport == federation.TransportStdio && len(c.Command) > 0 && !fedGrants.StdioGranted(c.Tenant, c.Command[0]) {
			errs = append(errs, fmt.Errorf("tool %s/%s: command %q runs on the gateway host and the Gateway does not grant it to tenant %s; "+
				"grant it in the Gateway's spec.mcp.federation.allowStdio: [{tenant: %s, commands: [%s]}]",
				c.Tenant, c.Tool, c.Command[0], c.Tenant, c.Tenant, c.Command[0]))
			continue
		}
		cfgs = append(cfgs, c)
	}
	return cfgs, errors.Join(errs...)
}

// upstreams is where a catalog build finds the federated Tools' upstreams:
// a reload's pending set, or the live one.
type upstreams interface {
	mcp.Federation
	upstream(tenant, tool string) *federation.Upstream
}

type pendingUpstreams struct{ p *federation.Pending }

func (s pendingUpstreams) Tools(tenant, tool string) []federation.Tool {
	return s.p.Tools(tenant, tool)
}
func (s pendingUpstreams) Resources(tenant, tool string) []federation.Resource {
	return s.p.Resources(tenant, tool)
}
func (s pendingUpstreams) upstream(tenant, tool string) *federation.Upstream {
	u, _ := s.p.Upstream(tenant, tool)
	return u
}

type liveUpstreams struct{ m *federation.Manager }

func (s liveUpstreams) Tools(tenant, tool string) []federation.Tool {
	if u, ok := s.m.Get(tenant, tool); ok {
		return u.Tools()
	}
	return nil
}
func (s liveUpstreams) Resources(tenant, tool string) []federation.Resource {
	if u, ok := s.m.Get(tenant, tool); ok {
		return u.Resources()
	}
	return nil
}
func (s liveUpstreams) upstream(tenant, tool string) *federation.Upstream {
	u, _ := s.m.Get(tenant, tool)
	return u
}

// prepared is one reload's pending federation: swapped in, or discarded
// when abandoned.
type prepared struct {
	cfgs    []federation.Config
	mu      sync.Mutex
	pending *federation.Pending
	state   int // preparedOpen, preparedSwapped, preparedDiscarded
	timer   *time.Timer
}

const (
	preparedOpen = iota
	preparedSwapped
	preparedDiscarded
)

// discard stops what Prepare started, unless the revision was swapped in.
func (p *prepared) discard() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != preparedOpen {
		return
	}
	p.state = preparedDiscarded
	p.pending.Discard()
}

// swap installs the prepared upstreams and returns the function retiring
// those they replace (nil if none). late is set when p had been discarded
// as abandoned: the caller then reconciles in the background.
func (p *prepared) swap() (retire func(context.Context), late bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer.Stop()
	switch p.state {
	case preparedDiscarded:
		return nil, true
	case preparedSwapped:
		return nil, false
	}
	p.state = preparedSwapped
	return p.pending.Swap(), false
}

// prepareFederation validates and starts st's federated upstreams; the
// result must be swapped or discarded.
func (r *Runtime) prepareFederation(st *state.Revision) (*prepared, error) {
	cfgs, err := federationConfigs(st)
	if err != nil {
		return nil, err
	}
	// Prepares are sequential: one left open was never swapped.
	if old := r.lastPrepared; old != nil {
		old.discard()
	}
	ctx, cancel := context.WithTimeout(context.Background(), prepareWait)
	defer cancel()
	pend, err := r.fed.Prepare(ctx, cfgs)
	if err != nil {
		return nil, err
	}
	p := &prepared{cfgs: cfgs, pending: pend}
	p.timer = time.AfterFunc(abandonAfter, p.discard)
	r.lastPrepared = p
	return p, nil
}

// swapFederation installs p; it runs in the reload's swap, so the
// upstreams p replaces are stopped in the background.
func (r *Runtime) swapFederation(p *prepared) {
	retire, late := p.swap()
	if late {
		r.log.Warn("mcp federation: a reload was swapped in after its upstreams had been stopped as abandoned; starting them again")
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), prepareWait)
			defer cancel()
			if err := r.fed.Reconcile(ctx, p.cfgs); err != nil {
				r.log.Error("mcp federation: reconcile", "err", err)
			}
			r.scheduleRebuild()
		}()
		return
	}
	if retire != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), retireTimeout)
			defer cancel()
			retire(ctx)
		}()
	}
}

// onUpstreamChange is the Manager's OnChange: an upstream's exposed tools
// or resources changed.
func (r *Runtime) onUpstreamChange(tenant, tool string) {
	r.changes.Add(1)
	r.scheduleRebuild()
}

// scheduleRebuild rebuilds the catalog rebuildDelay from now, once for a
// burst of changes.
func (r *Runtime) scheduleRebuild() {
	r.rbMu.Lock()
	defer r.rbMu.Unlock()
	if r.rbPending || r.rbStopped {
		return
	}
	r.rbPending = true
	time.AfterFunc(rebuildDelay, func() {
		r.rbMu.Lock()
		r.rbPending = false
		stopped := r.rbStopped
		r.rbMu.Unlock()
		if !stopped {
			r.rebuild()
		}
	})
}

// rebuild compiles the live revision again with the upstreams' current
// tools and installs it; SetCatalog notifies the streams whose view
// changed (that tenant's clients, and admins).
func (r *Runtime) rebuild() {
	r.catMu.Lock()
	defer r.catMu.Unlock()
	st := r.live.Load()
	if st == nil {
		return
	}
	cat, handles, err := r.buildCatalog(st, liveUpstreams{r.fed}, r.livePols.Load())
	if err != nil {
		// The revision built before; only its federated part changed,
		// which never fails a build.
		r.log.Error("mcp federation: rebuild the catalog", "revision", st.Revision, "err", err)
		return
	}
	r.install(cat, handles)
	r.ep.Server().SetCatalog(cat)
}

// reportProblems logs the federated tools a new catalog leaves out, once.
func (r *Runtime) reportProblems(st *state.Revision, cat *mcp.Catalog) {
	r.probMu.Lock()
	defer r.probMu.Unlock()
	next := map[string]bool{}
	for _, o := range st.OfKind(spec.KindTool) {
		for _, p := range cat.Problems(o.Ref()) {
			key := o.Ref().String() + "\x00" + p
			next[key] = true
			if !r.problems[key] {
				r.log.Warn("mcp federation: tool not exposed", "tenant", o.Metadata.Namespace, "tool", o.Metadata.Name, "problem", p)
			}
		}
	}
	r.problems = next
}

var _ mcp.FederationBackend = (*backend)(nil)

// CallUpstream implements mcp.FederationBackend: the call is admitted like
// an operation's (the Tool's credential requirement, subscription and
// quota, every rate limit), then goes to the upstream with stoad's own
// credential — the caller's request never reaches it, the engine's API
// does not even take it.
func (b *backend) CallUpstream(ctx context.Context, c mcp.Caller, t *mcp.Tool, args []byte) (json.RawMessage, error) {
	h, _ := t.Handle.(*handle)
	if h == nil || h.fed == nil {
		return nil, mcp.ErrUnknownTool
	}
	start := time.Now()
	lim := c.Span.StartChild("limits", tracing.KindInternal)
	p, rejErr, err := b.admit(c, h)
	switch {
	case err != nil:
		lim.SetError("error", err.Error())
	case rejErr != nil:
		lim.SetError("refused", rejErr.Error())
	}
	lim.End()
	if err != nil {
		return nil, err
	}
	if rejErr != nil {
		return nil, rejErr
	}
	// The federated call's client span: its context goes upstream in
	// params._meta and the traceparent header (pkg/mcp/federation).
	fsp := c.Span.StartChild("tools/call", tracing.KindClient)
	callCtx := ctx
	if fsp.IsValid() {
		if fsp.Recording() {
			fsp.SetMCP(&tracing.MCP{Method: "tools/call", Tool: h.upstreamName, Transport: h.transport, Server: h.server,
				ProtocolVersion: h.fed.Status().Protocol})
			fsp.SetString(tracing.AttrTenant, h.tenant)
			fsp.SetString(tracing.AttrTool, h.tool)
		}
		callCtx = tracing.ContextWithSpan(ctx, fsp)
	}
	res, err := h.fed.Call(callCtx, h.upstreamName, args)
	elapsed := time.Since(start)
	outcome, status := federatedOutcome(res, err, ctx)
	switch {
	case err != nil:
		fsp.SetError(outcome, err.Error())
	case res.IsError:
		fsp.SetToolError()
	}
	fsp.End()
	if b.fedMetrics != nil {
		b.fedMetrics.observe(h.tenant, h.tool, outcome, elapsed)
	}
	if outcome == "unknown_tool" {
		// Gone since the catalog was built: as if it never existed.
		return nil, mcp.ErrUnknownTool
	}
	h.series.Observe(status, elapsed)
	if err != nil || res.IsError {
		h.series.Errors.Add(1)
	}
	if err != nil && b.o.Snapshots != nil && status >= 500 {
		consumer := ""
		if p != nil {
			consumer = p.Consumer
		}
		b.o.Snapshots.CaptureFederated(h.snapshot(outcome, status, err, consumer, args, start, elapsed))
	}
	if err != nil {
		return nil, err
	}
	return res.Raw, nil
}

// federatedOutcome classifies a federated call for statistics (the status
// a REST operation would have had) and metrics.
func federatedOutcome(res federation.Result, err error, ctx context.Context) (outcome string, status int) {
	var rpcErr *federation.RPCError
	switch {
	case err == nil && res.IsError:
		return "tool_error", 200
	case err == nil:
		return "ok", 200
	case errors.Is(err, federation.ErrUnknownTool):
		return "unknown_tool", 404
	case errors.As(err, &rpcErr) && rpcErr.Code == -32602:
		return "invalid_params", 400
	case errors.As(err, &rpcErr):
		return "rpc_error", 502
	case errors.Is(err, federation.ErrTimeout):
		return "timeout", 504
	case errors.Is(err, federation.ErrUnavailable):
		return "unavailable", 502
	case errors.Is(err, federation.ErrInputRequired):
		return "input_required", 502
	case ctx.Err() != nil:
		return "canceled", 499
	}
	return "error", 502
}

// admit checks what a call of h needs before anything is sent: the Tool's
// credential requirement and the proxy's admission (subscription, quota,
// limits). rej is the refusal to show the model.
func (b *backend) admit(c mcp.Caller, h *handle) (p *auth.Principal, rej error, err error) {
	start := time.Now()
	cr := proxy.CallRequest{Tenant: h.tenant, Tool: h.tool, OpLimit: h.opLimit, OpKey: h.opKey, Client: c.Remote}
	cr.Principal, _ = c.Principal.(*auth.Principal)
	p = cr.Principal
	if p != nil && h.req != nil {
		if err := p.Check(h.req); err != nil {
			h.series.Observe(403, time.Since(start))
			h.series.Errors.Add(1)
			return p, fmt.Errorf("not sent: this tool does not accept the credential used (%s)", auth.Reason(err)), nil
		}
	}
	refused, err := b.o.Proxy.Admit(&cr)
	if err != nil {
		if errors.Is(err, proxy.ErrNoRoute) {
			return p, nil, mcp.ErrUnknownTool
		}
		return p, nil, err
	}
	if refused != nil {
		h.series.Observe(refused.Status, time.Since(start))
		h.series.Errors.Add(1)
		if refused.Status == 429 {
			h.series.Limited.Add(1)
		}
		if b.fedMetrics != nil {
			b.fedMetrics.observe(h.tenant, h.tool, "refused", time.Since(start))
		}
		return p, refusal(refused), nil
	}
	return p, nil, nil
}

// ReadUpstreamResource implements mcp.FederationBackend: admitted like a
// call of the Tool, read from its upstream.
func (b *backend) ReadUpstreamResource(ctx context.Context, c mcp.Caller, ref spec.Ref, uri string) (json.RawMessage, error) {
	if b.fed == nil {
		return nil, federation.ErrUnknownResource
	}
	u, ok := b.fed.Get(ref.Namespace, ref.Name)
	if !ok {
		return nil, federation.ErrUnknownResource
	}
	// Reads are counted by no tool's statistics: a scratch series.
	h := &handle{tenant: ref.Namespace, tool: ref.Name, series: new(telemetry.Series)}
	if st := b.live.Load(); st != nil {
		if obj := st.Get(ref); obj != nil {
			h.req = requirement(obj.Spec.(*spec.ToolSpec))
		}
	}
	if err := b.authorizeRead(c, ref, uri); err != nil {
		return nil, err
	}
	_, rej, err := b.admit(c, h)
	switch {
	case errors.Is(err, mcp.ErrUnknownTool):
		return nil, federation.ErrUnknownResource
	case err != nil:
		return nil, err
	case rej != nil:
		return nil, rej
	}
	return u.ReadResource(ctx, uri)
}

// federationStatus is the "federation" line of `stoa status`.
func federationStatus(ups []*federation.Upstream) (state, detail string, data map[string]any) {
	if len(ups) == 0 {
		return "off", "no federated MCP servers (Tools with protocol: mcp)", nil
	}
	data = map[string]any{}
	ready, tools := 0, 0
	var down, problems []string
	for _, u := range ups {
		st := u.Status()
		key := st.Tenant + "/" + st.Tool
		tools += st.Tools
		line := string(st.State)
		switch st.State {
		case federation.StateReady:
			ready++
			line += ", " + st.Protocol
		case federation.StateDown:
			down = append(down, key)
		}
		line += fmt.Sprintf(", %d tools, %d restarts", st.Tools, st.Restarts)
		if st.PID != 0 {
			line += fmt.Sprintf(", pid %d", st.PID)
		}
		if st.State != federation.StateReady && st.LastError != "" {
			line += ", last error: " + st.LastError
		}
		if len(st.Problems) > 0 {
			line += fmt.Sprintf(", %d problem(s)", len(st.Problems))
			problems = append(problems, key)
		}
		data[key] = line
	}
	state = "ok"
	detail = fmt.Sprintf("%d MCP servers, %d ready, %d tools", len(ups), ready, tools)
	if len(down) > 0 {
		state = "degraded"
		detail += "; down: " + strings.Join(down, ", ")
	}
	if len(problems) > 0 {
		detail += "; problems: " + strings.Join(problems, ", ") + " (see the log)"
	}
	return state, detail, data
}

// tenantFederationState is the federation health a tenant's agents see in
// stoa_platform_info: its own servers only.
func tenantFederationState(ups []*federation.Upstream, tenant string) (string, bool) {
	state, has := "ok", false
	for _, u := range ups {
		cfg := u.Config()
		if cfg.Tenant != tenant {
			continue
		}
		has = true
		if u.Status().State == federation.StateDown {
			state = "degraded"
		}
	}
	return state, has
}

// Federation returns the runtime's "federation" line of `stoa status`: the
// federated MCP servers' health. It is a state.Runtime of its own so the
// daemon lists it beside the others; the MCP runtime does the work, so it
// prepares, starts and stops nothing.
func (r *Runtime) Federation() state.Runtime { return fedStatus{r} }

type fedStatus struct{ r *Runtime }

func (fedStatus) Name() string                            { return "federation" }
func (fedStatus) Prepare(*state.Revision) (func(), error) { return func() {}, nil }
func (fedStatus) Start(context.Context) error             { return nil }
func (fedStatus) Stop(context.Context) error              { return nil }
func (f fedStatus) Status() api.Component {
	state, detail, data := federationStatus(f.r.fed.Upstreams())
	return api.Component{Name: "federation", State: state, Detail: detail, Data: data}
}
