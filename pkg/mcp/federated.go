package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/mcp/federation"
	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Federated MCP servers (Tools with protocol: mcp, docs/federation.md):
// each tool an upstream exposes becomes one catalog tool, compiled like an
// operation's (name checked, invisible characters stripped, input schema
// compiled), and its resources join the Tool's tenant view. Calls and
// resource reads go to the FederationBackend.

// Federation supplies what each federated Tool exposes, by tenant and
// Tool name: a reload's federation.Pending, or the live
// federation.Manager's upstreams.
type Federation interface {
	Tools(tenant, tool string) []federation.Tool
	Resources(tenant, tool string) []federation.Resource
}

// WithFederation makes BuildCatalog add the tools and resources of the
// revision's Tools with protocol: mcp, as f exposes them.
func WithFederation(f Federation) CatalogOption {
	return func(c *catalogConfig) { c.federation = f }
}

// FederationBackend is implemented by a Backend that serves federated MCP
// servers. Without it, federated tools answer as unknown tools.
type FederationBackend interface {
	// CallUpstream runs tools/call of a federated tool (Tool.UpstreamName
	// set) with its arguments (a JSON object, or nil) through the same
	// admission and limits as Call, and returns the upstream's
	// CallToolResult verbatim. Errors: ErrUnknownTool (answered as for a
	// tool that does not exist), a *federation.RPCError with code -32602
	// (answered as invalid params with the upstream's message); any other
	// error becomes an isError result with its text, which must be safe
	// for the tenant to read.
	CallUpstream(ctx context.Context, caller Caller, tool *Tool, args []byte) (json.RawMessage, error)
	// ReadUpstreamResource reads uri (under federation.ResourcePrefix of
	// ref) from the federated Tool ref and returns the ReadResourceResult,
	// URIs already namespaced. federation.ErrUnknownResource (or any error
	// wrapping it) is answered as a missing resource, the same answer as
	// for another tenant's URI.
	ReadUpstreamResource(ctx context.Context, caller Caller, ref spec.Ref, uri string) (json.RawMessage, error)
}

// Problems returns what the catalog could not expose of federated Tool
// ref as its upstream named it (a name already taken, an invalid name),
// each saying how to fix it. The engine's own problems are in the
// upstream's Status.
func (c *Catalog) Problems(ref spec.Ref) []string { return c.problems[ref] }

// fedSource is one federated Tool object of a catalog.
type fedSource struct {
	o *spec.Object
	s *spec.ToolSpec
}

// addFederated compiles the federated Tools' tools after every operation
// has its name: an operation's name is declared (and validated) in a spec,
// an upstream's appears at run time, so on a collision the operation keeps
// the name and the upstream tool is hidden, with a problem reported.
func (c *Catalog) addFederated(srcs []fedSource, f Federation, sc *schemaCompiler, cfg *catalogConfig) ([]*Tool, []*resource) {
	var tools []*Tool
	var res []*resource
	for _, src := range srcs {
		tenant, name := src.o.Metadata.Namespace, src.o.Metadata.Name
		ref := src.o.Ref()
		var ups []federation.Tool
		var upRes []federation.Resource
		if f != nil {
			ups, upRes = f.Tools(tenant, name), f.Resources(tenant, name)
		}
		var exposed []*Tool
		for i := range ups {
			t, problem := compileFederated(src.o, src.s, &ups[i], sc)
			if t != nil {
				if prev, dup := c.tools[t.Name]; dup {
					what := "operation " + strings.TrimPrefix(prev.Name, tenant+"__")
					if prev.Operation != nil {
						what = fmt.Sprintf("operation %q of %s", prev.Operation.Name, prev.Ref)
					} else if prev.UpstreamName != "" {
						what = fmt.Sprintf("upstream tool %q of %s", prev.UpstreamName, prev.Ref)
					}
					problem = fmt.Sprintf("upstream tool %q is not exposed: its name %q is already the %s. Rename it with tools.rename: {%q: other_name}",
						ups[i].UpstreamName, t.Name, what, ups[i].UpstreamName)
					t = nil
				}
			}
			if problem != "" {
				c.problems[ref] = append(c.problems[ref], problem)
			}
			if t == nil {
				continue
			}
			if cfg.handles != nil {
				t.Handle = cfg.handles(t)
			}
			c.tools[t.Name] = t
			tools = append(tools, t)
			exposed = append(exposed, t)
		}
		doc := &resource{
			uri:         ResourceURI(tenant, name),
			name:        tenant + "/" + name,
			title:       name + " MCP server",
			description: fmt.Sprintf("The %d MCP tool(s) of the %s MCP server.", len(exposed), name),
			mimeType:    "text/markdown",
			tenant:      tenant,
			ref:         ref,
			gen:         func() []byte { return stripInvisibleBytes(federatedMarkdown(src.o, src.s, exposed)) },
		}
		doc.name, doc.title, doc.description = stripInvisible(doc.name), stripInvisible(doc.title), stripInvisible(doc.description)
		c.resources[doc.uri] = doc
		res = append(res, doc)
		if src.s.MCP.Resources != nil && src.s.MCP.Resources.Expose {
			c.fedResources[federation.ResourcePrefix(tenant, name)] = ref
			for _, ur := range upRes {
				r := &resource{
					uri: ur.URI, name: stripInvisible(ur.Name), title: stripInvisible(ur.Title),
					description: stripInvisible(ur.Description), mimeType: ur.MimeType,
					tenant: tenant, ref: ref, federated: true, size: ur.Size,
				}
				if _, dup := c.resources[r.uri]; dup {
					continue
				}
				c.resources[r.uri] = r
				res = append(res, r)
			}
		}
	}
	return tools, res
}

