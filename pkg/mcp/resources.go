package mcp

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/mcp/argmap"
	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// resource is one readable document: a Tool's generated documentation or
// its OpenAPI source.
type resource struct {
	uri         string
	name        string
	title       string
	description string
	mimeType    string
	tenant      string
	ref         spec.Ref // the Tool object documented
	// federated resources are read from the Tool's upstream MCP server
	// (FederationBackend); size is what the upstream listed.
	federated bool
	size      *int64
	text      []byte
	// gen builds text on the first read, for documents derived from the
	// spec: a catalog of 10,000 tools need not render 10,000 documents
	// that are rarely read.
	gen  func() []byte
	once sync.Once
}

// body returns the resource's text, building it on first use.
func (r *resource) body() []byte {
	if r.gen != nil {
		r.once.Do(func() { r.text = r.gen() })
	}
	return r.text
}

// ResourceURI returns the URI of the documentation resource of a Tool
// object; the OpenAPI document, when there is one, is at URI + "/openapi".
func ResourceURI(tenant, tool string) string {
	return "stoa://tools/" + tenant + "/" + tool
}

func toolResources(o *spec.Object, s *spec.ToolSpec, openAPI []byte) []*resource {
	tenant, name := o.Metadata.Namespace, o.Metadata.Name
	doc := &resource{
		uri:         ResourceURI(tenant, name),
		name:        tenant + "/" + name,
		title:       name + " API documentation",
		description: fmt.Sprintf("How to use the %d MCP tool(s) of the %s API.", len(s.Operations), name),
		mimeType:    "text/markdown",
		tenant:      tenant,
		gen:         func() []byte { return stripInvisibleBytes(toolMarkdown(o, s)) },
	}
	out := []*resource{doc}
	if len(openAPI) > 0 {
		mt := "application/yaml"
		if i := rpc.SkipSpace(openAPI, 0); i < len(openAPI) && openAPI[i] == '{' {
			mt = "application/json"
		}
		out = append(out, &resource{
			uri:         doc.uri + "/openapi",
			name:        tenant + "/" + name + "/openapi",
			title:       name + " OpenAPI document",
			description: "The OpenAPI document the " + name + " API's operations were imported from.",
			mimeType:    mt,
			tenant:      tenant,
			text:        stripInvisibleBytes(openAPI),
		})
	}
	for _, r := range out {
		r.ref = o.Ref()
		r.name, r.title, r.description = stripInvisible(r.name), stripInvisible(r.title), stripInvisible(r.description)
	}
	return out
}

// appendEntry appends the resources/list entry of r to b.
func (r *resource) appendEntry(b []byte) []byte {
	b = append(b, `{"uri":`...)
	b = rpc.AppendString(b, r.uri)
	b = append(b, `,"name":`...)
	b = rpc.AppendString(b, r.name)
	// Optional members are left out when empty (an upstream's resources
	// may have no title, description or type).
	for _, m := range [...]struct{ key, v string }{{"title", r.title}, {"description", r.description}, {"mimeType", r.mimeType}} {
		if m.v != "" {
			b = append(b, `,"`+m.key+`":`...)
			b = rpc.AppendString(b, m.v)
		}
	}
	switch {
	case r.federated:
		if r.size != nil {
			b = append(b, `,"size":`...)
			b = rpc.AppendInt(b, *r.size)
		}
	case r.gen == nil: // size is optional; generated documents have none yet
		b = append(b, `,"size":`...)
		b = rpc.AppendInt(b, int64(len(r.text)))
	}
	return append(b, '}')
}

// appendContents appends the resources/read "contents" element. It is
// encoded on demand: reads are rare, and a catalog of 10,000 tools would
// otherwise keep every document twice.
func (r *resource) appendContents(b []byte) []byte {
	b = append(b, `{"uri":`...)
	b = rpc.AppendString(b, r.uri)
	b = append(b, `,"mimeType":`...)
	b = rpc.AppendString(b, r.mimeType)
	b = append(b, `,"text":`...)
	b = rpc.AppendString(b, r.body())
	return append(b, '}')
}

// toolMarkdown documents a Tool object for agents: what each operation does,
// its MCP tool name, HTTP mapping and arguments. It never includes upstream
// addresses or secrets.
func toolMarkdown(o *spec.Object, s *spec.ToolSpec) []byte {
	tenant := o.Metadata.Namespace
	var b strings.Builder
	fmt.Fprintf(&b, "# %s (tenant %s)\n\n", o.Metadata.Name, tenant)
	if s.Description != "" {
		b.WriteString(s.Description + "\n\n")
	}
	if len(s.Tags) > 0 {
		fmt.Fprintf(&b, "Tags: %s\n\n", strings.Join(s.Tags, ", "))
	}
	if s.Auth != nil && s.Auth.Type != "" {
		fmt.Fprintf(&b, "Caller authentication: %s\n\n", s.Auth.Type)
	}
	if s.RateLimit != nil && !s.RateLimit.IsZero() {
		fmt.Fprintf(&b, "Rate limit: %s\n\n", s.RateLimit.Rate)
	}
	b.WriteString("## Operations\n")
	for i := range s.Operations {
		op := &s.Operations[i]
		fmt.Fprintf(&b, "\n### `%s`", spec.MCPToolName(tenant, o.Metadata.Name, op))
		if op.Title != "" {
			b.WriteString(" — " + op.Title)
		}
		fmt.Fprintf(&b, "\n\n`%s %s`\n\n", strings.ToUpper(op.Method), op.Path)
		if op.Description != "" {
			b.WriteString(op.Description + "\n\n")
		}
		plan, err := argmap.Compile(op.Method, op.Path, op.In)
		if err != nil {
			continue
		}
		props, _ := op.Input["properties"].(map[string]any)
		required := map[string]bool{}
		if req, ok := op.Input["required"].([]any); ok {
			for _, r := range req {
				if s, ok := r.(string); ok {
					required[s] = true
				}
			}
		}
		names := make([]string, 0, len(props))
		for n := range props {
			names = append(names, n)
		}
		for _, p := range plan.Placeholders() {
			if _, ok := props[p]; !ok {
				names = append(names, p)
				required[p] = true
			}
		}
		if len(names) == 0 {
			b.WriteString("No arguments.\n")
			continue
		}
		sort.Strings(names)
		b.WriteString("| argument | type | required | sent in | description |\n|---|---|---|---|---|\n")
		for _, n := range names {
			typ, desc := "string", ""
			if p, ok := props[n].(map[string]any); ok {
				typ = fmt.Sprint(p["type"])
				if d, ok := p["description"].(string); ok {
					desc = strings.ReplaceAll(d, "|", "\\|")
				}
			}
			req := "no"
			if required[n] {
				req = "yes"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", n, typ, req, plan.LocationOf(n), desc)
		}
	}
	return []byte(b.String())
}
