package spec

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Route ownership. Every tenant owns one path space, /{tenant}/, and its
// Tools route inside it; anything else — another path prefix, a whole host
// — must be granted by a cluster admin in the Gateway's
// spec.routing.grants. Grants are exclusive: a granted prefix may not
// overlap another tenant's space or grants, and a granted host takes no
// other tenant's routes. stoad serves some paths itself on the proxy
// listener (the MCP endpoint and its OAuth metadata); no route or grant
// may lie at or under them, and the proxy never lets a catch-all route
// ("/") answer them either.
//
// Validation runs the same check offline (over the files) and in stoad
// (over the whole desired state), so a Tool that captures another
// tenant's paths is refused before it is stored.

// ReservedPathPrefixes are the path spaces stoad serves itself on the
// proxy listener: the MCP endpoint and the /.well-known documents its
// OAuth metadata lives in.
var ReservedPathPrefixes = []string{"/mcp", "/.well-known"}

// ReservedPath reports whether the normalised request or route path p lies
// at or under one of ReservedPathPrefixes.
func ReservedPath(p string) bool {
	for _, r := range ReservedPathPrefixes {
		if pathContains(r, p) {
			return true
		}
	}
	return false
}

// routePrefix normalises a path prefix as the route table does: without a
// trailing slash, "" for the root.
func routePrefix(p string) string {
	return strings.TrimRight(p, "/")
}

// pathContains reports whether path p lies at or under prefix (both
// normalised); the root "" contains every path.
func pathContains(prefix, p string) bool {
	return prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/")
}

// pathsOverlap reports whether one of two prefixes contains the other.
func pathsOverlap(a, b string) bool { return pathContains(a, b) || pathContains(b, a) }

// firstSegment returns the first segment of a normalised path ("acme" for
// "/acme/x"), "" for the root.
func firstSegment(p string) string {
	p = strings.TrimPrefix(p, "/")
	seg, _, _ := strings.Cut(p, "/")
	return seg
}

