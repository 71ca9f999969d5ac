// Package mcprt runs pkg/mcp as one of stoad's runtimes: every Tool
// operation of each revision compiled into the MCP catalog, served on the
// proxy's listener (/mcp and the RFC 9728 metadata) and on the MCP unix
// socket, with calls going through the proxy's admission, limits and
// upstream pools.
package mcprt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/openapi"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/snapshot"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
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

	ep      *mcp.Endpoint
	optsSig string // options the endpoint's server was built with; used by Prepare/swap only (reloads are sequential)

	sock    *mcp.SocketServer
	started atomic.Bool
}

// New builds the runtime and mounts its handler on the proxy. Call it
// before the proxy starts.
func New(o Options) (*Runtime, error) {
	key, err := loadCursorKey(o.Store)
	if err != nil {
		return nil, fmt.Errorf("mcp cursor key: %w", err)
	}
	r := &Runtime{o: o, log: o.Log.With("component", "mcp"), cursorKey: key}
	r.backend = &backend{o: &r.o}
	r.backend.index.Store(&index{})
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
		MaxBodyBytes:         mcpMaxBodyBytes,
		AuthorizationServers: r.authorizationServers,
		Instructions: "Tools are named {tenant}__{tool}__{operation}. stoa_tools searches the tools you may call " +
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

// Prepare compiles st's tools into a catalog without touching what serves.
func (r *Runtime) Prepare(st *state.Revision) (func(), error) {
	idx := newIndex(st)
	var handles []*handle
	cat, err := mcp.BuildCatalog(st.Revision, st.Objects,
		mcp.WithOpenAPI(func(ref spec.Ref) ([]byte, bool) { return openapi.StoredDocument(st.Get(ref)) }),
		mcp.WithHandles(func(t *mcp.Tool) any {
			h := newHandle(t)
			handles = append(handles, h)
			return h
		}))
	if err != nil {
		return nil, err
	}
	opts := r.options(st)
	sig := optionsSignature(opts)
	var next *mcp.Server
	if sig != r.optsSig {
		next = mcp.NewServer(opts, r.backend)
	}
	return func() {
		// Statistics series are created here, not in Prepare, so a dry run
		// (stoa diff) leaves no series behind. The catalog is not yet
		// published: no call reads h.series before this.
		for _, h := range handles {
			h.series = r.o.Stats.Get(telemetry.KindMCP, h.mcpTenant, h.mcpName)
		}
		r.backend.index.Store(idx)
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
		keep := map[[2]string]bool{}
		for _, o := range st.OfKind(spec.KindTool) {
			ts := o.Spec.(*spec.ToolSpec)
			for i := range ts.Operations {
				keep[[2]string{o.Metadata.Namespace, spec.MCPToolName(o.Metadata.Namespace, o.Metadata.Name, &ts.Operations[i])}] = true
			}
		}
		r.o.Stats.Retain(telemetry.KindMCP, keep)
	}, nil
}

// handle is what a tools/call needs besides the catalog's tool: the
// proxy route, the operation's own limit and timeout, the Tool's credential
// requirement and the statistics series. It is Tool.Handle.
type handle struct {
	tenant, tool       string // the proxy route
	mcpTenant, mcpName string // the statistics series
	opLimit            limits.Limit
	opKey              uint64
	timeout            time.Duration
	req                *auth.Requirement // nil: any credential of the tenant
	series             *telemetry.Series
}

func newHandle(t *mcp.Tool) *handle {
	h := &handle{tenant: t.Ref.Namespace, tool: t.Ref.Name, mcpTenant: t.Tenant, mcpName: t.Name}
	op := t.Operation
	if op != nil {
		h.opLimit = limits.FromRate(op.RateLimit)
		h.timeout = op.Timeout.D() // 0 (unset): the tool's total timeout
	}
	f := fnv.New64a()
	f.Write([]byte("mcp-op\x00" + t.Name))
	h.opKey = f.Sum64()
	if ts := t.Spec; ts != nil && ts.Auth != nil {
		switch ts.Auth.Type {
		case "apiKey":
			h.req = &auth.Requirement{Method: auth.MethodAPIKey}
		case "jwt", "oauth2":
			h.req = &auth.Requirement{Method: auth.MethodJWT, Issuer: ts.Auth.Issuer, Audiences: ts.Auth.Audiences, Scopes: ts.Auth.Scopes}
		}
	}
	return h
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

// Stop ends notification streams and the socket server.
func (r *Runtime) Stop(ctx context.Context) error {
	r.ep.Server().Close()
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