// compileFederated turns one upstream tool into a catalog tool: nil and a
// problem when its name is not one stoa can serve.
func compileFederated(o *spec.Object, s *spec.ToolSpec, up *federation.Tool, sc *schemaCompiler) (*Tool, string) {
	if err := validToolName(up.Name); err != nil {
		return nil, fmt.Sprintf("upstream tool %q is not exposed: %v", up.UpstreamName, err)
	}
	t := &Tool{
		Name:         up.Name,
		Title:        stripInvisible(up.Title),
		Description:  stripInvisible(up.Description),
		Tenant:       o.Metadata.Namespace,
		Ref:          o.Ref(),
		Spec:         s,
		UpstreamName: up.UpstreamName,
		Annotations:  federatedAnnotations(up.Annotations),
	}
	if t.Title == "" {
		t.Title = stripInvisible(up.Annotations.Title)
	}
	var problem string
	input, decoded, err := stripRawSchema(up.InputSchema)
	if err != nil {
		return nil, fmt.Sprintf("upstream tool %q is not exposed: input schema: %v", up.UpstreamName, err)
	}
	t.InputSchema = input
	if cs, err := sc.compile(input); err != nil {
		// The upstream checks its arguments itself; stoad only cannot
		// check them first (and says so).
		problem = fmt.Sprintf("the input schema of upstream tool %q does not compile (%v); its arguments go upstream unchecked", up.UpstreamName, err)
	} else {
		t.schema = cs
	}
	if m, ok := decoded.(map[string]any); ok {
		t.paramHeaders = paramHeaders(m, nil, nil)
	}
	if len(up.OutputSchema) > 0 && string(up.OutputSchema) != "null" {
		out, _, err := stripRawSchema(up.OutputSchema)
		if err != nil {
			return nil, fmt.Sprintf("upstream tool %q is not exposed: output schema: %v", up.UpstreamName, err)
		}
		t.OutputSchema = out
	}
	for _, tag := range s.Tags {
		if tag = stripInvisible(tag); !containsString(t.Tags, tag) {
			t.Tags = append(t.Tags, tag)
		}
	}
	return t, problem
}

// stripRawSchema returns an upstream's JSON Schema compacted, without
// invisible characters (re-encoded only when there were some; otherwise
// member order is the upstream's), and decoded.
func stripRawSchema(raw json.RawMessage) (json.RawMessage, any, error) {
	v, err := rpc.DecodeValue(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, nil, fmt.Errorf("not a JSON object")
	}
	nv, changed, err := stripSchema(v)
	if err != nil {
		return nil, nil, err
	}
	if changed {
		enc, err := encodeSchema(nv.(map[string]any))
		return enc, nv, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), v, nil
}

