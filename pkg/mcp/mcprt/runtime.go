// Package mcprt runs pkg/mcp as one of stoad's runtimes: every Tool
// operation of each revision, and every tool of each federated MCP server
// (Tools with protocol: mcp, pkg/mcp/federation), compiled into the MCP
// catalog, served on the proxy's listener (/mcp and the RFC 9728 metadata)
// and on the MCP unix socket, with calls going through the proxy's
// admission, limits and upstream pools.
package mcprt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/mcp/federation"
	"github.com/stoa-gateway/stoa/pkg/openapi"
	"github.com/stoa-gateway/stoa/pkg/policy"
	"github.com/stoa-gateway/stoa/pkg/policy/policyrt"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/snapshot"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
	"github.com/stoa-gateway/stoa/pkg/unixsock"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// MCP endpoint paths. The metadata paths are mounted exactly (not as a
// /.well-known/ prefix) so other well-known documents stay free.
const (
	mcpPath         = "/mcp"
	mcpMetadataPath = "/.well-known/oauth-protected-resource"
	mcpMaxBodyBytes = 4 << 20
)

// keyCursorKey (in the store's MetaMCP) is the HMAC key of MCP list
// cursors.
const keyCursorKey = "cursor-key"

// Options configure a Runtime.
type Options struct {
	Store store.Store
	Log   *slog.Logger
	// Listen is the proxy's listen address (the default resource URL and
	// the DNS-rebinding defence derive from it); Socket is the MCP unix
	// socket's path (empty: none).
	Listen, Socket string
	Auth           *auth.Authenticator
	// Proxy carries every tools/call (MCP mounts on its listener).
	Proxy *proxy.Proxy
	Stats *telemetry.Registry
	// Snapshots records failed calls and Admission lists only what a
	// caller may call; both optional.
	Snapshots *snapshot.Runtime
	Admission *quota.Admission
	// Platform answers stoa_platform_info.
	Platform Platform
	// Metrics registers the federated MCP servers' metrics
	// (stoa_mcp_upstream_*); optional.
	Metrics prometheus.Registerer
	// Events records policy denials (policy.denied, which the audit
	// trail keeps); optional. The daemon's events.Log.Emit.
	Events func(typ, tenant, msg string, data map[string]any)
	// Tracer records MCP spans (a server span per JSON-RPC request, child
	// spans for limits, the policy and the upstream call); optional.
	Tracer *tracing.Tracer
}

// Platform is the daemon as stoa_platform_info reports it.
type Platform interface {
	Ready() bool
	Status() api.Status
}

// Runtime serves every Tool operation as an MCP tool (pkg/mcp) on the
// proxy's listener (/mcp and the RFC 9728 metadata) and on the MCP unix
// socket. Each revision compiles a Catalog in Prepare (a catalog that does
// not build aborts the reload) and swaps it in atomically. The mcp.Server is
// rebuilt only when the Gateway's mcp options change; its open notification
// streams are then closed and clients reconnect.
type Runtime struct {
	o         Options
	log       *slog.Logger
	backend   *backend
	cursorKey []byte

	// installed is the number of tools of the catalog installed last
	// (install, under catMu).
	installed int

	ep      *mcp.Endpoint
	optsSig string // options the endpoint's server was built with; used by Prepare/swap only (reloads are sequential)

	sock    *mcp.SocketServer
	started atomic.Bool

	// Federated MCP servers. fed holds the live upstreams; live is the
	// revision the installed catalog was built from (rebuilt with the
	// upstreams' current tools when they change); catMu orders catalog
	// installs of reloads and rebuilds; changes counts upstream changes,
	// so a reload that raced one rebuilds after its swap.
	fed          *federation.Manager
	lastPrepared *prepared // reloads are sequential: used by Prepare only
	live         atomic.Pointer[state.Revision]
	catMu        sync.Mutex
	changes      atomic.Uint64
	rbMu         sync.Mutex
	rbPending    bool
	rbStopped    bool
	probMu       sync.Mutex
	problems     map[string]bool

	// Policies: compiled programs kept across reloads (Prepare only), and
	// the chains of the live revision, for catalog rebuilds.
	policies policyrt.Compiler
	livePols atomic.Pointer[policies]
}

