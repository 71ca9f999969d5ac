package proxy

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/policy"
	"github.com/stoa-gateway/stoa/pkg/secret"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// table is one compiled revision: everything the hot path needs, immutable
// once built and swapped atomically, so a lookup takes no lock and
// allocates nothing.
type table struct {
	revision int64
	// hosts maps a Host header value to its routes; "" holds the routes
	// without a host.
	hosts map[string]*routeSet
	// routes in compile order (for status and health checks).
	routes []*Route
	// byTool finds a tool's route by tenant and name (MCP calls),
	// federated MCP servers' admission-only routes included.
	byTool map[toolKey]*Route
	gw     gatewayPolicy

	// What the routes were compiled from, so the next revision's compile
	// reuses the routes whose inputs did not change (compile, reusable).
	gwObj   *spec.Object
	tenants []string
	// newSeries: compile created statistics series; sameRoutes: the
	// routes are those of the table compile was given, by tool (so the
	// HTTP series to keep are the same).
	newSeries, sameRoutes bool
	toolSets              map[spec.Ref][]tsInfo
	plans                 map[spec.Ref]map[string]planLimit
}

// tsInfo is what a ToolSet gives each of its tools.
type tsInfo struct {
	key         limits.Key
	limit       limits.Limit
	authRequire bool
}

type toolKey struct{ tenant, tool string }

// routeSet maps path prefixes (without a trailing slash) to routes.
type routeSet struct {
	byPrefix map[string]*Route
}

// gatewayPolicy is the compiled Gateway spec.
type gatewayPolicy struct {
	trusted           []netip.Prefix
	crossTenantStatus int
	maxRequestLine    int
	maxHeaderBytes    int
	maxHeaders        int
	maxBody           int
	maxResponse       int64 // 0: no cap
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	maxConnsPerSource int
	accessLog         bool
}

// Route is one Tool served at a path prefix.
type Route struct {
	Tenant, Tool string
	Prefix       string // normalised, no trailing slash
	Host         string

	tenantKey, toolKey limits.Key // rate-limit keys (limits.NameKey)
	suspended          bool       // the tenant is suspended: every call is refused
	federated          bool       // a protocol: mcp Tool: admission only (Admit), no upstreams
	auth               routeAuth
	upstreams          *upstreamSet
	forwardCreds       bool
	upstreamHeader     string // header for the upstream credential
	// upstreamHeaderFold is upstreamHeader lower case, '_' as '-' (to
	// find a client's underscore twin of it).
	upstreamHeaderFold string
	upstreamValue      []byte // its value (prefix + secret), never logged
	retries            int
	retryOn            retryPolicy
	totalTimeout       time.Duration
	headerTimeout      time.Duration

	// Limits that apply, in the order their keys are built per request.
	tenantLimit, toolLimit, sourceLimit limits.Limit
	toolSets                            []toolSetLimit
	planLimits                          map[string]planLimit // consumer → its subscription's plan limit

	stats *telemetry.Series
	// policy decides requests when a CEL policy applies (nil: none).
	policy *routePolicy

	// src and srcTenant are the Tool object and the Tenant spec the route
	// was compiled from (shared, read only).
	src       *spec.Object
	srcTenant *spec.TenantSpec
}

// planLimit is a consumer's plan limit, keyed by its subscription so a
// ToolSet subscription shares one bucket across the set's tools.
type planLimit struct {
	key   limits.Key
	limit limits.Limit
}

type toolSetLimit struct {
	key   limits.Key
	limit limits.Limit
}

// routeAuth is what a route demands of callers.
type routeAuth struct {
	required bool // some credential is needed (auth type, or a ToolSet's auth: required)
	req      auth.Requirement
}

type retryPolicy struct {
	connectFailure, reset, status5xx, timeout bool
}