// federatedAnnotations resolves an upstream's hints: unset ones take the
// MCP defaults (ToolAnnotations: readOnly false, destructive true,
// idempotent false, openWorld true).
func federatedAnnotations(a federation.Annotations) Annotations {
	r := Annotations{Destructive: true, OpenWorld: true}
	set := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	set(&r.ReadOnly, a.ReadOnly)
	set(&r.Destructive, a.Destructive)
	set(&r.Idempotent, a.Idempotent)
	set(&r.OpenWorld, a.OpenWorld)
	return r
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// federatedMarkdown documents a federated Tool for agents: its tools as
// stoa exposes them. It never includes the upstream's address, command or
// credentials.
func federatedMarkdown(o *spec.Object, s *spec.ToolSpec, tools []*Tool) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s (tenant %s)\n\n", o.Metadata.Name, o.Metadata.Namespace)
	if s.Description != "" {
		b.WriteString(s.Description + "\n\n")
	}
	b.WriteString("An MCP server federated by stoa: its tools are called through the gateway, with the gateway's credential.\n\n")
	if len(s.Tags) > 0 {
		fmt.Fprintf(&b, "Tags: %s\n\n", strings.Join(s.Tags, ", "))
	}
	if s.RateLimit != nil && !s.RateLimit.IsZero() {
		fmt.Fprintf(&b, "Rate limit: %s\n\n", s.RateLimit.Rate)
	}
	b.WriteString("## Tools\n")
	if len(tools) == 0 {
		b.WriteString("\nNone at the moment (the server is starting, unreachable, or lists none).\n")
	}
	sorted := append([]*Tool(nil), tools...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, t := range sorted {
		fmt.Fprintf(&b, "\n### `%s`", t.Name)
		if t.Title != "" {
			b.WriteString(" — " + t.Title)
		}
		b.WriteString("\n\n")
		if t.Description != "" {
			b.WriteString(t.Description + "\n\n")
		}
		fmt.Fprintf(&b, "Input schema: `%s`\n", t.InputSchema)
	}
	return []byte(b.String())
}

// appendFederatedResult appends the tools/call response carrying an
// upstream's CallToolResult raw, verbatim; a 2026-07-28 caller gets
// resultType "complete" added when the upstream (of the older era) did
// not send one.
func appendFederatedResult(b, id, raw []byte, e era) []byte {
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"result":`...)
	raw = bytes.TrimSpace(raw)
	if e == eraModern && !hasMember(raw, "resultType") {
		i := rpc.SkipSpace(raw, 1)
		b = append(b, `{"resultType":"complete"`...)
		if i < len(raw) && raw[i] != '}' {
			b = append(b, ',')
		}
		b = append(b, raw[1:]...)
	} else {
		b = append(b, raw...)
	}
	return append(b, '}')
}

// federatedResource returns the federated Tool whose upstream serves uri,
// when caller may read its resources: the caller's tenant's (or any, for
// admins), and, for a caller with Grants, a Tool with a tool the caller
// may call (as for listed resources).
func (c *Catalog) federatedResource(caller Caller, uri string) (spec.Ref, bool) {
	rest, ok := strings.CutPrefix(uri, "stoa://tools/")
	if !ok {
		return spec.Ref{}, false
	}
	tenant, rest, _ := strings.Cut(rest, "/")
	tool, _, _ := strings.Cut(rest, "/")
	ref, ok := c.fedResources[federation.ResourcePrefix(tenant, tool)]
	if !ok || !strings.HasPrefix(uri, federation.ResourcePrefix(tenant, tool)) {
		return spec.Ref{}, false
	}
	if caller.Admin {
		return ref, true
	}
	if ref.Namespace != caller.Tenant {
		return spec.Ref{}, false
	}
	if caller.Grants != nil {
		for _, t := range c.viewFor(caller).tools {
			if t.Ref == ref {
				return ref, true
			}
		}
		return spec.Ref{}, false
	}
	return ref, true
}

// isObject reports whether raw holds a JSON object (after whitespace).
func isObject(raw []byte) bool {
	i := rpc.SkipSpace(raw, 0)
	return i < len(raw) && raw[i] == '{'
}

// member returns the raw value of the top-level member key of the JSON
// object raw.
func member(raw []byte, key string) ([]byte, bool) {
	it := rpc.NewIterator(raw)
	for {
		k, v, ok := it.Next()
		if !ok {
			return nil, false
		}
		if string(k) == key {
			return v, len(v) > 0
		}
	}
}

// hasMember reports whether the JSON object raw has a top-level member
// named key.
func hasMember(raw []byte, key string) bool {
	it := rpc.NewIterator(raw)
	for {
		k, _, ok := it.Next()
		if !ok {
			return false
		}
		if string(k) == key {
			return true
		}
	}
}