// New builds the runtime and mounts its handler on the proxy. Call it
// before the proxy starts.
func New(o Options) (*Runtime, error) {
	key, err := loadCursorKey(o.Store)
	if err != nil {
		return nil, fmt.Errorf("mcp cursor key: %w", err)
	}
	r := &Runtime{o: o, log: o.Log.With("component", "mcp"), cursorKey: key}
	r.fed = federation.NewManager(federation.Options{Logger: r.log, ClientName: "stoa", ClientVersion: version.Version})
	r.fed.OnChange(r.onUpstreamChange)
	r.backend = &backend{o: &r.o, fed: r.fed}
	r.backend.index.Store(&index{})
	if o.Metrics != nil {
		r.backend.fedMetrics = newFedMetrics(r.fed)
		if err := o.Metrics.Register(r.backend.fedMetrics); err != nil {
			return nil, fmt.Errorf("mcp federation metrics: %w", err)
		}
	}
	// An empty server until the first revision is swapped in.
	r.ep = mcp.NewEndpoint(mcp.NewServer(r.options(state.New(0, nil)), r.backend))
	for _, p := range []string{mcpPath, mcpMetadataPath, mcpMetadataPath + mcpPath} {
		o.Proxy.Mount(p, r.ep.Handler)
	}
	return r, nil
}

// loadCursorKey returns the HMAC key of pagination cursors, created once
// and kept in the store so cursors stay valid across restarts.
func loadCursorKey(st store.Store) ([]byte, error) {
	var key []byte
	ctx := context.Background()
	err := st.Update(ctx, func(tx store.Tx) error {
		v, err := tx.Meta().Get(ctx, store.MetaMCP, keyCursorKey)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if len(v) >= 32 {
			key = slices.Clone(v)
			return nil
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		return tx.Meta().Put(ctx, store.MetaMCP, keyCursorKey, key)
	})
	return key, err
}

// Name implements state.Runtime.
func (r *Runtime) Name() string { return "mcp" }

// options maps the Gateway's mcp block onto server options.
func (r *Runtime) options(st *state.Revision) mcp.Options {
	o := mcp.Options{
		Path:                 mcpPath,
		ServerName:           "stoa",
		ServerVersion:        version.Version,
		CursorKey:            r.cursorKey,
		Tracer:               r.o.Tracer,
		MaxBodyBytes:         mcpMaxBodyBytes,
		AuthorizationServers: r.authorizationServers,
		Instructions: "Tools are named {tenant}__{tool}__{operation} (or the tool's name at a federated MCP server in place of {operation}). stoa_tools searches the tools you may call " +
			"and returns one tool's input schema; stoa_platform_info reports the gateway's health.",
	}
	o.LoopbackListen = loopbackListen(r.o.Listen)
	if m := st.Gateway().MCP; m != nil {
		o.AllowedOrigins = m.AllowedOrigins
		o.AllowedHosts = m.AllowedHosts
		o.ResourceURL = m.Resource
		o.PageSize = m.PageSize
	}
	if o.ResourceURL == "" {
		o.ResourceURL = defaultResourceURL(r.o.Listen)
	}
	return o
}

// defaultResourceURL is the token audience stoad accepts by default
// (http://<listen>/mcp), or "" — derived from each request's Host — when
// the listen address is not one a client can use (0.0.0.0, [::]).
func defaultResourceURL(listen string) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		return ""
	}
	return "http://" + listen + mcpPath
}

func optionsSignature(o mcp.Options) string {
	return fmt.Sprintf("%q|%q|%q|%t|%d", o.AllowedOrigins, o.AllowedHosts, o.ResourceURL, o.LoopbackListen, o.PageSize)
}

// loopbackListen reports whether --listen binds a loopback address only,
// where the MCP Host check is always on (DNS-rebinding defence).
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// authorizationServers lists the issuers advertised in protected-resource
// metadata: every tenant's identity issuer, Tools' own issuers and the
// Gateway's admin issuers.
func (r *Runtime) authorizationServers(tenant string) []string {
	out := slices.Clone(r.ep.Server().Catalog().AuthorizationServers(tenant))
	for _, iss := range r.backend.index.Load().adminIssuers {
		if !slices.Contains(out, iss) {
			out = append(out, iss)
		}
	}
	sort.Strings(out)
	return out
}