// compile builds the table for a snapshot. pools supplies upstream pools
// (reused across revisions so keep-alive connections survive reloads).
// prev, when set, is the live table: a route whose inputs are unchanged
// (the same Tool object and Tenant spec, the same ToolSet and plan limits,
// the same Gateway and tenants, no upstream credential to read again) is
// copied from it rather than compiled again, so a one-tool change costs
// one route's compilation plus the indexes.
//
// A reused route is shared with prev, unless a policy applies to it (in
// chains, or it had one): attachPolicies then sets it on a copy.
func compile(st *state.Revision, pools *poolRegistry, reg *telemetry.Registry, prev *table, chains map[spec.Ref]*policy.Chain) (*table, error) {
	gw := st.Gateway()
	t := &table{revision: st.Revision, hosts: map[string]*routeSet{}, byTool: map[toolKey]*Route{}}
	t.gw = compileGateway(gw)
	if gws := st.OfKind(spec.KindGateway); len(gws) > 0 {
		t.gwObj = gws[0]
	}
	for _, o := range st.OfKind(spec.KindTenant) {
		t.tenants = append(t.tenants, o.Metadata.Name)
	}
	if prev != nil {
		// About as many routes as before: no growing the maps.
		t.byTool = make(map[toolKey]*Route, len(prev.byTool))
		for h, rs := range prev.hosts {
			t.hosts[h] = &routeSet{byPrefix: make(map[string]*Route, len(rs.byPrefix))}
		}
		t.routes = make([]*Route, 0, len(prev.routes))
	}
	if prev != nil && (prev.gwObj != t.gwObj || !slices.Equal(prev.tenants, t.tenants)) {
		// Route ownership depends on both: compile every route.
		prev = nil
	}

	// Rate-limit keys are derived from names (limits.NameKey), so that
	// they are the same across reloads (numbered in compile order, a
	// revision adding an object that sorts earlier would shift every key,
	// resetting spent budgets or handing them to another tool) and on
	// every data plane of a fleet sharing limits through Redis.
	tenantKeys := map[string]limits.Key{}
	tenantKey := func(ns string) limits.Key {
		k, ok := tenantKeys[ns]
		if !ok {
			k = limits.NameKey(limits.KindTenant, "tenant/"+ns)
			tenantKeys[ns] = k
		}
		return k
	}
	// ToolSets and subscriptions, indexed by tool.
	toolSets := map[spec.Ref][]tsInfo{}
	for _, o := range st.OfKind(spec.KindToolSet) {
		ts := o.Spec.(*spec.ToolSetSpec)
		info := tsInfo{key: limits.NameKey(limits.KindToolSet, "toolset/"+o.Metadata.Namespace+"/"+o.Metadata.Name)}
		if p := ts.Policies; p != nil {
			info.limit = limits.FromRate(p.RateLimit)
			info.authRequire = p.Auth == "required"
		}
		for _, tool := range ts.Tools {
			ref := spec.Ref{Kind: spec.KindTool, Namespace: o.Metadata.Namespace, Name: tool}
			toolSets[ref] = append(toolSets[ref], info)
		}
	}
	plans := planLimitsByTool(st)
	t.toolSets, t.plans = toolSets, plans

	// Whether every route compiled anew is one prev has.
	freshKeys := prev != nil
	for _, o := range st.OfKind(spec.KindTool) {
		ts := o.Spec.(*spec.ToolSpec)
		ten := st.Tenant(o.Metadata.Namespace)
		if old := prev.reusable(o, ten, toolSets, plans); old != nil {
			r := old
			if old.policy != nil || chains[o.Ref()] != nil {
				r = new(Route)
				*r = *old
			}
			if err := t.add(r); err != nil {
				return nil, err
			}
			continue
		}
		r := &Route{
			src:       o,
			srcTenant: ten,
			Tenant:    o.Metadata.Namespace,
			Tool:      o.Metadata.Name,
			tenantKey: tenantKey(o.Metadata.Namespace),
			toolKey:   limits.NameKey(limits.KindTool, "tool/"+o.Metadata.Namespace+"/"+o.Metadata.Name),
			retries:   0,
		}
		r.suspended = ten != nil && ten.Suspended
		r.Prefix = "/" + o.Metadata.Namespace + "/" + o.Metadata.Name
		if ts.Route != nil {
			if ts.Route.PathPrefix != "" {
				r.Prefix = ts.Route.PathPrefix
			}
			// Requests are matched on their Host without the port
			// (hostOnly), so the port of a route host written with
			// ":port" (which validation allows) is dropped here too.
			r.Host = strings.ToLower(string(hostOnly([]byte(ts.Route.Host), new([64]byte))))
		}
		r.Prefix = strings.TrimSuffix(r.Prefix, "/")
		// Auth.
		if a := ts.Auth; a != nil {
			switch a.Type {
			case "apiKey":
				r.auth.required = true
				r.auth.req.Method = auth.MethodAPIKey
			case "jwt", "oauth2":
				r.auth.required = true
				r.auth.req = auth.Requirement{Method: auth.MethodJWT, Issuer: a.Issuer, Audiences: a.Audiences, Scopes: a.Scopes}
			}
			r.forwardCreds = a.ForwardCredentials
		}
		for _, info := range toolSets[o.Ref()] {
			if info.authRequire {
				r.auth.required = true
			}
			if !info.limit.IsZero() {
				r.toolSets = append(r.toolSets, toolSetLimit{key: info.key, limit: info.limit})
			}
		}
		// admit checks at most maxLimitKeys limits: a tool in more
		// rate-limited ToolSets than fit is refused, rather than losing
		// its plan and per-source limits. The other five slots are
		// operation, tool, tenant, plan, source.
		if n := len(r.toolSets); n > maxLimitKeys-5 {
			return nil, fmt.Errorf("tool %s/%s is in %d rate-limited ToolSets; at most %d are supported", r.Tenant, r.Tool, n, maxLimitKeys-5)
		}
		r.toolLimit = limits.FromRate(ts.RateLimit)
		if ten != nil && ten.Defaults != nil {
			r.tenantLimit = limits.FromRate(ten.Defaults.RateLimit)
			r.sourceLimit = limits.FromRate(ten.Defaults.PerSource)
		}
		r.planLimits = plans[o.Ref()]
		if ts.Protocol == spec.ProtocolMCP {
			// A federated MCP server is reached through the MCP endpoint,
			// never as an HTTP route: its calls are only admitted here
			// (Admit), with the same limits as a REST Tool. Its traffic
			// is counted by the MCP runtime, per tool, so its series is
			// not registered.
			r.federated = true
			r.stats = &telemetry.Series{Kind: telemetry.KindHTTP, Tenant: r.Tenant, Name: r.Tool}
			t.add(r)
			continue
		}
		if ua := ts.UpstreamAuth; ua != nil {
			value, err := secret.Read(ua.SecretRef)
			if err != nil {
				return nil, fmt.Errorf("tool %s/%s: upstreamAuth: %w", r.Tenant, r.Tool, err)
			}
			// Header and prefix are defaulted (Authorization, "Bearer ").
			r.upstreamHeader = ua.Header
			r.upstreamHeaderFold = strings.ToLower(strings.ReplaceAll(r.upstreamHeader, "_", "-"))
			r.upstreamValue = []byte(ua.Prefix + value)
		}
		// Upstreams.
		var targets []upstreamTarget
		if ts.Upstream != "" {
			targets = append(targets, upstreamTarget{url: ts.Upstream, weight: 1})
		}
		for _, u := range ts.Upstreams {
			targets = append(targets, upstreamTarget{url: u.URL, weight: u.Weight})
		}
		set, err := pools.set(r, ts, targets)
		if err != nil {
			return nil, fmt.Errorf("tool %s/%s: %w", r.Tenant, r.Tool, err)
		}
		r.upstreams = set
		if rt := ts.Retries; rt != nil {
			r.retries = rt.Attempts
			for _, on := range rt.On {
				switch on {
				case "connect-failure":
					r.retryOn.connectFailure = true
				case "reset":
					r.retryOn.reset = true
				case "5xx":
					r.retryOn.status5xx = true
				case "timeout":
					r.retryOn.timeout = true
				}
			}
		}
		r.totalTimeout, r.headerTimeout = ts.Timeouts.Total.D(), ts.Timeouts.Header.D()
		var created bool
		r.stats, created = reg.GetNew(telemetry.KindHTTP, r.Tenant, r.Tool)
		t.newSeries = t.newSeries || created
		if old := prev.byToolOrNil(r.Tenant, r.Tool); old == nil || old.federated {
			freshKeys = false
		}

		if err := checkRouteOwner(st, gw, r); err != nil {
			return nil, err
		}
		if err := t.add(r); err != nil {
			return nil, err
		}
	}
	t.sameRoutes = freshKeys && len(t.routes) == len(prev.routes)
	for h, rs := range t.hosts {
		if len(rs.byPrefix) == 0 {
			delete(t.hosts, h) // presized for a host no route has now
		}
	}
	return t, nil
}