// routeHost normalises a route or grant host as the route table does:
// lower case, without a port or a trailing dot.
func routeHost(h string) string {
	h = strings.ToLower(h)
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

// pathPrefixProblem explains why p cannot be a path prefix, or "".
func pathPrefixProblem(p string) (problem, hint string) {
	switch {
	case p == "":
		return "empty path prefix", "write a path such as /api"
	case p[0] != '/':
		return fmt.Sprintf("pathPrefix %q must start with '/'", p), fmt.Sprintf("write %q", "/"+p)
	case strings.Contains(p, ".."):
		return fmt.Sprintf("pathPrefix %q must not contain '..'", p), ""
	case strings.Contains(p, "//"):
		return fmt.Sprintf("pathPrefix %q must not contain '//'", p), ""
	case strings.ContainsAny(p, "?#{} \t"):
		return fmt.Sprintf("pathPrefix %q must not contain '?', '#', braces or spaces", p), "a prefix is a plain path"
	}
	return "", ""
}

// reservedProblem explains why p (normalised) is reserved, or "".
func reservedProblem(p string) string {
	for _, r := range ReservedPathPrefixes {
		if pathContains(r, p) {
			if r == "/mcp" {
				return "stoad serves the MCP endpoint at /mcp"
			}
			return "stoad serves the MCP OAuth metadata under /.well-known"
		}
	}
	return ""
}

// grantSite is one granted prefix or host.
type grantSite struct {
	tenant string
	gw     *Object
	path   string // field path in the Gateway
	prefix string // normalised prefix, for path grants
	host   string // normalised host, for host grants
}

// routeOwnership checks every Tool route and every grant against the
// tenants' spaces and each other.
func (v *validator) routeOwnership(objs []*Object) {
	gw, gs := v.gatewaySpec()
	// Validated objects get diagnostics; live ones only take part. (A
	// validated object is never in v.live.)
	validated := func(o *Object) bool { return !v.shadowed[o] && v.live[o.Ref()] != o }
	gwReport := gw != nil && validated(gw)
	tenants := map[string]*Object{}
	var tenantNames []string
	var tools []*Object // validated ones
	for _, o := range objs {
		if o == nil || v.shadowed[o] {
			continue
		}
		switch o.Spec.(type) {
		case *TenantSpec:
			if _, dup := tenants[o.Metadata.Name]; !dup {
				tenants[o.Metadata.Name] = o
				tenantNames = append(tenantNames, o.Metadata.Name)
			}
		case *ToolSpec:
			// A federated Tool has no HTTP route.
			if s := o.Spec.(*ToolSpec); s.Protocol != ProtocolMCP {
				tools = append(tools, o)
			}
		}
	}
	for _, o := range v.live {
		if _, ok := o.Spec.(*TenantSpec); ok {
			if _, dup := tenants[o.Metadata.Name]; !dup {
				tenants[o.Metadata.Name] = o
				tenantNames = append(tenantNames, o.Metadata.Name)
			}
		}
	}
	sort.Strings(tenantNames)

	// Grants, in the order written.
	var paths, hosts []grantSite
	if gs != nil && gs.Routing != nil {
		for i, g := range gs.Routing.Grants {
			gp := itemPath("spec.routing.grants", i)
			if checkDNSLabel(g.Tenant) != "" {
				continue // reported by the Gateway's own checks
			}
			for j, p := range g.PathPrefixes {
				if prob, _ := pathPrefixProblem(p); prob == "" && reservedProblem(routePrefix(p)) == "" {
					paths = append(paths, grantSite{tenant: g.Tenant, gw: gw, path: itemPath(gp+".pathPrefixes", j), prefix: routePrefix(p)})
				}
			}
			for j, h := range g.Hosts {
				if validHost(h) {
					hosts = append(hosts, grantSite{tenant: g.Tenant, gw: gw, path: itemPath(gp+".hosts", j), host: routeHost(h)})
				}
			}
		}
	}
	hostOwner := map[string]grantSite{}
	for _, g := range hosts {
		if prev, dup := hostOwner[g.host]; dup {
			if prev.tenant != g.tenant && gwReport {
				p := v.add(gw, SeverityError, false, g.path, "a host belongs to one tenant; remove one of the grants",
					fmt.Sprintf("host %s is granted to tenant %s and to tenant %s", g.host, prev.tenant, g.tenant))
				p.related = []relSite{{gw, prev.path, "also granted to tenant " + prev.tenant + " here"}}
			}
			continue
		}
		hostOwner[g.host] = g
	}
	for i, g := range paths {
		if !gwReport {
			break
		}
		for _, prev := range paths[:i] {
			if prev.tenant != g.tenant && pathsOverlap(prev.prefix, g.prefix) {
				p := v.add(gw, SeverityError, false, g.path, "granted prefixes of different tenants must not overlap",
					fmt.Sprintf("path prefix %s granted to tenant %s overlaps %s, granted to tenant %s", shown(g.prefix), g.tenant, shown(prev.prefix), prev.tenant))
				p.related = []relSite{{gw, prev.path, fmt.Sprintf("%s is granted to tenant %s here", shown(prev.prefix), prev.tenant)}}
				break
			}
		}
	}
	// A grant must not cover another tenant's space. The problem is
	// reported on whichever side is being validated (the Gateway first).
	for _, g := range paths {
		var covered []string
		if g.prefix == "" {
			for _, n := range tenantNames {
				if n != g.tenant {
					covered = append(covered, n)
				}
			}
		} else if seg := firstSegment(g.prefix); seg != g.tenant && tenants[seg] != nil {
			covered = []string{seg}
		}
		if len(covered) == 0 {
			continue
		}
		if gwReport {
			u := tenants[covered[0]]
			msg := fmt.Sprintf("path prefix %s granted to tenant %s covers tenant %s's space /%s/", shown(g.prefix), g.tenant, covered[0], covered[0])
			if len(covered) > 1 {
				msg = fmt.Sprintf("path prefix / granted to tenant %s covers the spaces of %d other tenants (%s)", g.tenant, len(covered), nameList(covered, 5))
			}
			p := v.add(gw, SeverityError, false, g.path, "grant a prefix no tenant is named after, such as /api, or a host", msg)
			p.related = []relSite{{u, "metadata.name", "tenant " + covered[0] + " is defined here"}}
			continue
		}
		for _, n := range covered {
			if u := tenants[n]; validated(u) {
				p := v.add(u, SeverityError, false, "metadata.name", "choose another tenant name, or have a cluster admin narrow the grant",
					fmt.Sprintf("tenant %s's space /%s/ is granted to tenant %s by the Gateway (path prefix %s)", n, n, g.tenant, shown(g.prefix)))
				p.related = []relSite{{gw, g.path, "granted here"}}
			}
		}
	}

	// Every validated Tool's route.
	for _, o := range tools {
		s := o.Spec.(*ToolSpec)
		t := o.Metadata.Namespace
		raw := "/" + t + "/" + o.Metadata.Name
		host := ""
		if s.Route != nil {
			if s.Route.PathPrefix != "" {
				raw = s.Route.PathPrefix
			}
			host = routeHost(s.Route.Host)
			if s.Route.Host != "" && !validHost(s.Route.Host) {
				continue // reported by the Tool's own checks
			}
		}
		if prob, _ := pathPrefixProblem(raw); prob != "" || t == "" {
			continue
		}
		p := routePrefix(raw)
		path := "spec.route.pathPrefix"
		if why := reservedProblem(p); why != "" {
			v.errorf(o, path, "route the tool under /"+t+"/", "route %s is reserved: %s", shown(p), why)
			continue
		}
		if g, ok := hostOwner[host]; ok && host != "" && g.tenant != t {
			pe := v.add(o, SeverityError, false, "spec.route.host", "route on a host of your own, or without a host",
				fmt.Sprintf("host %s is granted to tenant %s; tenant %s cannot route on it", host, g.tenant, t))
			pe.related = []relSite{{g.gw, g.path, "granted to tenant " + g.tenant + " here"}}
			continue
		}
		if pathContains("/"+t, p) || host != "" && hostOwner[host].tenant == t {
			continue
		}
		granted := false
		for _, g := range paths {
			if g.tenant == t && pathContains(g.prefix, p) {
				granted = true
				break
			}
		}
		if granted {
			continue
		}
		v.foreignRoute(o, path, t, p, host, tenants, tenantNames, paths, gw != nil)
	}
}

// foreignRoute reports the route p of tenant t, which lies outside its
// space and is not granted, naming what it would capture.
func (v *validator) foreignRoute(o *Object, path, t, p, host string, tenants map[string]*Object, names []string, grants []grantSite, haveGateway bool) {
	on := ""
	if host != "" {
		on = " on host " + host
	}
	hint := fmt.Sprintf("route under /%s/, or have a cluster admin grant the prefix: Gateway spec.routing.grants: [{tenant: %s, pathPrefixes: [%s]}]", t, t, shown(p))
	if seg := firstSegment(p); seg != "" && seg != t && tenants[seg] != nil {
		pe := v.add(o, SeverityError, false, path, fmt.Sprintf("route under /%s/", t),
			fmt.Sprintf("route %s%s of tenant %s lies in tenant %s's space /%s/", shown(p), on, t, seg, seg))
		pe.related = []relSite{{tenants[seg], "metadata.name", "tenant " + seg + " is defined here"}}
		return
	}
	if p == "" {
		var others []string
		for _, n := range names {
			if n != t {
				others = append(others, n)
			}
		}
		if len(others) > 0 {
			pe := v.add(o, SeverityError, false, path, fmt.Sprintf("route under /%s/; a catch-all / can only be granted to the one tenant of a gateway", t),
				fmt.Sprintf("route /%s of tenant %s would capture the paths of every other tenant (%s)", on, t, nameList(others, 5)))
			pe.related = []relSite{{tenants[others[0]], "metadata.name", "tenant " + others[0] + " is defined here"}}
			return
		}
	}
	for _, g := range grants {
		if g.tenant != t && pathsOverlap(g.prefix, p) {
			pe := v.add(o, SeverityError, false, path, fmt.Sprintf("route under /%s/", t),
				fmt.Sprintf("route %s%s of tenant %s overlaps %s, granted to tenant %s", shown(p), on, t, shown(g.prefix), g.tenant))
			pe.related = []relSite{{g.gw, g.path, "granted to tenant " + g.tenant + " here"}}
			return
		}
	}
	msg := fmt.Sprintf("route %s%s of tenant %s lies outside its space /%s/", shown(p), on, t, t)
	if v.opts.SkipReferences && !haveGateway {
		return // stoad checks it against its Gateway
	}
	if v.opts.Offline && !haveGateway {
		if v.opts.StrictRefs {
			v.errorf(o, path, hint, "%s and no Gateway in these files grants it", msg)
			return
		}
		v.add(o, SeverityNote, false, path, hint, msg+"; no Gateway in these files grants it, so diff and apply check the live Gateway's grants")
		return
	}
	v.errorf(o, path, hint, "%s and no grant in the Gateway (spec.routing.grants) covers it", msg)
}

// shown renders a normalised prefix for messages ("/" for the root).
func shown(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// gatewaySpec returns the Gateway in force: the validated one, else the
// live one.
func (v *validator) gatewaySpec() (*Object, *GatewaySpec) {
	var best *Object
	for _, o := range v.objs {
		if o != nil && o.Kind == KindGateway && !v.shadowed[o] && (best == nil || o.Metadata.Name < best.Metadata.Name) {
			best = o
		}
	}
	if best == nil {
		for _, o := range v.live {
			if o.Kind == KindGateway && (best == nil || o.Metadata.Name < best.Metadata.Name) {
				best = o
			}
		}
	}
	if best == nil {
		return nil, nil
	}
	s, _ := best.Spec.(*GatewaySpec)
	if s == nil {
		return nil, nil
	}
	return best, s
}

// routingGrants checks the syntax of a Gateway's grants (their ownership
// is checked with the routes).
func (v *validator) routingGrants(o *Object, r *GatewayRouting) {
	if r == nil {
		return
	}
	for i, g := range r.Grants {
		gp := itemPath("spec.routing.grants", i)
		switch why := checkDNSLabel(g.Tenant); {
		case g.Tenant == "":
			v.errorf(o, gp+".tenant", "the name of the Tenant granted", "missing tenant")
		case why != "":
			v.errorf(o, gp+".tenant", dnsLabelHint(g.Tenant), "invalid tenant name %q: %s", g.Tenant, why)
		default:
			v.ref(o, gp+".tenant", KindTenant, g.Tenant)
		}
		if len(g.PathPrefixes) == 0 && len(g.Hosts) == 0 {
			v.errorf(o, gp, "grant pathPrefixes, hosts or both", "a grant needs pathPrefixes or hosts")
		}
		v.stringList(o, gp+".pathPrefixes", "path prefix", g.PathPrefixes)
		for j, p := range g.PathPrefixes {
			pp := itemPath(gp+".pathPrefixes", j)
			if p == "" {
				continue
			}
			if prob, hint := pathPrefixProblem(p); prob != "" {
				v.errorf(o, pp, hint, "%s", prob)
			} else if why := reservedProblem(routePrefix(p)); why != "" {
				v.errorf(o, pp, "grant another prefix", "path prefix %s is reserved: %s", shown(routePrefix(p)), why)
			}
		}
		v.stringList(o, gp+".hosts", "host", g.Hosts)
		for j, h := range g.Hosts {
			if h != "" && !validHost(h) {
				v.errorf(o, itemPath(gp+".hosts", j), "a host name such as api.example.com", "invalid host %q", h)
			}
		}
	}
}

// nameList renders names for messages, at most max of them: "a, b and 3 more".
func nameList(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:max], ", ") + " and " + strconv.Itoa(len(names)-max) + " more"
}