// Prepare compiles st's tools into a catalog without touching what
// serves. Federated MCP servers that are new or changed are started (and
// stopped again if the revision is not swapped in).
func (r *Runtime) Prepare(st *state.Revision) (func(), error) {
	pols, err := compilePolicies(&r.policies, st)
	if err != nil {
		return nil, err
	}
	idx := newIndex(st)
	idx.policies = len(pols.chains) > 0
	fp, err := r.prepareFederation(st)
	if err != nil {
		return nil, err
	}
	changes := r.changes.Load()
	cat, handles, err := r.buildCatalog(st, pendingUpstreams{fp.pending}, pols)
	if err != nil {
		fp.discard()
		return nil, err
	}
	opts := r.options(st)
	sig := optionsSignature(opts)
	var next *mcp.Server
	if sig != r.optsSig {
		next = mcp.NewServer(opts, r.backend)
	}
	return func() {
		r.swapFederation(fp)
		r.catMu.Lock()
		r.install(cat, handles)
		r.backend.index.Store(idx)
		r.live.Store(st)
		r.livePols.Store(pols)
		r.backend.pols.Store(pols)
		r.backend.live.Store(st)
		if next != nil {
			next.SetCatalog(cat)
			old := r.ep.Swap(next)
			r.optsSig = sig
			if old != nil {
				old.Close()
			}
		} else {
			r.ep.Server().SetCatalog(cat)
		}
		r.catMu.Unlock()
		r.reportProblems(st, cat)
		if r.changes.Load() != changes {
			// An upstream changed while this revision was prepared.
			r.scheduleRebuild()
		}
	}, nil
}

// buildCatalog compiles st with the federated tools ups exposes; handles
// are the catalog's tool handles, whose statistics series install sets.
func (r *Runtime) buildCatalog(st *state.Revision, ups upstreams, pols *policies) (*mcp.Catalog, []*handle, error) {
	var handles, kept []*handle
	cat, err := mcp.BuildCatalog(st.Revision, st.Objects,
		// The tools of the objects the live revision shares with st are
		// copied, not compiled again.
		mcp.WithPrevious(r.ep.Server().Catalog()),
		// A tool of an unchanged object keeps its handle (and so its
		// statistics series) when its policy chain is the same: both
		// nil, since chains are compiled anew for every revision.
		mcp.WithKeep(func(t *mcp.Tool) bool {
			h, ok := t.Handle.(*handle)
			if ok && h.series != nil && h.fed == nil && t.UpstreamName == "" && h.chain == nil && pols.chain(t.Ref) == nil {
				kept = append(kept, h)
				return true
			}
			return false
		}),
		mcp.WithOpenAPI(func(ref spec.Ref) ([]byte, bool) { return openapi.StoredDocument(st.Get(ref)) }),
		mcp.WithFederation(ups),
		mcp.WithHandles(func(t *mcp.Tool) any {
			h := newHandle(t)
			if h.chain = pols.chain(t.Ref); h.chain != nil {
				h.target = policyTarget(t)
			}
			if t.UpstreamName != "" {
				h.upstreamName = t.UpstreamName
				h.fed = ups.upstream(t.Ref.Namespace, t.Ref.Name)
				if h.fed != nil {
					c := h.fed.Config()
					h.url = c.URL
					h.transport = "tcp"
					if len(c.Command) > 0 {
						h.command = c.Command[0]
						h.transport = "pipe"
					} else if u, err := url.Parse(c.URL); err == nil {
						h.server = u.Host
					}
				}
			}
			handles = append(handles, h)
			return h
		}))
	// Kept handles have their series already; install needs them to
	// know which series to keep.
	return cat, append(handles, kept...), err
}

// install gives a catalog's handles their statistics series and drops the
// series of tools no longer served. Series are created here, not in
// Prepare, so a dry run (stoa diff) leaves none behind; the catalog is not
// yet published, so no call reads h.series before this.
func (r *Runtime) install(cat *mcp.Catalog, handles []*handle) {
	created := false
	for _, h := range handles {
		if h.series == nil {
			var isNew bool
			h.series, isNew = r.o.Stats.GetNew(telemetry.KindMCP, h.mcpTenant, h.mcpName)
			created = created || isNew
		}
	}
	// The MCP series are the last installed catalog's tools (only install
	// creates them). If none was created and there are as many tools, the
	// names are the same: nothing to drop.
	if created || cat.Len() != r.installed {
		keep := make(map[[2]string]bool, len(handles))
		for _, h := range handles {
			keep[[2]string{h.mcpTenant, h.mcpName}] = true
		}
		r.o.Stats.Retain(telemetry.KindMCP, keep)
	}
	r.installed = cat.Len()
	if r.backend.fedMetrics != nil {
		r.backend.fedMetrics.retain(r.fed.Upstreams())
	}
}