// byToolOrNil is byTool's route for the tool, nil for a nil table.
func (t *table) byToolOrNil(tenant, tool string) *Route {
	if t == nil {
		return nil
	}
	return t.byTool[toolKey{tenant, tool}]
}

// add indexes a route; a federated one is only found by tool.
func (t *table) add(r *Route) error {
	if r.federated {
		t.byTool[toolKey{r.Tenant, r.Tool}] = r
		return nil
	}
	rs := t.hosts[r.Host]
	if rs == nil {
		rs = &routeSet{byPrefix: map[string]*Route{}}
		t.hosts[r.Host] = rs
	}
	if prev, dup := rs.byPrefix[r.Prefix]; dup {
		return fmt.Errorf("tools %s/%s and %s/%s both route %s%s", prev.Tenant, prev.Tool, r.Tenant, r.Tool, r.Host, r.Prefix)
	}
	rs.byPrefix[r.Prefix] = r
	t.routes = append(t.routes, r)
	t.byTool[toolKey{r.Tenant, r.Tool}] = r
	return nil
}

// reusable returns prev's route for Tool object o if it was compiled from
// the same inputs: o itself (objects are never modified once live), the
// same Tenant spec, equal ToolSet and plan limits, and no upstream
// credential (read again from its secret on every reload). The Gateway and
// the tenants' names were compared by compile. nil: compile it.
func (prev *table) reusable(o *spec.Object, ten *spec.TenantSpec, toolSets map[spec.Ref][]tsInfo, plans map[spec.Ref]map[string]planLimit) *Route {
	if prev == nil {
		return nil
	}
	r := prev.byTool[toolKey{o.Metadata.Namespace, o.Metadata.Name}]
	if r == nil || r.src != o || r.srcTenant != ten || o.Spec.(*spec.ToolSpec).UpstreamAuth != nil {
		return nil
	}
	ref := o.Ref()
	if !slices.Equal(prev.toolSets[ref], toolSets[ref]) || !maps.Equal(prev.plans[ref], plans[ref]) {
		return nil
	}
	return r
}

