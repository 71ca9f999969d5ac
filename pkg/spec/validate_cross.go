package spec

import (
	"fmt"
	"sort"
	"strings"
)

// claimSite is an object field that claimed a unique value (a route, an MCP
// tool name, the one Gateway).
type claimSite struct {
	obj   *Object
	path  string // for routes and gateways
	op    int    // for MCP names: the operation index
	isMCP bool
}

// describe renders the site for messages: "Tool/acme/x spec.route (a.yaml:3:1)".
func (c claimSite) describe() string {
	if c.isMCP {
		c.path = opNamePath(c.obj, c.op)
	}
	s := c.obj.Ref().String()
	if c.path != "" {
		s += " " + c.path
	}
	if c.obj.Source == nil {
		return s + " (live)"
	}
	line, col, _ := c.obj.Source.Position(c.path, false)
	return fmt.Sprintf("%s (%s:%d:%d)", s, c.obj.Source.File, line, col)
}

// crossObject checks uniqueness across objects: routes, MCP tool names per
// tenant and the single Gateway. Live objects the validated set does not
// replace take part, but only validated objects get diagnostics.
func (v *validator) crossObject(objs []*Object) {
	type routeKey struct{ host, prefix string }
	type mcpKey struct{ tenant, name string }
	// Sized up front: 10,000 Tools claim 10,000 routes and 20,000 names,
	// and growing the maps cost more than filling them.
	routes := make(map[routeKey]claimSite, len(objs)+len(v.live))
	mcpNames := make(map[mcpKey]claimSite, 2*(len(objs)+len(v.live)))
	var gateway *claimSite

	visit := func(o *Object, report bool) {
		switch s := o.Spec.(type) {
		case *GatewaySpec:
			if gateway != nil {
				if report {
					v.errorf(o, "", "keep one Gateway (conventionally named default)",
						"only one Gateway may exist; another is defined at %s", gateway.describe())
				}
				return
			}
			gateway = &claimSite{obj: o}
		case *ToolSpec:
			if s.Protocol == ProtocolMCP {
				// No HTTP route; the names its renames claim are known.
				if s.MCP == nil || s.MCP.Tools == nil {
					return
				}
				prefix := o.Metadata.Namespace + "__" + o.Metadata.Name + "__"
				for _, old := range sortedKeys(s.MCP.Tools.Rename) {
					name := prefix + s.MCP.Tools.Rename[old]
					if old == "" || !validMCPName(name) {
						continue
					}
					key := mcpKey{o.Metadata.Namespace, name}
					path := "spec.mcp.tools.rename" + pathKey(old)
					if other, dup := mcpNames[key]; dup {
						if report && other.obj != o {
							v.errorf(o, path, "rename it to another name, or set a different mcpName on the operation",
								"MCP tool name %q is also used by %s", name, other.describe())
						}
						continue
					}
					mcpNames[key] = claimSite{obj: o, path: path}
				}
				return
			}
			var prefix string
			path := "spec.route"
			host := ""
			if s.Route != nil {
				host = strings.ToLower(s.Route.Host)
				if s.Route.PathPrefix != "" {
					prefix, path = s.Route.PathPrefix, "spec.route.pathPrefix"
				}
			}
			if prefix == "" {
				prefix = "/" + o.Metadata.Namespace + "/" + o.Metadata.Name
			}
			key := routeKey{host, normPrefix(prefix)}
			if other, dup := routes[key]; dup {
				if report {
					on := ""
					if host != "" {
						on = fmt.Sprintf(" on host %s", host)
					}
					v.errorf(o, path, "give one of the tools another route.pathPrefix or route.host",
						"route %s%s is also used by %s", prefix, on, other.describe())
				}
			} else {
				routes[key] = claimSite{obj: o, path: path}
			}
			for i := range s.Operations {
				op := &s.Operations[i]
				if op.Name == "" && op.MCPName == "" {
					continue
				}
				name := MCPToolName(o.Metadata.Namespace, o.Metadata.Name, op)
				key := mcpKey{o.Metadata.Namespace, name}
				if other, dup := mcpNames[key]; dup {
					if report {
						v.errorf(o, opNamePath(o, i), "set a different mcpName on one of them",
							"MCP tool name %q is also used by %s", name, other.describe())
					}
					continue
				}
				mcpNames[key] = claimSite{obj: o, op: i, isMCP: true}
			}
		}
	}
	// Live objects first, in a stable order, so that a conflict with them is
	// reported on the validated object.
	// The daemon gives them sorted already (the live revision's order):
	// then checking is enough.
	live := v.liveList
	if !sortedByRef(live) || len(live) != len(v.live) {
		live = make([]*Object, 0, len(v.live))
		for _, o := range v.live {
			live = append(live, o)
		}
		sort.Slice(live, func(i, j int) bool { return live[i].Ref().Less(live[j].Ref()) })
	}
	for _, o := range live {
		visit(o, false)
	}
	for _, o := range objs {
		if o != nil && v.byRef[o.Ref()] == o && o.Spec != nil {
			visit(o, true)
		}
	}
}

// sortedByRef reports whether objs are in strictly increasing Ref order.
func sortedByRef(objs []*Object) bool {
	for i := 1; i < len(objs); i++ {
		if !objs[i-1].Ref().Less(objs[i].Ref()) {
			return false
		}
	}
	return true
}

// normPrefix makes "/a/b/" and "/a/b" compare equal.
func normPrefix(p string) string {
	if t := strings.TrimRight(p, "/"); t != "" {
		return t
	}
	return "/"
}

// opNamePath is the path of the field that names operation i's MCP tool.
func opNamePath(o *Object, i int) string {
	p := itemPath("spec.operations", i)
	if s, ok := o.Spec.(*ToolSpec); ok && i < len(s.Operations) && s.Operations[i].MCPName != "" {
		return p + ".mcpName"
	}
	return p + ".name"
}