// handle is what a tools/call needs besides the catalog's tool: the
// proxy route, the operation's own limit and timeout, the Tool's credential
// requirement and the statistics series. It is Tool.Handle.
type handle struct {
	tenant, tool       string // the proxy route
	mcpTenant, mcpName string // the statistics series
	opLimit            limits.Limit
	opKey              limits.Key
	timeout            time.Duration
	req                *auth.Requirement // nil: any credential of the tenant
	series             *telemetry.Series
	// chain is the Tool's policy chain (nil: no rule applies) and target
	// the tool as policies see it.
	chain  *policy.Chain
	target *policy.Target

	// A federated tool's upstream and its name there; url or command
	// say where it is, for error snapshots.
	fed          *federation.Upstream
	upstreamName string
	url, command string
	// For the federated call's span: network.transport ("tcp", "pipe" for
	// stdio) and the upstream's host[:port] (never its path or query).
	transport, server string
}

// snapshot describes a failed federated call for the error snapshots.
func (h *handle) snapshot(reason string, status int, err error, consumer string, args []byte, start time.Time, elapsed time.Duration) *snapshot.FederatedCall {
	return &snapshot.FederatedCall{Tenant: h.tenant, Tool: h.tool, Name: h.upstreamName, Consumer: consumer,
		URL: h.url, Command: h.command, Reason: reason, Err: err.Error(), Status: status,
		Arguments: args, Start: start, Duration: elapsed}
}

func newHandle(t *mcp.Tool) *handle {
	h := &handle{tenant: t.Ref.Namespace, tool: t.Ref.Name, mcpTenant: t.Tenant, mcpName: t.Name}
	op := t.Operation
	if op != nil {
		h.opLimit = limits.FromRate(op.RateLimit)
		h.timeout = op.Timeout.D() // 0 (unset): the tool's total timeout
	}
	// A name-derived key: the same on every data plane sharing limits.
	h.opKey = limits.NameKey(limits.KindOperation, "operation/"+t.Tenant+"/"+t.Name)
	if t.Spec != nil {
		h.req = requirement(t.Spec)
	}
	return h
}

// apiKeyRequirement is shared by every apiKey tool (requirements are
// read-only): one per tool was 3 MB of a 20,000-tool catalog.
var apiKeyRequirement = &auth.Requirement{Method: auth.MethodAPIKey}

// requirement is what a Tool's auth demands of callers; nil: any
// credential of the tenant.
func requirement(ts *spec.ToolSpec) *auth.Requirement {
	if ts.Auth == nil {
		return nil
	}
	switch ts.Auth.Type {
	case "apiKey":
		return apiKeyRequirement
	case "jwt", "oauth2":
		return &auth.Requirement{Method: auth.MethodJWT, Issuer: ts.Auth.Issuer, Audiences: ts.Auth.Audiences, Scopes: ts.Auth.Scopes}
	}
	return nil
}

// Start serves the MCP unix socket (the proxy serves /mcp on --listen).
func (r *Runtime) Start(context.Context) error {
	path := r.o.Socket
	if path == "" {
		return nil
	}
	ln, err := unixsock.Listen(path, "", "--mcp-socket", r.log)
	if err != nil {
		return fmt.Errorf("mcp socket: %w", err)
	}
	r.sock = r.ep.ServeSocket(ln, r.log)
	r.started.Store(true)
	return nil
}

// Stop ends notification streams, the socket server and the federated
// MCP servers' sessions and processes.
func (r *Runtime) Stop(ctx context.Context) error {
	r.rbMu.Lock()
	r.rbStopped = true
	r.rbMu.Unlock()
	r.ep.Server().Close()
	defer r.fed.Stop(ctx)
	if !r.started.Load() {
		return nil
	}
	// Closing the listener removes the socket file if it is still ours.
	if err := r.sock.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("mcp socket: %w", err)
	}
	return nil
}

// Status is the runtime's line in `stoa status`.
func (r *Runtime) Status() api.Component {
	cat := r.ep.Server().Catalog()
	c := api.Component{Name: "mcp", State: "ok",
		Detail: fmt.Sprintf("%d tools (revision %d) on %s", cat.Len(), cat.Revision(), mcpPath),
		Data:   map[string]any{"tools": cat.Len()}}
	if r.started.Load() {
		c.Detail += " and " + r.o.Socket
		c.Data["address"] = r.o.Socket
	}
	return c
}