// checkRouteOwner refuses a route that would capture another tenant's
// paths. Validation (pkg/spec, route ownership) refuses these long before,
// with positions; this is the route table's own guard, should a revision
// ever get here without it: no route at or under the paths stoad serves
// itself, none in another tenant's /{tenant}/ space, no catch-all beside
// other tenants, none on a host granted to another tenant.
func checkRouteOwner(st *state.Revision, gw *spec.GatewaySpec, r *Route) error {
	if r.Prefix != "" && spec.ReservedPath(r.Prefix) {
		return fmt.Errorf("tool %s/%s: route %s is reserved for stoad", r.Tenant, r.Tool, r.Prefix)
	}
	if seg, _, _ := strings.Cut(strings.TrimPrefix(r.Prefix, "/"), "/"); seg != "" && seg != r.Tenant && st.Tenant(seg) != nil {
		return fmt.Errorf("tool %s/%s: route %s lies in tenant %s's space", r.Tenant, r.Tool, r.Prefix, seg)
	}
	if r.Prefix == "" && r.Host == "" {
		for _, o := range st.OfKind(spec.KindTenant) {
			if o.Metadata.Name != r.Tenant {
				return fmt.Errorf("tool %s/%s: route / would capture tenant %s's paths", r.Tenant, r.Tool, o.Metadata.Name)
			}
		}
	}
	if r.Host != "" && gw != nil && gw.Routing != nil {
		for _, g := range gw.Routing.Grants {
			for _, h := range g.Hosts {
				if g.Tenant != r.Tenant && strings.EqualFold(strings.TrimSuffix(string(hostOnly([]byte(h), new([64]byte))), "."), strings.TrimSuffix(r.Host, ".")) {
					return fmt.Errorf("tool %s/%s: host %s is granted to tenant %s", r.Tenant, r.Tool, r.Host, g.Tenant)
				}
			}
		}
	}
	return nil
}

// planLimitsByTool maps every tool to the plan limits of the consumers
// subscribed to it (directly or through a ToolSet) with an active
// subscription.
func planLimitsByTool(st *state.Revision) map[spec.Ref]map[string]planLimit {
	out := map[spec.Ref]map[string]planLimit{}
	add := func(tool spec.Ref, consumer string, l planLimit) {
		if l.limit.IsZero() {
			return
		}
		m := out[tool]
		if m == nil {
			m = map[string]planLimit{}
			out[tool] = m
		}
		m[consumer] = l
	}
	for _, o := range st.OfKind(spec.KindSubscription) {
		sub := o.Spec.(*spec.SubscriptionSpec)
		if sub.State != "" && sub.State != "active" {
			continue
		}
		ns := o.Metadata.Namespace
		po := st.Get(spec.Ref{Kind: spec.KindPlan, Namespace: ns, Name: sub.Plan})
		if po == nil {
			continue
		}
		l := planLimit{key: limits.NameKey(limits.KindConsumer, "subscription/"+ns+"/"+o.Metadata.Name), limit: limits.FromRate(po.Spec.(*spec.PlanSpec).RateLimit)}
		if sub.Tool != "" {
			add(spec.Ref{Kind: spec.KindTool, Namespace: ns, Name: sub.Tool}, sub.Consumer, l)
		}
		if sub.ToolSet != "" {
			if tso := st.Get(spec.Ref{Kind: spec.KindToolSet, Namespace: ns, Name: sub.ToolSet}); tso != nil {
				for _, tool := range tso.Spec.(*spec.ToolSetSpec).Tools {
					add(spec.Ref{Kind: spec.KindTool, Namespace: ns, Name: tool}, sub.Consumer, l)
				}
			}
		}
	}
	return out
}

func compileGateway(gw *spec.GatewaySpec) gatewayPolicy {
	p := gatewayPolicy{crossTenantStatus: 403}
	for _, c := range gw.TrustedProxies {
		if pfx, err := netip.ParsePrefix(c); err == nil {
			p.trusted = append(p.trusted, pfx.Masked())
		} else if a, err := netip.ParseAddr(c); err == nil {
			p.trusted = append(p.trusted, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	if gw.CrossTenant == "notFound" {
		p.crossTenantStatus = 404
	}
	// The Gateway is defaulted (state.New): every limit is set.
	l := gw.Limits
	p.maxRequestLine = l.MaxRequestLineBytes
	p.maxHeaders = l.MaxHeaders
	p.maxHeaderBytes = l.MaxHeaderBytes
	p.maxBody = int(l.MaxBodyBytes)
	p.maxResponse = max(0, l.MaxResponseBytes)
	p.readHeaderTimeout = l.ReadHeaderTimeout.D()
	p.readTimeout = l.ReadTimeout.D()
	p.writeTimeout = l.WriteTimeout.D()
	p.idleTimeout = l.IdleTimeout.D()
	p.maxConnsPerSource = l.MaxConnsPerSource
	p.accessLog = gw.AccessLog != nil && gw.AccessLog.Enabled
	return p
}

// lookup finds the route for host and path (both already normalised)
// without allocating: the longest prefix at a segment boundary wins, routes
// with a matching host before routes without one.
func (t *table) lookup(host, path []byte) *Route {
	if len(t.hosts) > 1 || t.hosts[""] == nil {
		if rs := t.hosts[string(host)]; rs != nil {
			if r := rs.match(path); r != nil {
				return r
			}
		}
	}
	if rs := t.hosts[""]; rs != nil {
		return rs.match(path)
	}
	return nil
}

func (rs *routeSet) match(path []byte) *Route {
	// Candidate prefixes end where a segment ends: before a '/' or at the
	// end of the path. Try the longest first.
	end := len(path)
	if end > 1 && path[end-1] == '/' {
		end--
	}
	for end > 0 {
		if r := rs.byPrefix[string(path[:end])]; r != nil {
			return r
		}
		i := end - 1
		for i > 0 && path[i] != '/' {
			i--
		}
		end = i
	}
	// A catch-all never answers the paths stoad serves itself (the MCP
	// endpoint and its OAuth metadata), mounted or not.
	if r := rs.byPrefix[""]; r != nil && !reservedPath(path) {
		return r
	}
	return nil
}

// reservedPath is spec.ReservedPath for a request path, without allocating.
func reservedPath(path []byte) bool {
	for _, r := range spec.ReservedPathPrefixes {
		if len(path) >= len(r) && string(path[:len(r)]) == r && (len(path) == len(r) || path[len(r)] == '/') {
			return true
		}
	}
	return false
}

// isTrusted reports whether addr is a configured trusted proxy.
func (p *gatewayPolicy) isTrusted(addr netip.Addr) bool {
	for _, pfx := range p.trusted {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// parseUpstream validates an upstream URL and splits it into the dial
// address, the Host header and the base path.
func parseUpstream(raw string) (addr, host, base string, tls bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", false, fmt.Errorf("upstream %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http":
	case "https":
		tls = true
	default:
		return "", "", "", false, fmt.Errorf("upstream %q: scheme must be http or https", raw)
	}
	host = u.Host
	addr = u.Host
	if u.Port() == "" {
		if tls {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	return addr, host, strings.TrimSuffix(u.EscapedPath(), "/"), tls, nil
}
